//! The order of a plan, as Okapi's `sortTenantModules`: every module of
//! the install list, then every other enabled module, sorted so that each
//! comes after the modules providing what it requires or may use, keeping
//! the list's order where no dependency decides; disables are taken from
//! the end of that order (dependents first), enables from its start.
//!
//! Two differences, on purpose. A module being disabled provides nothing to
//! modules being enabled (Okapi's sort matches interfaces by name across
//! both, and can enable a module before the release that really provides
//! what it requires, when an old provider of the interface is disabled in
//! the same plan). And where dependencies form a cycle, Okapi puts
//! the modules of the cycle last in the list's order, whatever they
//! require. Graft lets optional interfaces give way first, so that a
//! module still comes after the providers of what it requires; a cycle of
//! required interfaces among modules to run is an error naming them.

use super::resolve::{is_regular, Module};
use super::{PlanAction, PlanEntry};
use std::collections::BTreeSet;

pub(super) enum Order {
    /// Okapi's order by dependencies.
    Dependencies,
    /// The request's order, untouched (no dependency check).
    Request,
}

pub(super) fn sort<'a>(
    entries: Vec<PlanEntry>,
    enabled: &[&str],
    lookup: impl Fn(&str) -> Option<Module<'a>>,
    order: Order,
) -> Result<Vec<PlanEntry>, String> {
    if let Order::Request = order {
        return Ok(entries);
    }
    let ordered = |e: &PlanEntry| {
        matches!(
            e.action,
            PlanAction::Enable | PlanAction::Uptodate | PlanAction::Disable
        )
    };
    // Each module of the list with its side: leaving (its entry disables
    // it) or staying. A module the request disables and the fix-up enables
    // again is on both sides, once each.
    let mut modules: Vec<(&str, bool)> = entries
        .iter()
        .filter(|e| ordered(e))
        .map(|e| (e.id.as_str(), e.action == PlanAction::Disable))
        .collect();
    let listed: BTreeSet<&str> = modules.iter().map(|(id, _)| *id).collect();
    modules.extend(
        enabled
            .iter()
            .filter(|id| !listed.contains(*id))
            .map(|id| (*id, false)),
    );
    let to_run: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.action == PlanAction::Enable)
        .map(|e| e.id.as_str())
        .collect();
    let sorted: Vec<(String, bool)> = topological(&modules, &lookup, &to_run)?
        .into_iter()
        .map(|(id, leaving)| (id.to_string(), leaving))
        .collect();

    let mut left: Vec<Option<PlanEntry>> = entries.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(left.len());
    let mut take = |id: &str, actions: &[PlanAction], out: &mut Vec<PlanEntry>| {
        for slot in left.iter_mut() {
            if slot
                .as_ref()
                .is_some_and(|e| e.id == id && actions.contains(&e.action))
            {
                out.extend(slot.take());
            }
        }
    };
    for (id, _) in sorted.iter().rev().filter(|(_, leaving)| *leaving) {
        take(id, &[PlanAction::Disable], &mut out);
    }
    for (id, _) in sorted.iter().filter(|(_, leaving)| !*leaving) {
        take(id, &[PlanAction::Enable, PlanAction::Uptodate], &mut out);
    }
    out.extend(left.into_iter().flatten());
    Ok(out)
}

/// Okapi's `topoSort`: passes over the modules in order, each taking every
/// module whose required and optional interfaces (those some module of the
/// list provides) are provided by modules already taken. Modules leaving
/// and modules staying are ordered each among their own: an interface is
/// keyed with its side.
fn topological<'s, 'a>(
    modules: &[(&'s str, bool)],
    lookup: &impl Fn(&str) -> Option<Module<'a>>,
    to_run: &BTreeSet<&str>,
) -> Result<Vec<(&'s str, bool)>, String> {
    let found: Vec<Option<Module<'a>>> = modules.iter().map(|(id, _)| lookup(id)).collect();
    let side = |i: usize| modules[i].1;
    let provides = |i: usize| -> Vec<(bool, &'a str)> {
        found[i].map_or_else(Vec::new, |m| {
            m.provides()
                .iter()
                .filter(|p| is_regular(&p.id, &p.other))
                .map(|p| (side(i), p.id.as_str()))
                .collect()
        })
    };
    let all_provided: BTreeSet<(bool, &str)> = (0..modules.len()).flat_map(provides).collect();
    // What module i waits for: (required, optional) interfaces a module of
    // its side provides.
    let waits: Vec<(Vec<(bool, &str)>, Vec<(bool, &str)>)> = (0..modules.len())
        .map(|i| {
            let Some(m) = found[i] else {
                return (Vec::new(), Vec::new());
            };
            let keyed = |r: &'a crate::descriptor::InterfaceReference| (side(i), r.id.as_str());
            let known = |key: &(bool, &str)| all_provided.contains(key);
            let required: Vec<_> = m.requires().iter().map(keyed).filter(known).collect();
            let any: Vec<_> = m.requires_or_uses().map(keyed).filter(known).collect();
            (required, any)
        })
        .collect();
    let mut have: BTreeSet<(bool, &str)> = BTreeSet::new();
    let mut left: Vec<usize> = (0..modules.len()).collect();
    let mut result: Vec<(&'s str, bool)> = Vec::with_capacity(modules.len());
    while !left.is_empty() {
        let mut taken = false;
        let mut i = 0;
        while i < left.len() {
            let at = left[i];
            if waits[at].1.iter().all(|w| have.contains(w)) {
                have.extend(provides(at));
                result.push(modules[at]);
                left.remove(i);
                taken = true;
            } else {
                i += 1;
            }
        }
        if taken || left.is_empty() {
            continue;
        }
        // A cycle: optional interfaces give way first.
        if let Some(i) = left
            .iter()
            .position(|&at| waits[at].0.iter().all(|w| have.contains(w)))
        {
            let at = left.remove(i);
            have.extend(provides(at));
            result.push(modules[at]);
            continue;
        }
        if left
            .iter()
            .any(|&at| !modules[at].1 && to_run.contains(modules[at].0))
        {
            return Err(required_cycle(modules, &left, &waits, &have, &provides));
        }
        // Modules that stay as they are: Okapi's order (the list's).
        result.extend(left.drain(..).map(|at| modules[at]));
    }
    Ok(result)
}

/// A cycle of required interfaces among the modules `left`, as
/// "a -> b -> a" with the message Graft gives.
fn required_cycle<'a>(
    modules: &[(&str, bool)],
    left: &[usize],
    waits: &[(Vec<(bool, &str)>, Vec<(bool, &str)>)],
    have: &BTreeSet<(bool, &str)>,
    provides: &impl Fn(usize) -> Vec<(bool, &'a str)>,
) -> String {
    // Each module left waits on a required interface only modules left
    // provide: walk from one until a module repeats.
    let next = |at: usize| -> usize {
        let missing: Vec<(bool, &str)> = waits[at]
            .0
            .iter()
            .copied()
            .filter(|w| !have.contains(w))
            .collect();
        left.iter()
            .copied()
            .find(|&other| provides(other).iter().any(|p| missing.contains(p)))
            .unwrap_or(at)
    };
    let mut path = vec![left[0]];
    loop {
        let step = next(path[path.len() - 1]);
        if let Some(start) = path.iter().position(|&p| p == step) {
            let cycle: Vec<&str> = path[start..]
                .iter()
                .chain([&step])
                .map(|&p| modules[p].0)
                .collect();
            return format!(
                "modules {} require interfaces of each other in a cycle: none can be enabled first",
                cycle.join(" -> ")
            );
        }
        path.push(step);
    }
}
