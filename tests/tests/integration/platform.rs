//! Planning on the real platform: the ModuleDescriptors of every back-end
//! module of FOLIO's R1-2024 and R2-2024 releases (`tests/data/platform-
//! complete/descriptors/`), and the real install lists of platform-complete.
//! A tenant installs R1-2024, upgrades with the R2-2024 list unchanged, and
//! upgrades again; every plan must respect every required interface.

use graft::descriptor::ModuleDescriptor;
use graft::plan::{plan, Available, Enabled, Plan, PlanAction, Request, Stage};
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

    let install = plan(&catalog, &[], &install_list("R1-2024-GA")).unwrap();
    assert_eq!(violations(&catalog, &install), Vec::<String>::new());
    let on_r1 = after(&catalog, &[], &install);
    assert_eq!(on_r1.len(), r1.len(), "every back-end module of R1-2024");

    let upgrade = plan(&catalog, &on_r1, &install_list("R2-2024-GA")).unwrap();
    assert_eq!(violations(&catalog, &upgrade), Vec::<String>::new());
    let on_r2 = after(&catalog, &on_r1, &upgrade);
    let expected: Vec<String> = r2.iter().map(|a| a.id.to_string()).collect();
    let mut got: Vec<String> = on_r2.iter().map(|m| m.id.to_string()).collect();
    got.sort();
    assert_eq!(got, expected, "exactly R2-2024's back-end modules");

    let again = plan(&catalog, &on_r2, &install_list("R2-2024-GA")).unwrap();
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
