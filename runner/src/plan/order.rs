//! The order of a plan, as Okapi's: disables with dependents first; then
//! each module after the providers of the interfaces it requires (always)
//! and of those it may use (unless optional edges form a cycle); the
//! request's order among modules no dependency orders.

use super::Planner;
use crate::descriptor::{InterfaceReference, ModuleDescriptor};
use std::collections::{BTreeMap, BTreeSet};

/// The modules of `among`, other than `of`, that provide one of `wanted`.
fn providers<'a>(
    wanted: &[InterfaceReference],
    of: &str,
    among: &[(&'a str, &ModuleDescriptor)],
) -> BTreeSet<&'a str> {
    among
        .iter()
        .filter(|(name, d)| {
            *name != of
                && wanted
                    .iter()
                    .any(|w| d.provides.iter().any(|p| p.id == w.id))
        })
        .map(|(name, _)| *name)
        .collect()
}

impl Planner<'_> {
    /// The position of a name in the request (unnamed ones last), then the
    /// name: the order among modules no dependency orders.
    fn request_order(&self, name: &str) -> (usize, String) {
        (
            self.position.get(name).copied().unwrap_or(usize::MAX),
            name.to_string(),
        )
    }

    /// The first of `names` in the request's order.
    fn first<'n>(&self, names: impl Iterator<Item = &'n str>) -> Option<&'n str> {
        names.min_by_key(|name| self.request_order(name))
    }

    /// The target modules in dependency order, as Okapi orders them: the
    /// provider of an interface a module requires always comes first (a
    /// cycle of required interfaces is an error naming its modules); the
    /// provider of an optional one comes first too, unless optional edges
    /// form a cycle, where they give way. Among modules no dependency
    /// orders, the order of the request.
    pub(super) fn dependency_order(&self) -> Result<Vec<String>, String> {
        let modules: Vec<(&str, &ModuleDescriptor)> = self
            .target
            .iter()
            .map(|(name, (_, descriptor))| (name.as_str(), descriptor))
            .collect();
        let hard: BTreeMap<&str, BTreeSet<&str>> = modules
            .iter()
            .map(|(name, d)| (*name, providers(&d.requires, name, &modules)))
            .collect();
        let soft: BTreeMap<&str, BTreeSet<&str>> = modules
            .iter()
            .map(|(name, d)| (*name, providers(&d.optional, name, &modules)))
            .collect();
        let mut order: Vec<String> = Vec::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while done.len() < modules.len() {
            let left = || {
                modules
                    .iter()
                    .map(|(name, _)| *name)
                    .filter(|n| !done.contains(n))
            };
            let ready: Vec<&str> = left().filter(|n| hard[n].is_subset(&done)).collect();
            if ready.is_empty() {
                let left: Vec<&str> = left().collect();
                return Err(format!(
                    "modules {} require interfaces of each other in a cycle: none can be \
                     enabled first",
                    self.required_cycle(&left, &hard).join(" -> ")
                ));
            }
            let settled = ready.iter().copied().filter(|n| soft[n].is_subset(&done));
            let next = self
                .first(settled)
                .or_else(|| self.first(ready.iter().copied()))
                .expect("a module is ready");
            done.insert(next);
            order.push(next.to_string());
        }
        Ok(order)
    }

    /// A cycle of required edges among `left`, as the modules' ids.
    fn required_cycle(&self, left: &[&str], hard: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
        // Every module left waits on another left: walk until one repeats.
        let mut path: Vec<&str> = vec![left[0]];
        loop {
            let at = path[path.len() - 1];
            let next = hard[at]
                .iter()
                .copied()
                .find(|n| left.contains(n))
                .unwrap_or(at);
            if let Some(start) = path.iter().position(|n| *n == next) {
                return path[start..]
                    .iter()
                    .chain([&next])
                    .map(|n| self.target[*n].0.to_string())
                    .collect();
            }
            path.push(next);
        }
    }

    /// The modules to disable, each before the modules it requires (with
    /// the descriptors they were installed with): dependents go first.
    pub(super) fn disable_order(&self) -> Vec<String> {
        let leaving: Vec<&str> = self
            .disabled
            .iter()
            .map(String::as_str)
            .filter(|name| self.current.contains_key(*name))
            .collect();
        let known: Vec<(&str, &ModuleDescriptor)> = leaving
            .iter()
            .filter_map(|name| Some((*name, self.current[*name].descriptor.as_ref()?)))
            .collect();
        // user -> the leaving modules it requires something of.
        let needs: BTreeMap<&str, BTreeSet<&str>> = known
            .iter()
            .map(|(name, d)| (*name, providers(&d.requires, name, &known)))
            .collect();
        let mut order: Vec<String> = Vec::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while done.len() < leaving.len() {
            let left = || leaving.iter().copied().filter(|n| !done.contains(n));
            // Ready: no module still to go requires anything of it.
            let ready = left().filter(|n| {
                !needs
                    .iter()
                    .any(|(u, p)| !done.contains(u) && p.contains(n))
            });
            // A cycle among modules being disabled: any of them may go first.
            let next = self
                .first(ready)
                .or_else(|| self.first(left()))
                .expect("a module is left");
            done.insert(next);
            order.push(next.to_string());
        }
        order
    }
}
