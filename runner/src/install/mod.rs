//! Running a tenant's install job: plan, check, then run each module's
//! steps with its plugin, inside the tenant's database transaction.
//!
//! - Everything is checked (plan, packages, plugins, descriptors) before
//!   anything is written; a problem there is bad input and writes nothing.
//! - By default the whole job is one transaction: every module commits, or
//!   none does. `CommitMode::PerModule` commits module by module, as Okapi
//!   does.
//! - A simulation runs the same plugins on the same data and rolls back at
//!   the end: it reports exactly the changes a real run would make.
//! - Before each module, its plugin's `inspect` says what storage holds;
//!   where that disagrees with the recorded version, the data wins and the
//!   discrepancy is reported.
//! - Every change is recorded (see `changelog`) and saved with the job.
//!
//! The parts: `job` (what to run, and how), `prepare` (plan and checks),
//! `steps` (one module's steps with its plugin), `disable`, `report` (what
//! happened).

mod disable;
mod job;
mod prepare;
mod report;
mod steps;

pub use job::{CommitMode, InstallOptions, Job, ProgressFactory};
pub use report::{Action, FailureReport, ModuleReport, ModuleStatus, StepReport, TenantReport};

use crate::changelog::{self, CollectionChanges, RecordingStore};
use crate::host::Host;
use crate::journal::{Journal, JournalEntry};
use crate::limits::Limits;
use crate::package::Catalog;
use crate::storage::{now, JobRecord, TenantStore, Tenants};
use anyhow::{anyhow, bail, Result};
use prepare::not_run;
use report::{mark_stages, update_stages, with_overlay};
use std::time::SystemTime;

pub struct Installer<'a> {
    pub tenants: &'a Tenants,
    pub catalog: &'a Catalog,
    pub host: &'a Host,
    pub journal: &'a Journal,
    pub limits: &'a Limits,
}

impl Installer<'_> {
    /// Plan and run a job for one tenant. An `Err` is bad input or a busy
    /// tenant (nothing was written); a failed step is a report with `ok: false`.
    pub fn run(&self, tenant: &str, job: &Job, options: &InstallOptions) -> Result<TenantReport> {
        // One clock for the whole job, fixed now.
        let options = &InstallOptions {
            clock: Some(options.clock.unwrap_or_else(SystemTime::now)),
            ..options.clone()
        };
        let _lock = self.tenants.lock(tenant)?;
        let mut db = if options.simulate {
            self.tenants.open(tenant)?
        } else {
            self.tenants.open_to_write(tenant)?
        };
        let recorded = db.modules().map_err(|e| anyhow!("tenant {tenant}: {e}"))?;
        let (packages, broken) = self.catalog.scan()?;
        let mut plan = self.plan(tenant, &recorded, &packages, &broken, job, options)?;
        if !options.reinstall {
            plan.settle_uptodate();
        }
        let works = plan
            .pending()
            .map(|entry| self.prepare(entry, &recorded, &packages, options))
            .collect::<Result<Vec<_>>>()?;
        let mut db: Box<dyn TenantStore> = Box::new(RecordingStore::new(db));
        let job_id = options.job_id.clone().unwrap_or_else(job_id);
        let started_at = now();
        let mut report = TenantReport {
            tenant: tenant.to_string(),
            job_id: job_id.clone(),
            ok: true,
            simulated: options.simulate,
            commit: if options.simulate {
                CommitMode::Atomic
            } else {
                options.commit
            },
            plan: plan.entries.clone(),
            modules: Vec::new(),
            warnings: Vec::new(),
        };
        let one_transaction = report.commit == CommitMode::Atomic;
        if options.ignore_errors && one_transaction {
            bail!(
                "tenant {tenant}: --ignore-errors needs --commit per-module (and no --simulate): \
                 in one transaction a failed module rolls every module back"
            );
        }
        if one_transaction {
            db.begin()
                .map_err(|e| anyhow!("tenant {tenant}: cannot start a transaction: {e}"))?;
        }
        for work in works {
            if !report.ok && !options.ignore_errors {
                report.modules.push(not_run(&work));
                continue;
            }
            if !one_transaction {
                db.begin()
                    .map_err(|e| anyhow!("tenant {tenant}: cannot start a transaction: {e}"))?;
            }
            let (returned, mut module) = self.run_work(db, tenant, &job_id, work, options)?;
            db = returned;
            module.changes = with_overlay(changelog::take_changes(db.as_mut()), &module);
            if module.failure.is_some() {
                db.rollback()
                    .map_err(|e| anyhow!("tenant {tenant}: rollback failed: {e}"))?;
                report.ok = false;
                if one_transaction {
                    for earlier in &mut report.modules {
                        earlier.status = ModuleStatus::RolledBack;
                    }
                }
            } else if !one_transaction {
                let changes = module.changes.clone();
                report.modules.push(module);
                self.save_and_commit(&mut db, &report, &started_at, &changes)?;
                continue;
            }
            report.modules.push(module);
        }
        if options.simulate {
            if report.ok {
                db.rollback()
                    .map_err(|e| anyhow!("tenant {tenant}: rollback failed: {e}"))?;
            }
            for module in &mut report.modules {
                if module.status == ModuleStatus::Committed {
                    module.status = ModuleStatus::Simulated;
                }
            }
        } else if one_transaction && report.ok {
            let changes: Vec<CollectionChanges> = report.changes().into_iter().cloned().collect();
            self.save_and_commit(&mut db, &report, &started_at, &changes)?;
        }
        update_stages(&mut report);
        if let Some(failure) = report.failure() {
            let module = report.modules.iter().find(|m| m.failure.is_some());
            // The job's own outcome stands whatever happens to the journal:
            // a journal that cannot be written is a warning beside it.
            let journaled = self.journal.append(&JournalEntry {
                at: now(),
                job_id: job_id.clone(),
                tenant: tenant.to_string(),
                module_from: module.and_then(|m| m.from.clone()),
                module_to: failure.module.clone(),
                step: failure.step.clone(),
                simulated: options.simulate,
                failure: failure.failure.clone(),
            });
            if let Err(e) = journaled {
                // Said once, after the failure, by whoever prints the report.
                tracing::debug!("{e:#}");
                report.warnings.push(format!(
                    "the failure above is not in the journal: {e:#}; the tenant's data is as the \
                     report says"
                ));
            }
        }
        Ok(report)
    }

    fn save_and_commit(
        &self,
        db: &mut Box<dyn TenantStore>,
        report: &TenantReport,
        started_at: &str,
        changes: &[CollectionChanges],
    ) -> Result<()> {
        let mut plan = report.plan.clone();
        mark_stages(&mut plan, &report.modules);
        let job = JobRecord {
            job_id: report.job_id.clone(),
            started_at: started_at.to_string(),
            finished_at: now(),
            commit: serde_json::to_value(report.commit)?
                .as_str()
                .unwrap_or_default()
                .to_string(),
            plan: serde_json::to_value(&plan)?,
        };
        let saved = changelog::save_job(db.as_mut(), &job, changes).and_then(|()| db.commit());
        if let Err(e) = saved {
            db.rollback().ok();
            bail!(
                "tenant {}: cannot commit job {}: {e}",
                report.tenant,
                report.job_id
            );
        }
        Ok(())
    }
}

/// A job id that sorts by time: `job-<unix ms>-<random>`.
pub(crate) fn job_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(millis);
    format!("job-{millis}-{:06x}", hasher.finish() & 0xff_ffff)
}
