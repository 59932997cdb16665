//! Disabling a module (its data kept) or purging it (its collections
//! dropped and the module forgotten). No plugin runs: the data is the
//! runner's to remove.

use super::report::{Action, FailureReport, ModuleReport, ModuleStatus, StepReport};
use crate::host::{CallFailure, FailureKind, StepLog, Usage};
use crate::module_id::ModuleId;
use crate::storage::{now, HistoryEntry, TenantStore, WriteCounts};
use anyhow::{anyhow, Result};

pub(super) fn disable(
    mut db: Box<dyn TenantStore>,
    job_id: &str,
    id: &ModuleId,
    purge: bool,
) -> Result<(Box<dyn TenantStore>, ModuleReport)> {
    let started = std::time::Instant::now();
    let step = if purge { "purge" } else { "disable" };
    let result = (|| -> crate::storage::StoreResult<WriteCounts> {
        let mut writes = WriteCounts::default();
        if purge {
            for collection in db.list_collections(&id.name)? {
                writes.deleted += db.count(&id.name, &collection)?;
                db.drop_collection(&id.name, &collection)?;
            }
            db.remove_module(&id.name)?;
        } else {
            let mut module = db
                .modules()?
                .into_iter()
                .find(|m| m.name == id.name)
                .ok_or_else(|| {
                    crate::storage::StoreError::Backend(format!("{id} is not recorded"))
                })?;
            module.enabled = false;
            module.updated_at = now();
            db.set_module(&module)?;
        }
        Ok(writes)
    })();
    let action = if purge {
        Action::Purge
    } else {
        Action::Disable
    };
    let mut report = ModuleReport::new(&id.name, Some(id.to_string()), id.to_string(), action);
    let usage = Usage {
        duration_ms: started.elapsed().as_millis() as u64,
        ..Usage::default()
    };
    match result {
        Ok(writes) => {
            db.add_history(&HistoryEntry {
                job_id: job_id.to_string(),
                module_name: id.name.clone(),
                step: step.to_string(),
                module_from: Some(id.to_string()),
                module_to: id.to_string(),
                outcome: if purge {
                    "purged".into()
                } else {
                    "disabled".into()
                },
                detail: None,
                inserted: 0,
                updated: 0,
                deleted: writes.deleted,
                duration_ms: usage.duration_ms,
                plugin_sha256: String::new(),
                at: now(),
            })
            .map_err(|e| anyhow!("cannot record {step} of {id}: {e}"))?;
            report.steps.push(StepReport {
                step: step.into(),
                outcome: if purge {
                    "purged".into()
                } else {
                    "disabled".into()
                },
                writes,
                usage,
                warnings: 0,
                log: StepLog::default(),
                overlay: Vec::new(),
            });
        }
        Err(e) => {
            report.status = ModuleStatus::RolledBack;
            report.failure = Some(FailureReport {
                tenant: db.tenant().to_string(),
                module: id.to_string(),
                step: step.into(),
                failure: CallFailure {
                    kind: FailureKind::Host,
                    message: e.to_string(),
                    collection: None,
                    record_id: None,
                    backtrace: Vec::new(),
                },
            });
        }
    }
    Ok((db, report))
}
