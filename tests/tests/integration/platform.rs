//! Planning on the real platform: the ModuleDescriptors of every back-end
//! module of FOLIO's R1-2024 and R2-2024 releases (`tests/data/platform-
//! complete/descriptors/`), and the real install lists of platform-complete.
//! A tenant installs R1-2024, upgrades with the R2-2024 list unchanged, and
//! upgrades again; every plan must respect every required interface.

use graft::descriptor::ModuleDescriptor;
use graft::plan::{plan, Available, Enabled, Plan, PlanAction, PlanOptions, Request, Stage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/platform-complete")
}

/// Every descriptor of a release.
fn release(name: &str) -> Vec<Available> {
    let dir = data().join("descriptors").join(name);
    let mut found: Vec<Available> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let (descriptor, id) = ModuleDescriptor::parse(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Available { id, descriptor }
        })
        .collect();
    found.sort_by_key(|a| a.id.to_string());
    found
}

fn install_list(name: &str) -> Vec<Request> {
    let text = std::fs::read_to_string(data().join(format!("install-{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The modules enabled once `plan` ran on a tenant that had `before`.
fn after(catalog: &[Available], before: &[Enabled], plan: &Plan) -> Vec<Enabled> {
    let mut enabled: BTreeMap<String, Enabled> = before
        .iter()
        .map(|m| (m.id.name.clone(), m.clone()))
        .collect();
    for entry in plan.entries.iter().filter(|e| e.stage != Stage::NotManaged) {
        let found = catalog.iter().find(|a| a.id.to_string() == entry.id);
        match (entry.action, found) {
            (PlanAction::Disable, Some(a)) => {
                enabled.remove(&a.id.name);
            }
            (PlanAction::Disable, None) => {
                enabled.retain(|_, m| m.id.to_string() != entry.id);
            }
            (_, Some(a)) => {
                enabled.insert(
                    a.id.name.clone(),
                    Enabled {
                        id: a.id.clone(),
                        descriptor: Some(a.descriptor.clone()),
                    },
                );
            }
            (_, None) => panic!("{} enabled but not in the catalog", entry.id),
        }
    }
    enabled.into_values().collect()
}

/// Every place where `plan` runs a module before the provider of an
/// interface it requires (both in the plan), or disables a provider before
/// a module that requires it.
fn violations(catalog: &[Available], plan: &Plan) -> Vec<String> {
    let descriptor = |id: &str| catalog.iter().find(|a| a.id.to_string() == id);
    let entries: Vec<_> = plan
        .entries
        .iter()
        .filter(|e| e.stage != Stage::NotManaged)
        .collect();
    let mut found = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(module) = descriptor(&entry.id) else {
            continue;
        };
        for (j, other) in entries.iter().enumerate() {
            let Some(provider) = descriptor(&other.id) else {
                continue;
            };
            let requires = module
                .descriptor
                .requires
                .iter()
                .any(|r| provider.descriptor.provides.iter().any(|p| p.id == r.id));
            if !requires || i == j {
                continue;
            }
            let enabling = entry.action != PlanAction::Disable;
            if enabling && other.action != PlanAction::Disable && j > i {
                found.push(format!(
                    "{} runs before {}, which it requires",
                    entry.id, other.id
                ));
            }
            if !enabling && other.action == PlanAction::Disable && j < i {
                found.push(format!(
                    "{} is disabled before {}, which requires it",
                    other.id, entry.id
                ));
            }
        }
    }
    found
}

#[test]
fn the_real_platform_installs_and_upgrades_in_dependency_order() {
    let r1 = release("R1-2024");
    let r2 = release("R2-2024");
    let catalog: Vec<Available> = r1.iter().chain(&r2).cloned().collect();

    let install = plan(
        &catalog,
        &[],
        &install_list("R1-2024-GA"),
        &platform_options(),
    )
    .unwrap();
    assert_eq!(violations(&catalog, &install), Vec::<String>::new());
    assert_eq!(
        order_disagreements(&catalog, &install, &install_list("R1-2024-GA")),
        Vec::<String>::new()
    );
    let on_r1 = after(&catalog, &[], &install);
    assert_eq!(on_r1.len(), r1.len(), "every back-end module of R1-2024");

    let upgrade = plan(
        &catalog,
        &on_r1,
        &install_list("R2-2024-GA"),
        &platform_options(),
    )
    .unwrap();
    assert_eq!(violations(&catalog, &upgrade), Vec::<String>::new());
    assert_eq!(
        order_disagreements(&catalog, &upgrade, &install_list("R2-2024-GA")),
        Vec::<String>::new()
    );
    let on_r2 = after(&catalog, &on_r1, &upgrade);
    let expected: Vec<String> = r2.iter().map(|a| a.id.to_string()).collect();
    let mut got: Vec<String> = on_r2.iter().map(|m| m.id.to_string()).collect();
    got.sort();
    assert_eq!(got, expected, "exactly R2-2024's back-end modules");

    let again = plan(
        &catalog,
        &on_r2,
        &install_list("R2-2024-GA"),
        &platform_options(),
    )
    .unwrap();
    let run: Vec<&str> = again
        .pending()
        .filter(|e| e.action != PlanAction::Uptodate)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(run, Vec::<&str>::new(), "a second upgrade changes nothing");
    assert!(again
        .entries
        .iter()
        .filter(|e| e.stage != Stage::NotManaged)
        .all(|e| e.action == PlanAction::Uptodate));
}

/// The platform's lists name front-end modules too, which no descriptor
/// here knows: listed as not managed.
fn platform_options() -> PlanOptions {
    PlanOptions {
        allow_unmanaged: true,
        ..PlanOptions::default()
    }
}

/// Where the plan's order of two modules differs from their order in
/// Okapi's generated install list although required interfaces decide it:
/// one requires the other (through any chain), and not the other way round.
/// (The platform's lists were generated by an Okapi that ordered by required
/// interfaces only; today's Okapi, and Graft, also put the provider of an
/// optional interface first, e.g. mod-authtoken before mod-login, which may
/// use it, where the R1-2024 list has mod-login first.)
fn order_disagreements(catalog: &[Available], plan: &Plan, okapi: &[Request]) -> Vec<String> {
    let ids: Vec<&str> = plan
        .entries
        .iter()
        .filter(|e| e.action == PlanAction::Enable && e.stage != Stage::NotManaged)
        .map(|e| e.id.as_str())
        .collect();
    let found = |id: &str| catalog.iter().find(|a| a.id.to_string() == id).unwrap();
    // uses[a] = the modules of the plan a requires directly.
    let uses: Vec<Vec<usize>> = ids
        .iter()
        .map(|a| {
            let a = &found(a).descriptor;
            (0..ids.len())
                .filter(|&b| {
                    let b = &found(ids[b]).descriptor;
                    a.requires
                        .iter()
                        .any(|r| b.provides.iter().any(|p| p.id == r.id))
                })
                .collect()
        })
        .collect();
    let reaches = |from: usize, to: usize| {
        let mut seen = vec![false; ids.len()];
        let mut stack = vec![from];
        while let Some(at) = stack.pop() {
            for &next in &uses[at] {
                if next == to {
                    return true;
                }
                if !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
        false
    };
    let position = |id: &str| okapi.iter().position(|r| r.id == id);
    let mut found_disagreements = Vec::new();
    for (i, x) in ids.iter().enumerate() {
        for (j, y) in ids.iter().enumerate().skip(i + 1) {
            let (Some(px), Some(py)) = (position(x), position(y)) else {
                continue;
            };
            let decided = reaches(i, j) != reaches(j, i);
            if py < px && decided {
                found_disagreements.push(format!("{x} before {y}; Okapi's list has {y} first"));
            }
        }
    }
    found_disagreements
}
