//! The commands of a PostgreSQL deployment: `adopt` a FOLIO schema, and
//! the job queue's `worker` and `jobs`.

use super::config::open;
use super::{parse_param, print, Cli, EXIT_FAILED};
use anyhow::{anyhow, Result};
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

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

pub(super) fn worker(cli: &Cli, args: &WorkerArgs) -> Result<ExitCode> {
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
        print::print_json(&summary);
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

pub(super) fn jobs(cli: &Cli) -> Result<()> {
    print::batches(&open(cli)?.batches()?, cli.json);
    Ok(())
}

pub(super) fn adopt(cli: &Cli, args: &AdoptArgs) -> Result<()> {
    let id = graft::ModuleId::parse(&args.module).map_err(|e| anyhow!("--module: {e}"))?;
    let names = args.names.iter().cloned().collect();
    let report = open(cli)?.adopt(&args.tenant, &id, &names)?;
    print::adopted(&report, cli.json);
    Ok(())
}
