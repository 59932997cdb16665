//! Before anything is written: the plan, and every module of it loaded and
//! checked (package, plugin, `describe`, the rollback's plugin).

use super::report::{Action, ModuleReport, ModuleStatus};
use super::{InstallOptions, Installer, Job};
use crate::descriptor::ModuleDescriptor;
use crate::host::{wit, Plugin};
use crate::module_id::ModuleId;
use crate::package::{BadPackage, Package};
use crate::plan::{
    self, Available, Enabled, Plan, PlanAction, PlanEntry, PlanOptions, Request, RequestAction,
    Stage,
};
use crate::storage::EnabledModule;
use anyhow::{anyhow, bail, Result};
use std::cmp::Ordering;

/// One module of a job, with everything loaded up front.
pub(super) enum Work {
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
    pub(super) fn id(&self) -> String {
        match self {
            Work::Run { target, .. } => target.package.id.to_string(),
            Work::Disable { id, .. } => id.to_string(),
        }
    }
}

impl Installer<'_> {
    pub(super) fn plan(
        &self,
        tenant: &str,
        recorded: &[EnabledModule],
        packages: &[Package],
        broken: &[BadPackage],
        job: &Job,
        options: &InstallOptions,
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
        // Unknown modules are listed by the planner and judged here, where
        // the catalog can say what there is instead.
        let planning = PlanOptions {
            reinstall: options.reinstall,
            releases: options.releases,
            dep_check: !options.no_dep_check,
            allow_unmanaged: true,
            ..PlanOptions::default()
        };
        let plan = plan::plan(&available, &enabled, &requests, &planning)
            .map_err(|e| anyhow!("tenant {tenant}: cannot plan: {e}"))?;
        // A module the operator named must exist (most likely a typo), and
        // so must one of an install list unless --allow-unmanaged (a
        // platform's list names modules that are another's to deploy); a
        // broken package is never "not managed".
        let allowed = match job {
            Job::Modules(_) => false,
            Job::InstallList(_) => options.allow_unmanaged,
            Job::UpgradeAll => true,
        };
        for entry in plan.entries.iter().filter(|e| e.stage == Stage::NotManaged) {
            if allowed && self.catalog.broken(&entry.id, broken).is_none() {
                continue;
            }
            if entry.action == PlanAction::Disable {
                bail!(
                    "tenant {tenant}: cannot disable {}: it is not enabled (graft status --tenant {tenant} lists what is){}",
                    entry.id,
                    if matches!(job, Job::InstallList(_)) { "; --allow-unmanaged lists it instead" } else { "" }
                );
            }
            let error = self.catalog.missing(&entry.id, packages, broken);
            if matches!(job, Job::InstallList(_)) {
                return Err(error.context(
                    "install list: a module with no package is an error, as in Okapi; --allow-unmanaged lists it as not managed by Graft",
                ));
            }
            return Err(error);
        }
        Ok(plan)
    }

    /// Load and check what one plan entry needs.
    pub(super) fn prepare(
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
}

fn find<'p>(packages: &'p [Package], id: &ModuleId) -> Result<&'p Package> {
    packages
        .iter()
        .find(|p| &p.id == id)
        .ok_or_else(|| anyhow!("no package of {id}"))
}

pub(super) fn not_run(work: &Work) -> ModuleReport {
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
