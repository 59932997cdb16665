//! What vendors and their CI run: `validate` a package against fixtures,
//! and `fixture capture|restore`.

use super::config::open;
use super::progress::spinner;
use super::{print, Cli, EXIT_FAILED};
use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ValidateArgs {
    /// The package folder (ModuleDescriptor.json, the plugin, data folders),
    /// or its .tar.gz from `graft package`.
    #[arg(value_name = "PACKAGE")]
    pub package: PathBuf,
    /// A folder of fixtures (*.json, from `graft fixture capture`); fixtures of
    /// other modules or of newer releases are listed as not applicable.
    #[arg(long, value_name = "DIR")]
    pub fixtures: PathBuf,
    /// Also write the results as JUnit XML, for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Fail (not only warn) when a release the plugin upgrades from or
    /// rolls back to has no fixture.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Subcommand)]
pub enum FixtureCommand {
    /// Write a tenant's modules, collections, records and vendor bases to a JSON file.
    Capture {
        #[arg(long)]
        tenant: String,
        /// Only this module's data (default: every module of the tenant).
        #[arg(long)]
        module: Option<String>,
        /// The fixture file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Create a tenant from a fixture file (the tenant must not exist).
    Restore {
        #[arg(long)]
        tenant: String,
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub(super) fn validate(cli: &Cli, args: &ValidateArgs) -> Result<ExitCode> {
    let validation = open(cli)?.validate(
        &args.package,
        &args.fixtures,
        cli.modules.clone(),
        (!cli.json).then(spinner),
        args.strict,
    )?;
    if let Some(path) = &args.junit {
        std::fs::write(path, graft::validate::junit::render(&validation))
            .map_err(|e| anyhow!("{}: cannot write the JUnit report: {e}", path.display()))?;
    }
    print::validation(&validation, cli.json);
    Ok(if validation.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

#[derive(Args)]
pub struct PackageArgs {
    /// The folder with ModuleDescriptor.json, and optionally graft.json and
    /// the data folders.
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// The built component (wasm32-wasip2); default: the plugin in SOURCE.
    #[arg(long, value_name = "FILE")]
    pub plugin: Option<PathBuf>,
    /// Where to write <module-id>/ and <module-id>.tar.gz (made if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub(super) fn package(cli: &Cli, args: &PackageArgs) -> Result<ExitCode> {
    let assembled = open(cli)?.assemble(&graft::assemble::Parts {
        source: &args.source,
        plugin: args.plugin.as_deref(),
        out: &args.out,
    })?;
    print::assembled(&assembled, cli.json);
    Ok(if assembled.validation.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

#[derive(Args)]
pub struct NewArgs {
    /// The module's name, without a version, e.g. mod-widgets.
    #[arg(value_name = "MODULE")]
    pub module: String,
    /// The plugin's language.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: graft::scaffold::Lang,
    /// The project folder (default: ./MODULE).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `graft new`: a project folder, then what to run in it.
pub(super) fn new(args: &NewArgs, json: bool) -> Result<()> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.module));
    let project = graft::scaffold::create(&dir, &args.module, args.lang)?;
    if json {
        print::print_json(&project);
        return Ok(());
    }
    println!(
        "wrote {} ({} files): a {} plugin project for {}",
        project.dir.display(),
        project.files.len(),
        project.lang.label(),
        project.module
    );
    println!("next:");
    for command in &project.next {
        println!("  {command}");
    }
    Ok(())
}

pub(super) fn fixture(cli: &Cli, command: &FixtureCommand) -> Result<()> {
    let graft = open(cli)?;
    match command {
        FixtureCommand::Capture {
            tenant,
            module,
            out,
        } => {
            let fixture = graft.capture_fixture(tenant, module.as_deref())?;
            fixture.write(out)?;
            print::fixture(&fixture, out, "captured", cli.json);
        }
        FixtureCommand::Restore { tenant, file } => {
            let fixture = graft::fixture::Fixture::read(file)?;
            graft
                .restore_fixture(tenant, &fixture)
                .map_err(|e| anyhow!("{}: {e:#}", file.display()))?;
            print::fixture(
                &fixture,
                file,
                &format!("restored into tenant {tenant}"),
                cli.json,
            );
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct WitArgs {
    /// Write `migration.wit` into this folder (made if missing) instead of
    /// printing it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The contract version: 0.2 (the newest) or 0.1.
    #[arg(long, value_name = "VERSION", default_value = graft::host::Contract::NEWEST.version(), value_parser = contract_version)]
    pub contract: graft::host::Contract,
}

fn contract_version(text: &str) -> Result<graft::host::Contract, String> {
    graft::host::Contract::of_version(text)
        .ok_or_else(|| format!("this graft supports {}", graft::host::Contract::supported()))
}

/// `graft wit`: a contract this binary implements, from the binary itself.
pub(super) fn wit(args: &WitArgs, json: bool) -> Result<()> {
    let contract = args.contract;
    let text = contract.wit();
    let written = match &args.out {
        None => None,
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow!("{}: cannot make the folder: {e}", dir.display()))?;
            let file = dir.join("migration.wit");
            std::fs::write(&file, text)
                .map_err(|e| anyhow!("{}: cannot write: {e}", file.display()))?;
            Some(file)
        }
    };
    match (json, &written) {
        (true, _) => print::print_json(&serde_json::json!({
            "package": contract.package(),
            "file": written,
            "wit": if written.is_none() { Some(text) } else { None },
        })),
        (false, Some(file)) => println!("wrote {} ({})", file.display(), contract.package()),
        (false, None) => print!("{text}"),
    }
    Ok(())
}
