//! The `graft` command line: the arguments of each command and the library
//! call it makes, one file per command group; `print` renders what the
//! library returns. Nothing here opens a database or runs a plugin itself.

mod config;
mod data;
mod demo;
mod jobs;
mod postgres;
pub mod print;
mod progress;
mod tenants;
mod vendor;

use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand};
use data::DataCommand;
use demo::DemoArgs;
use graft::Limits;
use jobs::{DisableArgs, InstallArgs, UpgradeArgs};
use postgres::{AdoptArgs, WorkerArgs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tenants::{ChangesArgs, ModulesCommand, ReferenceCommand, TenantArg, TenantCommand};
use vendor::{FixtureCommand, ValidateArgs, WitArgs};

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
    /// default: a `modules` folder beside the data directory, or else the sample
    /// packages graft carries, written into the data directory on first use.
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
    /// id runs the plugin again, which reports `unchanged`; a module already at
    /// the release is `uptodate` and not run (--reinstall runs it). The plan is
    /// Okapi's: required modules pulled in, dependents moved to releases that
    /// fit, a new provider of an interface taking over from the old, in
    /// dependency order. A module nothing knows is an error; with
    /// --allow-unmanaged, install-list entries with no package are listed as
    /// not managed by Graft. By default all modules of a tenant commit together
    /// or not at all.
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
    /// Assemble a module package from its descriptor, data folders and built
    /// plugin, check it, and write it as a folder and a .tar.gz with its sha256.
    ///
    /// SOURCE is a folder with ModuleDescriptor.json and, optionally,
    /// graft.json and the data folders (system-data, reference-data,
    /// sample-data); --plugin names the built component (default: the one in
    /// SOURCE). The assembled package is checked as `graft validate` checks a
    /// package before its fixtures: the descriptor, the component (a
    /// graft:migration component that instantiates under the limits), its
    /// `describe` against the descriptor, and every data file. Only a package
    /// that passes is written: OUT/<module-id>/ and OUT/<module-id>.tar.gz,
    /// with OUT/<module-id>.tar.gz.sha256 (for `sha256sum -c`). `install`
    /// reads archives put in the modules folder, and `validate` takes one in
    /// place of the folder.
    ///
    /// Exit codes: 0 written, 1 a check failed (nothing written), 2 bad input.
    #[command(after_help = "Example (a vendor's CI):\n  \
                  graft package package/ --plugin target/wasm32-wasip2/release/mod_widgets.wasm --out dist/\n  \
                  graft validate dist/mod-widgets-1.0.0.tar.gz --fixtures fixtures/")]
    Package(vendor::PackageArgs),
    /// Make a plugin project for a new module, in Rust, Python or JavaScript.
    ///
    /// Writes the ModuleDescriptor and reference data of release 1.0.0, the
    /// plugin (it creates the module's collection and loads its reference
    /// data through the overlay), the SDK and the contract of this graft, a
    /// build.sh that builds the plugin and runs `graft package`, a
    /// make-fixture.sh that captures a fixture, a CI job and a README. As
    /// written, the project builds and passes `graft validate`. The folder
    /// (default: ./MODULE) must not exist or be empty.
    #[command(after_help = "Example:\n  \
                  graft new mod-widgets --lang python\n  \
                  cd mod-widgets && pip install -r requirements.txt && ./build.sh && ./make-fixture.sh\n  \
                  graft validate dist/mod-widgets-1.0.0.tar.gz --fixtures fixtures")]
    New(vendor::NewArgs),
    /// Print the plugin contract (the WIT package graft:migration), or write
    /// it into a folder, for a bindings generator (wit-bindgen, componentize-py,
    /// jco/componentize-js).
    ///
    /// This graft runs plugins of contract 0.1 and 0.2; `graft wit` gives the
    /// newest (0.2), `--contract 0.1` the older one (the Python and
    /// JavaScript SDKs build on 0.1).
    ///
    /// A plugin is a WebAssembly component (wasm32-wasip2) exporting the
    /// contract's `migration` interface. Besides the contract, it may import
    /// WASI 0.2: wasi:cli (stdout and stderr, captured into the step log and
    /// bounded; no environment variables, no arguments; an exit ends the
    /// call), wasi:clocks (the wall clock reads the job's start, fixed; the
    /// monotonic clock is real), wasi:random (seeded by tenant, release and
    /// step: reproducible, never secret), wasi:filesystem (only the package's
    /// data folders, read-only, at /system-data, /reference-data and
    /// /sample-data), and wasi:io. The host refuses everything else: every
    /// socket and name lookup of wasi:sockets fails, and no host file outside
    /// those folders is reachable.
    #[command(
        after_help = "Examples:\n  graft wit > migration.wit\n  graft wit --out wit/   # writes wit/migration.wit\n  graft wit --contract 0.1 --out wit/"
    )]
    Wit(WitArgs),
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

/// `KEY=VALUE`.
fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.json;
    match &cli.command {
        Command::Tenant(command) => tenants::tenant(&cli, command)?,
        Command::Modules(ModulesCommand::List { filter }) => {
            tenants::modules(&cli, filter.as_deref())?
        }
        Command::Install(args) => return jobs::install(&cli, args),
        Command::Upgrade(args) => return jobs::upgrade(&cli, args),
        Command::Disable(args) => return jobs::disable(&cli, args),
        Command::Status(TenantArg { tenant }) => tenants::status(&cli, tenant)?,
        Command::History(TenantArg { tenant }) => tenants::history(&cli, tenant)?,
        Command::Changes(args) => tenants::changes(&cli, args)?,
        Command::Data(command) => data::run(&config::open(&cli)?, command, json)?,
        Command::Reference(command) => tenants::reference(&cli, command)?,
        Command::Demo(args) => return demo::run(&cli, args),
        Command::Validate(args) => return vendor::validate(&cli, args),
        Command::Fixture(command) => vendor::fixture(&cli, command)?,
        Command::Package(args) => return vendor::package(&cli, args),
        Command::New(args) => vendor::new(args, json)?,
        Command::Wit(args) => vendor::wit(args, json)?,
        Command::Worker(args) => return postgres::worker(&cli, args),
        Command::Jobs => postgres::jobs(&cli)?,
        Command::Adopt(args) => postgres::adopt(&cli, args)?,
    }
    Ok(ExitCode::SUCCESS)
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
