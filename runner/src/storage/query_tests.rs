//! Contract 0.2's storage on every backend (see `tests` for which):
//! filtered scans and counts with and without an index, conditional
//! updates and copies, and each module's own state.

use super::tests::{postgres_store, stores};
use super::*;
use serde_json::json;

fn equals(field: &str, value: serde_json::Value) -> Condition {
    Condition::Equals {
        field: field.into(),
        value: value.to_string(),
    }
}

fn one_of(field: &str, values: &[serde_json::Value]) -> Condition {
    Condition::OneOf {
        field: field.into(),
        values: values.iter().map(ToString::to_string).collect(),
    }
}

fn exists(field: &str) -> Condition {
    Condition::Exists {
        field: field.into(),
    }
}

fn missing(field: &str) -> Condition {
    Condition::Missing {
        field: field.into(),
    }
}

/// Records whose fields hold every JSON type, some of them lookalikes
/// (the string "3" beside the number 3, true beside 1, an object beside
/// the string of its text).
fn fill(db: &mut dyn TenantStore) {
    db.create_collection("m", "c").unwrap();
    let records = [
        (
            "a",
            json!({"type": "staff", "n": 3, "flag": true, "c": {"email": "a@x"}}),
        ),
        ("b", json!({"type": "patron", "n": 3.0, "flag": false})),
        (
            "c",
            json!({"type": "3", "n": "3", "flag": 1, "c": {"email": null}}),
        ),
        ("d", json!({"type": {"a": 1}, "n": null})),
        ("e", json!({"type": "{\"a\":1}", "c": {}})),
        ("f", json!({"type": "Staff", "n": 4})),
    ];
    for (id, doc) in records {
        db.put("m", "c", id, &doc.to_string()).unwrap();
    }
}

/// The ids a filtered scan finds, read one page of 2 at a time, and
/// checked against the filtered count.
fn found(db: &mut dyn TenantStore, conditions: &[Condition]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = db
            .scan_where("m", "c", conditions, after.as_deref(), 2)
            .unwrap();
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        ids.extend(page.into_iter().map(|(id, _)| id));
    }
    assert_eq!(
        db.count_where("m", "c", conditions).unwrap(),
        ids.len() as u64,
        "{conditions:?}"
    );
    ids
}

fn cases() -> Vec<(Vec<Condition>, Vec<&'static str>)> {
    vec![
        (vec![], vec!["a", "b", "c", "d", "e", "f"]),
        (vec![equals("type", json!("staff"))], vec!["a"]),
        // A string never equals an object, nor a number its text.
        (vec![equals("type", json!("{\"a\":1}"))], vec!["e"]),
        (vec![equals("type", json!("3"))], vec!["c"]),
        (vec![equals("n", json!(3))], vec!["a", "b"]),
        (vec![equals("n", json!(3.0))], vec!["a", "b"]),
        (vec![equals("n", json!("3"))], vec!["c"]),
        // true is not 1, and null matches only a field holding null.
        (vec![equals("flag", json!(true))], vec!["a"]),
        (vec![equals("flag", json!(1))], vec!["c"]),
        (vec![equals("flag", json!(false))], vec!["b"]),
        (vec![equals("n", json!(null))], vec!["d"]),
        (vec![equals("c.email", json!(null))], vec!["c"]),
        (
            vec![one_of("type", &[json!("patron"), json!("3"), json!(7)])],
            vec!["b", "c"],
        ),
        (
            vec![one_of("n", &[json!(4), json!(null), json!("3")])],
            vec!["c", "d", "f"],
        ),
        (vec![one_of("n", &[])], vec![]),
        (vec![exists("c.email")], vec!["a", "c"]),
        (vec![missing("c.email")], vec!["b", "d", "e", "f"]),
        (vec![exists("n"), missing("c")], vec!["b", "d", "f"]),
        (vec![equals("n", json!(3)), exists("c.email")], vec!["a"]),
        // A path into an object, and nothing under what is not one.
        (vec![exists("type.a")], vec!["d"]),
        (vec![exists("n.x")], vec![]),
    ]
}

#[test]
fn filters_compare_json_values_with_and_without_an_index() {
    for (_guard, mut db) in stores() {
        fill(&mut *db);
        for (conditions, expected) in cases() {
            assert_eq!(found(&mut *db, &conditions), expected, "{conditions:?}");
        }
        // The same answers where an index serves the fields.
        for (name, field) in [("by-type", "type"), ("by-n", "n"), ("by-email", "c.email")] {
            let spec = IndexSpec {
                name: name.into(),
                field: field.into(),
                unique: false,
                case_insensitive: false,
            };
            db.create_index("m", "c", &spec).unwrap();
        }
        for (conditions, expected) in cases() {
            assert_eq!(
                found(&mut *db, &conditions),
                expected,
                "indexed: {conditions:?}"
            );
        }
    }
}

#[test]
fn a_string_condition_is_served_by_the_index() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut db = SqliteStore::create(&dir.path().join("t.sqlite"), "t").unwrap();
    fill(&mut db);
    let spec = IndexSpec {
        name: "by-type".into(),
        field: "type".into(),
        unique: false,
        case_insensitive: false,
    };
    db.create_index("m", "c", &spec).unwrap();
    let plan = db.query_plan("m", "c", &[equals("type", json!("staff"))]);
    assert!(plan.contains("USING INDEX"), "{plan}");
    let plan = db.query_plan("m", "c", &[one_of("type", &[json!("a"), json!("b")])]);
    assert!(plan.contains("USING INDEX"), "{plan}");
}

/// The same on PostgreSQL (with sequential scans off: on six records the
/// planner would rightly prefer one), where a server is given.
#[test]
fn a_string_condition_can_be_served_by_the_index_on_postgres() {
    let Some((_scratch, mut db)) = postgres_store("t") else {
        return;
    };
    fill(&mut db);
    let spec = IndexSpec {
        name: "by-type".into(),
        field: "type".into(),
        unique: false,
        case_insensitive: false,
    };
    db.create_index("m", "c", &spec).unwrap();
    for conditions in [
        vec![equals("type", json!("staff"))],
        vec![one_of("type", &[json!("a"), json!("b")])],
    ] {
        let plan = db.query_plan("m", "c", &conditions);
        assert!(plan.contains("Index") && plan.contains("by_type"), "{plan}");
    }
}

/// A scan's pages are read in the primary key's order on PostgreSQL: no
/// page sorts the table (a page once sorted it all: the order named the
/// text of the id, which no index serves).
#[test]
fn a_scan_page_reads_the_primary_key_in_order_on_postgres() {
    let Some((_scratch, mut db)) = postgres_store("t") else {
        return;
    };
    db.create_collection("m", "u").unwrap();
    let ids = [
        "0b7e2f64-51c3-4a55-9d7b-6c1e0a9f3d21",
        "5d0c3e8a-7f14-4b2e-8a6d-2f9b1c4e7a53",
        "c4a1e9d2-3b6f-4e87-a1d5-8e2f7b9c0d14",
    ];
    for id in ids {
        db.put("m", "u", id, r#"{"n": 1}"#).unwrap();
    }
    let plan = db.scan_plan("m", "u", ids[0]);
    assert!(plan.contains("Index Scan"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");
    // And the pages still come in the order SQLite gives.
    let page = db.scan_where("m", "u", &[], Some(ids[0]), 10).unwrap();
    let found: Vec<&str> = page.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(found, ids[1..]);
}

#[test]
fn bad_conditions_are_refused_naming_the_field() {
    for (_guard, mut db) in stores() {
        fill(&mut *db);
        let bad: Vec<(Vec<Condition>, &str)> = vec![
            (vec![equals("type", json!({"a": 1}))], "object or array"),
            (vec![equals("type", json!([1]))], "object or array"),
            (
                vec![Condition::Equals {
                    field: "type".into(),
                    value: "not json".into(),
                }],
                "not a JSON value",
            ),
            (vec![exists("a'b")], "field path"),
            (vec![exists("")], "field path"),
            (vec![exists("x"); MAX_CONDITIONS + 1], "conditions"),
            (vec![one_of("n", &vec![json!(1); MAX_ONE_OF + 1])], "values"),
        ];
        for (conditions, expected) in bad {
            let error = db.count_where("m", "c", &conditions).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
            let error = db.scan_where("m", "c", &conditions, None, 10).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
            let change = FieldChange::Remove { field: "n".into() };
            let error = db.update_where("m", "c", &conditions, &change).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
        assert!(matches!(
            db.count_where("m", "nope", &[]),
            Err(StoreError::NoSuchCollection(_))
        ));
    }
}

#[test]
fn conditional_updates_change_only_the_records_that_match() {
    for (_guard, mut db) in stores() {
        fill(&mut *db);
        let set = |field: &str, value: serde_json::Value| FieldChange::SetDefault {
            field: field.into(),
            value: value.to_string(),
        };
        let changed = db
            .update_where(
                "m",
                "c",
                &[exists("c.email")],
                &set("contact", json!("email")),
            )
            .unwrap();
        assert_eq!(changed, 2);
        let changed = db
            .update_where(
                "m",
                "c",
                &[missing("contact")],
                &set("contact", json!("mail")),
            )
            .unwrap();
        assert_eq!(changed, 4);
        assert_eq!(
            found(&mut *db, &[equals("contact", json!("email"))]),
            ["a", "c"]
        );
        // A condition with a value, beside a change with one.
        let changed = db
            .update_where(
                "m",
                "c",
                &[one_of("n", &[json!(3), json!(4)])],
                &FieldChange::Set {
                    field: "big".into(),
                    value: "true".into(),
                },
            )
            .unwrap();
        assert_eq!(changed, 3);
        assert_eq!(
            found(&mut *db, &[equals("big", json!(true))]),
            ["a", "b", "f"]
        );
        // No match, no change.
        let none = db
            .update_where(
                "m",
                "c",
                &[equals("type", json!("nobody"))],
                &FieldChange::Remove { field: "n".into() },
            )
            .unwrap();
        assert_eq!(none, 0);
        assert_eq!(db.count_where("m", "c", &[exists("n")]).unwrap(), 5);
    }
}

#[test]
fn copy_copies_a_field_where_it_is_present() {
    for (_guard, mut db) in stores() {
        fill(&mut *db);
        let copy = FieldChange::Copy {
            from: "c.email".into(),
            to: "login.email".into(),
        };
        db.update_where(
            "m",
            "c",
            &[],
            &FieldChange::SetDefault {
                field: "login".into(),
                value: "{}".into(),
            },
        )
        .unwrap();
        assert_eq!(db.update_where("m", "c", &[], &copy).unwrap(), 2);
        let doc = |db: &mut dyn TenantStore, id: &str| -> serde_json::Value {
            serde_json::from_str(&db.get("m", "c", id).unwrap().unwrap()).unwrap()
        };
        assert_eq!(doc(&mut *db, "a")["login"]["email"], json!("a@x"));
        assert_eq!(doc(&mut *db, "a")["c"]["email"], json!("a@x"));
        assert_eq!(doc(&mut *db, "c")["login"]["email"], json!(null));
        assert_eq!(doc(&mut *db, "b")["login"], json!({}));
        // Copied again, nothing changes.
        assert_eq!(db.update_where("m", "c", &[], &copy).unwrap(), 0);
        // With a condition, and onto a field that exists.
        let over = FieldChange::Copy {
            from: "type".into(),
            to: "n".into(),
        };
        assert_eq!(
            db.update_where("m", "c", &[equals("type", json!("Staff"))], &over)
                .unwrap(),
            1
        );
        assert_eq!(doc(&mut *db, "f")["n"], json!("Staff"));
        for (from, to) in [("a", "a"), ("a", "a.b"), ("a.b", "a")] {
            let bad = FieldChange::Copy {
                from: from.into(),
                to: to.into(),
            };
            let error = db.update_where("m", "c", &[], &bad).unwrap_err();
            assert!(error.to_string().contains("copy"), "{error}");
        }
    }
}

#[test]
fn module_state_is_per_module_transactional_and_dumped() {
    for (_guard, mut db) in stores() {
        assert_eq!(db.get_state("m", "release").unwrap(), None);
        assert!(!db.set_state("m", "release", Some("2.1.0")).unwrap());
        assert!(db.set_state("m", "release", Some("2.1.1")).unwrap());
        db.set_state("m", "a:b.c-d_e", Some("x")).unwrap();
        db.set_state("other", "release", Some("9.0.0")).unwrap();
        assert_eq!(
            db.get_state("m", "release").unwrap().as_deref(),
            Some("2.1.1")
        );
        let keys: Vec<String> = db
            .state_entries(Some("m"))
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["a:b.c-d_e", "release"]);
        assert_eq!(db.state_entries(None).unwrap().len(), 3);
        assert_eq!(db.dump().unwrap().state["other"]["release"], "9.0.0");

        // Rolled back with the transaction it was written in.
        db.begin().unwrap();
        db.set_state("m", "release", Some("3.0.0")).unwrap();
        db.set_state("m", "a:b.c-d_e", None).unwrap();
        db.rollback().unwrap();
        assert_eq!(
            db.get_state("m", "release").unwrap().as_deref(),
            Some("2.1.1")
        );
        assert_eq!(
            db.get_state("m", "a:b.c-d_e").unwrap().as_deref(),
            Some("x")
        );

        // The store checks keys and values, whoever writes (a plugin, a fixture).
        assert!(db.get_state("m", "a/b").is_err());
        assert!(db.set_state("m", "a b", Some("x")).is_err());
        let big = "v".repeat(MAX_STATE_VALUE_BYTES + 1);
        assert!(db.set_state("m", "big", Some(&big)).is_err());
        assert_eq!(db.get_state("m", "big").unwrap(), None);

        // Removing a key, and forgetting a module, removes its state only.
        assert!(db.set_state("m", "a:b.c-d_e", None).unwrap());
        assert!(!db.set_state("m", "a:b.c-d_e", None).unwrap());
        db.remove_module("m").unwrap();
        assert!(db.state_entries(Some("m")).unwrap().is_empty());
        assert_eq!(db.state_entries(None).unwrap().len(), 1);
    }
}

#[test]
fn state_keys_and_values_are_checked() {
    for good in ["release", "a", "schema:2.1.0", "x_y-z.w"] {
        check_state_key(good).unwrap();
    }
    let long = "k".repeat(MAX_STATE_KEY_BYTES + 1);
    for bad in ["", "a b", "a/b", "ключ", "a\nb", long.as_str()] {
        assert!(check_state_key(bad).is_err(), "{bad:?}");
    }
    check_state_value("k", &"v".repeat(MAX_STATE_VALUE_BYTES)).unwrap();
    let error = check_state_value("k", &"v".repeat(MAX_STATE_VALUE_BYTES + 1)).unwrap_err();
    assert!(error.to_string().contains("64 KiB"), "{error}");
}
