//! Scale-out: tenant jobs in a PostgreSQL table, taken by `graft worker`
//! processes on one machine or many.
//!
//! - `enqueue` adds one row per tenant (a batch). A worker claims the oldest
//!   queued row with `FOR UPDATE SKIP LOCKED`, so two workers never take
//!   the same one, and keeps a heartbeat on it from a thread of its own.
//! - A row whose heartbeat is older than the stale limit belongs to a dead
//!   worker: the next worker takes it over.
//! - Exactly once: each attempt runs the tenant's job under the job id
//!   `queue-<seq>-<attempt>`, and the tenant's job record commits with its
//!   data. Before running a taken-over row, the worker looks for an earlier
//!   attempt's job record: if that attempt committed (its worker died
//!   between the commit and marking the row done), the row is marked done
//!   without running again. If it did not, PostgreSQL rolled it back when
//!   the dead worker's connection went, and the job runs afresh.

use crate::install::{CommitMode, InstallOptions, Job};
use crate::storage::postgres::{connect, make_once};
use crate::storage::Database;
use crate::Graft;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a queued row asks for: the job and the options a worker runs it with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedJob {
    pub job: Job,
    pub load_reference: bool,
    pub load_sample: bool,
    pub parameters: Vec<(String, String)>,
    pub commit: CommitMode,
    pub max_warnings: Option<u64>,
    pub purge: bool,
    #[serde(default)]
    pub reinstall: bool,
    /// Okapi's preRelease and npmSnapshot.
    #[serde(default)]
    pub releases: crate::plan::ReleaseFilter,
    #[serde(default)]
    pub no_dep_check: bool,
    #[serde(default)]
    pub ignore_errors: bool,
    #[serde(default)]
    pub allow_unmanaged: bool,
}

impl QueuedJob {
    pub fn new(job: &Job, options: &InstallOptions) -> QueuedJob {
        QueuedJob {
            job: job.clone(),
            load_reference: options.load_reference,
            load_sample: options.load_sample,
            parameters: options.parameters.clone(),
            commit: options.commit,
            max_warnings: options.max_warnings,
            purge: options.purge,
            reinstall: options.reinstall,
            releases: options.releases,
            no_dep_check: options.no_dep_check,
            ignore_errors: options.ignore_errors,
            allow_unmanaged: options.allow_unmanaged,
        }
    }

    fn options(&self, job_id: String) -> InstallOptions {
        InstallOptions {
            load_reference: self.load_reference,
            load_sample: self.load_sample,
            parameters: self.parameters.clone(),
            commit: self.commit,
            max_warnings: self.max_warnings,
            purge: self.purge,
            reinstall: self.reinstall,
            releases: self.releases,
            no_dep_check: self.no_dep_check,
            ignore_errors: self.ignore_errors,
            allow_unmanaged: self.allow_unmanaged,
            job_id: Some(job_id),
            ..InstallOptions::default()
        }
    }
}

/// One batch's progress, for `graft jobs`.
#[derive(Debug, Serialize)]
pub struct BatchStatus {
    pub batch: String,
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub enqueued_at: String,
    /// Rows being worked on: (tenant, worker, seconds since its heartbeat, attempt).
    pub working: Vec<(String, String, f64, i32)>,
    /// Failed rows: (tenant, why).
    pub failures: Vec<(String, String)>,
}

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub id: String,
    pub heartbeat: Duration,
    /// A running row whose heartbeat is older than this is taken over.
    pub stale: Duration,
    /// Stop when nothing is queued (rather than wait for more).
    pub exit_when_idle: bool,
    /// How long to wait between looks at an empty queue.
    pub poll: Duration,
}

/// What one worker did.
#[derive(Debug, Default, Serialize)]
pub struct WorkerSummary {
    pub done: u64,
    pub failed: u64,
    /// Rows of dead workers this one finished.
    pub taken_over: u64,
}

fn url(graft: &Graft) -> Result<&str> {
    match graft.tenants.database() {
        Database::Postgres(url) => Ok(url),
        Database::Sqlite(_) => {
            bail!("the job queue lives in PostgreSQL: give --database postgres://...")
        }
    }
}

/// The queue's table, in the `graft` schema storage makes.
const QUEUE_TABLE: &str = "
-- The tenant job queue of `graft worker` (see `queue`).
CREATE TABLE IF NOT EXISTS graft.queue (
    seq bigserial PRIMARY KEY,
    batch text NOT NULL,
    tenant text NOT NULL,
    job jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    worker text,
    heartbeat timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    job_id text,
    result jsonb
);
CREATE INDEX IF NOT EXISTS queue_state ON graft.queue (state, seq);
";

/// A connection to the queue's database, with the queue's table made sure
/// of (once per database and process).
fn client(graft: &Graft) -> Result<postgres::Client> {
    let url = url(graft)?;
    let mut client = connect(url)?;
    make_once(
        &mut client,
        url,
        7234002,
        QUEUE_TABLE,
        "the job queue's table",
    )?;
    Ok(client)
}

impl Graft {
    /// Queue `job` for each tenant, as one batch; returns the batch id.
    pub fn enqueue(
        &self,
        tenants: &[String],
        job: &Job,
        options: &InstallOptions,
    ) -> Result<String> {
        let mut client = client(self)?;
        let batch = crate::install::job_id().replacen("job-", "batch-", 1);
        let spec = serde_json::to_string(&QueuedJob::new(job, options))?;
        let mut tx = client.transaction()?;
        for tenant in tenants {
            tx.execute(
                "INSERT INTO graft.queue (batch, tenant, job, state) VALUES ($1, $2, $3::text::jsonb, 'queued')",
                &[&batch, tenant, &spec],
            )?;
        }
        tx.commit()?;
        Ok(batch)
    }

    /// The progress of every batch, newest first.
    pub fn batches(&self) -> Result<Vec<BatchStatus>> {
        let mut client = client(self)?;
        let rows = client.query(
            "SELECT batch,
                    count(*) FILTER (WHERE state = 'queued'),
                    count(*) FILTER (WHERE state = 'running'),
                    count(*) FILTER (WHERE state = 'done'),
                    count(*) FILTER (WHERE state = 'failed'),
                    min(enqueued_at)::text
             FROM graft.queue GROUP BY batch ORDER BY min(seq) DESC",
            &[],
        )?;
        let mut batches = Vec::new();
        for row in rows {
            let batch: String = row.get(0);
            let working = client
                .query(
                    "SELECT tenant, coalesce(worker, ''), extract(epoch FROM now() - heartbeat)::float8, attempts
                     FROM graft.queue WHERE batch = $1 AND state = 'running' ORDER BY seq",
                    &[&batch],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
            let failures = client
                .query(
                    "SELECT tenant, coalesce(result->>'error', result::text, '') FROM graft.queue
                     WHERE batch = $1 AND state = 'failed' ORDER BY seq",
                    &[&batch],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            batches.push(BatchStatus {
                batch,
                queued: row.get(1),
                running: row.get(2),
                done: row.get(3),
                failed: row.get(4),
                enqueued_at: row.get(5),
                working,
                failures,
            });
        }
        Ok(batches)
    }

    /// Take rows and run them until told to stop (or, with
    /// `exit_when_idle`, until nothing is queued).
    pub fn work(&self, config: &WorkerConfig, stop: &AtomicBool) -> Result<WorkerSummary> {
        let mut client = client(self)?;
        let mut summary = WorkerSummary::default();
        while !stop.load(Ordering::Relaxed) {
            let Some(claim) = claim(&mut client, config)? else {
                if config.exit_when_idle && nothing_left(&mut client)? {
                    break;
                }
                std::thread::sleep(config.poll);
                continue;
            };
            if claim.attempt > 1 {
                summary.taken_over += 1;
            }
            let heartbeat = Heartbeat::start(url(self)?, claim.seq, &config.id, config.heartbeat)?;
            let outcome = self.run_claim(&mut client, &claim);
            heartbeat.stop();
            if let Err(e) = &outcome {
                if format!("{e:#}").contains(" busy: ") {
                    // The row's first worker is alive after all and holds the
                    // tenant: give the row back and let it finish.
                    client.execute(
                        "UPDATE graft.queue SET state = 'running', worker = NULL, heartbeat = now()
                         WHERE seq = $1 AND worker = $2",
                        &[&claim.seq, &config.id],
                    )?;
                    std::thread::sleep(config.poll);
                    continue;
                }
            }
            let (state, result) = match outcome {
                Ok((ok, result)) => (if ok { "done" } else { "failed" }, result),
                Err(e) => ("failed", serde_json::json!({ "error": format!("{e:#}") })),
            };
            client.execute(
                "UPDATE graft.queue SET state = $2, finished_at = now(), result = $3::text::jsonb
                 WHERE seq = $1 AND worker = $4",
                &[&claim.seq, &state, &result.to_string(), &config.id],
            )?;
            if state == "done" {
                summary.done += 1;
            } else {
                summary.failed += 1;
            }
        }
        Ok(summary)
    }

    /// Run a claimed row, unless an earlier attempt already committed it.
    fn run_claim(
        &self,
        client: &mut postgres::Client,
        claim: &Claim,
    ) -> Result<(bool, serde_json::Value)> {
        let committed: Option<String> = client
            .query_opt(
                "SELECT job_id FROM graft.jobs WHERE tenant = $1 AND job_id LIKE $2 LIMIT 1",
                &[&claim.tenant, &format!("queue-{}-%", claim.seq)],
            )?
            .map(|row| row.get(0));
        if let Some(job_id) = committed {
            return Ok((
                true,
                serde_json::json!({ "job_id": job_id, "note": "an earlier attempt had committed" }),
            ));
        }
        let job_id = format!("queue-{}-{}", claim.seq, claim.attempt);
        client.execute(
            "UPDATE graft.queue SET job_id = $2 WHERE seq = $1",
            &[&claim.seq, &job_id],
        )?;
        let report = self.run(
            &claim.tenant,
            &claim.job.job,
            &claim.job.options(job_id.clone()),
        )?;
        let modules: Vec<serde_json::Value> = report
            .modules
            .iter()
            .map(|m| serde_json::json!({ "module": m.to, "status": m.status, "from": m.from }))
            .collect();
        let mut result =
            serde_json::json!({ "job_id": job_id, "ok": report.ok, "modules": modules });
        if let Some(failure) = report.failure() {
            result["error"] = serde_json::Value::String(failure.to_string());
        }
        Ok((report.ok, result))
    }
}

struct Claim {
    seq: i64,
    tenant: String,
    attempt: i32,
    job: QueuedJob,
}

/// Take the oldest queued row, or one whose worker stopped beating.
fn claim(client: &mut postgres::Client, config: &WorkerConfig) -> Result<Option<Claim>> {
    let stale = config.stale.as_secs_f64();
    let row = client.query_opt(
        "UPDATE graft.queue q
         SET state = 'running', worker = $1, heartbeat = now(), attempts = q.attempts + 1,
             started_at = coalesce(q.started_at, now())
         WHERE q.seq = (
             SELECT seq FROM graft.queue
             WHERE state = 'queued'
                OR (state = 'running' AND heartbeat < now() - make_interval(secs => $2))
             ORDER BY seq
             FOR UPDATE SKIP LOCKED
             LIMIT 1)
         RETURNING q.seq, q.tenant, q.attempts, q.job::text",
        &[&config.id, &stale],
    )?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.get(3);
    let job: QueuedJob = serde_json::from_str(&text)
        .map_err(|e| anyhow!("queue row {}: not a job: {e}", row.get::<_, i64>(0)))?;
    Ok(Some(Claim {
        seq: row.get(0),
        tenant: row.get(1),
        attempt: row.get(2),
        job,
    }))
}

/// Nothing queued and nothing running that could go stale.
fn nothing_left(client: &mut postgres::Client) -> Result<bool> {
    let open: i64 = client
        .query_one(
            "SELECT count(*) FROM graft.queue WHERE state IN ('queued', 'running')",
            &[],
        )?
        .get(0);
    Ok(open == 0)
}

/// Beats for one row from its own thread and connection, so a long step
/// never looks like a dead worker.
struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(url: &str, seq: i64, worker: &str, every: Duration) -> Result<Heartbeat> {
        let mut client = connect(url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let worker = worker.to_string();
        let thread = std::thread::Builder::new()
            .name("graft-heartbeat".into())
            .spawn(move || {
                let tick = Duration::from_millis(50);
                let mut waited = Duration::ZERO;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    waited += tick;
                    if waited >= every {
                        waited = Duration::ZERO;
                        let beat = client.execute(
                            "UPDATE graft.queue SET heartbeat = now() WHERE seq = $1 AND worker = $2",
                            &[&seq, &worker],
                        );
                        if let Err(e) = beat {
                            tracing::warn!("heartbeat of queue row {seq}: {e}");
                        }
                    }
                }
            })?;
        Ok(Heartbeat {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}
