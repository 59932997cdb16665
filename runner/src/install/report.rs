//! What a job did, tenant by tenant and module by module: the values the
//! CLI prints, the journal keeps and `--json` returns.

use super::CommitMode;
use crate::changelog::CollectionChanges;
use crate::host::{CallFailure, StepLog, Usage};
use crate::overlay::CollectionOverlay;
use crate::plan::{PlanEntry, Stage};
use crate::storage::WriteCounts;
use serde::Serialize;

/// What happened to one tenant.
#[derive(Debug, Serialize)]
pub struct TenantReport {
    pub tenant: String,
    pub job_id: String,
    pub ok: bool,
    pub simulated: bool,
    pub commit: CommitMode,
    /// The plan as an Okapi install list, each entry with the stage it reached.
    pub plan: Vec<PlanEntry>,
    pub modules: Vec<ModuleReport>,
    /// Problems around the job that did not change its outcome (the journal
    /// could not be written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl TenantReport {
    /// Every change of the job, by module and collection.
    pub fn changes(&self) -> Vec<&CollectionChanges> {
        self.modules.iter().flat_map(|m| &m.changes).collect()
    }

    /// The failure that stopped the job, if any.
    pub fn failure(&self) -> Option<&FailureReport> {
        self.modules.iter().find_map(|m| m.failure.as_ref())
    }
}

#[derive(Debug, Serialize)]
pub struct ModuleReport {
    pub module: String,
    pub from: Option<String>,
    pub to: String,
    pub action: Action,
    /// What the plugin found in storage before it ran.
    pub stored: Option<String>,
    /// Where storage disagreed with the recorded version (the data wins).
    pub discrepancy: Option<String>,
    pub status: ModuleStatus,
    pub steps: Vec<StepReport>,
    pub changes: Vec<CollectionChanges>,
    pub failure: Option<FailureReport>,
}

impl ModuleReport {
    pub(super) fn new(module: &str, from: Option<String>, to: String, action: Action) -> Self {
        ModuleReport {
            module: module.to_string(),
            from,
            to,
            action,
            stored: None,
            discrepancy: None,
            status: ModuleStatus::Committed,
            steps: Vec::new(),
            changes: Vec::new(),
            failure: None,
        }
    }

    /// The outcome of one of its steps (`"upgrade"` -> `"unchanged"`).
    pub fn outcome_of(&self, step: &str) -> Option<&str> {
        self.steps
            .iter()
            .find(|s| s.step == step)
            .map(|s| s.outcome.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Install,
    Upgrade,
    Downgrade,
    /// The same release again: the plugin checks and reports `unchanged`.
    Reapply,
    /// Disabled, data kept.
    Disable,
    /// Disabled and its data removed.
    Purge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleStatus {
    Committed,
    /// Ran, then rolled back because it or a later module of an atomic job failed.
    RolledBack,
    /// Ran in a simulation, and was rolled back as every simulation is.
    Simulated,
    /// Not run because an earlier module failed.
    NotRun,
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    pub step: String,
    pub outcome: String,
    pub writes: WriteCounts,
    pub usage: Usage,
    pub warnings: u64,
    pub log: StepLog,
    /// What the step's vendor data loads did, by collection.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overlay: Vec<CollectionOverlay>,
}

/// A failed step: where (tenant, module, step, record) and why.
#[derive(Debug, Clone, Serialize)]
pub struct FailureReport {
    pub tenant: String,
    pub module: String,
    pub step: String,
    #[serde(flatten)]
    pub failure: CallFailure,
}

impl std::fmt::Display for FailureReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tenant {}, module {}, step {}: {}",
            self.tenant, self.module, self.step, self.failure
        )
    }
}

/// Put each step's overlay report beside the changes of its collection, so
/// the job's change log has both.
pub(super) fn with_overlay(
    mut changes: Vec<CollectionChanges>,
    module: &ModuleReport,
) -> Vec<CollectionChanges> {
    for overlay in module.steps.iter().flat_map(|s| &s.overlay) {
        let position = changes
            .iter()
            .position(|c| c.module == module.module && c.collection == overlay.collection);
        let entry = match position {
            Some(position) => &mut changes[position],
            None => {
                changes.push(CollectionChanges {
                    module: module.module.clone(),
                    collection: overlay.collection.clone(),
                    ..CollectionChanges::default()
                });
                changes.last_mut().expect("just pushed")
            }
        };
        entry.overlay.push(overlay.clone());
    }
    changes.sort_by(|a, b| (&a.module, &a.collection).cmp(&(&b.module, &b.collection)));
    changes
}

pub(super) fn mark_stages(plan: &mut [PlanEntry], modules: &[ModuleReport]) {
    for entry in plan.iter_mut().filter(|e| e.stage == Stage::Pending) {
        if let Some(module) = modules.iter().find(|m| m.to == entry.id) {
            entry.stage = match (module.status, &module.failure) {
                (_, Some(_)) => Stage::Failed,
                (ModuleStatus::Committed, None) => Stage::Done,
                (ModuleStatus::NotRun, None) => Stage::NotRun,
                (ModuleStatus::RolledBack, None) => Stage::RolledBack,
                (ModuleStatus::Simulated, None) => Stage::Pending,
            };
        }
    }
}

pub(super) fn update_stages(report: &mut TenantReport) {
    let mut plan = std::mem::take(&mut report.plan);
    mark_stages(&mut plan, &report.modules);
    report.plan = plan;
}
