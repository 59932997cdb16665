//! Long file: the storage contract's tests, one per behaviour.
//!
//! The storage contract, checked on every backend: SQLite always, and
//! PostgreSQL when `GRAFT_TEST_POSTGRES` names a server
//! (`postgres://graft@127.0.0.1:54329/postgres`; see the README).

use super::postgres::{self, pool};
use super::*;
use serde_json::json;

/// A fresh tenant store per backend, with what keeps it alive.
pub(super) fn stores() -> Vec<(Box<dyn std::any::Any>, Box<dyn TenantStore>)> {
    let dir = tempfile::TempDir::new().unwrap();
    let sqlite = SqliteStore::create(&dir.path().join("t.sqlite"), "t").unwrap();
    let mut stores: Vec<(Box<dyn std::any::Any>, Box<dyn TenantStore>)> =
        vec![(Box::new(dir), Box::new(sqlite))];
    if let Some((scratch, store)) = postgres_store("t") {
        stores.push((Box::new(scratch), Box::new(store)));
    }
    stores
}

/// A store of tenant `tenant` in a scratch database of its own, where the
/// tests are given a PostgreSQL server; keep the database while the store
/// is used.
pub(super) fn postgres_store(
    tenant: &str,
) -> Option<(crate::test_support::ScratchDatabase, PostgresStore)> {
    let server = std::env::var("GRAFT_TEST_POSTGRES").ok()?;
    let scratch = crate::test_support::ScratchDatabase::create(&server).unwrap();
    let store = PostgresStore::create(&scratch.url, tenant).unwrap();
    Some((scratch, store))
}

#[test]
fn documents_must_be_json_objects() {
    for (_guard, mut db) in stores() {
        db.create_collection("m", "c").unwrap();
        // JSON5 too: SQLite's parser would take it, PostgreSQL's would not.
        for bad in [
            "[1]",
            "not json",
            "\"text\"",
            "{a:1}",
            "{\"a\":1,}",
            "{\"a\":1} x",
        ] {
            let error = db.put("m", "c", "r1", bad).unwrap_err();
            assert!(
                matches!(error, StoreError::InvalidDocument(_)),
                "{bad}: {error}"
            );
        }
        assert_eq!(
            db.put("m", "c", "r1", r#"{"a":1}"#).unwrap(),
            WriteEffect::Inserted
        );
        assert_eq!(
            db.put("m", "c", "r1", r#"{"a":1}"#).unwrap(),
            WriteEffect::Unchanged
        );
        assert_eq!(
            db.put("m", "c", "r1", r#"{"a":2}"#).unwrap(),
            WriteEffect::Replaced
        );
        let error = db.insert_if_absent("m", "c", "r2", "{a:1}").unwrap_err();
        assert!(error.to_string().contains("record r2"), "{error}");
        assert_eq!(db.get("m", "c", "r2").unwrap(), None);
    }
}

/// A unique index "c-code" on the field `code`.
fn unique_code_index(case_insensitive: bool) -> IndexSpec {
    IndexSpec {
        name: "c-code".into(),
        field: "code".into(),
        unique: true,
        case_insensitive,
    }
}

#[test]
fn unique_violations_name_the_index_and_record() {
    for (_guard, mut db) in stores() {
        db.create_collection("m", "c").unwrap();
        let spec = unique_code_index(true);
        assert!(db.create_index("m", "c", &spec).unwrap());
        assert!(
            !db.create_index("m", "c", &spec).unwrap(),
            "same definition again is no change"
        );
        db.put("m", "c", "a", r#"{"code":"X"}"#).unwrap();
        let error = db.put("m", "c", "b", r#"{"code":"x"}"#).unwrap_err();
        assert_eq!(
            error,
            StoreError::UniqueViolation {
                collection: "c".into(),
                index: "c-code".into(),
                record_id: "b".into()
            }
        );
    }
}

#[test]
fn set_based_changes() {
    for (_guard, mut db) in stores() {
        db.create_collection("m", "c").unwrap();
        db.put("m", "c", "a", r#"{"p":{"x":1}}"#).unwrap();
        db.put("m", "c", "b", r#"{"p":{"x":2},"t":"staff"}"#)
            .unwrap();
        let set_default = FieldChange::SetDefault {
            field: "t".into(),
            value: r#""patron""#.into(),
        };
        assert_eq!(db.update_where("m", "c", &[], &set_default).unwrap(), 1);
        let rename = FieldChange::Rename {
            from: "p".into(),
            to: "q".into(),
        };
        assert_eq!(db.update_where("m", "c", &[], &rename).unwrap(), 2);
        assert_eq!(
            doc(&mut *db, "c", "a"),
            Some(json!({"q": {"x": 1}, "t": "patron"}))
        );
        let remove = FieldChange::Remove { field: "t".into() };
        assert_eq!(db.update_where("m", "c", &[], &remove).unwrap(), 2);
        let bad = FieldChange::Set {
            field: "t".into(),
            value: "not json".into(),
        };
        assert!(matches!(
            db.update_where("m", "c", &[], &bad),
            Err(StoreError::InvalidDocument(_))
        ));
        // A rename that would delete data is refused, and changes nothing.
        let before = db.dump().unwrap().collections;
        for (from, to) in [("q", "q"), ("q", "q.inner"), ("q.x", "q")] {
            let rename = FieldChange::Rename {
                from: from.into(),
                to: to.into(),
            };
            assert!(
                matches!(
                    db.update_where("m", "c", &[], &rename),
                    Err(StoreError::InvalidName(_))
                ),
                "{from} -> {to}"
            );
        }
        assert_eq!(db.dump().unwrap().collections, before);
        // Paths a backend would walk on the runner's stack are bounded.
        let deep = FieldChange::Remove {
            field: vec!["a"; 100_000].join("."),
        };
        assert!(matches!(
            db.update_where("m", "c", &[], &deep),
            Err(StoreError::InvalidName(_))
        ));
    }
}

#[test]
fn modules_cannot_name_each_others_collections() {
    for (_guard, mut db) in stores() {
        db.create_collection("mod-a", "items").unwrap();
        db.put("mod-a", "items", "1", "{}").unwrap();
        assert_eq!(
            db.get("mod-b", "items", "1"),
            Err(StoreError::NoSuchCollection("items".into()))
        );
        assert!(db.list_collections("mod-b").unwrap().is_empty());
        assert!(matches!(
            db.create_collection("mod-b", "x\"; DROP TABLE graft_modules; --"),
            Err(StoreError::InvalidName(_))
        ));
    }
}

#[test]
fn a_passed_deadline_interrupts_long_statements() {
    for (_guard, mut db) in stores() {
        db.create_collection("m", "c").unwrap();
        db.begin().unwrap();
        for n in 0..20_000 {
            db.put("m", "c", &format!("{n:06}"), &format!(r#"{{"n":{n}}}"#))
                .unwrap();
        }
        db.commit().unwrap();
        db.set_deadline(Some(std::time::Instant::now()));
        let change = FieldChange::Set {
            field: "flag".into(),
            value: "true".into(),
        };
        let error = db.update_where("m", "c", &[], &change).unwrap_err();
        assert!(
            error.to_string().contains("ran past its deadline"),
            "{error}"
        );
        db.set_deadline(None);
        assert_eq!(db.update_where("m", "c", &[], &change).unwrap(), 20_000);
    }
}

#[test]
fn a_failed_write_leaves_the_transaction_usable() {
    // The overlay skips a colliding vendor record and goes on: the
    // transaction must survive the failed write, on every backend.
    for (_guard, mut db) in stores() {
        db.begin().unwrap();
        db.create_collection("m", "c").unwrap();
        let spec = unique_code_index(false);
        db.create_index("m", "c", &spec).unwrap();
        db.put("m", "c", "a", r#"{"code":"X"}"#).unwrap();
        assert!(db.put("m", "c", "b", r#"{"code":"X"}"#).is_err());
        db.put("m", "c", "c", r#"{"code":"Y"}"#).unwrap();
        db.commit().unwrap();
        assert_eq!(db.count("m", "c").unwrap(), 2);
        // Schema changes roll back with the data.
        db.begin().unwrap();
        db.create_collection("m", "d").unwrap();
        db.drop_collection("m", "c").unwrap();
        db.rollback().unwrap();
        assert_eq!(db.list_collections("m").unwrap(), vec!["c".to_string()]);
        assert_eq!(db.count("m", "c").unwrap(), 2);
    }
}

#[test]
fn ids_keep_their_order_whatever_they_look_like() {
    for (_guard, mut db) in stores() {
        db.create_collection("m", "c").unwrap();
        let uuids = [
            "0a54b431-2e4f-452d-9cae-9cee66c9a892",
            "1a54b431-2e4f-452d-9cae-9cee66c9a892",
        ];
        for id in uuids {
            db.put("m", "c", id, "{}").unwrap();
        }
        // Then one that is no UUID.
        db.put("m", "c", "item-1", "{}").unwrap();
        let page = db.scan("m", "c", None, 2).unwrap();
        let ids: Vec<&str> = page.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, uuids);
        let rest = db.scan("m", "c", Some(uuids[1]), 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, "item-1");
        assert_eq!(db.get("m", "c", "item-1").unwrap().as_deref(), Some("{}"));
        assert!(db.delete("m", "c", uuids[0]).unwrap());
        assert_eq!(db.count("m", "c").unwrap(), 2);
    }
}

#[test]
fn postgres_uses_folios_layout() {
    let Some((scratch, mut db)) = postgres_store("diku") else {
        return;
    };
    db.create_collection("mod-inventory-storage", "material-types")
        .unwrap();
    let spec = IndexSpec {
        name: "material-types-name".into(),
        field: "name".into(),
        unique: true,
        case_insensitive: true,
    };
    db.create_index("mod-inventory-storage", "material-types", &spec)
        .unwrap();
    let mut client = postgres::connect(&scratch.url).unwrap();
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = 'diku_mod_inventory_storage' AND table_name = 'material_types'
             ORDER BY ordinal_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        columns,
        vec![
            ("id".to_string(), "uuid".to_string()),
            ("jsonb".to_string(), "jsonb".to_string())
        ]
    );
    let definition: String = client
        .query_one(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'diku_mod_inventory_storage'
             AND indexname LIKE '%material_types_name%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        definition.contains("UNIQUE") && definition.contains("lower((jsonb ->> 'name'::text))"),
        "{definition}"
    );
}

#[test]
fn paging_one_record_at_a_time_sees_every_record_once() {
    for (_guard, mut db) in stores() {
        db.create_collection("m", "c").unwrap();
        let mut ids = vec![
            "0a54b431-2e4f-452d-9cae-9cee66c9a892",
            "1a54b431-2e4f-452d-9cae-9cee66c9a892",
            "item-1",
            "Item-B",
            "Zeta-2",
        ];
        for id in &ids {
            db.put("m", "c", id, "{}").unwrap();
        }
        let mut seen: Vec<String> = Vec::new();
        loop {
            let page = db
                .scan("m", "c", seen.last().map(String::as_str), 1)
                .unwrap();
            let Some((id, _)) = page.into_iter().next() else {
                break;
            };
            assert!(!seen.contains(&id), "{id} twice: {seen:?}");
            seen.push(id);
        }
        seen.sort();
        ids.sort();
        assert_eq!(seen, ids);
    }
}

/// Tenant databases made before documents were JSONB (a `doc TEXT`
/// column) are converted when opened, records and indexes kept.
#[test]
fn sqlite_text_collections_are_converted_on_open() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("t.sqlite");
    {
        let mut db = SqliteStore::create(&path, "t").unwrap();
        db.create_collection("m", "c").unwrap();
        let spec = unique_code_index(true);
        db.create_index("m", "c", &spec).unwrap();
        db.put("m", "c", "a", r#"{"code":"X","n":{"deep":[1,2]}}"#)
            .unwrap();
        db.put("m", "c", "b", r#"{"code":"Y"}"#).unwrap();
    }
    // Rebuild the table as the earlier release made it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE old (id TEXT PRIMARY KEY NOT NULL,
             doc TEXT NOT NULL CHECK (json_valid(doc) AND json_type(doc) = 'object'));
         INSERT INTO old SELECT id, json(doc) FROM m__c;
         DROP TABLE m__c;
         ALTER TABLE old RENAME TO m__c;
         CREATE UNIQUE INDEX ix__m__c__c_code ON m__c (lower(json_extract(doc, '$.code')));",
    )
    .unwrap();
    drop(conn);

    let mut db = SqliteStore::open(&path, "t").unwrap();
    assert_eq!(
        doc(&mut db, "c", "a"),
        Some(json!({"code": "X", "n": {"deep": [1, 2]}}))
    );
    assert_eq!(db.count("m", "c").unwrap(), 2);
    assert_eq!(db.list_indexes("m", "c").unwrap().len(), 1);
    assert!(matches!(
        db.put("m", "c", "z", r#"{"code":"x"}"#),
        Err(StoreError::UniqueViolation { .. })
    ));
    drop(db);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let kind: String = conn
        .query_row(
            "SELECT type FROM pragma_table_info('m__c') WHERE name = 'doc'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(kind, "BLOB");
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'm__c' AND sql IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 1);
}

/// PostgreSQL connections go back to the process's pool when a store or a
/// lock is done with them, clean: no transaction, no lock and no short
/// statement timeout is inherited by the next user.
#[test]
fn postgres_connections_are_reused_only_when_clean() {
    let Ok(server) = std::env::var("GRAFT_TEST_POSTGRES") else {
        return;
    };
    let scratch = crate::test_support::ScratchDatabase::create(&server).unwrap();
    let pid = |c: &mut pool::Connection| -> i32 {
        c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0)
    };
    let first = pid(&mut pool::Connection::get(&scratch.url).unwrap());
    assert_eq!(
        pid(&mut pool::Connection::get(&scratch.url).unwrap()),
        first
    );

    // A store dropped inside its transaction: its connection is closed (the
    // server rolls back), never handed on.
    let mut db = PostgresStore::create(&scratch.url, "t").unwrap();
    db.begin().unwrap();
    db.create_collection("m", "c").unwrap();
    db.put("m", "c", "a", "{}").unwrap();
    drop(db);
    let mut db = PostgresStore::open(&scratch.url, "t").unwrap();
    assert_eq!(db.list_collections("m").unwrap(), Vec::<String>::new());

    // A short deadline, then none: the next user of the connection does
    // not inherit the short timeout.
    db.set_deadline(Some(std::time::Instant::now()));
    db.set_deadline(None);
    drop(db);
    let mut c = pool::Connection::get(&scratch.url).unwrap();
    let timeout: String = c.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
    assert_eq!(timeout, "0");
    drop(c);

    // A deadline set inside a transaction that rolls back is undone by
    // PostgreSQL: the next deadline must be set again, not assumed set.
    let mut db = PostgresStore::open(&scratch.url, "t").unwrap();
    let ten_minutes = || std::time::Instant::now() + std::time::Duration::from_secs(600);
    db.begin().unwrap();
    db.set_deadline(Some(ten_minutes()));
    assert_eq!(db.statement_timeout_secs(), 600);
    db.rollback().unwrap();
    assert_eq!(db.statement_timeout_secs(), 0);
    db.set_deadline(Some(ten_minutes()));
    assert_eq!(db.statement_timeout_secs(), 600);
    // And a failed write rolls back to the savepoint behind it.
    db.begin().unwrap();
    db.set_deadline(Some(ten_minutes() + std::time::Duration::from_secs(600)));
    assert_eq!(db.statement_timeout_secs(), 1200);
    db.create_collection("m", "c").unwrap();
    assert!(db.put("m", "c", "a", "[]").is_err());
    db.set_deadline(Some(ten_minutes() + std::time::Duration::from_secs(600)));
    assert_eq!(db.statement_timeout_secs(), 1200);
    db.rollback().unwrap();
    drop(db);

    // A tenant lock is released when dropped, its connection kept.
    let tenants = crate::storage::Tenants::in_database(
        std::path::Path::new("/nonexistent"),
        crate::storage::Database::Postgres(scratch.url.clone()),
    );
    drop(tenants.lock("t").unwrap());
    let _held = tenants.lock("t").unwrap();
    let Err(busy) = tenants.lock("t") else {
        panic!("a held lock was taken again");
    };
    let busy = busy.to_string();
    assert!(busy.contains("busy"), "{busy}");
    drop(_held);

    // Idle connections to a database do not stop it from being copied
    // (PostgreSQL refuses a template anyone is connected to).
    drop(pool::Connection::get(&scratch.url).unwrap());
    let copy = crate::test_support::ScratchDatabase::copy_of(&scratch).unwrap();
    let db = PostgresStore::open(&copy.url, "t").unwrap();
    drop(db);
}

/// Module m's record, parsed (backends render documents differently).
fn doc(db: &mut dyn TenantStore, collection: &str, id: &str) -> Option<serde_json::Value> {
    let text = db.get("m", collection, id).unwrap()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// A batch is all or nothing: a bad record in it names itself, and none of
/// the batch is written, in a transaction (which stays usable) or not.
#[test]
fn put_batch_is_all_or_nothing_and_names_the_record() {
    let batch = |records: &[(&str, &str)]| -> Vec<(String, String)> {
        records
            .iter()
            .map(|(id, doc)| (id.to_string(), doc.to_string()))
            .collect()
    };
    for (_guard, mut db) in stores() {
        db.create_collection("m", "c").unwrap();
        db.create_index("m", "c", &unique_code_index(false))
            .unwrap();
        db.put("m", "c", "a", r#"{"code":"A"}"#).unwrap();
        db.begin().unwrap();
        let clash = batch(&[
            ("b", r#"{"code":"B"}"#),
            ("a", r#"{"code":"A2"}"#),
            ("c", r#"{"code":"B"}"#),
        ]);
        match db.put_batch("m", "c", &clash).unwrap_err() {
            StoreError::UniqueViolation { record_id, .. } => assert_eq!(record_id, "c"),
            other => panic!("{other}"),
        }
        assert_eq!(db.get("m", "c", "b").unwrap(), None);
        assert_eq!(doc(&mut *db, "c", "a"), Some(json!({"code": "A"})));
        // The transaction goes on; the same id twice is two writes in order.
        let good = batch(&[
            ("b", r#"{"code":"B"}"#),
            ("a", r#"{"code": "A"}"#),
            ("d", r#"{"code":"D"}"#),
            ("d", r#"{"code":"D2"}"#),
        ]);
        assert_eq!(
            db.put_batch("m", "c", &good).unwrap(),
            [
                WriteEffect::Inserted,
                WriteEffect::Unchanged,
                WriteEffect::Inserted,
                WriteEffect::Replaced
            ]
        );
        db.commit().unwrap();
        assert_eq!(doc(&mut *db, "c", "d"), Some(json!({"code": "D2"})));
        // Outside a transaction too.
        for (bad, error) in [("[1]", "f"), ("{a:1}", "f"), ("not json", "f")] {
            let records = batch(&[("e", r#"{"code":"E"}"#), ("f", bad)]);
            match db.put_batch("m", "c", &records).unwrap_err() {
                StoreError::InvalidDocument(why) => assert!(why.contains(error), "{why}"),
                other => panic!("{bad}: {other}"),
            }
        }
        let empty_id = batch(&[("e", r#"{"code":"E"}"#), ("", "{}")]);
        assert!(matches!(
            db.put_batch("m", "c", &empty_id),
            Err(StoreError::InvalidName(_))
        ));
        assert_eq!(db.get("m", "c", "e").unwrap(), None);
        assert_eq!(db.count("m", "c").unwrap(), 3);
        assert_eq!(db.put_batch("m", "c", &[]).unwrap(), []);
    }
}

/// FOLIO's ids are UUIDs (PostgreSQL keeps them in a uuid column until a
/// record brings another id); a batch takes both.
#[test]
fn put_batch_takes_uuid_and_other_ids() {
    let uuid = |n: u32| format!("00000000-0000-4000-8000-{n:012}");
    for (_guard, mut db) in stores() {
        db.create_collection("m", "u").unwrap();
        let records: Vec<_> = (1..=3)
            .map(|n| (uuid(n), format!(r#"{{"n":{n}}}"#)))
            .collect();
        assert_eq!(
            db.put_batch("m", "u", &records).unwrap(),
            [WriteEffect::Inserted; 3]
        );
        let mixed = vec![
            (uuid(2), r#"{"n":20}"#.to_string()),
            ("legacy-1".to_string(), r#"{"n":4}"#.to_string()),
        ];
        assert_eq!(
            db.put_batch("m", "u", &mixed).unwrap(),
            [WriteEffect::Replaced, WriteEffect::Inserted]
        );
        assert_eq!(doc(&mut *db, "u", &uuid(2)), Some(json!({"n": 20})));
        assert_eq!(doc(&mut *db, "u", "legacy-1"), Some(json!({"n": 4})));
        assert_eq!(db.count("m", "u").unwrap(), 4);
    }
}

/// A write that fails and is caught undoes only itself: a collection made,
/// an id column turned to text or an index made since the last good write
/// all stay (PostgreSQL's savepoint used to sit behind them).
#[test]
fn a_failed_write_undoes_nothing_before_it() {
    for (_guard, mut db) in stores() {
        db.begin().unwrap();
        db.create_collection("m", "c").unwrap();
        db.create_index("m", "c", &unique_code_index(false))
            .unwrap();
        db.put("m", "c", "a", r#"{"code":"x"}"#).unwrap();
        db.create_collection("m", "later").unwrap();
        db.put("m", "later", "not-a-uuid", r#"{"n":1}"#).unwrap();
        db.create_collection("m", "latest").unwrap();
        // Refused by the check, and by the database: neither undoes the rest.
        assert!(db.put("m", "c", "b", r#"{"s":"\ud800"}"#).is_err());
        assert!(db.put("m", "c", "b", r#"{"code":"x"}"#).is_err());
        assert_eq!(
            db.put("m", "latest", "r", r#"{"n":2}"#).unwrap(),
            WriteEffect::Inserted
        );
        db.commit().unwrap();
        assert_eq!(db.list_collections("m").unwrap(), ["c", "later", "latest"]);
        assert_eq!(doc(&mut *db, "later", "not-a-uuid"), Some(json!({"n": 1})));
        assert_eq!(doc(&mut *db, "latest", "r"), Some(json!({"n": 2})));
    }
}

/// What a backend accepts reads back: the documents serde_json refuses
/// (lone surrogates, numbers beyond a double, nesting past 128) are
/// refused at write time on both, naming the record.
#[test]
fn documents_the_reader_cannot_read_are_refused() {
    for (_guard, mut db) in stores() {
        db.create_collection("m", "c").unwrap();
        let deep = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
        for bad in [r#"{"s":"\ud800"}"#, r#"{"n":1e999}"#, deep.as_str()] {
            let error = db.put("m", "c", "r1", bad).unwrap_err();
            assert!(error.to_string().contains("record r1"), "{error}");
            let batch = [("r2".to_string(), bad.to_string())];
            assert!(db.put_batch("m", "c", &batch).is_err());
        }
        assert_eq!(db.count("m", "c").unwrap(), 0);
    }
}
