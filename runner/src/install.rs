//! Installing, upgrading and downgrading modules for a tenant.
//!
//! Every module's steps (inspect, upgrade or rollback, data loads) run in
//! one transaction of the tenant's database, together with the metadata
//! that records them: a module is either fully moved to its new release or
//! left exactly as it was. Everything is checked (packages, plugins,
//! descriptors, tenant) before anything is written.

use crate::host::{
    wit, CallFailure, CallOutcome, CallSetup, Host, Plugin, ProgressFn, StepLog, Usage, WriteCounts,
};
use crate::journal::{Journal, JournalEntry};
use crate::limits::Limits;
use crate::module_id::ModuleId;
use crate::package::Catalog;
use crate::storage::{now, EnabledModule, HistoryEntry, TenantStore};
use crate::tenants::Tenants;
use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use std::cmp::Ordering;
use std::sync::Arc;

/// Makes a progress callback for a step that reports progress.
pub type ProgressFactory = Arc<dyn Fn(&str, &str, &str) -> Option<ProgressFn> + Send + Sync>;

#[derive(Clone, Default)]
pub struct InstallOptions {
    pub load_reference: bool,
    pub load_sample: bool,
    /// Tenant parameters passed to the plugins, besides loadReference and loadSample.
    pub parameters: Vec<(String, String)>,
    pub progress: Option<ProgressFactory>,
}

/// What happened to one tenant.
#[derive(Debug, Serialize)]
pub struct TenantReport {
    pub tenant: String,
    pub job_id: String,
    pub ok: bool,
    pub modules: Vec<ModuleReport>,
}

#[derive(Debug, Serialize)]
pub struct ModuleReport {
    pub module: String,
    pub from: Option<String>,
    pub to: String,
    pub action: Action,
    /// What the plugin found in storage before it ran.
    pub stored: Option<String>,
    pub status: ModuleStatus,
    pub steps: Vec<StepReport>,
    pub failure: Option<FailureReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Install,
    Upgrade,
    Downgrade,
    /// The same release again: the plugin checks and reports `unchanged`.
    Reapply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleStatus {
    Committed,
    RolledBack,
    /// Not run because an earlier module of the tenant failed.
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

/// One module of a tenant's job, with everything loaded up front.
struct PlannedModule {
    target: Plugin,
    /// The plugin of the enabled, newer release, for a downgrade.
    rollback_with: Option<Plugin>,
    from: Option<ModuleId>,
    action: Action,
}

pub struct Installer<'a> {
    pub tenants: &'a Tenants,
    pub catalog: &'a Catalog,
    pub host: &'a Host,
    pub journal: &'a Journal,
    pub limits: &'a Limits,
}

impl Installer<'_> {
    /// Install, upgrade or downgrade `ids` for `tenant`, in the given order.
    /// An `Err` is bad input (nothing was written); a failed step is a
    /// report with `ok: false`.
    pub fn install(
        &self,
        tenant: &str,
        ids: &[ModuleId],
        options: &InstallOptions,
    ) -> Result<TenantReport> {
        if ids.is_empty() {
            bail!("no modules given: name at least one module id, e.g. mod-users-1.0.0");
        }
        let mut db = self.tenants.open(tenant)?;
        let enabled = db.modules().map_err(|e| anyhow!("tenant {tenant}: {e}"))?;
        let plan = ids
            .iter()
            .map(|id| self.plan(id, &enabled))
            .collect::<Result<Vec<_>>>()?;
        let job_id = job_id();
        let mut report = TenantReport {
            tenant: tenant.to_string(),
            job_id: job_id.clone(),
            ok: true,
            modules: Vec::new(),
        };
        for module in plan {
            if !report.ok {
                report.modules.push(ModuleReport {
                    module: module.target.package.id.name.clone(),
                    from: module.from.as_ref().map(ToString::to_string),
                    to: module.target.package.id.to_string(),
                    action: module.action,
                    stored: None,
                    status: ModuleStatus::NotRun,
                    steps: Vec::new(),
                    failure: None,
                });
                continue;
            }
            let (returned, module_report) =
                self.run_module(db, tenant, &job_id, module, options)?;
            db = returned;
            if let Some(failure) = &module_report.failure {
                report.ok = false;
                self.journal.append(&JournalEntry {
                    at: now(),
                    job_id: job_id.clone(),
                    tenant: tenant.to_string(),
                    module_from: module_report.from.clone(),
                    module_to: module_report.to.clone(),
                    step: failure.step.clone(),
                    failure: failure.failure.clone(),
                })?;
            }
            report.modules.push(module_report);
        }
        Ok(report)
    }

    fn plan(&self, id: &ModuleId, enabled: &[EnabledModule]) -> Result<PlannedModule> {
        let package = self.catalog.find(id)?;
        let (target, _) = self.load_checked(&package)?;
        let current = enabled
            .iter()
            .find(|m| m.name == id.name && m.enabled)
            .map(|m| ModuleId::parse(&m.module_id))
            .transpose()
            .map_err(|e| anyhow!("recorded module: {e}"))?;
        let (action, rollback_with) = match &current {
            None => (Action::Install, None),
            Some(current) => match id.version.cmp(&current.version) {
                Ordering::Greater => (Action::Upgrade, None),
                Ordering::Equal => (Action::Reapply, None),
                Ordering::Less => {
                    let newer = self.catalog.find(current).map_err(|e| {
                        anyhow!("downgrading {} to {id} needs the package of the enabled {current}: {e}", id.name)
                    })?;
                    let (plugin, described) = self.load_checked(&newer)?;
                    if !described
                        .rolls_back_to
                        .iter()
                        .any(|r| r == id.version.as_str())
                    {
                        let can = if described.rolls_back_to.is_empty() {
                            "no release".to_string()
                        } else {
                            described.rolls_back_to.join(", ")
                        };
                        bail!("cannot downgrade {} from {current} to {id}: its plugin can roll back to {can}", id.name);
                    }
                    (Action::Downgrade, Some(plugin))
                }
            },
        };
        Ok(PlannedModule {
            target,
            rollback_with,
            from: current,
            action,
        })
    }

    /// Load a plugin and check that it says it is what its descriptor says.
    fn load_checked(
        &self,
        package: &crate::package::Package,
    ) -> Result<(Plugin, wit::Description)> {
        let plugin = self.host.load(package)?;
        let described = self
            .host
            .describe(&plugin, &self.limits.for_module(&package.limits))?;
        let id = &package.id;
        if described.module_name != id.name || described.release != id.version.as_str() {
            bail!(
                "{}: the plugin describes itself as {} {} but the ModuleDescriptor is {id}: \
                 package the plugin built for {id}",
                package.plugin.display(),
                described.module_name,
                described.release
            );
        }
        Ok((plugin, described))
    }

    fn run_module(
        &self,
        mut db: Box<dyn TenantStore>,
        tenant: &str,
        job_id: &str,
        module: PlannedModule,
        options: &InstallOptions,
    ) -> Result<(Box<dyn TenantStore>, ModuleReport)> {
        let to = module.target.package.id.clone();
        let mut report = ModuleReport {
            module: to.name.clone(),
            from: module.from.as_ref().map(ToString::to_string),
            to: to.to_string(),
            action: module.action,
            stored: None,
            status: ModuleStatus::Committed,
            steps: Vec::new(),
            failure: None,
        };
        let context = wit::Context {
            tenant: tenant.to_string(),
            module_from: report.from.clone(),
            module_to: to.to_string(),
            parameters: parameters(options),
            simulate: false,
        };
        db.begin()
            .map_err(|e| anyhow!("tenant {tenant}: cannot start a transaction: {e}"))?;
        let mut steps = Vec::new();
        let main_plugin = module.rollback_with.as_ref().unwrap_or(&module.target);
        steps.push(Step::Inspect);
        steps.push(if module.action == Action::Downgrade {
            Step::Rollback
        } else {
            Step::Upgrade
        });
        if module.target.package.has_data("system-data") {
            steps.push(Step::Load(wit::DataKind::System));
        }
        if options.load_reference {
            steps.push(Step::Load(wit::DataKind::Reference));
        }
        if options.load_sample {
            steps.push(Step::Load(wit::DataKind::Sample));
        }
        let mut history = Vec::new();
        for step in steps {
            let plugin = if matches!(step, Step::Inspect | Step::Rollback) {
                main_plugin
            } else {
                &module.target
            };
            let progress = options
                .progress
                .as_ref()
                .and_then(|make| make(tenant, &to.to_string(), step.name()));
            let setup = CallSetup {
                store: Some(db),
                limits: self.limits.for_module(&plugin.package.limits),
                progress,
            };
            let outcome = self.call_step(plugin, setup, step, &context);
            db = outcome
                .store
                .ok_or_else(|| anyhow!("the host lost the tenant's storage"))?;
            match outcome.result {
                Ok(result) => {
                    if step == Step::Inspect {
                        report.stored = Some(result.clone());
                    }
                    history.push(HistoryEntry {
                        job_id: job_id.to_string(),
                        module_name: to.name.clone(),
                        step: step.name().to_string(),
                        module_from: report.from.clone(),
                        module_to: to.to_string(),
                        outcome: result.clone(),
                        detail: None,
                        inserted: outcome.writes.inserted,
                        updated: outcome.writes.updated,
                        deleted: outcome.writes.deleted,
                        duration_ms: outcome.usage.duration_ms,
                        plugin_sha256: plugin.sha256.clone(),
                        at: now(),
                    });
                    report.steps.push(StepReport {
                        step: step.name().to_string(),
                        outcome: result,
                        writes: outcome.writes,
                        usage: outcome.usage,
                        warnings: outcome.log.warning_count,
                        log: outcome.log,
                    });
                }
                Err(failure) => {
                    db.rollback()
                        .map_err(|e| anyhow!("tenant {tenant}: rollback failed: {e}"))?;
                    report.status = ModuleStatus::RolledBack;
                    report.failure = Some(FailureReport {
                        tenant: tenant.to_string(),
                        module: to.to_string(),
                        step: step.name().to_string(),
                        failure,
                    });
                    report.steps.push(StepReport {
                        step: step.name().to_string(),
                        outcome: "failed".into(),
                        writes: outcome.writes,
                        usage: outcome.usage,
                        warnings: outcome.log.warning_count,
                        log: outcome.log,
                    });
                    return Ok((db, report));
                }
            }
        }
        let recorded = history
            .iter()
            .try_for_each(|entry| db.add_history(entry))
            .and_then(|()| db.set_module(&to.name, &to.to_string(), true))
            .and_then(|()| db.commit());
        if let Err(e) = recorded {
            db.rollback().ok();
            bail!("tenant {tenant}: cannot commit {to}: {e}");
        }
        Ok((db, report))
    }

    fn call_step(
        &self,
        plugin: &Plugin,
        setup: CallSetup,
        step: Step,
        context: &wit::Context,
    ) -> CallOutcome<String> {
        let outcome_name = |o: wit::Outcome| match o {
            wit::Outcome::Created => "created".to_string(),
            wit::Outcome::Upgraded => "upgraded".to_string(),
            wit::Outcome::Unchanged => "unchanged".to_string(),
        };
        self.host.call(plugin, setup, |instance, store| {
            let migration = instance.graft_migration_migration();
            Ok(match step {
                Step::Inspect => Ok(match migration.call_inspect(store)? {
                    wit::StoredState::Empty => "empty".to_string(),
                    wit::StoredState::Release(release) => format!("release {release}"),
                    wit::StoredState::Unrecognised(what) => format!("unrecognised: {what}"),
                }),
                Step::Upgrade => migration.call_upgrade(store, context)?.map(outcome_name),
                // A rollback's "upgraded" (it changed the data) reads as what it did.
                Step::Rollback => migration.call_rollback(store, context)?.map(|o| {
                    if o == wit::Outcome::Upgraded {
                        "downgraded".to_string()
                    } else {
                        outcome_name(o)
                    }
                }),
                Step::Load(kind) => migration
                    .call_load_data(store, context, kind)?
                    .map(outcome_name),
            })
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Inspect,
    Upgrade,
    Rollback,
    Load(wit::DataKind),
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Inspect => "inspect",
            Step::Upgrade => "upgrade",
            Step::Rollback => "rollback",
            Step::Load(wit::DataKind::System) => "load-system",
            Step::Load(wit::DataKind::Reference) => "load-reference",
            Step::Load(wit::DataKind::Sample) => "load-sample",
        }
    }
}

fn parameters(options: &InstallOptions) -> Vec<(String, String)> {
    let mut parameters = vec![
        (
            "loadReference".to_string(),
            options.load_reference.to_string(),
        ),
        ("loadSample".to_string(), options.load_sample.to_string()),
    ];
    parameters.extend(options.parameters.iter().cloned());
    parameters
}

/// A job id that sorts by time: `job-<unix ms>-<random>`.
fn job_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(millis);
    format!("job-{millis}-{:06x}", hasher.finish() & 0xff_ffff)
}
