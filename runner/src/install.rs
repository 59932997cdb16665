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

use crate::changelog::{CollectionChanges, RecordingStore};
use crate::descriptor::ModuleDescriptor;
use crate::host::{
    wit, CallFailure, CallOutcome, CallSetup, Determinism, FailureKind, Host, Plugin, ProgressFn,
    StepLog, Usage, WriteCounts,
};
use crate::journal::{Journal, JournalEntry};
use crate::limits::{Limits, MAX_PLUGIN_TEXT_BYTES};
use crate::module_id::ModuleId;
use crate::overlay::CollectionOverlay;
use crate::package::{BadPackage, Catalog, Package};
use crate::plan::{
    self, Available, Enabled, Plan, PlanAction, PlanEntry, Request, RequestAction, Stage,
};
use crate::storage::{now, EnabledModule, HistoryEntry, JobRecord, TenantStore};
use crate::tenants::Tenants;
use crate::text::truncate;
use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

/// Makes a progress callback for a step that reports progress:
/// (tenant, module, step).
pub type ProgressFactory = Arc<dyn Fn(&str, &str, &str) -> Option<ProgressFn> + Send + Sync>;

/// What to run on a tenant.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "requests", rename_all = "kebab-case")]
pub enum Job {
    /// Modules the operator named: each must have a package.
    Modules(Vec<Request>),
    /// An Okapi install list: modules with no package are listed as not
    /// managed by Graft, and the rest runs.
    InstallList(Vec<Request>),
    /// Every enabled module to its newest release.
    UpgradeAll,
}

impl Job {
    /// Every module the job names is a module id or name: checked before
    /// any tenant runs.
    pub fn check(&self) -> Result<()> {
        let requests = match self {
            Job::Modules(requests) | Job::InstallList(requests) => requests,
            Job::UpgradeAll => return Ok(()),
        };
        for (n, request) in requests.iter().enumerate() {
            ModuleId::check_request(&request.id).map_err(|e| {
                let at = match self {
                    Job::InstallList(_) => format!("install list entry {n}: "),
                    _ => String::new(),
                };
                anyhow!("{at}{e}")
            })?;
        }
        Ok(())
    }

    /// Enable these module ids, in order.
    pub fn enable(ids: &[ModuleId]) -> Job {
        Job::Modules(
            ids.iter()
                .map(|id| Request {
                    id: id.to_string(),
                    action: RequestAction::Enable,
                })
                .collect(),
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    /// All modules of the tenant's job commit together or not at all.
    #[default]
    Atomic,
    /// Each module commits on its own (the platform's behaviour).
    PerModule,
}

#[derive(Clone, Default)]
pub struct InstallOptions {
    pub load_reference: bool,
    pub load_sample: bool,
    /// Tenant parameters passed to the plugins, besides loadReference and loadSample.
    pub parameters: Vec<(String, String)>,
    pub progress: Option<ProgressFactory>,
    /// Run everything, then roll it all back: report what would change.
    pub simulate: bool,
    pub commit: CommitMode,
    /// Fail a module whose steps report more record warnings than this.
    pub max_warnings: Option<u64>,
    /// Disabling a module also removes its data.
    pub purge: bool,
    /// The time every plugin call of the job reads from its wall clock;
    /// default: when the job starts (see `host::Determinism`).
    pub clock: Option<SystemTime>,
    /// The job's id; default: a new one. A queue worker names its jobs so
    /// that a job's commit can be found after the worker died.
    pub job_id: Option<String>,
}

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
    fn new(module: &str, from: Option<String>, to: String, action: Action) -> Self {
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

/// One module of a job, with everything loaded up front.
enum Work {
    Run {
        target: Box<Plugin>,
        /// The plugin of the enabled, newer release, for a downgrade.
        rollback_with: Option<Box<Plugin>>,
        from: Option<ModuleId>,
        action: Action,
    },
    Disable {
        id: ModuleId,
        purge: bool,
    },
}

impl Work {
    fn id(&self) -> String {
        match self {
            Work::Run { target, .. } => target.package.id.to_string(),
            Work::Disable { id, .. } => id.to_string(),
        }
    }
}

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
        let plan = self.plan(tenant, &recorded, &packages, &broken, job)?;
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
        if one_transaction {
            db.begin()
                .map_err(|e| anyhow!("tenant {tenant}: cannot start a transaction: {e}"))?;
        }
        for work in works {
            if !report.ok {
                report.modules.push(not_run(&work));
                continue;
            }
            if !one_transaction {
                db.begin()
                    .map_err(|e| anyhow!("tenant {tenant}: cannot start a transaction: {e}"))?;
            }
            let (returned, mut module) = self.run_work(db, tenant, &job_id, work, options)?;
            db = returned;
            module.changes = with_overlay(db.take_changes(), &module);
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

    fn plan(
        &self,
        tenant: &str,
        recorded: &[EnabledModule],
        packages: &[Package],
        broken: &[BadPackage],
        job: &Job,
    ) -> Result<Plan> {
        let available: Vec<Available> = packages
            .iter()
            .map(|p| Available {
                id: p.id.clone(),
                descriptor: p.descriptor.clone(),
            })
            .collect();
        let enabled = recorded
            .iter()
            .filter(|m| m.enabled)
            .map(|m| {
                let id = ModuleId::parse(&m.module_id)
                    .map_err(|e| anyhow!("tenant {tenant}: recorded module: {e}"))?;
                let descriptor = m
                    .descriptor
                    .as_deref()
                    .and_then(|text| ModuleDescriptor::parse(text).ok())
                    .map(|(descriptor, _)| descriptor);
                Ok(Enabled { id, descriptor })
            })
            .collect::<Result<Vec<_>>>()?;
        let requests = match job {
            Job::Modules(requests) | Job::InstallList(requests) => requests.clone(),
            Job::UpgradeAll => enabled
                .iter()
                .map(|m| Request {
                    id: m.id.name.clone(),
                    action: RequestAction::Enable,
                })
                .collect(),
        };
        if requests.is_empty() {
            bail!("tenant {tenant}: nothing to do: name at least one module (or the tenant has none to upgrade)");
        }
        let plan = plan::plan(&available, &enabled, &requests)
            .map_err(|e| anyhow!("tenant {tenant}: cannot plan: {e}"))?;
        for entry in plan.entries.iter().filter(|e| e.stage == Stage::NotManaged) {
            // A module the operator named must exist (most likely a typo);
            // one in an install list may be another's to manage, unless it
            // has a package here that is broken.
            let named = matches!(job, Job::Modules(_));
            if named || self.catalog.broken(&entry.id, broken).is_some() {
                return Err(self.catalog.missing(&entry.id, packages, broken));
            }
        }
        Ok(plan)
    }

    /// Load and check what one plan entry needs.
    fn prepare(
        &self,
        entry: &PlanEntry,
        recorded: &[EnabledModule],
        packages: &[Package],
        options: &InstallOptions,
    ) -> Result<Work> {
        let id = ModuleId::parse(&entry.id).map_err(|e| anyhow!(e))?;
        if entry.action == PlanAction::Disable {
            return Ok(Work::Disable {
                id,
                purge: options.purge,
            });
        }
        let package = find(packages, &id)?;
        let (target, _) = self.load_checked(package)?;
        let current = recorded
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
                    let newer = find(packages, current).map_err(|e| {
                        anyhow!("downgrading {} to {id} needs the package of the enabled {current}: {e}", id.name)
                    })?;
                    let (plugin, described) = self.load_checked(newer)?;
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
                    (Action::Downgrade, Some(Box::new(plugin)))
                }
            },
        };
        Ok(Work::Run {
            target: Box::new(target),
            rollback_with,
            from: current,
            action,
        })
    }

    /// Load a plugin and check that it says it is what its descriptor says.
    fn load_checked(&self, package: &Package) -> Result<(Plugin, wit::Description)> {
        let limits = self.limits.for_module(&package.limits);
        let plugin = self.host.load(package, &limits)?;
        let described = self.host.describe(&plugin, &limits)?;
        package.check_description(&described.module_name, &described.release)?;
        Ok((plugin, described))
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
        let saved = db.save_job(&job, changes).and_then(|()| db.commit());
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

    fn run_work(
        &self,
        db: Box<dyn TenantStore>,
        tenant: &str,
        job_id: &str,
        work: Work,
        options: &InstallOptions,
    ) -> Result<(Box<dyn TenantStore>, ModuleReport)> {
        match work {
            Work::Run {
                target,
                rollback_with,
                from,
                action,
            } => self.run_module(
                db,
                tenant,
                job_id,
                &target,
                rollback_with.as_deref(),
                from,
                action,
                options,
            ),
            Work::Disable { id, purge } => disable(db, job_id, &id, purge),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_module(
        &self,
        mut db: Box<dyn TenantStore>,
        tenant: &str,
        job_id: &str,
        target: &Plugin,
        rollback_with: Option<&Plugin>,
        from: Option<ModuleId>,
        action: Action,
        options: &InstallOptions,
    ) -> Result<(Box<dyn TenantStore>, ModuleReport)> {
        let to = target.package.id.clone();
        let mut report = ModuleReport::new(
            &to.name,
            from.as_ref().map(ToString::to_string),
            to.to_string(),
            action,
        );
        let mut context = wit::Context {
            tenant: tenant.to_string(),
            module_from: report.from.clone(),
            module_to: to.to_string(),
            parameters: parameters(options),
            simulate: options.simulate,
        };
        let main_plugin = rollback_with.unwrap_or(target);
        let mut steps = vec![Step::Inspect];
        steps.push(if action == Action::Downgrade {
            Step::Rollback
        } else {
            Step::Upgrade
        });
        if target.package.has_data("system-data") {
            steps.push(Step::Load(wit::DataKind::System));
        }
        if options.load_reference {
            steps.push(Step::Load(wit::DataKind::Reference));
        }
        if options.load_sample {
            steps.push(Step::Load(wit::DataKind::Sample));
        }
        let mut history = Vec::new();
        let mut warnings = 0;
        for step in steps {
            let plugin = if matches!(step, Step::Inspect | Step::Rollback) {
                main_plugin
            } else {
                target
            };
            let progress = options
                .progress
                .as_ref()
                .and_then(|make| make(tenant, &to.to_string(), step.name()));
            let setup = CallSetup {
                store: Some(db),
                limits: self.limits.for_module(&plugin.package.limits),
                progress,
                determinism: Some(Determinism::new(
                    options.clock.unwrap_or_else(SystemTime::now),
                    &format!("{tenant}/{to}/{}", step.name()),
                )),
            };
            let outcome = self.call_step(plugin, setup, step, &context);
            db = outcome
                .store
                .ok_or_else(|| anyhow!("the host lost the tenant's storage"))?;
            let mut writes = outcome.writes;
            let mut overlay = outcome.overlay;
            let mut result = outcome.result;
            // Vendor records the release no longer ships: removed or kept.
            if result.is_ok() && !overlay.is_empty() {
                match crate::overlay::finish_step(&mut *db, &to.name, &mut overlay) {
                    Ok(finished) => writes.add(finished),
                    Err(e) => {
                        result = Err(CallFailure {
                            kind: FailureKind::Host,
                            message: format!("cannot finish the data load: {e}"),
                            collection: None,
                            record_id: None,
                            backtrace: Vec::new(),
                        })
                    }
                }
            }
            let record_warnings: u64 = overlay.iter().map(|o| o.counts.skipped).sum();
            warnings += outcome.log.warning_count + record_warnings;
            if let (Ok(_), Some(max)) = (&result, options.max_warnings) {
                if warnings > max {
                    result = Err(CallFailure {
                        kind: FailureKind::Warnings,
                        message: format!(
                            "{warnings} record warnings, more than --max-warnings {max}"
                        ),
                        collection: None,
                        record_id: None,
                        backtrace: Vec::new(),
                    });
                }
            }
            if let (Step::Inspect, Ok(stored)) = (step, &result) {
                report.stored = Some(stored.clone());
                if let Some((module_from, discrepancy)) =
                    compare_stored(&to.name, from.as_ref(), stored)
                {
                    context.module_from = module_from;
                    report.discrepancy = Some(discrepancy);
                }
            }
            let outcome_text = result.clone().unwrap_or_else(|_| "failed".into());
            history.push(HistoryEntry {
                job_id: job_id.to_string(),
                module_name: to.name.clone(),
                step: step.name().to_string(),
                module_from: report.from.clone(),
                module_to: to.to_string(),
                outcome: outcome_text.clone(),
                detail: report.discrepancy.clone().filter(|_| step == Step::Inspect),
                inserted: writes.inserted,
                updated: writes.updated,
                deleted: writes.deleted,
                duration_ms: outcome.usage.duration_ms,
                plugin_sha256: plugin.sha256.clone(),
                at: now(),
            });
            report.steps.push(StepReport {
                step: step.name().to_string(),
                outcome: outcome_text,
                writes,
                usage: outcome.usage,
                warnings: outcome.log.warning_count + record_warnings,
                log: outcome.log,
                overlay,
            });
            if let Err(failure) = result {
                report.status = ModuleStatus::RolledBack;
                report.failure = Some(FailureReport {
                    tenant: tenant.to_string(),
                    module: to.to_string(),
                    step: step.name().to_string(),
                    failure,
                });
                return Ok((db, report));
            }
        }
        let module = EnabledModule {
            name: to.name.clone(),
            module_id: to.to_string(),
            enabled: true,
            updated_at: now(),
            descriptor: serde_json::to_string(&target.package.descriptor).ok(),
        };
        let recorded = history
            .iter()
            .try_for_each(|entry| db.add_history(entry))
            .and_then(|()| db.set_module(&module));
        if let Err(e) = recorded {
            db.rollback().ok();
            bail!("tenant {tenant}: cannot record {to}: {e}");
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
                    wit::StoredState::Release(release) => {
                        format!("release {}", truncate(&release, MAX_PLUGIN_TEXT_BYTES))
                    }
                    wit::StoredState::Unrecognised(what) => {
                        format!("unrecognised: {}", truncate(&what, MAX_PLUGIN_TEXT_BYTES))
                    }
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

/// Disable a module, keeping its data, or purge it: drop its collections
/// and forget it. No plugin runs: the data is the runner's to remove.
fn disable(
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

/// Compare what the plugin found with what was recorded. Returns the
/// `module_from` the plugin should be told, and what disagreed.
fn compare_stored(
    name: &str,
    recorded: Option<&ModuleId>,
    stored: &str,
) -> Option<(Option<String>, String)> {
    let found = stored
        .strip_prefix("release ")
        .map(|release| format!("{name}-{release}"));
    let recorded_text = recorded.map(ToString::to_string);
    if stored.starts_with("unrecognised") || found == recorded_text {
        return None;
    }
    let message = match (&found, &recorded_text) {
        (Some(found), Some(recorded)) => {
            format!("storage holds {found} but {recorded} is recorded: the data wins")
        }
        (Some(found), None) => {
            format!("storage holds {found} but nothing is recorded: the data wins")
        }
        (None, Some(recorded)) => {
            format!("storage is empty but {recorded} is recorded: the data wins")
        }
        (None, None) => return None,
    };
    Some((found, message))
}

fn not_run(work: &Work) -> ModuleReport {
    let (module, from, action) = match work {
        Work::Run {
            target,
            from,
            action,
            ..
        } => (
            target.package.id.name.clone(),
            from.as_ref().map(ToString::to_string),
            *action,
        ),
        Work::Disable { id, purge } => (
            id.name.clone(),
            Some(id.to_string()),
            if *purge {
                Action::Purge
            } else {
                Action::Disable
            },
        ),
    };
    ModuleReport {
        status: ModuleStatus::NotRun,
        ..ModuleReport::new(&module, from, work.id(), action)
    }
}

/// Put each step's overlay report beside the changes of its collection, so
/// the job's change log has both.
fn with_overlay(
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

/// Set each pending plan entry's stage from what happened to its module.
fn mark_stages(plan: &mut [PlanEntry], modules: &[ModuleReport]) {
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

fn update_stages(report: &mut TenantReport) {
    let mut plan = std::mem::take(&mut report.plan);
    mark_stages(&mut plan, &report.modules);
    report.plan = plan;
}

fn find<'p>(packages: &'p [Package], id: &ModuleId) -> Result<&'p Package> {
    packages
        .iter()
        .find(|p| &p.id == id)
        .ok_or_else(|| anyhow!("no package of {id}"))
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
