//! The order of a plan, as Okapi's: disables with dependents first; then
//! each module after the providers of the interfaces it requires (always)
//! and of those it may use (unless optional edges form a cycle); the
//! request's order among modules no dependency orders.

use super::Planner;
use crate::descriptor::InterfaceReference;
use std::collections::{BTreeMap, BTreeSet};

impl Planner<'_> {
    /// The position of a name in the request (unnamed ones last), then the
    /// name: the order among modules no dependency orders.
    fn request_order(&self, name: &str) -> (usize, String) {
        (
            self.position.get(name).copied().unwrap_or(usize::MAX),
            name.to_string(),
        )
    }

    /// The target modules in dependency order, as Okapi orders them: the
    /// provider of an interface a module requires always comes first (a
    /// cycle of required interfaces is an error naming its modules); the
    /// provider of an optional one comes first too, unless optional edges
    /// form a cycle, where they give way. Among modules no dependency
    /// orders, the order of the request.
    pub(super) fn dependency_order(&self) -> Result<Vec<String>, String> {
        let providers = |names: &[&InterfaceReference], of: &str| -> BTreeSet<String> {
            names
                .iter()
                .flat_map(|wanted| {
                    self.target
                        .iter()
                        .filter(move |(name, (_, d))| {
                            name.as_str() != of && d.provides.iter().any(|p| p.id == wanted.id)
                        })
                        .map(|(name, _)| name.clone())
                })
                .collect()
        };
        let mut hard: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut soft: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for (name, (_, descriptor)) in &self.target {
            let required: Vec<&InterfaceReference> = descriptor.requires.iter().collect();
            let optional: Vec<&InterfaceReference> = descriptor.optional.iter().collect();
            hard.insert(name, providers(&required, name));
            soft.insert(name, providers(&optional, name));
        }
        let mut order: Vec<String> = Vec::new();
        let mut done: BTreeSet<String> = BTreeSet::new();
        while done.len() < self.target.len() {
            let ready: Vec<&str> = self
                .target
                .keys()
                .map(String::as_str)
                .filter(|name| !done.contains(*name) && hard[name].is_subset(&done))
                .collect();
            if ready.is_empty() {
                let left: Vec<&str> = self
                    .target
                    .keys()
                    .map(String::as_str)
                    .filter(|name| !done.contains(*name))
                    .collect();
                return Err(format!(
                    "modules {} require interfaces of each other in a cycle: none can be \
                     enabled first",
                    self.required_cycle(&left, &hard).join(" -> ")
                ));
            }
            let settled: Vec<&str> = ready
                .iter()
                .copied()
                .filter(|name| soft[name].is_subset(&done))
                .collect();
            let choose_from = if settled.is_empty() { &ready } else { &settled };
            let next = choose_from
                .iter()
                .min_by_key(|name| self.request_order(name))
                .expect("not empty")
                .to_string();
            done.insert(next.clone());
            order.push(next);
        }
        Ok(order)
    }

    /// A cycle of required edges among `left`, as the modules' ids.
    fn required_cycle(
        &self,
        left: &[&str],
        hard: &BTreeMap<&str, BTreeSet<String>>,
    ) -> Vec<String> {
        // Every module left waits on another left: walk until one repeats.
        let mut path: Vec<&str> = vec![left[0]];
        loop {
            let at = path[path.len() - 1];
            let next = hard[at]
                .iter()
                .find(|n| left.contains(&n.as_str()))
                .map(String::as_str)
                .unwrap_or(at);
            if let Some(start) = path.iter().position(|n| *n == next) {
                let mut cycle: Vec<String> = path[start..]
                    .iter()
                    .map(|n| self.target[*n].0.to_string())
                    .collect();
                cycle.push(self.target[next].0.to_string());
                return cycle;
            }
            path.push(next);
        }
    }

    /// The modules to disable, each before the modules it requires (with
    /// the descriptors they were installed with): dependents go first.
    pub(super) fn disable_order(&self) -> Vec<String> {
        let leaving: Vec<&String> = self
            .disabled
            .iter()
            .filter(|name| self.current.contains_key(*name))
            .collect();
        let descriptor = |name: &str| self.current[name].descriptor.as_ref();
        // name -> the leaving modules that require something it provides.
        let dependents: BTreeMap<&str, BTreeSet<&str>> = leaving
            .iter()
            .map(|provider| {
                let provides: Vec<&str> = descriptor(provider)
                    .map(|d| d.provides.iter().map(|p| p.id.as_str()).collect())
                    .unwrap_or_default();
                let users = leaving
                    .iter()
                    .filter(|user| *user != provider)
                    .filter(|user| {
                        descriptor(user).is_some_and(|d| {
                            d.requires.iter().any(|r| provides.contains(&r.id.as_str()))
                        })
                    })
                    .map(|user| user.as_str())
                    .collect();
                (provider.as_str(), users)
            })
            .collect();
        let mut order: Vec<String> = Vec::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while done.len() < leaving.len() {
            let ready = leaving
                .iter()
                .map(|n| n.as_str())
                .filter(|n| !done.contains(n))
                .filter(|n| dependents[n].iter().all(|d| done.contains(d)));
            // A cycle among modules being disabled: any of them may go first.
            let next = ready
                .min_by_key(|n| self.request_order(n))
                .or_else(|| {
                    leaving
                        .iter()
                        .map(|n| n.as_str())
                        .filter(|n| !done.contains(n))
                        .min_by_key(|n| self.request_order(n))
                })
                .expect("a module is left");
            done.insert(next);
            order.push(next.to_string());
        }
        order
    }
}
