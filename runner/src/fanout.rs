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

impl Graft {
    /// Run `job` on every tenant of `fanout`, in the order given (the
    /// canary first). Tenants not run because the canary failed are absent.
    pub fn run_many(
        &self,
        job: &Job,
        options: &InstallOptions,
        fanout: &Fanout,
    ) -> Vec<TenantOutcome> {
        let run = |tenant: &str| {
            let outcome = TenantOutcome {
                tenant: tenant.to_string(),
                result: self.run(tenant, job, options),
            };
            if let Some(on_done) = fanout.on_done {
                on_done(&outcome);
            }
            outcome
        };
        let mut outcomes = Vec::new();
        let mut rest: Vec<&String> = fanout.tenants.iter().collect();
        if let Some(canary) = &fanout.canary {
            let outcome = run(canary);
            let stop = !outcome.ok();
            outcomes.push(outcome);
            rest.retain(|t| *t != canary);
            if stop {
                return outcomes;
            }
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, TenantOutcome)>> = Mutex::new(Vec::new());
        // Each worker's stack holds a plugin call, so calls run in place.
        let stack = self.host.call_stack_size();
        std::thread::scope(|scope| {
            for _ in 0..fanout.parallel.max(1).min(rest.len().max(1)) {
                let work = crate::host::on_call_stack(stack, || loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(tenant) = rest.get(n) else { break };
                    let outcome = run(tenant);
                    results.lock().unwrap().push((n, outcome));
                });
                let spawned = std::thread::Builder::new()
                    .name("graft-tenant".into())
                    .stack_size(stack)
                    .spawn_scoped(scope, work);
                if let Err(e) = spawned {
                    // The tenants are taken by the workers that did start
                    // (or below, by this thread, if none did).
                    tracing::warn!("cannot start a tenant worker: {e}");
                }
            }
        });
        // Tenants no worker took (no thread could be started): run here.
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(tenant) = rest.get(n) else { break };
            let outcome = run(tenant);
            results.lock().unwrap().push((n, outcome));
        }
        let mut results = results.into_inner().unwrap();
        results.sort_by_key(|(n, _)| *n);
        outcomes.extend(results.into_iter().map(|(_, outcome)| outcome));
        outcomes
    }
}
