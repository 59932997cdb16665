//! One module's steps with its plugin: inspect, then upgrade or rollback,
//! then the data loads, each a plugin call under the module's limits, with
//! the history rows they leave.

use super::disable::disable;
use super::job::parameters;
use super::prepare::Work;
use super::report::{Action, FailureReport, ModuleReport, ModuleStatus, StepReport};
use super::{InstallOptions, Installer};
use crate::host::{wit, CallFailure, CallOutcome, CallSetup, Determinism, FailureKind, Plugin};
use crate::limits::MAX_PLUGIN_TEXT_BYTES;
use crate::module_id::ModuleId;
use crate::storage::{now, EnabledModule, HistoryEntry, TenantStore};
use crate::text::truncate;
use anyhow::{anyhow, bail, Result};
use std::time::SystemTime;

/// One module of a job to run, as `prepare` loaded it.
struct ModuleRun<'a> {
    tenant: &'a str,
    job_id: &'a str,
    target: &'a Plugin,
    /// The plugin of the enabled, newer release, for a downgrade.
    rollback_with: Option<&'a Plugin>,
    from: Option<ModuleId>,
    action: Action,
    options: &'a InstallOptions,
}

impl Installer<'_> {
    /// Run one module of the plan on the tenant's store (lent for the job
    /// and handed back with the module's report).
    pub(super) fn run_work(
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
                ModuleRun {
                    tenant,
                    job_id,
                    target: &target,
                    rollback_with: rollback_with.as_deref(),
                    from,
                    action,
                    options,
                },
            ),
            Work::Disable { id, purge } => disable(db, job_id, &id, purge),
        }
    }

    /// Each step with its plugin, stopping at the first failure; the
    /// module is recorded only when every step succeeded.
    fn run_module(
        &self,
        mut db: Box<dyn TenantStore>,
        run: ModuleRun<'_>,
    ) -> Result<(Box<dyn TenantStore>, ModuleReport)> {
        let ModuleRun {
            tenant,
            job_id,
            target,
            rollback_with,
            from,
            action,
            options,
        } = run;
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
        // What each plugin may read (contract 0.2's `required`), read once:
        // the tenant's other modules do not change during this module's steps.
        let readable_main = readable_modules(&mut *db, main_plugin)?;
        let readable_target = match rollback_with {
            Some(_) => readable_modules(&mut *db, target)?,
            None => readable_main.clone(),
        };
        let steps = steps_of(target, action, options);
        let mut history = Vec::new();
        let mut warnings = 0;
        for step in steps {
            let (plugin, readable) = if matches!(step, Step::Inspect | Step::Rollback) {
                (main_plugin, &readable_main)
            } else {
                (target, &readable_target)
            };
            let progress = options
                .progress
                .as_ref()
                .and_then(|make| make(tenant, &to.to_string(), step.name()));
            let setup = CallSetup {
                store: Some(db),
                readable: readable.clone(),
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
            if let Err(failure) = &mut result {
                name_existing_collections(&mut *db, &to.name, failure);
            }
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
        record_module(&mut *db, tenant, target, &history)?;
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
            Ok(match step {
                Step::Inspect => Ok(match instance.inspect(store)? {
                    wit::StoredState::Empty => "empty".to_string(),
                    wit::StoredState::Release(release) => {
                        format!("release {}", truncate(&release, MAX_PLUGIN_TEXT_BYTES))
                    }
                    wit::StoredState::Unrecognised(what) => {
                        format!("unrecognised: {}", truncate(&what, MAX_PLUGIN_TEXT_BYTES))
                    }
                }),
                Step::Upgrade => instance.upgrade(store, context)?.map(outcome_name),
                // A rollback's "upgraded" (it changed the data) reads as what it did.
                Step::Rollback => instance.rollback(store, context)?.map(|o| {
                    if o == wit::Outcome::Upgraded {
                        "downgraded".to_string()
                    } else {
                        outcome_name(o)
                    }
                }),
                Step::Load(kind) => instance.load_data(store, context, kind)?.map(outcome_name),
            })
        })
    }
}

/// A failure at a collection the module does not have (a typo, most often)
/// lists the collections it has.
fn name_existing_collections(db: &mut dyn TenantStore, module: &str, failure: &mut CallFailure) {
    let Some(collection) = &failure.collection else {
        return;
    };
    let Ok(existing) = db.list_collections(module) else {
        return;
    };
    if existing.contains(collection) {
        return;
    }
    let has = match existing.as_slice() {
        [] => "none".to_string(),
        names => names.join(", "),
    };
    failure.message = format!(
        "{} ({module} has no collection {collection}; its collections: {})",
        failure.message,
        truncate(&has, 500)
    );
}

/// The enabled modules that provide an interface the plugin's module
/// requires: what its plugin may read (contract 0.2's `required`). Read when
/// the module's steps start, so a provider enabled earlier in the same job
/// counts.
fn readable_modules(db: &mut dyn TenantStore, plugin: &Plugin) -> Result<Vec<String>> {
    // A 0.1 plugin has no way to read another module.
    if plugin.contract == crate::host::Contract::V0_1 {
        return Ok(Vec::new());
    }
    let package = &plugin.package;
    let required: Vec<&str> = package
        .descriptor
        .requires
        .iter()
        .map(|i| i.id.as_str())
        .collect();
    if required.is_empty() {
        return Ok(Vec::new());
    }
    let modules = db
        .modules()
        .map_err(|e| anyhow!("tenant {}: {e}", db.tenant()))?;
    Ok(modules
        .into_iter()
        .filter(|m| m.enabled && m.name != package.id.name)
        .filter(|m| {
            m.descriptor
                .as_deref()
                .and_then(|text| crate::descriptor::ModuleDescriptor::parse(text).ok())
                .is_some_and(|(descriptor, _)| {
                    descriptor
                        .provides
                        .iter()
                        .any(|p| required.contains(&p.id.as_str()))
                })
        })
        .map(|m| m.name)
        .collect())
}

/// The steps of a module's run, in order.
fn steps_of(target: &Plugin, action: Action, options: &InstallOptions) -> Vec<Step> {
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
    steps
}

/// The module as now enabled, with the history rows of its steps.
fn record_module(
    db: &mut dyn TenantStore,
    tenant: &str,
    target: &Plugin,
    history: &[HistoryEntry],
) -> Result<()> {
    let to = &target.package.id;
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
    Ok(())
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
