//! Jobs on tenants: `install`, `upgrade` and `disable`, on one tenant,
//! several or all, in this process (with a canary and in parallel) or
//! queued for workers.

use super::config::open;
use super::progress::{progress_bars, tenants_bar};
use super::{parse_param, print, Cli, EXIT_BAD_INPUT, EXIT_FAILED};
use anyhow::{anyhow, Result};
use clap::Args;
use graft::fanout::{Fanout, TenantOutcome};
use graft::install::{CommitMode, Job};
use graft::plan::{ReleaseFilter, Request, RequestAction};
use graft::InstallOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Which tenants a job runs on, and how.
#[derive(Args)]
#[group(required = true, multiple = false, id = "which_tenants")]
pub struct TenantSelection {
    /// A tenant id.
    #[arg(long, group = "which_tenants")]
    pub tenant: Option<String>,
    /// Several tenants, comma-separated.
    #[arg(long, value_delimiter = ',', group = "which_tenants")]
    pub tenants: Vec<String>,
    /// Every tenant of the data directory.
    #[arg(long, group = "which_tenants")]
    pub all_tenants: bool,
}

#[derive(Args)]
pub struct FanoutArgs {
    /// Run this tenant first, alone, and stop everything if it fails.
    #[arg(long, value_name = "TENANT")]
    pub canary: Option<String>,
    /// How many tenants to run at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub parallel: usize,
    /// Do not run here: put one job per tenant in the database's queue, for
    /// `graft worker` processes to take (PostgreSQL; see `graft jobs`).
    #[arg(long, conflicts_with_all = ["canary", "parallel"])]
    pub queue: bool,
}

#[derive(Args)]
pub struct JobArgs {
    /// Load the modules' reference data (never overwriting tenant records).
    #[arg(long)]
    pub load_reference: bool,
    /// Load the modules' sample data (only where absent).
    #[arg(long)]
    pub load_sample: bool,
    /// A tenant parameter for the plugins, KEY=VALUE (repeatable), e.g. sampleUsers=5000.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Run the real plugins on the real data, report the plan and every change,
    /// and roll it all back: nothing is written.
    #[arg(long)]
    pub simulate: bool,
    /// `atomic`: all modules of a tenant commit together or not at all;
    /// `per-module`: each module commits on its own.
    #[arg(long, value_enum, default_value = "atomic")]
    pub commit: CommitArg,
    /// Fail a module whose steps report more record warnings than this.
    #[arg(long, value_name = "N")]
    pub max_warnings: Option<u64>,
    /// Run modules already at the requested release again (Okapi's
    /// `reinstall`); without it they are `uptodate` and no plugin runs.
    #[arg(long)]
    pub reinstall: bool,
    /// Okapi's `preRelease`: whether a module name alone, or a dependency,
    /// may resolve to a pre-release (1.0.0-SNAPSHOT): true, false or only.
    #[arg(long, value_name = "true|false|only", value_parser = parse_release_filter("preRelease"))]
    pub pre_release: Option<Option<bool>>,
    /// Okapi's `npmSnapshot`: the same for npm snapshots (1.0.10000).
    #[arg(long, value_name = "true|false|only", value_parser = parse_release_filter("npmSnapshot"))]
    pub npm_snapshot: Option<Option<bool>>,
    /// Okapi's `depCheck=false`: run the request as it is, in its order: no
    /// module pulled in, moved or disabled for dependencies.
    #[arg(long)]
    pub no_dep_check: bool,
    /// Okapi's `ignoreErrors`: a failed module does not stop the modules
    /// after it (needs --commit per-module, where each module commits alone).
    #[arg(long)]
    pub ignore_errors: bool,
}

fn parse_release_filter(
    name: &'static str,
) -> impl Fn(&str) -> Result<Option<bool>, String> + Clone + Send + Sync + 'static {
    move |value| ReleaseFilter::parse_value(name, value)
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum CommitArg {
    Atomic,
    PerModule,
}

#[derive(Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub which: TenantSelection,
    /// Module ids, e.g. mod-users-2.0.0 (a name alone means its newest release).
    #[arg(value_name = "MODULE_ID", required_unless_present = "file")]
    pub module_ids: Vec<String>,
    /// An Okapi install list: [{"id": "mod-users-19.4.5", "action": "enable"}, ...].
    #[arg(long, value_name = "FILE", conflicts_with = "module_ids")]
    pub file: Option<PathBuf>,
    /// Disabling a module (in an install list) also removes its data.
    #[arg(long)]
    pub purge: bool,
    /// Install-list entries with no package are listed as not managed by
    /// Graft and the rest runs (for a platform's list, e.g. platform-complete's);
    /// without it they are an error, as in Okapi ("Module ... not found").
    #[arg(long, requires = "file")]
    pub allow_unmanaged: bool,
    #[command(flatten)]
    pub job: JobArgs,
    #[command(flatten)]
    pub fanout: FanoutArgs,
}

#[derive(Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub which: TenantSelection,
    #[command(flatten)]
    pub job: JobArgs,
    #[command(flatten)]
    pub fanout: FanoutArgs,
}

#[derive(Args)]
pub struct DisableArgs {
    #[command(flatten)]
    pub which: TenantSelection,
    /// Modules to disable, by name or id. (Not named `modules`: that id is
    /// the global `--modules` folder, and clap refuses two arguments of one id.)
    #[arg(required = true, value_name = "MODULE")]
    pub module_names: Vec<String>,
    /// Also remove the modules' data.
    #[arg(long)]
    pub purge: bool,
    /// Report what would change and write nothing.
    #[arg(long)]
    pub simulate: bool,
    #[command(flatten)]
    pub fanout: FanoutArgs,
}

impl JobArgs {
    fn options(&self, json: bool, purge: bool) -> InstallOptions {
        InstallOptions {
            load_reference: self.load_reference,
            load_sample: self.load_sample,
            parameters: self.params.clone(),
            progress: (!json).then(progress_bars),
            simulate: self.simulate,
            commit: match self.commit {
                CommitArg::Atomic => CommitMode::Atomic,
                CommitArg::PerModule => CommitMode::PerModule,
            },
            max_warnings: self.max_warnings,
            purge,
            reinstall: self.reinstall,
            releases: ReleaseFilter {
                pre_release: self.pre_release.flatten(),
                npm_snapshot: self.npm_snapshot.flatten(),
            },
            no_dep_check: self.no_dep_check,
            ignore_errors: self.ignore_errors,
            allow_unmanaged: false,
            clock: None,
            job_id: None,
        }
    }
}

pub(super) fn install(cli: &Cli, args: &InstallArgs) -> Result<ExitCode> {
    let mut options = args.job.options(cli.json, args.purge);
    options.allow_unmanaged = args.allow_unmanaged;
    let job = match &args.file {
        Some(file) => {
            let list = read_install_list(file)?;
            list.parameters
                .apply(&mut options, &args.job)
                .map_err(|e| anyhow!("{}: parameters: {e}", file.display()))?;
            Job::InstallList(list.modules)
        }
        None => Job::Modules(
            args.module_ids
                .iter()
                .map(|id| Request {
                    id: id.clone(),
                    action: RequestAction::Enable,
                })
                .collect(),
        ),
    };
    run_job(cli, &args.which, &args.fanout, &job, &options)
}

pub(super) fn upgrade(cli: &Cli, args: &UpgradeArgs) -> Result<ExitCode> {
    let options = args.job.options(cli.json, false);
    run_job(cli, &args.which, &args.fanout, &Job::UpgradeAll, &options)
}

pub(super) fn disable(cli: &Cli, args: &DisableArgs) -> Result<ExitCode> {
    let requests = args
        .module_names
        .iter()
        .map(|id| Request {
            id: id.clone(),
            action: RequestAction::Disable,
        })
        .collect();
    let options = InstallOptions {
        purge: args.purge,
        simulate: args.simulate,
        ..InstallOptions::default()
    };
    run_job(
        cli,
        &args.which,
        &args.fanout,
        &Job::Modules(requests),
        &options,
    )
}

/// An install list: Okapi's array of entries, or an object with the
/// entries as `modules` and Okapi's install parameters as `parameters`.
struct InstallList {
    modules: Vec<Request>,
    parameters: InstallParameters,
}

/// Okapi's install parameters (the query of `/_/proxy/tenants/T/install`),
/// by Okapi's names, as strings or booleans.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InstallParameters {
    simulate: Option<Flag>,
    pre_release: Option<Flag>,
    npm_snapshot: Option<Flag>,
    reinstall: Option<Flag>,
    dep_check: Option<Flag>,
    purge: Option<Flag>,
    ignore_errors: Option<Flag>,
    /// `loadReference=true,loadSample=true,KEY=VALUE`.
    tenant_parameters: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn text(&self) -> &str {
        match self {
            Flag::Bool(true) => "true",
            Flag::Bool(false) => "false",
            Flag::Text(text) => text,
        }
    }

    fn boolean(&self, name: &str) -> Result<bool> {
        match self.text() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(anyhow!(
                "{name}: expected true or false, got {:?}",
                graft::text::truncate(other, 100)
            )),
        }
    }
}

impl InstallParameters {
    /// The list's parameters, under what the command line says: a flag
    /// given there wins.
    fn apply(&self, options: &mut InstallOptions, args: &JobArgs) -> Result<()> {
        let on = |flag: &Option<Flag>, name: &str| -> Result<bool> {
            flag.as_ref().map_or(Ok(false), |f| f.boolean(name))
        };
        options.simulate |= on(&self.simulate, "simulate")?;
        options.reinstall |= on(&self.reinstall, "reinstall")?;
        options.purge |= on(&self.purge, "purge")?;
        options.ignore_errors |= on(&self.ignore_errors, "ignoreErrors")?;
        if let Some(dep_check) = &self.dep_check {
            options.no_dep_check |= !dep_check.boolean("depCheck")?;
        }
        let filter = |flag: &Option<Flag>, name: &str| -> Result<Option<bool>> {
            match flag {
                Some(f) => ReleaseFilter::parse_value(name, f.text()).map_err(|e| anyhow!(e)),
                None => Ok(None),
            }
        };
        if args.pre_release.is_none() {
            options.releases.pre_release = filter(&self.pre_release, "preRelease")?;
        }
        if args.npm_snapshot.is_none() {
            options.releases.npm_snapshot = filter(&self.npm_snapshot, "npmSnapshot")?;
        }
        for pair in self
            .tenant_parameters
            .iter()
            .flat_map(|p| p.split(','))
            .filter(|p| !p.is_empty())
        {
            let (key, value) = parse_param(pair).map_err(|e| anyhow!("tenantParameters: {e}"))?;
            match key.as_str() {
                "loadReference" => options.load_reference |= value == "true",
                "loadSample" => options.load_sample |= value == "true",
                _ if options.parameters.iter().any(|(k, _)| *k == key) => {}
                _ => options.parameters.push((key, value)),
            }
        }
        Ok(())
    }
}

/// Read an Okapi install list; the error names the file and the entry.
fn read_install_list(path: &Path) -> Result<InstallList> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read the install list: {e}", path.display()))?;
    let shape = "an install list (a JSON array of {\"id\", \"action\"}, or {\"modules\": [...], \"parameters\": {...}})";
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: not {shape}: {e}", path.display()))?;
    let (entries, parameters) = match value {
        serde_json::Value::Array(entries) => (entries, InstallParameters::default()),
        serde_json::Value::Object(mut object) => {
            if let Some(key) = object
                .keys()
                .find(|k| !["modules", "parameters"].contains(&k.as_str()))
            {
                return Err(anyhow!(
                    "{}: unknown field {key:?}: expected modules and parameters",
                    path.display()
                ));
            }
            let parameters = match object.remove("parameters") {
                Some(p) => serde_json::from_value(p).map_err(|e| {
                    anyhow!("{}: parameters: {e} (Okapi's install parameters: simulate, preRelease, npmSnapshot, reinstall, depCheck, purge, ignoreErrors, tenantParameters)", path.display())
                })?,
                None => InstallParameters::default(),
            };
            match object.remove("modules") {
                Some(serde_json::Value::Array(entries)) => (entries, parameters),
                _ => {
                    return Err(anyhow!(
                        "{}: modules: missing or not a list of entries",
                        path.display()
                    ))
                }
            }
        }
        _ => return Err(anyhow!("{}: not {shape}", path.display())),
    };
    let modules = entries
        .into_iter()
        .enumerate()
        .map(|(n, entry)| {
            serde_json::from_value::<Request>(entry).map_err(|e| {
                anyhow!("{}: entry {n}: {e}: each entry is {{\"id\": \"mod-x-1.2.3\", \"action\": \"enable\" or \"disable\"}}", path.display())
            })
        })
        .collect::<Result<_>>()?;
    Ok(InstallList {
        modules,
        parameters,
    })
}

fn run_job(
    cli: &Cli,
    which: &TenantSelection,
    fanout: &FanoutArgs,
    job: &Job,
    options: &InstallOptions,
) -> Result<ExitCode> {
    let graft = open(cli)?;
    job.check()?;
    let tenants = if which.all_tenants {
        graft.tenant_names()?
    } else if let Some(tenant) = &which.tenant {
        vec![tenant.clone()]
    } else {
        which.tenants.clone()
    };
    if tenants.is_empty() {
        return Err(anyhow!(
            "no tenants to run on (create one with `graft tenant create NAME`)"
        ));
    }
    // Every tenant named, before any runs: a valid id, known, named once.
    graft.check_tenants(&tenants)?;
    if fanout.queue {
        let batch = graft.enqueue(&tenants, job, options)?;
        print::enqueued(&batch, &tenants, cli.json);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(canary) = &fanout.canary {
        if !tenants.contains(canary) {
            return Err(anyhow!(
                "the canary {canary} is not among the tenants to run"
            ));
        }
    }
    let overall = (!cli.json && tenants.len() > 1).then(|| tenants_bar(tenants.len()));
    let on_done = |_: &TenantOutcome| {
        if let Some(bar) = &overall {
            bar.inc(1);
        }
    };
    let plan = Fanout {
        tenants: tenants.clone(),
        canary: fanout.canary.clone(),
        parallel: fanout.parallel,
        on_done: Some(&on_done),
    };
    // Each tenant is printed as it finishes and then let go: a run over
    // thousands of tenants holds none of their reports.
    let printer = print::Outcomes::start(cli.json);
    let each = |outcome: TenantOutcome| match &overall {
        Some(bar) => bar.suspend(|| printer.tenant(outcome)),
        None => printer.tenant(outcome),
    };
    let summaries = graft.run_streaming(job, options, &plan, &each);
    drop(overall);
    printer.finish(&summaries, &tenants);
    let failed_step = summaries.iter().any(|s| s.error.is_none() && !s.ok);
    let bad_input = summaries.iter().any(|s| s.error.is_some());
    let skipped = summaries.len() < tenants.len();
    Ok(if failed_step || (skipped && !bad_input) {
        ExitCode::from(EXIT_FAILED)
    } else if bad_input {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}
