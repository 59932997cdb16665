//! The command line: what each command takes, and how it maps to the library.

use crate::output;
use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use graft::data::Edit;
use graft::fanout::Fanout;
use graft::install::{CommitMode, Job, ProgressFactory};
use graft::plan::{Request, RequestAction};
use graft::storage::{check_tenant_id, Database};
use graft::{Graft, InstallOptions, Limits};
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use std::path::{Path, PathBuf};
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
                  graft install --tenant diku mod-users-2.0.0 --simulate   (what would change)\n  \
                  graft install --tenant diku mod-users-2.0.0              (upgrade)\n  \
                  graft install --tenant diku mod-users-1.1.0              (downgrade)\n  \
                  graft install --tenant diku --file install.json          (an Okapi install list)\n  \
                  graft upgrade --all-tenants --canary diku --parallel 4\n  \
                  graft changes --tenant diku\n\n\
                  Exit codes: 0 success, 1 a step failed (its module was rolled back), 2 bad input \
                  (nothing written).\n\n\
                  Every package is treated as hostile. Besides the limits below, the host keeps at \
                  most: 16 KiB of a failure message or inspect text, 4 MiB of change-log samples per \
                  job, 64 MiB per scan page, 16 MiB per record, 256 open files per call; package \
                  files at most 4 MiB (descriptor), 64 KiB (graft.json), 256 MiB (plugin). See the \
                  threat model in docs/architecture.md."
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

    /// Keep tenants in PostgreSQL, in FOLIO's layout (a schema per tenant and
    /// module), e.g. postgres://graft:secret@db.example.org:5432/folio.
    /// Default: one SQLite file per tenant in the data directory.
    #[arg(long, global = true, env = "GRAFT_DATABASE", value_name = "URL")]
    pub database: Option<String>,

    /// A TOML file with defaults for the options above:
    /// `database = "postgres://..."`, `modules = "/srv/modules"`.
    /// Options on the command line and in the environment win.
    #[arg(long, global = true, env = "GRAFT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

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
    /// Native stack of plugins, in KiB (one setting for all plugins), at most
    /// 262144 (256 MiB). Graft runs plugin calls on threads whose stack holds
    /// this plus 4 MiB for its own code, so no plugin can overflow the runner.
    #[arg(long, global = true, default_value_t = 1024)]
    pub stack_kb: usize,
}

impl LimitArgs {
    /// The stack of the thread that runs the command.
    pub fn call_stack_size(&self) -> usize {
        graft::host::call_stack_size(self.stack_kb.saturating_mul(1024))
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Create and list tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// List the module packages Graft can see.
    #[command(subcommand)]
    Modules(ModulesCommand),
    /// Install, upgrade or downgrade modules for tenants.
    ///
    /// Name module ids, or give an Okapi install list with --file. A module the
    /// tenant does not have is installed; a newer id upgrades it; an older id
    /// downgrades it with the rollback of the enabled release's plugin; the same
    /// id runs the plugin again, which reports `unchanged`. Required modules are
    /// pulled in, in dependency order; modules with no package are listed as not
    /// managed by Graft. By default all modules of a tenant commit together or
    /// not at all.
    Install(InstallArgs),
    /// Upgrade every enabled module of tenants to its newest release.
    Upgrade(UpgradeArgs),
    /// Disable modules for tenants, keeping their data (--purge removes it).
    Disable(DisableArgs),
    /// Show the modules a tenant has enabled.
    Status(TenantArg),
    /// Show every step run for a tenant, and failed attempts from the journal.
    History(TenantArg),
    /// Show what jobs changed: counts per module and collection, and records
    /// before and after.
    Changes(ChangesArgs),
    /// Read and write a tenant's records directly, through the same checks as
    /// plugins; every write is a job in the change log.
    #[command(subcommand)]
    Data(DataCommand),
    /// Reference data: what a tenant changed against the vendor's copies.
    #[command(subcommand)]
    Reference(ReferenceCommand),
    /// Run a demonstration on a fresh data directory: three tenants, installs,
    /// upgrades and a downgrade of mod-users with 10,000 users each.
    Demo(DemoArgs),
    /// Check a module package against fixture databases, for a vendor's CI.
    ///
    /// The package is checked (descriptor, component and contract version,
    /// `describe`, data files), then every fixture of its module at a release
    /// the plugin upgrades from is restored into two throwaway tenants, where
    /// the real engine runs: inspect must recognise the fixture's release; the
    /// upgrade must succeed and a second run be `unchanged`; the simulation must
    /// report exactly the real run's changes; both copies must end identical;
    /// every tenant edit of reference data must survive; where the plugin rolls
    /// back to the fixture's release, the downgrade (with the older package from
    /// the same folder, or --modules) must give back the fixture record by
    /// record; and resource use is compared with the limits (a warning under 50%
    /// headroom). Plugins run with the wall clock fixed at the fixture's capture
    /// time and seeded randomness.
    ///
    /// Exit codes: 0 every check passed (warnings allowed), 1 a check failed,
    /// 2 bad input (no package folder, no fixtures, an unreadable fixture).
    #[command(after_help = "Example (a vendor's CI):\n  \
                  graft fixture capture --tenant diku --module mod-users --out fixtures/mod-users-1.1.0.json\n  \
                  graft validate target/packages/mod-users-2.0.0 --fixtures fixtures --junit validate.xml")]
    Validate(ValidateArgs),
    /// Capture a tenant's database as a fixture file, or restore one into a new tenant.
    #[command(subcommand)]
    Fixture(FixtureCommand),
    /// Take over a module's schema in an existing FOLIO database (PostgreSQL).
    ///
    /// Every table of `<tenant>_<module>` with FOLIO's `id` and `jsonb` columns
    /// becomes a collection with the indexes graft can read; the release's
    /// system and reference records (from its package) become the vendor's
    /// bases where that data was loaded, so tenant edits are kept by the next
    /// upgrade. One transaction; the tenant is registered if graft does not
    /// know it yet.
    #[command(after_help = "Example:\n  \
                  graft --database postgres://folio@db/folio adopt --tenant diku --module mod-inventory-storage-27.0.0\n  \
                  graft --database postgres://folio@db/folio install --tenant diku mod-inventory-storage-30.0.5 --load-reference")]
    Adopt(AdoptArgs),
    /// Take tenant jobs from the database's queue and run them (PostgreSQL).
    ///
    /// Start as many as you like, on one machine or many, against the same
    /// database: each job is taken by one worker (`FOR UPDATE SKIP LOCKED`),
    /// which keeps a heartbeat on it; a job whose worker stopped beating is
    /// taken over, and a job that committed is never run twice.
    #[command(after_help = "Example:\n  \
                  graft --database $DB upgrade --all-tenants --queue\n  \
                  graft --database $DB worker &   (on each machine)\n  \
                  graft --database $DB jobs")]
    Worker(WorkerArgs),
    /// Show the queue: each batch's progress, running jobs and failures.
    Jobs,
}

#[derive(Args)]
pub struct WorkerArgs {
    /// The worker's name in the queue; default: host name and process id.
    #[arg(long)]
    pub id: Option<String>,
    /// Seconds between heartbeats on the job being run.
    #[arg(long, default_value_t = 5.0)]
    pub heartbeat_secs: f64,
    /// A running job whose heartbeat is older than this is taken over.
    #[arg(long, default_value_t = 30.0)]
    pub stale_secs: f64,
    /// Stop when no job is queued or running, instead of waiting for more.
    #[arg(long)]
    pub exit_when_idle: bool,
}

#[derive(Args)]
pub struct AdoptArgs {
    #[arg(long)]
    pub tenant: String,
    /// The module id the schema is at, e.g. mod-inventory-storage-27.0.0 (its
    /// package must be in the modules folder).
    #[arg(long, value_name = "MODULE_ID")]
    pub module: String,
    /// A table whose collection name is not the table name with `_` -> `-`
    /// (repeatable), e.g. material_type=material-types.
    #[arg(long = "name", value_name = "TABLE=COLLECTION", value_parser = parse_param)]
    pub names: Vec<(String, String)>,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The package folder: ModuleDescriptor.json, the plugin, data folders.
    #[arg(value_name = "PACKAGE")]
    pub package: PathBuf,
    /// A folder of fixtures (*.json, from `graft fixture capture`); fixtures of
    /// other modules or of newer releases are listed as not applicable.
    #[arg(long, value_name = "DIR")]
    pub fixtures: PathBuf,
    /// Also write the results as JUnit XML, for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
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

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create tenants (each gets its own database).
    Create {
        /// Tenant ids (Okapi's rule): a lower-case letter, then lower-case
        /// letters or digits, at most 31.
        #[arg(required = true)]
        tenants: Vec<String>,
    },
    /// Delete tenants: their databases (or, on PostgreSQL, their schemas and
    /// metadata), also one graft refuses to open (empty, foreign, malformed).
    Delete {
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

#[derive(Subcommand)]
pub enum DataCommand {
    /// List the records of a collection.
    List(DataTarget),
    /// Show one record.
    Get {
        #[command(flatten)]
        target: DataTarget,
        id: String,
    },
    /// Insert or replace a record from a JSON file (`-` for standard input);
    /// the id is the record's `id` unless given.
    Put {
        #[command(flatten)]
        target: DataTarget,
        id: Option<String>,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a record.
    Delete {
        #[command(flatten)]
        target: DataTarget,
        id: String,
    },
}

#[derive(Args)]
pub struct DataTarget {
    #[arg(long)]
    pub tenant: String,
    /// The module name, e.g. mod-inventory-storage.
    #[arg(long)]
    pub module: String,
    #[arg(long)]
    pub collection: String,
}

#[derive(Subcommand)]
pub enum ReferenceCommand {
    /// What the tenant edited, deleted and added, field by field.
    Diff {
        #[arg(long)]
        tenant: String,
        /// The module name, e.g. mod-inventory-storage.
        #[arg(long)]
        module: String,
    },
}

#[derive(Args)]
pub struct ChangesArgs {
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
    /// One job (see `graft history`); default: every job, summed per collection.
    #[arg(long, value_name = "JOB_ID")]
    pub job: Option<String>,
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
    // Colours only for a terminal: a log read by CI or a file gets no
    // escape sequences (and a plugin's text in it is escaped, see `text`).
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
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
        let max_stack_kb = graft::host::MAX_WASM_STACK >> 10;
        if !(64..=max_stack_kb).contains(&self.stack_kb) {
            return Err(anyhow!("--stack-kb must be between 64 and {max_stack_kb}"));
        }
        Ok(Limits {
            deadline: Duration::from_secs_f64(self.deadline_secs),
            fuel: self.fuel,
            memory_bytes: self.memory_mb << 20,
            log_bytes: self.log_bytes,
        })
    }
}

/// `--config`: defaults for options not given otherwise.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database: Option<String>,
    modules: Option<PathBuf>,
}

fn config(cli: &Cli) -> Result<Config> {
    let Some(path) = &cli.config else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read the config file: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start].lines().count().max(1))
            .unwrap_or(1);
        anyhow!("{}: line {line}: {}", path.display(), e.message())
    })
}

fn modules_dir(cli: &Cli, config: &Config) -> PathBuf {
    cli.modules
        .clone()
        .or(config.modules.clone())
        .unwrap_or_else(|| graft_sample_modules::sample_modules_dir().to_path_buf())
}

fn open(cli: &Cli) -> Result<Graft> {
    let config = config(cli)?;
    let graft = Graft::open(
        &cli.data_dir,
        &modules_dir(cli, &config),
        cli.limits.limits()?,
        cli.limits.stack_kb << 10,
    )?;
    match cli.database.clone().or(config.database) {
        Some(url) => Ok(graft.with_database(Database::parse_url(&url)?)),
        None => Ok(graft),
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.json;
    match &cli.command {
        Command::Tenant(TenantCommand::Create { tenants }) => {
            let graft = open(&cli)?;
            // Every id first: nothing is created if one is bad.
            tenants.iter().try_for_each(|t| check_tenant_id(t))?;
            for tenant in tenants {
                graft.tenants.create(tenant)?;
            }
            output::created_tenants(tenants, "created", json);
        }
        Command::Tenant(TenantCommand::Delete { tenants }) => {
            let graft = open(&cli)?;
            tenants.iter().try_for_each(|t| check_tenant_id(t))?;
            for tenant in tenants {
                graft.tenants.delete(tenant)?;
            }
            output::created_tenants(tenants, "deleted", json);
        }
        Command::Tenant(TenantCommand::List) => output::tenants(&open(&cli)?, json)?,
        Command::Modules(ModulesCommand::List) => output::modules(&open(&cli)?, json)?,
        Command::Install(args) => {
            let job = match &args.file {
                Some(file) => Job::InstallList(read_install_list(file)?),
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
            let options = args.job.options(json, args.purge);
            return run_job(&cli, &args.which, &args.fanout, &job, &options);
        }
        Command::Upgrade(args) => {
            let options = args.job.options(json, false);
            return run_job(&cli, &args.which, &args.fanout, &Job::UpgradeAll, &options);
        }
        Command::Disable(args) => {
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
            return run_job(
                &cli,
                &args.which,
                &args.fanout,
                &Job::Modules(requests),
                &options,
            );
        }
        Command::Status(TenantArg { tenant }) => output::status(&open(&cli)?, tenant, json)?,
        Command::History(TenantArg { tenant }) => output::history(&open(&cli)?, tenant, json)?,
        Command::Changes(args) => {
            output::changes(&open(&cli)?, &args.tenant, args.job.as_deref(), json)?
        }
        Command::Data(command) => data_command(&open(&cli)?, command, json)?,
        Command::Reference(ReferenceCommand::Diff { tenant, module }) => output::reference_diff(
            tenant,
            module,
            &open(&cli)?.reference_diff(tenant, module)?,
            json,
        ),
        Command::Demo(args) => return crate::demo::run(&open_demo(&cli)?, args.users, json),
        Command::Validate(args) => return validate(&cli, args),
        Command::Fixture(command) => fixture_command(&open(&cli)?, command, json)?,
        Command::Worker(args) => return worker(&cli, args),
        Command::Jobs => output::batches(&open(&cli)?.batches()?, json),
        Command::Adopt(args) => {
            let id = graft::ModuleId::parse(&args.module).map_err(|e| anyhow!("--module: {e}"))?;
            let names = args.names.iter().cloned().collect();
            let report = open(&cli)?.adopt(&args.tenant, &id, &names)?;
            output::adopted(&report, json);
        }
    }
    Ok(ExitCode::SUCCESS)
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
            clock: None,
            job_id: None,
        }
    }
}

fn data_command(graft: &Graft, command: &DataCommand, json: bool) -> Result<()> {
    match command {
        DataCommand::List(t) => {
            let records = graft.data_list(&t.tenant, &t.module, &t.collection)?;
            output::records(&records, json);
        }
        DataCommand::Get { target: t, id } => {
            match graft.data_get(&t.tenant, &t.module, &t.collection, id)? {
                Some(doc) => output::print_json(&doc),
                None => {
                    return Err(anyhow!(
                        "tenant {}, collection {}: no record {id}",
                        t.tenant,
                        t.collection
                    ))
                }
            }
        }
        DataCommand::Put {
            target: t,
            id,
            file,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(file)
                    .map_err(|e| anyhow!("{}: cannot read: {e}", file.display()))?
            };
            let doc: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow!("{}: not JSON: {e}", file.display()))?;
            let id = match (id, doc.get("id").and_then(|v| v.as_str())) {
                (Some(id), _) => id.clone(),
                (None, Some(id)) => id.to_string(),
                (None, None) => {
                    return Err(anyhow!(
                        "{}: the record has no \"id\": give one after the collection",
                        file.display()
                    ))
                }
            };
            let report =
                graft.data_edit(&t.tenant, &t.module, &t.collection, &Edit::Put { id, doc })?;
            output::edit(&report, json);
        }
        DataCommand::Delete { target: t, id } => {
            let report = graft.data_edit(
                &t.tenant,
                &t.module,
                &t.collection,
                &Edit::Delete { id: id.clone() },
            )?;
            output::edit(&report, json);
        }
    }
    Ok(())
}

/// Read an Okapi install list; the error names the file and the entry.
fn read_install_list(path: &Path) -> Result<Vec<Request>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read the install list: {e}", path.display()))?;
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: not an install list (a JSON array of {{\"id\", \"action\"}}): {e}",
            path.display()
        )
    })?;
    list.into_iter()
        .enumerate()
        .map(|(n, entry)| {
            serde_json::from_value::<Request>(entry).map_err(|e| {
                anyhow!("{}: entry {n}: {e}: each entry is {{\"id\": \"mod-x-1.2.3\", \"action\": \"enable\" or \"disable\"}}", path.display())
            })
        })
        .collect()
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
        graft.tenants.list()?
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
    let known = graft.tenants.list()?;
    for (n, tenant) in tenants.iter().enumerate() {
        check_tenant_id(tenant)?;
        if !known.contains(tenant) {
            return Err(anyhow!(
                "unknown tenant {tenant}: create it with `graft tenant create {tenant}` (nothing ran)"
            ));
        }
        if tenants[..n].contains(tenant) {
            return Err(anyhow!("tenant {tenant} is named twice (nothing ran)"));
        }
    }
    if fanout.queue {
        let batch = graft.enqueue(&tenants, job, options)?;
        output::enqueued(&batch, &tenants, cli.json);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(canary) = &fanout.canary {
        if !tenants.contains(canary) {
            return Err(anyhow!(
                "the canary {canary} is not among the tenants to run"
            ));
        }
    }
    let overall = (!cli.json && tenants.len() > 1).then(|| {
        ProgressBar::new(tenants.len() as u64)
            .with_style(
                ProgressStyle::with_template("tenants [{bar:30}] {pos}/{len} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            )
            .with_finish(ProgressFinish::AndClear)
    });
    let on_done = |_: &graft::fanout::TenantOutcome| {
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
    let printer = output::Outcomes::start(cli.json);
    let each = |outcome: graft::fanout::TenantOutcome| match &overall {
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

/// The demo runs in a fresh sub-folder of the data directory, so running it
/// twice never meets the first run's tenants.
fn open_demo(cli: &Cli) -> Result<Graft> {
    Graft::open(
        &fresh_demo_dir(&cli.data_dir)?,
        &modules_dir(cli, &config(cli)?),
        cli.limits.limits()?,
        cli.limits.stack_kb << 10,
    )
}

/// `demo-<unix seconds>`, with `-2`, `-3`, ... when a run in the same second
/// already took that name. `create_dir` claims the name atomically, so two
/// demos started together never share a folder.
fn fresh_demo_dir(data_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("{}: cannot create the data directory", data_dir.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut n = 1u64;
    loop {
        let name = match n {
            1 => format!("demo-{stamp}"),
            n => format!("demo-{stamp}-{n}"),
        };
        let dir = data_dir.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{}: cannot create the demo directory", dir.display())
                })
            }
        }
    }
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

fn validate(cli: &Cli, args: &ValidateArgs) -> Result<ExitCode> {
    let mut graft = open(cli)?;
    // The report gives every step's instructions, limited or not.
    graft.host.count_fuel();
    let validator = graft::validate::Validator {
        host: &graft.host,
        limits: &graft.limits,
        modules_dir: cli.modules.clone(),
        progress: (!cli.json).then(|| {
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            let callback: graft::validate::Progress = Box::new(move |what| {
                if what.is_empty() {
                    bar.finish_and_clear();
                } else {
                    bar.set_message(what.to_string());
                }
            });
            callback
        }),
    };
    let validation = validator.validate(&args.package, &args.fixtures)?;
    if let Some(path) = &args.junit {
        std::fs::write(path, graft::validate::junit::render(&validation))
            .map_err(|e| anyhow!("{}: cannot write the JUnit report: {e}", path.display()))?;
    }
    output::validation(&validation, cli.json);
    Ok(if validation.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn fixture_command(graft: &Graft, command: &FixtureCommand, json: bool) -> Result<()> {
    match command {
        FixtureCommand::Capture {
            tenant,
            module,
            out,
        } => {
            let _lock = graft.tenants.lock(tenant)?;
            let mut db = graft.tenants.open(tenant)?;
            let fixture = graft::fixture::Fixture::capture(&mut *db, module.as_deref())?;
            fixture.write(out)?;
            output::fixture(&fixture, out, "captured", json);
        }
        FixtureCommand::Restore { tenant, file } => {
            let fixture = graft::fixture::Fixture::read(file)?;
            // Created and filled as one: a kill or an error leaves no
            // tenant, and the command can be run again.
            graft
                .tenants
                .create_with(tenant, |db| fixture.restore_into(db))
                .map_err(|e| anyhow!("{}: {e:#}", file.display()))?;
            output::fixture(
                &fixture,
                file,
                &format!("restored into tenant {tenant}"),
                json,
            );
        }
    }
    Ok(())
}

fn worker(cli: &Cli, args: &WorkerArgs) -> Result<ExitCode> {
    let seconds = |name: &str, value: f64| {
        if value > 0.0 && value < 86_400.0 {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(anyhow!("--{name} must be more than 0 and less than a day"))
        }
    };
    let config = graft::queue::WorkerConfig {
        id: args.id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        }),
        heartbeat: seconds("heartbeat-secs", args.heartbeat_secs)?,
        stale: seconds("stale-secs", args.stale_secs)?,
        exit_when_idle: args.exit_when_idle,
        poll: Duration::from_millis(500),
    };
    if config.stale <= config.heartbeat {
        return Err(anyhow!("--stale-secs must be more than --heartbeat-secs"));
    }
    let graft = open(cli)?;
    tracing::info!(worker = %config.id, "taking jobs from the queue");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let summary = graft.work(&config, &stop)?;
    if cli.json {
        output::print_json(&summary);
    } else {
        println!(
            "worker {}: {} done, {} failed, {} taken over from dead workers",
            config.id, summary.done, summary.failed, summary.taken_over
        );
    }
    Ok(if summary.failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::{fresh_demo_dir, Cli};
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Demos started in the same second (a fast machine, or two at once)
    /// still get folders of their own.
    #[test]
    fn demos_in_the_same_second_get_their_own_folders() {
        let data = tempfile::TempDir::new().unwrap();
        let dirs: Vec<_> = (0..3)
            .map(|_| fresh_demo_dir(data.path()).unwrap())
            .collect();
        assert!(dirs
            .iter()
            .all(|d| d.is_dir() && d.parent() == Some(data.path())));
        assert_ne!(dirs[0], dirs[1]);
        assert_ne!(dirs[1], dirs[2]);
        assert_ne!(dirs[0], dirs[2]);
    }
}
