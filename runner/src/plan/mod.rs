//! Planning a tenant's install: from what the tenant has and what is asked
//! (module ids, or an Okapi install list), the modules to enable, upgrade,
//! downgrade or disable, in dependency order, as Okapi's install list with
//! `from`, `action`, `stage` and `message`.
//!
//! Planning is pure: it reads descriptors only, so it is fast, testable
//! with synthetic descriptors, and what `--simulate` shows before any
//! plugin runs.
//!
//! The rules, as Okapi's:
//! - a request without a version means the newest release (a pre-release
//!   only if there is nothing else);
//! - a module's required interfaces must be provided by enabled modules, of
//!   the same major version and at least the minor; missing ones are pulled
//!   in from the newest release of the one product that provides them;
//! - an optional interface need not be provided, but if it is, compatibly;
//! - two modules may not provide the same interface (system interfaces such
//!   as `_tenant`, and `interfaceType: multiple`, excepted);
//! - a module that `replaces` a product disables it;
//! - a module cannot be disabled while an enabled module requires what
//!   only it provides.
//!
//! Modules with no package are listed as not managed by Graft: never an
//! error, never silently dropped.

use crate::descriptor::ModuleDescriptor;
use crate::module_id::{InterfaceVersion, ModuleId};
use serde::{Deserialize, Serialize};

mod order;
use std::collections::{BTreeMap, BTreeSet};

/// A module release that has a package.
#[derive(Debug, Clone)]
pub struct Available {
    pub id: ModuleId,
    pub descriptor: ModuleDescriptor,
}

/// One entry of an Okapi install list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// A module id, with or without version (`mod-users-19.4.5`, `mod-users`).
    pub id: String,
    pub action: RequestAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestAction {
    Enable,
    Disable,
}

/// One entry of the plan, in Okapi's install-list shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub action: PlanAction,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    Enable,
    Disable,
    /// Already at this release: not run, unless the job reinstalls (then
    /// the plugin runs again and reports `unchanged`).
    Uptodate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// To be run.
    Pending,
    /// Run and committed.
    Done,
    /// Run and failed; rolled back.
    Failed,
    /// Run, then rolled back because another module of the job failed.
    RolledBack,
    /// Not run because an earlier module failed.
    NotRun,
    /// No package: Graft does not migrate this module.
    NotManaged,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    /// Modules already at the requested release are not run (Okapi's
    /// `uptodate`, without `reinstall`): their entries are done as planned.
    pub fn settle_uptodate(&mut self) {
        for entry in &mut self.entries {
            if entry.action == PlanAction::Uptodate && entry.stage == Stage::Pending {
                entry.stage = Stage::Done;
                entry.message =
                    Some("already at this release: not run (--reinstall runs it)".into());
            }
        }
    }

    /// The entries Graft runs (managed and pending), in order.
    pub fn pending(&self) -> impl Iterator<Item = &PlanEntry> {
        self.entries.iter().filter(|e| e.stage == Stage::Pending)
    }
}

/// What the tenant has enabled: the id and, where known, the descriptor it
/// was installed with.
#[derive(Debug, Clone)]
pub struct Enabled {
    pub id: ModuleId,
    pub descriptor: Option<ModuleDescriptor>,
}

struct Planner<'a> {
    available: &'a [Available],
    /// name -> (id, descriptor) of the modules enabled after the plan.
    target: BTreeMap<String, (ModuleId, ModuleDescriptor)>,
    /// name -> what is enabled now.
    current: BTreeMap<String, Enabled>,
    /// Names the request asks to enable at a given release (not to be moved).
    pinned: BTreeSet<String>,
    /// Names the request disables (not to be pulled back in).
    disabled: BTreeSet<String>,
    /// Why a module is in the plan without being asked for.
    reasons: BTreeMap<String, String>,
    /// Entries for modules Graft does not manage, or that need no change.
    notes: Vec<PlanEntry>,
    /// First position of each name in the request, for a stable order.
    position: BTreeMap<String, usize>,
}

/// Plan `requests` for a tenant that has `enabled`, with the packages in
/// `available`. The error names the modules and interfaces involved.
pub fn plan(
    available: &[Available],
    enabled: &[Enabled],
    requests: &[Request],
) -> Result<Plan, String> {
    let mut planner = Planner {
        available,
        target: BTreeMap::new(),
        current: BTreeMap::new(),
        pinned: BTreeSet::new(),
        disabled: BTreeSet::new(),
        reasons: BTreeMap::new(),
        notes: Vec::new(),
        position: BTreeMap::new(),
    };
    for module in enabled {
        let descriptor = module.descriptor.clone().or_else(|| {
            available
                .iter()
                .find(|a| a.id == module.id)
                .map(|a| a.descriptor.clone())
        });
        planner
            .current
            .insert(module.id.name.clone(), module.clone());
        if let Some(descriptor) = descriptor {
            planner
                .target
                .insert(module.id.name.clone(), (module.id.clone(), descriptor));
        }
    }
    for (n, request) in requests.iter().enumerate() {
        planner.request(n, request)?;
    }
    planner.apply_replaces();
    planner.resolve()?;
    if planner.swap_providers() {
        planner.resolve()?;
    }
    planner.check_conflicts()?;
    planner.finish()
}

impl Planner<'_> {
    fn request(&mut self, n: usize, request: &Request) -> Result<(), String> {
        let (name, version) = match ModuleId::parse(&request.id) {
            Ok(id) => (id.name.clone(), Some(id)),
            Err(_) => (request.id.clone(), None),
        };
        self.position.entry(name.clone()).or_insert(n);
        match request.action {
            RequestAction::Enable => {
                let chosen = match &version {
                    Some(id) => self.available.iter().find(|a| &a.id == id),
                    None => self.newest(&name, |_| true),
                }
                .cloned();
                match chosen {
                    Some(available) => {
                        self.pinned.insert(name.clone());
                        self.disabled.remove(&name);
                        self.target
                            .insert(name, (available.id, available.descriptor));
                    }
                    None => self.notes.push(PlanEntry {
                        id: request.id.clone(),
                        from: None,
                        action: PlanAction::Enable,
                        stage: Stage::NotManaged,
                        message: Some("not managed by Graft: no package registered".into()),
                    }),
                }
            }
            RequestAction::Disable => {
                if let Some(id) = &version {
                    if let Some(current) = self.current.get(&name) {
                        if &current.id != id {
                            return Err(format!(
                                "cannot disable {id}: the tenant has {} enabled",
                                current.id
                            ));
                        }
                    }
                }
                if self.current.contains_key(&name) {
                    self.target.remove(&name);
                    self.disabled.insert(name);
                } else {
                    self.notes.push(PlanEntry {
                        id: request.id.clone(),
                        from: None,
                        action: PlanAction::Disable,
                        stage: if self.is_known(&name) {
                            Stage::Done
                        } else {
                            Stage::NotManaged
                        },
                        message: Some("not enabled: nothing to do".into()),
                    });
                }
            }
        }
        Ok(())
    }

    fn is_known(&self, name: &str) -> bool {
        self.available.iter().any(|a| a.id.name == name)
    }

    /// The newest release of `name` that passes `accept`; pre-releases
    /// only where there is no release.
    fn newest(&self, name: &str, accept: impl Fn(&Available) -> bool) -> Option<&Available> {
        let candidates: Vec<&Available> = self
            .available
            .iter()
            .filter(|a| a.id.name == name && accept(a))
            .collect();
        let releases: Vec<&&Available> = candidates
            .iter()
            .filter(|a| !a.id.version.is_prerelease())
            .collect();
        if releases.is_empty() {
            candidates
                .into_iter()
                .max_by(|a, b| a.id.version.cmp(&b.id.version))
        } else {
            releases
                .into_iter()
                .max_by(|a, b| a.id.version.cmp(&b.id.version))
                .copied()
        }
    }

    fn apply_replaces(&mut self) {
        let replaced: Vec<(String, String)> = self
            .target
            .values()
            .flat_map(|(id, d)| {
                d.replaces
                    .iter()
                    .map(move |product| (product.clone(), id.to_string()))
            })
            .collect();
        for (product, by) in replaced {
            if self.target.contains_key(&product) && !self.pinned.contains(&product) {
                self.target.remove(&product);
                self.disabled.insert(product.clone());
                self.reasons.insert(product, format!("replaced by {by}"));
            }
        }
    }

    /// Pull in or move providers until every module's requirements are met.
    fn resolve(&mut self) -> Result<(), String> {
        // Each round adds or moves at least one module, so the number of
        // products bounds the rounds.
        for _ in 0..=self.available.len() + self.target.len() {
            let mut changed = false;
            let names: Vec<String> = self.target.keys().cloned().collect();
            for name in names {
                let Some((id, descriptor)) = self.target.get(&name).cloned() else {
                    continue;
                };
                for required in &descriptor.requires {
                    changed |= self.satisfy(&id, &required.id, &required.version, false)?;
                }
                for optional in &descriptor.optional {
                    changed |= self.satisfy(&id, &optional.id, &optional.version, true)?;
                }
            }
            if !changed {
                return Ok(());
            }
        }
        Err("the dependencies do not settle: modules keep replacing each other".into())
    }

    /// Make sure `interface` at `versions` is provided for `by`; returns
    /// whether the target set changed.
    fn satisfy(
        &mut self,
        by: &ModuleId,
        interface: &str,
        versions: &str,
        optional: bool,
    ) -> Result<bool, String> {
        let providers: Vec<(String, String)> = self
            .target
            .iter()
            .flat_map(|(name, (_, d))| {
                d.provides
                    .iter()
                    .filter(|p| p.id == interface)
                    .map(move |p| (name.clone(), p.version.clone()))
            })
            .collect();
        let compatible = |version: &str| {
            InterfaceVersion::parse(version).is_some_and(|v| v.satisfies_any(versions))
        };
        if providers.iter().any(|(_, version)| compatible(version)) {
            return Ok(false);
        }
        if optional && providers.is_empty() {
            return Ok(false);
        }
        let provides_compatibly = |a: &Available| {
            a.descriptor
                .provides
                .iter()
                .any(|p| p.id == interface && compatible(&p.version))
        };
        // A provider that is there but too old or too new: move it to a
        // release that fits, unless the request named its release.
        if let Some((provider, version)) = providers.first() {
            let (provider_id, _) = &self.target[provider];
            if self.pinned.contains(provider) {
                return Err(format!(
                    "{by} requires interface {interface} {versions}, but {provider_id} (as requested) provides {interface} {version}"
                ));
            }
            return match self.newest(provider, provides_compatibly) {
                Some(fit) => {
                    let fit = fit.clone();
                    self.reasons.insert(provider.clone(), format!("{by} requires {interface} {versions}"));
                    self.target.insert(provider.clone(), (fit.id, fit.descriptor));
                    Ok(true)
                }
                None => Err(format!(
                    "{by} requires interface {interface} {versions}, but {provider_id} provides {interface} {version} \
                     and no release of {provider} provides a compatible version"
                )),
            };
        }
        let products: BTreeSet<&str> = self
            .available
            .iter()
            .filter(|a| provides_compatibly(a) && !self.disabled.contains(&a.id.name))
            .map(|a| a.id.name.as_str())
            .collect();
        match products.len() {
            0 => {
                let disabled_provider = self.current.iter().find(|(name, m)| {
                    self.disabled.contains(*name)
                        && m.descriptor.as_ref().is_some_and(|d| d.provides.iter().any(|p| p.id == interface))
                });
                Err(match disabled_provider {
                    Some((_, m)) => format!("cannot disable {}: {by} requires interface {interface} {versions} it provides", m.id),
                    None => format!("{by} requires interface {interface} {versions}, which no module provides"),
                })
            }
            1 => {
                let product = products.into_iter().next().unwrap_or_default().to_string();
                let fit = self.newest(&product, provides_compatibly).cloned().ok_or("no release fits")?;
                self.reasons.insert(product.clone(), format!("required by {by} ({interface} {versions})"));
                self.target.insert(product, (fit.id, fit.descriptor));
                Ok(true)
            }
            _ => Err(format!(
                "{by} requires interface {interface} {versions}, which several modules provide: {}; enable one of them",
                products.into_iter().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Product swap, as Okapi's: a module this plan enables (or moves) that
    /// provides an interface an enabled module of another product provides
    /// takes it over, and the old provider is disabled, unless the request
    /// names it too (then the conflict is an error). Returns whether any
    /// module was disabled.
    fn swap_providers(&mut self) -> bool {
        let mut swapped = Vec::new();
        for (name, (id, descriptor)) in &self.target {
            let unchanged = self.current.get(name).is_some_and(|m| &m.id == id);
            if unchanged {
                continue;
            }
            for provided in descriptor.provides.iter().filter(|p| is_exclusive(p)) {
                for (other, (other_id, other_descriptor)) in &self.target {
                    let taken_over = other != name
                        && self.current.contains_key(other)
                        && !self.pinned.contains(other)
                        && other_descriptor
                            .provides
                            .iter()
                            .any(|p| p.id == provided.id && is_exclusive(p));
                    if taken_over {
                        swapped.push((
                            other.clone(),
                            format!(
                                "{id} provides interface {} in place of {other_id}",
                                provided.id
                            ),
                        ));
                    }
                }
            }
        }
        let changed = !swapped.is_empty();
        for (name, reason) in swapped {
            self.target.remove(&name);
            self.disabled.insert(name.clone());
            self.reasons.entry(name).or_insert(reason);
        }
        changed
    }

    /// An interface may have one provider, unless every provider declares
    /// it `multiple`; system interfaces (`_tenant`, ...) are everybody's.
    fn check_conflicts(&self) -> Result<(), String> {
        let mut providers: BTreeMap<&str, Vec<(String, bool)>> = BTreeMap::new();
        for (id, descriptor) in self.target.values() {
            for provided in &descriptor.provides {
                let kind = interface_type(provided);
                if kind == "system" {
                    continue;
                }
                providers
                    .entry(&provided.id)
                    .or_default()
                    .push((id.to_string(), kind == "multiple"));
            }
        }
        for (interface, modules) in providers {
            if modules.len() > 1 && !modules.iter().all(|(_, multiple)| *multiple) {
                let names: Vec<String> = modules.into_iter().map(|(id, _)| id).collect();
                return Err(format!(
                    "modules {} both provide interface {interface}: enable only one",
                    names.join(" and ")
                ));
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Plan, String> {
        let mut changes: Vec<PlanEntry> = Vec::new();
        // Disables first, dependents before what they depend on.
        for name in self.disable_order() {
            let current = &self.current[&name];
            changes.push(PlanEntry {
                id: current.id.to_string(),
                from: None,
                action: PlanAction::Disable,
                stage: Stage::Pending,
                message: self.reasons.get(&name).cloned(),
            });
        }
        for name in self.dependency_order()? {
            let (id, _) = &self.target[&name];
            let current = self.current.get(&name).map(|m| &m.id);
            let asked = self.pinned.contains(&name);
            let (action, from) = match current {
                Some(current) if current == id => {
                    if !asked {
                        continue;
                    }
                    (PlanAction::Uptodate, None)
                }
                Some(current) => (PlanAction::Enable, Some(current.to_string())),
                None => (PlanAction::Enable, None),
            };
            changes.push(PlanEntry {
                id: id.to_string(),
                from,
                action,
                stage: Stage::Pending,
                message: self.reasons.get(&name).cloned(),
            });
        }
        changes.extend(self.notes);
        Ok(Plan { entries: changes })
    }
}

/// A provided interface's `interfaceType` (`proxy` where none is given);
/// `_tenant` and the other `_` interfaces are `system` whatever they say.
fn interface_type(provided: &crate::descriptor::ProvidedInterface) -> &str {
    if provided.id.starts_with('_') {
        return "system";
    }
    provided
        .other
        .get("interfaceType")
        .and_then(|t| t.as_str())
        .unwrap_or("proxy")
}

/// An interface only one enabled module may provide: not a system
/// interface nor one of `multiple`.
fn is_exclusive(provided: &crate::descriptor::ProvidedInterface) -> bool {
    !matches!(interface_type(provided), "system" | "multiple")
}
