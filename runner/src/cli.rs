//! The command line: what each command takes, and how it maps to the library.

use crate::output;
use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand};
use graft::install::ProgressFactory;
use graft::{Graft, InstallOptions, Limits, ModuleId};
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code when a step failed (its module was rolled back).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad input: nothing was written.
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "graft",
    version,
    about = "Run module upgrades tenant by tenant, with sandboxed WebAssembly plugins",
    long_about = "Graft installs, upgrades and downgrades the modules of a multi-tenant platform \
                  (such as FOLIO) tenant by tenant. Each module ships its upgrade logic as a \
                  WebAssembly component; every module's steps run in one transaction of the \
                  tenant's database, under hard limits, and a failure leaves the tenant as it was.",
    after_help = "Start with `graft demo`, then:\n  \
                  graft tenant create diku\n  \
                  graft install --tenant diku mod-users-1.0.0 --load-reference\n  \
                  graft install --tenant diku mod-users-2.0.0     (upgrade)\n  \
                  graft install --tenant diku mod-users-1.1.0     (downgrade)\n  \
                  graft status --tenant diku\n\n\
                  Exit codes: 0 success, 1 a step failed (its module was rolled back), 2 bad input \
                  (nothing written)."
)]
pub struct Cli {
    /// Where tenant databases, the journal and the plugin cache live.
    #[arg(
        long,
        global = true,
        default_value = "graft-data",
        env = "GRAFT_DATA_DIR"
    )]
    pub data_dir: PathBuf,

    /// Folder of module packages (one sub-folder per module release);
    /// default: the sample modules built with graft.
    #[arg(long, global = true, env = "GRAFT_MODULES")]
    pub modules: Option<PathBuf>,

    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); or set GRAFT_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// The operator's ceiling for every plugin call; a module's graft.json may ask for less.
#[derive(Args)]
#[command(next_help_heading = "Plugin limits (per call)")]
pub struct LimitArgs {
    /// Wall-clock deadline of one plugin call, in seconds.
    #[arg(long, global = true, default_value_t = 900.0)]
    pub deadline_secs: f64,
    /// WebAssembly instructions (wasmtime fuel) one call may use; default: not counted.
    #[arg(long, global = true)]
    pub fuel: Option<u64>,
    /// Linear memory of one plugin instance, in MiB.
    #[arg(long, global = true, default_value_t = 1024)]
    pub memory_mb: u64,
    /// Log and stdout/stderr bytes kept per call; more is counted and dropped.
    #[arg(long, global = true, default_value_t = 1 << 20)]
    pub log_bytes: u64,
    /// Native stack of plugins, in KiB (one setting for all plugins).
    #[arg(long, global = true, default_value_t = 1024)]
    pub stack_kb: usize,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create and list tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// List the module packages Graft can see.
    #[command(subcommand)]
    Modules(ModulesCommand),
    /// Install, upgrade or downgrade modules for a tenant.
    ///
    /// Give module ids in the order to apply them. An id of a module the tenant
    /// does not have installs it; a newer id upgrades it; an older id downgrades
    /// it with the rollback of the enabled release's plugin; the same id runs
    /// the plugin again, which reports `unchanged`.
    Install(InstallArgs),
    /// Show the modules a tenant has enabled.
    Status(TenantArg),
    /// Show every step run for a tenant, and failed attempts from the journal.
    History(TenantArg),
    /// Run a demonstration on a fresh data directory: three tenants, installs,
    /// upgrades and a downgrade of mod-users with 10,000 users each.
    Demo(DemoArgs),
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create tenants (each gets its own database).
    Create {
        /// Tenant ids: a lower-case letter, then letters, digits or '_'.
        #[arg(required = true)]
        tenants: Vec<String>,
    },
    /// List tenants.
    List,
}

#[derive(Subcommand)]
pub enum ModulesCommand {
    /// List packages, with their interfaces and any problem that makes one unusable.
    List,
}

#[derive(Args)]
pub struct TenantArg {
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
}

#[derive(Args)]
pub struct InstallArgs {
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
    /// Module ids, e.g. mod-users-2.0.0.
    #[arg(required = true, value_name = "MODULE_ID")]
    pub module_ids: Vec<String>,
    /// Load the modules' reference data (never overwriting tenant records).
    #[arg(long)]
    pub load_reference: bool,
    /// Load the modules' sample data (only where absent).
    #[arg(long)]
    pub load_sample: bool,
    /// A tenant parameter for the plugins, KEY=VALUE (repeatable), e.g. sampleUsers=5000.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Sample users per tenant.
    #[arg(long, default_value_t = 10_000)]
    pub users: u64,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRAFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

impl LimitArgs {
    fn limits(&self) -> Result<Limits> {
        const WEEK: f64 = 7.0 * 24.0 * 3600.0;
        if !(self.deadline_secs > 0.0 && self.deadline_secs <= WEEK) {
            return Err(anyhow!(
                "--deadline-secs must be more than 0 and at most {WEEK} (a week)"
            ));
        }
        if self.memory_mb == 0 || self.memory_mb > 64 << 10 {
            return Err(anyhow!("--memory-mb must be between 1 and 65536"));
        }
        Ok(Limits {
            deadline: Duration::from_secs_f64(self.deadline_secs),
            fuel: self.fuel,
            memory_bytes: self.memory_mb << 20,
            log_bytes: self.log_bytes,
        })
    }
}

fn modules_dir(cli: &Cli) -> PathBuf {
    cli.modules
        .clone()
        .unwrap_or_else(|| graft_sample_modules::sample_modules_dir().to_path_buf())
}

fn open(cli: &Cli) -> Result<Graft> {
    Graft::open(
        &cli.data_dir,
        &modules_dir(cli),
        cli.limits.limits()?,
        cli.limits.stack_kb << 10,
    )
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.json;
    match &cli.command {
        Command::Tenant(TenantCommand::Create { tenants }) => {
            let graft = open(&cli)?;
            for tenant in tenants {
                graft.tenants.create(tenant)?;
            }
            output::created_tenants(tenants, json);
        }
        Command::Tenant(TenantCommand::List) => {
            let graft = open(&cli)?;
            output::tenants(&graft, json)?;
        }
        Command::Modules(ModulesCommand::List) => {
            let graft = open(&cli)?;
            output::modules(&graft, json)?;
        }
        Command::Install(args) => {
            let graft = open(&cli)?;
            let ids = args
                .module_ids
                .iter()
                .map(|id| ModuleId::parse(id).map_err(|e| anyhow!(e)))
                .collect::<Result<Vec<_>>>()?;
            let options = InstallOptions {
                load_reference: args.load_reference,
                load_sample: args.load_sample,
                parameters: args.params.clone(),
                progress: (!json).then(progress_bars),
            };
            let report = graft.install(&args.tenant, &ids, &options)?;
            output::tenant_report(&report, json);
            if !report.ok {
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        }
        Command::Status(TenantArg { tenant }) => {
            let graft = open(&cli)?;
            output::status(&graft, tenant, json)?;
        }
        Command::History(TenantArg { tenant }) => {
            let graft = open(&cli)?;
            output::history(&graft, tenant, json)?;
        }
        Command::Demo(args) => return crate::demo::run(&open_demo(&cli)?, args.users, json),
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo runs in a fresh sub-folder of the data directory, so running it
/// twice never meets the first run's tenants.
fn open_demo(cli: &Cli) -> Result<Graft> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = cli.data_dir.join(format!("demo-{stamp}"));
    Graft::open(
        &dir,
        &modules_dir(cli),
        cli.limits.limits()?,
        cli.limits.stack_kb << 10,
    )
}

/// A progress bar per step that reports progress, drawn on stderr when it is
/// a terminal.
pub fn progress_bars() -> ProgressFactory {
    Arc::new(|tenant: &str, module: &str, step: &str| {
        let label = format!("{tenant} {module} {step}");
        let mut bar: Option<ProgressBar> = None;
        Some(Box::new(move |done: u64, total: u64| {
            let bar = bar.get_or_insert_with(|| {
                let style = ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} records ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                ProgressBar::new(total)
                    .with_style(style)
                    .with_message(label.clone())
                    .with_finish(ProgressFinish::AndClear)
            });
            bar.set_length(total);
            bar.set_position(done);
        }) as graft::host::ProgressFn)
    })
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
