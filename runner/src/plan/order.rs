//! The order of a plan, as Okapi's `sortTenantModules`: every module of
//! the install list, then every other enabled module, sorted so that each
//! comes after the modules providing what it requires or may use, keeping
//! the list's order where no dependency decides; disables are taken from
//! the end of that order (dependents first), enables from its start.
//!
//! One difference, on purpose: where dependencies form a cycle, Okapi puts
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
    let mut modules: Vec<&str> = entries
        .iter()
        .filter(|e| ordered(e))
        .map(|e| e.id.as_str())
        .collect();
    let listed: BTreeSet<&str> = modules.iter().copied().collect();
    modules.extend(enabled.iter().copied().filter(|id| !listed.contains(id)));
    let to_run: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.action == PlanAction::Enable)
        .map(|e| e.id.as_str())
        .collect();
    let sorted = topological(&modules, &lookup, &to_run)?;
    let sorted: Vec<String> = sorted.into_iter().map(str::to_string).collect();

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
    for id in sorted.iter().rev() {
        take(id, &[PlanAction::Disable], &mut out);
    }
    for id in &sorted {
        take(id, &[PlanAction::Enable, PlanAction::Uptodate], &mut out);
    }
    out.extend(left.into_iter().flatten());
    Ok(out)
}

/// Okapi's `topoSort`: passes over the modules in order, each taking every
/// module whose required and optional interfaces (those some module of the
/// list provides) are provided by modules already taken.
fn topological<'s, 'a>(
    modules: &[&'s str],
    lookup: &impl Fn(&str) -> Option<Module<'a>>,
    to_run: &BTreeSet<&str>,
) -> Result<Vec<&'s str>, String> {
    let found: Vec<Option<Module<'a>>> = modules.iter().map(|id| lookup(id)).collect();
    let provides = |i: usize| -> Vec<&'a str> {
        found[i].map_or_else(Vec::new, |m| {
            m.provides()
                .iter()
                .filter(|p| is_regular(&p.id, &p.other))
                .map(|p| p.id.as_str())
                .collect()
        })
    };
    let all_provided: BTreeSet<&str> = (0..modules.len()).flat_map(provides).collect();
    // What module i waits for: (required, optional) interfaces someone provides.
    let waits: Vec<(Vec<&str>, Vec<&str>)> = found
        .iter()
        .map(|m| {
            let Some(m) = m else {
                return (Vec::new(), Vec::new());
            };
            let known = |id: &&str| all_provided.contains(id);
            let required: Vec<&str> = m
                .requires()
                .iter()
                .map(|r| r.id.as_str())
                .filter(known)
                .collect();
            let any: Vec<&str> = m
                .requires_or_uses()
                .map(|r| r.id.as_str())
                .filter(known)
                .collect();
            (required, any)
        })
        .collect();
    let mut have: BTreeSet<&str> = BTreeSet::new();
    let mut left: Vec<usize> = (0..modules.len()).collect();
    let mut result: Vec<&'s str> = Vec::with_capacity(modules.len());
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
        if left.iter().any(|&at| to_run.contains(modules[at])) {
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
    modules: &[&str],
    left: &[usize],
    waits: &[(Vec<&str>, Vec<&str>)],
    have: &BTreeSet<&str>,
    provides: &impl Fn(usize) -> Vec<&'a str>,
) -> String {
    // Each module left waits on a required interface only modules left
    // provide: walk from one until a module repeats.
    let next = |at: usize| -> usize {
        let missing: Vec<&str> = waits[at]
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
                .map(|&p| modules[p])
                .collect();
            return format!(
                "modules {} require interfaces of each other in a cycle: none can be enabled first",
                cycle.join(" -> ")
            );
        }
        path.push(step);
    }
}
