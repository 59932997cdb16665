//! Okapi's dependency resolution (`DepResolution.installMaxIterations` and
//! `interfaceCheck`): the request read into an install list, then one
//! repair at a time until every interface a module requires is provided,
//! once, in a compatible version. Maps are ordered by id here where
//! Okapi's are hash maps, so that the same input always gives the same plan.

use super::{
    Available, Enabled, PlanAction, PlanEntry, PlanOptions, Request, RequestAction, Stage,
};
use crate::descriptor::{InterfaceReference, ModuleDescriptor, ProvidedInterface};
use crate::module_id::{InterfaceVersion, ModuleId, ModuleSpec};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A module and the descriptor it is planned with (none: a module enabled
/// with no descriptor known, which provides and requires nothing).
#[derive(Clone, Copy)]
pub(super) struct Module<'a> {
    pub id: &'a ModuleId,
    pub descriptor: Option<&'a ModuleDescriptor>,
}

impl<'a> Module<'a> {
    pub fn provides(&self) -> &'a [ProvidedInterface] {
        self.descriptor.map_or(&[], |d| &d.provides)
    }

    pub fn requires(&self) -> &'a [InterfaceReference] {
        self.descriptor.map_or(&[], |d| &d.requires)
    }

    /// Okapi's `getRequiresOptionalList`: required, then optional.
    pub fn requires_or_uses(&self) -> impl Iterator<Item = &'a InterfaceReference> {
        let optional: &'a [InterfaceReference] = self.descriptor.map_or(&[], |d| &d.optional);
        self.requires().iter().chain(optional)
    }

    fn replaces(&self) -> &'a [String] {
        self.descriptor.map_or(&[], |d| &d.replaces)
    }
}

/// Okapi's `isRegularHandler`: an interface of type `proxy` (the default),
/// not `system` (nor any `_` interface) nor `multiple`.
pub(super) fn is_regular(id: &str, other: &Map<String, Value>) -> bool {
    !id.starts_with('_')
        && other
            .get("interfaceType")
            .and_then(Value::as_str)
            .is_none_or(|t| t == "proxy")
}

pub(super) struct Resolution<'a> {
    options: &'a PlanOptions,
    /// The releases that pass the filter, by id (Okapi's `modsAvailable`).
    catalog: BTreeMap<String, Module<'a>>,
    /// What is enabled as the plan goes, by id (Okapi's `modsEnabled`).
    on: BTreeMap<String, Module<'a>>,
    /// What was enabled before, for the descriptors of modules disabled.
    before: BTreeMap<String, Module<'a>>,
    /// The install list as it grows (Okapi's `tml`).
    entries: Vec<PlanEntry>,
    /// Requests for modules Graft does not manage (`allow_unmanaged`).
    notes: Vec<PlanEntry>,
    /// Modules the request names, or the fix-up chose: never removed.
    sticky: BTreeSet<String>,
}

/// What one pass of the check did.
enum Check {
    /// Repaired one thing: check again.
    Repaired,
    /// Nothing to repair; the errors left (none: the plan holds).
    Settled(Vec<String>),
}

fn entry(id: &str, from: Option<&str>, action: PlanAction, message: Option<String>) -> PlanEntry {
    PlanEntry {
        id: id.to_string(),
        from: from.map(str::to_string),
        action,
        stage: Stage::Pending,
        message,
    }
}

impl<'a> Resolution<'a> {
    pub fn new(
        available: &'a [Available],
        enabled: &'a [Enabled],
        options: &'a PlanOptions,
    ) -> Self {
        let catalog: BTreeMap<String, Module<'a>> = available
            .iter()
            .filter(|a| options.releases.matches(&a.id))
            .map(|a| {
                (
                    a.id.to_string(),
                    Module {
                        id: &a.id,
                        descriptor: Some(&a.descriptor),
                    },
                )
            })
            .collect();
        let on: BTreeMap<String, Module<'a>> = enabled
            .iter()
            .map(|m| {
                let key = m.id.to_string();
                let descriptor = m.descriptor.as_ref().or_else(|| {
                    available
                        .iter()
                        .find(|a| a.id.to_string() == key)
                        .map(|a| &a.descriptor)
                });
                (
                    key,
                    Module {
                        id: &m.id,
                        descriptor,
                    },
                )
            })
            .collect();
        Resolution {
            options,
            catalog,
            before: on.clone(),
            on,
            entries: Vec::new(),
            notes: Vec::new(),
            sticky: BTreeSet::new(),
        }
    }

    /// Read the request into the install list, as Okapi does before any
    /// repair. Every problem is reported, joined by ". ".
    pub fn requests(&mut self, requests: &[Request]) -> Result<(), String> {
        let mut errors = Vec::new();
        for request in requests {
            if let Err(e) = self.request(request) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join(". "))
        }
    }

    fn request(&mut self, request: &Request) -> Result<(), String> {
        let spec = ModuleSpec::parse(&request.id)?;
        let action = match request.action {
            RequestAction::Enable => return self.enable_requested(&spec, &request.id),
            RequestAction::Disable => return self.disable_requested(&spec, &request.id),
            RequestAction::Uptodate => PlanAction::Uptodate,
            RequestAction::Suggest => PlanAction::Suggest,
            RequestAction::Conflict => PlanAction::Conflict,
        };
        let mut passed = entry(&request.id, None, action, None);
        if action != PlanAction::Uptodate {
            passed.stage = Stage::Done;
            passed.message = Some("from the install list; not run".into());
        }
        self.entries.push(passed);
        Ok(())
    }

    fn not_found(&mut self, id: &str, action: PlanAction) -> Result<(), String> {
        if !self.options.allow_unmanaged {
            return Err(format!("Module {id} not found"));
        }
        let message = match action {
            PlanAction::Disable => "not enabled: nothing to do",
            _ => "not managed by Graft: no package registered",
        };
        self.notes.push(PlanEntry {
            stage: Stage::NotManaged,
            ..entry(id, None, action, Some(message.into()))
        });
        Ok(())
    }

    fn enable_requested(&mut self, spec: &ModuleSpec, text: &str) -> Result<(), String> {
        let id = match &spec.version {
            Some(_) => text.to_string(),
            None => spec
                .latest(self.catalog.values().map(|m| m.id))
                .map_or_else(|| text.to_string(), ToString::to_string),
        };
        self.sticky.insert(id.clone());
        let Some(module) = self.catalog.get(&id).copied() else {
            return self.not_found(&id, PlanAction::Enable);
        };
        if self.on.contains_key(&id) && !self.options.reinstall {
            self.entries
                .push(entry(&id, None, PlanAction::Uptodate, None));
            return Ok(());
        }
        let mut from = None;
        let mut error = Ok(());
        if let Some(other) = self.enabled_of(&module.id.name) {
            if self.sticky.contains(&other) && other != id {
                error = Err(format!(
                    "Cannot remove module {other} which is explicitly given (the request names {other} and {id}: name one release of {})",
                    module.id.name
                ));
            }
            self.on.remove(&other);
            from = Some(other);
        }
        self.on.insert(id.clone(), module);
        self.entries
            .push(entry(&id, from.as_deref(), PlanAction::Enable, None));
        error
    }

    fn disable_requested(&mut self, spec: &ModuleSpec, text: &str) -> Result<(), String> {
        let id = match &spec.version {
            Some(_) => text.to_string(),
            None => spec
                .latest(self.on.values().map(|m| m.id))
                .map_or_else(|| text.to_string(), ToString::to_string),
        };
        if self.on.remove(&id).is_none() {
            if let (Some(other), false) =
                (self.enabled_of(&spec.name), self.options.allow_unmanaged)
            {
                return Err(format!("Module {id} not found (the tenant has {other})"));
            }
            return self.not_found(&id, PlanAction::Disable);
        }
        self.entries
            .push(entry(&id, None, PlanAction::Disable, None));
        Ok(())
    }

    /// The enabled release of a product, if any.
    fn enabled_of(&self, name: &str) -> Option<String> {
        self.on
            .iter()
            .find(|(_, m)| m.id.name == name)
            .map(|(id, _)| id.clone())
    }

    /// Repair until the enabled set holds (Okapi's loop of
    /// `interfaceCheck`); `max_iterations` 0 checks without repairing.
    pub fn fix_up(&mut self) -> Result<(), String> {
        let max = self.options.max_iterations;
        let errors = if max == 0 {
            match self.check(false) {
                Check::Settled(errors) => errors,
                Check::Repaired => unreachable!("a check without repairs repaired"),
            }
        } else {
            let mut settled = None;
            for _ in 0..max {
                if let Check::Settled(errors) = self.check(true) {
                    settled = Some(errors);
                    break;
                }
            }
            settled.ok_or_else(|| {
                format!("Dependency resolution not completing in {max} iterations")
            })?
        };
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join(". "))
        }
    }

    /// One pass of Okapi's `interfaceCheck`: an interface provided twice,
    /// then required interfaces missing, then incompatible versions.
    fn check(&mut self, fix: bool) -> Check {
        let mut provided: BTreeMap<&'a str, Vec<(String, &'a ProvidedInterface)>> = BTreeMap::new();
        let mut required: BTreeMap<&'a str, Vec<(String, &'a InterfaceReference)>> =
            BTreeMap::new();
        let mut used: BTreeMap<&'a str, Vec<(String, &'a InterfaceReference)>> = BTreeMap::new();
        for (id, module) in &self.on {
            for p in module
                .provides()
                .iter()
                .filter(|p| is_regular(&p.id, &p.other))
            {
                provided.entry(&p.id).or_default().push((id.clone(), p));
            }
            for r in module.requires() {
                required.entry(&r.id).or_default().push((id.clone(), r));
            }
            for r in module.requires_or_uses() {
                used.entry(&r.id).or_default().push((id.clone(), r));
            }
        }
        let mut errors = Vec::new();
        if self.provided_once(fix, &mut errors, &provided)
            || self.required_provided(fix, &mut errors, &provided, &required)
            || self.versions_compatible(fix, &mut errors, &provided, &used)
        {
            return Check::Repaired;
        }
        Check::Settled(errors)
    }

    /// Okapi's `checkMultiple`: an interface provided by two enabled
    /// modules disables the first the request did not name.
    fn provided_once(
        &mut self,
        fix: bool,
        errors: &mut Vec<String>,
        provided: &BTreeMap<&str, Vec<(String, &ProvidedInterface)>>,
    ) -> bool {
        for (interface, providers) in provided.iter().filter(|(_, p)| p.len() > 1) {
            if fix {
                if let Some((id, _)) = providers.iter().find(|(id, _)| !self.sticky.contains(id)) {
                    let others: Vec<&str> = providers
                        .iter()
                        .map(|(other, _)| other.as_str())
                        .filter(|other| other != id)
                        .collect();
                    let why = format!(
                        "{} provides interface {interface} in its place",
                        others.join(", ")
                    );
                    self.on.remove(id);
                    self.entries
                        .push(entry(id, None, PlanAction::Disable, Some(why)));
                    return true;
                }
            }
            let ids: Vec<&str> = providers.iter().map(|(id, _)| id.as_str()).collect();
            errors.push(format!(
                "Multiple modules {} provide interface {interface}",
                ids.join(", ")
            ));
        }
        false
    }

    /// Okapi's `checkRequired`: a required interface nobody enabled
    /// provides enables its one provider for a module the request names;
    /// a module nobody asked for is disabled instead.
    fn required_provided(
        &mut self,
        fix: bool,
        errors: &mut Vec<String>,
        provided: &BTreeMap<&str, Vec<(String, &ProvidedInterface)>>,
        required: &BTreeMap<&str, Vec<(String, &InterfaceReference)>>,
    ) -> bool {
        for (interface, users) in required {
            if provided.contains_key(interface) {
                continue;
            }
            for (user, reference) in users {
                if fix {
                    let found = self.providers_of(reference);
                    if found.len() > 1 {
                        errors.push(several(interface, user, &found));
                        return false;
                    }
                    if let Some(module) = found.into_values().next() {
                        let found_id = module.id.to_string();
                        if self.sticky.contains(user) {
                            let why = format!(
                                "{user} requires interface {interface} {}",
                                reference.version
                            );
                            self.on.insert(found_id.clone(), module);
                            self.entries.push(entry(
                                &found_id,
                                None,
                                PlanAction::Enable,
                                Some(why),
                            ));
                            self.sticky.insert(found_id);
                        } else {
                            let why = format!(
                                "requires interface {interface} {}, which no enabled module provides",
                                reference.version
                            );
                            self.on.remove(user);
                            self.entries
                                .push(entry(user, None, PlanAction::Disable, Some(why)));
                        }
                        return true;
                    }
                }
                errors.push(format!(
                    "interface {interface} required by module {user} not found"
                ));
            }
        }
        false
    }

    /// Okapi's `checkCompatible`: where an enabled provider's version does
    /// not fit a module that requires or uses the interface, move the
    /// provider to the newest release that fits (unless the request names
    /// it), else move the user to the newest release that fits the
    /// provider (unless the request names it).
    fn versions_compatible(
        &mut self,
        fix: bool,
        errors: &mut Vec<String>,
        provided: &BTreeMap<&str, Vec<(String, &ProvidedInterface)>>,
        used: &BTreeMap<&str, Vec<(String, &InterfaceReference)>>,
    ) -> bool {
        for (interface, users) in used {
            let Some((provider, offered)) = provided.get(interface).and_then(|p| p.first()) else {
                continue;
            };
            for (user, reference) in users {
                if InterfaceVersion::compatible(&offered.version, &reference.version) {
                    continue;
                }
                if fix {
                    if !self.sticky.contains(provider) {
                        let found = self.providers_of(reference);
                        if found.len() > 1 {
                            errors.push(several(interface, user, &found));
                            return false;
                        }
                        if let Some(module) = found.into_values().next() {
                            let why =
                                format!("{user} needs interface {interface} {}", reference.version);
                            self.replace(provider, module, why);
                            return true;
                        }
                    }
                    if !self.sticky.contains(user) {
                        let found = self.users_of(interface, offered);
                        if found.len() > 1 {
                            errors.push(several(interface, user, &found));
                            return false;
                        }
                        if let Some(module) = found.into_values().next() {
                            let why = format!(
                                "{provider} provides interface {interface} {}",
                                offered.version
                            );
                            self.replace(user, module, why);
                            return true;
                        }
                    }
                }
                errors.push(format!(
                    "Incompatible version for module {user} interface {interface}. Need {}. Have {}/{provider}",
                    reference.version, offered.version
                ));
            }
        }
        false
    }

    /// Enable `module` in place of the enabled `from` (Okapi's "Adding"):
    /// an upgrade or downgrade within a product, a disable and an enable
    /// across products.
    fn replace(&mut self, from: &str, module: Module<'a>, why: String) {
        let id = module.id.to_string();
        self.sticky.insert(id.clone());
        let same_product = self
            .on
            .get(from)
            .is_some_and(|m| m.id.name == module.id.name);
        self.on.remove(from);
        self.on.insert(id.clone(), module);
        if same_product {
            self.entries
                .push(entry(&id, Some(from), PlanAction::Enable, Some(why)));
        } else {
            self.entries.push(entry(
                from,
                None,
                PlanAction::Disable,
                Some(format!("replaced by {id}")),
            ));
            self.entries
                .push(entry(&id, None, PlanAction::Enable, Some(why)));
        }
    }

    /// The newest release of each product that provides `wanted`
    /// compatibly, without products another candidate `replaces` (Okapi's
    /// `findModulesForRequiredInterface`).
    fn providers_of(&self, wanted: &InterfaceReference) -> BTreeMap<String, Module<'a>> {
        self.newest_per_product(|m| {
            m.provides().iter().any(|p| {
                p.id == wanted.id
                    && is_regular(&p.id, &p.other)
                    && InterfaceVersion::compatible(&p.version, &wanted.version)
            })
        })
    }

    /// The newest release of each product that requires or uses
    /// `interface` in a version `offered` satisfies (Okapi's
    /// `findModuleWithProvidedInterface`).
    fn users_of(
        &self,
        interface: &str,
        offered: &ProvidedInterface,
    ) -> BTreeMap<String, Module<'a>> {
        self.newest_per_product(|m| {
            m.requires_or_uses().any(|r| {
                r.id == interface
                    && is_regular(&r.id, &r.other)
                    && InterfaceVersion::compatible(&offered.version, &r.version)
            })
        })
    }

    fn newest_per_product(
        &self,
        fits: impl Fn(&Module<'a>) -> bool,
    ) -> BTreeMap<String, Module<'a>> {
        let mut newest: BTreeMap<String, Module<'a>> = BTreeMap::new();
        let mut replaced: BTreeSet<&str> = BTreeSet::new();
        for module in self.catalog.values().filter(|m| fits(m)) {
            replaced.extend(module.replaces().iter().map(String::as_str));
            let name = module.id.name.clone();
            let newer = newest
                .get(&name)
                .is_none_or(|best| module.id.compare(best.id) > 0);
            if newer {
                newest.insert(name, *module);
            }
        }
        newest.retain(|product, _| !replaced.contains(product.as_str()));
        newest
    }

    /// What the resolution came to: the install list (in the order it
    /// grew), the entries for modules Graft does not manage, the modules
    /// enabled in the end, and every module's descriptor by id.
    pub fn finish(self) -> Resolved<'a> {
        let mut modules = self.before;
        modules.extend(self.catalog);
        Resolved {
            entries: self.entries,
            notes: self.notes,
            enabled: self.on.into_keys().collect(),
            modules,
        }
    }
}

pub(super) struct Resolved<'a> {
    pub entries: Vec<PlanEntry>,
    pub notes: Vec<PlanEntry>,
    pub enabled: Vec<String>,
    pub modules: BTreeMap<String, Module<'a>>,
}

/// Okapi's message where several products could be chosen.
fn several(interface: &str, user: &str, found: &BTreeMap<String, Module>) -> String {
    let products: Vec<&str> = found.keys().map(String::as_str).collect();
    format!(
        "interface {interface} required by module {user} is provided by multiple products: {}",
        products.join(", ")
    )
}
