//! Running one job on many tenants: a canary first, then the rest on a
//! number of worker threads. Each tenant is its own transaction and lock, so
//! one tenant's failure never touches another.

use crate::install::{InstallOptions, Job, TenantReport};
use crate::Graft;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What happened to one tenant: a report, or why it could not run (bad
/// input, a busy tenant).
pub struct TenantOutcome {
    pub tenant: String,
    pub result: anyhow::Result<TenantReport>,
}

impl TenantOutcome {
    pub fn ok(&self) -> bool {
        matches!(&self.result, Ok(report) if report.ok)
    }
}

pub struct Fanout<'a> {
    pub tenants: Vec<String>,
    /// Run this tenant first, alone; stop everything if it does not succeed.
    pub canary: Option<String>,
    /// Tenants run at once (at least 1).
    pub parallel: usize,
    /// Called as each tenant finishes.
    pub on_done: Option<&'a (dyn Fn(&TenantOutcome) + Sync)>,
}

/// What is kept of a tenant's outcome when reports are streamed: enough for
/// the final table and the exit code, a few bytes whatever the job did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantSummary {
    pub tenant: String,
    pub ok: bool,
    /// The job could not run (bad input, a busy tenant): why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub modules: usize,
    pub records_changed: u64,
}

impl TenantSummary {
    pub fn of(outcome: &TenantOutcome) -> Self {
        match &outcome.result {
            Ok(report) => TenantSummary {
                tenant: outcome.tenant.clone(),
                ok: report.ok,
                error: None,
                modules: report.modules.len(),
                records_changed: report.changes().iter().map(|c| c.total()).sum(),
            },
            Err(e) => TenantSummary {
                tenant: outcome.tenant.clone(),
                ok: false,
                error: Some(format!("{e:#}")),
                modules: 0,
                records_changed: 0,
            },
        }
    }
}

impl Graft {
    /// Run `job` on every tenant of `fanout`, in the order given (the
    /// canary first), and keep every report. Tenants not run because the
    /// canary failed are absent.
    pub fn run_many(
        &self,
        job: &Job,
        options: &InstallOptions,
        fanout: &Fanout,
    ) -> Vec<TenantOutcome> {
        self.fan_out(job, options, fanout, &|outcome| outcome)
    }

    /// As `run_many`, but each tenant's outcome goes to `each` as it
    /// finishes and only its summary is kept: the memory a run over
    /// thousands of tenants needs does not grow with their reports.
    pub fn run_streaming(
        &self,
        job: &Job,
        options: &InstallOptions,
        fanout: &Fanout,
        each: &(dyn Fn(TenantOutcome) + Sync),
    ) -> Vec<TenantSummary> {
        self.fan_out(job, options, fanout, &|outcome| {
            let summary = TenantSummary::of(&outcome);
            each(outcome);
            summary
        })
    }

    fn fan_out<K: Send>(
        &self,
        job: &Job,
        options: &InstallOptions,
        fanout: &Fanout,
        keep: &(dyn Fn(TenantOutcome) -> K + Sync),
    ) -> Vec<K> {
        let run = |tenant: &str| {
            let outcome = TenantOutcome {
                tenant: tenant.to_string(),
                result: self.run(tenant, job, options),
            };
            if let Some(on_done) = fanout.on_done {
                on_done(&outcome);
            }
            let ok = outcome.ok();
            (ok, keep(outcome))
        };
        let mut kept = Vec::new();
        let mut rest: Vec<&String> = fanout.tenants.iter().collect();
        if let Some(canary) = &fanout.canary {
            let (ok, outcome) = run(canary);
            kept.push(outcome);
            rest.retain(|t| *t != canary);
            if !ok {
                return kept;
            }
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, K)>> = Mutex::new(Vec::new());
        let work = || loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(tenant) = rest.get(n) else { break };
            let (_, outcome) = run(tenant);
            results.lock().unwrap().push((n, outcome));
        };
        // Each worker's stack holds a plugin call, so calls run in place.
        let stack = self.host.call_stack_size();
        std::thread::scope(|scope| {
            for _ in 0..fanout.parallel.max(1).min(rest.len().max(1)) {
                let spawned = std::thread::Builder::new()
                    .name("graft-tenant".into())
                    .stack_size(stack)
                    .spawn_scoped(scope, crate::host::on_call_stack(stack, work));
                if let Err(e) = spawned {
                    // The tenants are taken by the workers that did start
                    // (or below, by this thread, if none did).
                    tracing::warn!("cannot start a tenant worker: {e}");
                }
            }
        });
        // Tenants no worker took (no thread could be started): run here.
        work();
        let mut results = results.into_inner().unwrap();
        results.sort_by_key(|(n, _)| *n);
        kept.extend(results.into_iter().map(|(_, outcome)| outcome));
        kept
    }
}
