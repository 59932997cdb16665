//! The reference-data overlay on four real releases of FOLIO's
//! mod-inventory-storage: a tenant edits, deletes and adds records, the
//! vendor changes, adds and drops them, and nothing of the tenant's is lost.
//! Every expected count is computed here from the release data itself.

use graft::edits::Edit;
use graft::install::{Job, TenantReport};
use graft::overlay::OverlayCounts;
use graft::test_support::TestRunner;
use graft::{InstallOptions, ModuleId};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const MODULE: &str = "mod-inventory-storage";
const RELEASES: [&str; 4] = ["19.0.0", "23.0.0", "27.0.0", "30.0.5"];

type Records = BTreeMap<(String, String), Value>;

/// The vendor's reference records of a release, as the plugin will find
/// them: JSON objects with a string id, directly in a collection folder.
fn vendor_records(release: &str) -> Records {
    let root = graft_sample_modules::sample_modules_dir()
        .join(format!("{MODULE}-{release}/reference-data"));
    let mut records = Records::new();
    for folder in std::fs::read_dir(&root).unwrap() {
        let folder = folder.unwrap().path();
        let collection = folder.file_name().unwrap().to_string_lossy().to_string();
        for file in std::fs::read_dir(&folder).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            if let Some(id) = doc.get("id").and_then(Value::as_str) {
                records.insert((collection.clone(), id.to_string()), doc);
            }
        }
    }
    records
}

/// The unique fields of each collection (the module's own constraints).
fn unique_fields() -> BTreeMap<String, Vec<Vec<String>>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sample-modules/mod-inventory-storage/unique-constraints.json");
    let constraints: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    constraints
        .as_object()
        .unwrap()
        .iter()
        .map(|(collection, c)| {
            let sets = c["unique"]
                .as_array()
                .unwrap()
                .iter()
                .map(|set| {
                    set.as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f.as_str().unwrap().to_string())
                        .collect()
                })
                .collect();
            (collection.clone(), sets)
        })
        .collect()
}

fn upgrade(runner: &TestRunner, release: &str, simulate: bool) -> TenantReport {
    // Loading a release the tenant has again reinstalls it (Okapi's
    // `reinstall`): otherwise it is up to date and nothing runs.
    let options = InstallOptions {
        load_reference: true,
        simulate,
        reinstall: true,
        ..InstallOptions::default()
    };
    let id = ModuleId::parse(&format!("{MODULE}-{release}")).unwrap();
    let report = runner
        .graft
        .run("diku", &Job::enable(&[id]), &options)
        .unwrap();
    assert!(report.ok, "{release}: {:?}", report.failure());
    report
}

fn totals(report: &TenantReport) -> OverlayCounts {
    let mut total = OverlayCounts::default();
    for c in report
        .modules
        .iter()
        .flat_map(|m| &m.steps)
        .flat_map(|s| &s.overlay)
        .map(|o| o.counts)
    {
        total.inserted += c.inserted;
        total.applied += c.applied;
        total.merged += c.merged;
        total.kept += c.kept;
        total.conflicts += c.conflicts;
        total.deletions_kept += c.deletions_kept;
        total.removed += c.removed;
        total.dropped_kept += c.dropped_kept;
        total.reverted += c.reverted;
        total.skipped += c.skipped;
        total.unchanged += c.unchanged;
    }
    total
}

fn current(runner: &TestRunner) -> Records {
    let dump = runner.dump("diku");
    let mut records = Records::new();
    for (collection, c) in dump.collections.get(MODULE).cloned().unwrap_or_default() {
        for (id, doc) in c.records {
            records.insert((collection.clone(), id), doc);
        }
    }
    records
}

fn edit(runner: &TestRunner, key: &(String, String), doc: &Value) {
    runner
        .graft
        .data_edit(
            "diku",
            MODULE,
            &key.0,
            &Edit::Put {
                id: key.1.clone(),
                doc: doc.clone(),
            },
        )
        .unwrap();
}

#[test]
fn every_tenant_change_survives_four_real_releases() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    let releases: Vec<Records> = RELEASES.iter().map(|r| vendor_records(r)).collect();
    let unique = unique_fields();
    let report = upgrade(&runner, RELEASES[0], false);
    assert_eq!(totals(&report).inserted as usize, releases[0].len());

    // Records the vendor changes later, for merges and conflicts.
    let changed_later: Vec<&(String, String)> = releases[0]
        .iter()
        .filter(|(key, doc)| {
            releases[1..]
                .iter()
                .any(|r| r.get(*key).is_some_and(|d| d != *doc))
        })
        .map(|(key, _)| key)
        .collect();
    assert!(
        changed_later.len() >= 6,
        "the releases change {} records",
        changed_later.len()
    );

    // The tenant's edits: a field of its own on records the vendor changes
    // (to be merged), the very field the vendor changes on one (a
    // conflict), and names and codes on untouched records.
    let mut edited: BTreeMap<(String, String), Value> = BTreeMap::new();
    for key in changed_later.iter().take(5) {
        let mut doc = releases[0][*key].clone();
        doc["localNote"] = json!("ours");
        edited.insert((*key).clone(), doc);
    }
    let conflict_key = changed_later[5].clone();
    let changed_field = {
        let later = releases[1..]
            .iter()
            .find_map(|r| {
                r.get(&conflict_key)
                    .filter(|d| *d != &releases[0][&conflict_key])
            })
            .unwrap();
        later
            .as_object()
            .unwrap()
            .keys()
            .find(|k| later[*k] != releases[0][&conflict_key][*k])
            .unwrap()
            .clone()
    };
    let mut doc = releases[0][&conflict_key].clone();
    doc[&changed_field] = json!("the tenant's own value");
    edited.insert(conflict_key.clone(), doc);
    let untouched_by_vendor: Vec<&(String, String)> = releases[0]
        .keys()
        .filter(|key| {
            releases[1..]
                .iter()
                .all(|r| r.get(*key) == Some(&releases[0][*key]))
        })
        .collect();
    for (n, key) in untouched_by_vendor.iter().step_by(17).take(16).enumerate() {
        let mut doc = releases[0][*key].clone();
        match n % 3 {
            0 => doc["name"] = json!(format!("{} (ours)", doc["name"].as_str().unwrap_or("x"))),
            1 => doc["description"] = json!("as this library uses it"),
            _ => doc["source"] = json!("local"),
        }
        edited.insert((*key).clone(), doc);
    }
    assert!(edited.len() >= 20);
    for (key, doc) in &edited {
        edit(&runner, key, doc);
    }

    // Ten deletions, among them records the vendor changes or drops later.
    let deleted: BTreeSet<(String, String)> = releases[0]
        .keys()
        .filter(|key| !edited.contains_key(*key))
        .step_by(31)
        .take(10)
        .cloned()
        .collect();
    for key in &deleted {
        runner
            .graft
            .data_edit("diku", MODULE, &key.0, &Edit::Delete { id: key.1.clone() })
            .unwrap();
    }

    // Ten records of the tenant's own: four share a unique value with a
    // record the vendor adds later, in collections the tenant already has.
    let mut added: BTreeMap<(String, String), Value> = BTreeMap::new();
    let collections_at_19: BTreeSet<&String> = releases[0].keys().map(|(c, _)| c).collect();
    let later_additions: Vec<(&(String, String), &Value)> = releases[1..]
        .iter()
        .flat_map(|r| r.iter())
        .filter(|(key, _)| collections_at_19.contains(&key.0) && !releases[0].contains_key(*key))
        .filter(|(key, _)| {
            unique
                .get(&key.0)
                .is_some_and(|sets| sets.iter().any(|s| s == &["name".to_string()]))
        })
        .collect();
    for (n, (key, vendor)) in later_additions.iter().take(4).enumerate() {
        let id = format!("7e0a0000-0000-4000-8000-{n:012}");
        let doc = json!({"id": id, "name": vendor["name"], "source": "local"});
        added.insert((key.0.clone(), id), doc);
    }
    assert_eq!(
        added.len(),
        4,
        "the releases add records with names a tenant could have taken"
    );
    for n in 4..10 {
        let id = format!("7e0a0000-0000-4000-8000-{n:012}");
        added.insert(
            ("loan-types".to_string(), id.clone()),
            json!({"id": id, "name": format!("Tenant loan type {n}")}),
        );
    }
    for (key, doc) in &added {
        edit(&runner, key, doc);
    }
    let collisions: BTreeSet<(String, String)> = later_additions
        .iter()
        .take(4)
        .map(|(key, _)| (*key).clone())
        .collect();

    // The vendor's base, as the runner keeps it: what was last loaded.
    let mut base: Records = releases[0].clone();
    for (step, release) in RELEASES.iter().enumerate().skip(1) {
        let vendor = &releases[step];
        let before = current(&runner);

        // A simulation first: the same merge, nothing written.
        let state_before = runner.state_hash("diku");
        let simulated = upgrade(&runner, release, true);
        assert_eq!(
            runner.state_hash("diku"),
            state_before,
            "{release}: the simulation wrote"
        );
        let report = upgrade(&runner, release, false);
        let overlays = |r: &TenantReport| {
            r.modules
                .iter()
                .flat_map(|m| &m.steps)
                .flat_map(|s| s.overlay.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            overlays(&simulated),
            overlays(&report),
            "{release}: the simulation's merge differs"
        );

        // What the rules say should happen, from the data alone.
        let mut expected = OverlayCounts::default();
        for (key, doc) in vendor {
            let tenant = before.get(key);
            match (base.get(key), tenant) {
                (None, None) if collisions.contains(key) => expected.skipped += 1,
                (None, None) => expected.inserted += 1,
                (None, Some(t)) if t == doc => expected.unchanged += 1,
                (None, Some(_)) => expected.kept += 1,
                (Some(_), None) => expected.deletions_kept += 1,
                (Some(_), Some(t)) if t == doc => expected.unchanged += 1,
                (Some(b), Some(t)) if t == b => expected.applied += 1,
                (Some(_), Some(_)) => {} // merged, kept or conflict: checked record by record below
            }
        }
        for (key, b) in &base {
            if vendor.contains_key(key) {
                continue;
            }
            match before.get(key) {
                Some(t) if t == b => expected.removed += 1,
                Some(_) => expected.dropped_kept += 1,
                None => {}
            }
        }
        let got = totals(&report);
        for (name, got, want) in [
            ("inserted", got.inserted, expected.inserted),
            ("applied", got.applied, expected.applied),
            ("skipped", got.skipped, expected.skipped),
            (
                "deletions kept",
                got.deletions_kept,
                expected.deletions_kept,
            ),
            ("removed", got.removed, expected.removed),
            ("dropped but kept", got.dropped_kept, expected.dropped_kept),
        ] {
            assert_eq!(got, want, "{release}: {name}");
        }
        let after = current(&runner);

        // Every tenant edit survives; the vendor's changes to other fields merge in.
        for (key, mine) in &edited {
            let Some(now) = after.get(key) else {
                assert!(
                    !vendor.contains_key(key) && base.get(key) == Some(mine),
                    "{release}: {key:?} lost"
                );
                continue;
            };
            // The fields the tenant changed: against the copy it edited.
            for (field, value) in mine.as_object().unwrap() {
                let untouched = releases[0][key].get(field) == Some(value);
                if !untouched {
                    assert_eq!(
                        now.get(field),
                        Some(value),
                        "{release}: {key:?}.{field}: the tenant's value was lost"
                    );
                } else if let Some(v) = vendor.get(key) {
                    assert_eq!(
                        now.get(field),
                        v.get(field),
                        "{release}: {key:?}.{field}: the vendor's change was not applied"
                    );
                }
            }
        }
        for key in &deleted {
            assert!(
                !after.contains_key(key),
                "{release}: the deleted {key:?} came back"
            );
        }
        for (key, mine) in &added {
            assert_eq!(
                after.get(key),
                Some(mine),
                "{release}: the tenant's own {key:?} changed"
            );
        }
        for key in &collisions {
            if vendor.contains_key(key) {
                assert!(
                    !after.contains_key(key),
                    "{release}: colliding vendor record {key:?} was loaded"
                );
            }
        }
        // Every vendor record the tenant never touched is the vendor's.
        for (key, doc) in vendor {
            let touched =
                edited.contains_key(key) || deleted.contains(key) || collisions.contains(key);
            if !touched {
                assert_eq!(
                    after.get(key),
                    Some(doc),
                    "{release}: {key:?} is not the vendor's"
                );
            }
        }
        // Next release's base: what this one shipped and was loaded.
        base = vendor
            .iter()
            .filter(|(key, _)| !collisions.contains(*key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }

    // The field both changed: the tenant's value stays, the conflict is reported.
    let after = current(&runner);
    assert_eq!(
        after[&conflict_key][&changed_field],
        json!("the tenant's own value")
    );
    let db_changes: Vec<_> = {
        let mut db = runner.graft.tenants().open("diku").unwrap();
        let jobs = db.jobs().unwrap();
        jobs.iter()
            .flat_map(|j| graft::changelog::job_changes(&mut *db, &j.job_id).unwrap())
            .collect()
    };
    let conflicts: Vec<_> = db_changes
        .iter()
        .flat_map(|c| &c.overlay)
        .flat_map(|o| &o.notes)
        .filter(|n| n.what == "conflict")
        .collect();
    assert!(
        conflicts
            .iter()
            .any(|n| n.record_id == conflict_key.1
                && n.fields.iter().any(|f| f.field == changed_field)),
        "{conflicts:?}"
    );

    // Loading the last release again changes nothing.
    let again = upgrade(&runner, RELEASES[3], false);
    assert!(again.modules[0].steps.iter().all(|s| s.writes.total() == 0));
    assert_eq!(
        again.modules[0].outcome_of("load-reference"),
        Some("unchanged")
    );
    assert_eq!(current(&runner), after);

    // The tenant's changes, field by field, against the vendor's base.
    let diff = runner.graft.reference_diff("diku", MODULE).unwrap();
    let deleted_now: BTreeSet<_> = diff
        .iter()
        .filter(|c| c.what == "deleted")
        .map(|c| (c.collection.clone(), c.record_id.clone()))
        .collect();
    let still_shipped: BTreeSet<_> = deleted
        .iter()
        .filter(|k| releases[3].contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(deleted_now, still_shipped);
    let added_now: BTreeSet<_> = diff
        .iter()
        .filter(|c| c.what == "added")
        .map(|c| (c.collection.clone(), c.record_id.clone()))
        .collect();
    assert!(added.keys().all(|k| added_now.contains(k)));
    let conflict = diff.iter().find(|c| c.record_id == conflict_key.1).unwrap();
    assert!(conflict
        .fields
        .iter()
        .any(|f| f.field == changed_field && f.tenant == Some(json!("the tenant's own value"))));
}

#[test]
fn a_vendor_change_and_a_tenant_change_to_one_record_merge() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    upgrade(&runner, "23.0.0", false);
    // 27.0.0 changes call-number types; the tenant edits another field of one.
    let v23 = vendor_records("23.0.0");
    let v27 = vendor_records("27.0.0");
    let (key, old) = v23
        .iter()
        .find(|(key, doc)| key.0 == "call-number-types" && v27.get(*key).is_some_and(|d| d != *doc))
        .unwrap();
    let vendor_field = v27[key]
        .as_object()
        .unwrap()
        .keys()
        .find(|k| v27[key][*k] != old[*k])
        .unwrap()
        .clone();
    let mut mine = old.clone();
    mine["localNote"] = json!("shelved upstairs");
    edit(&runner, key, &mine);
    let report = upgrade(&runner, "27.0.0", false);
    let merged = current(&runner)[key].clone();
    assert_eq!(
        merged["localNote"],
        json!("shelved upstairs"),
        "the tenant's field"
    );
    assert_eq!(
        merged[&vendor_field], v27[key][&vendor_field],
        "the vendor's field"
    );
    let counts = report.modules[0]
        .steps
        .iter()
        .flat_map(|s| &s.overlay)
        .find(|o| o.collection == "call-number-types")
        .unwrap()
        .counts;
    assert_eq!(counts.merged, 1);
}

#[test]
fn system_data_reverts_tenant_changes() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    let db = runner.graft.tenants().open("diku").unwrap();
    drop(db);
    // The overlay's system rule, on the store directly: the vendor always wins.
    let mut db = runner.graft.tenants().open("diku").unwrap();
    db.create_collection("mod-x", "settings").unwrap();
    let mut overlay =
        graft::overlay::CollectionOverlay::new("settings", graft::overlay::Kind::System);
    let vendor = vec![(
        "s1".to_string(),
        r#"{"id":"s1","value":"vendor"}"#.to_string(),
    )];
    graft::overlay::load(&mut *db, "mod-x", "1.0.0", &mut overlay, &vendor).unwrap();
    db.put("mod-x", "settings", "s1", r#"{"id":"s1","value":"tenant"}"#)
        .unwrap();
    let mut again =
        graft::overlay::CollectionOverlay::new("settings", graft::overlay::Kind::System);
    graft::overlay::load(&mut *db, "mod-x", "1.0.1", &mut again, &vendor).unwrap();
    assert_eq!(again.counts.reverted, 1);
    assert_eq!(again.notes[0].what, "reverted");
    let stored: serde_json::Value =
        serde_json::from_str(&db.get("mod-x", "settings", "s1").unwrap().unwrap()).unwrap();
    assert_eq!(stored, json!({"id": "s1", "value": "vendor"}));
}
