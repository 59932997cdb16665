//! A fuzz harness for every host function that takes guest data: random
//! sequences of calls, with names, field paths, documents, batch lists and
//! field-change values drawn from plain, hostile and arbitrary text, made
//! directly on the host side of the contract (`StepState`), as a plugin
//! would make them. No call may panic, and whatever was written must read
//! back: every record parses with the reader `graft data list` and
//! `graft fixture capture` use, and the tenant dumps. Bounded: a fixed
//! number of cases (`PROPTEST_CASES` raises it for a longer hunt).

use super::bindings::v0_2::graft::migration::{log, module_state, overlay, store, types};
use super::pipe::BoundedPipe;
use super::state::{MemoryLimiter, StepLog, StepState};
use crate::storage::WriteCounts;
use crate::storage::{SqliteStore, TenantStore};
use proptest::prelude::*;
use wasmtime_wasi::{ResourceTable, WasiCtxBuilder};

fn state(store: Box<dyn TenantStore>) -> StepState {
    StepState {
        deadline: None,
        wasi: WasiCtxBuilder::new().build(),
        table: ResourceTable::new(),
        limiter: MemoryLimiter::new(64 << 20),
        store: Some(store),
        module: "mod-fuzz".into(),
        readable: vec!["mod-other".into()],
        release: "1.0.0".into(),
        overlay: Vec::new(),
        log: StepLog::new(1 << 16, None),
        writes: WriteCounts::default(),
        stdout: BoundedPipe::new(1024),
        stderr: BoundedPipe::new(1024),
        behind: Default::default(),
    }
}

/// Text a hostile plugin would try, beside arbitrary strings.
fn hostile_text() -> Vec<String> {
    let mut texts: Vec<String> = [
        "",
        "a",
        "items",
        "Items",
        "it-ems",
        "it_ems",
        "../x",
        "\"; DROP TABLE x; --",
        "a.b.c",
        "a..b",
        ".a",
        "a.",
        "\u{1b}[2J",
        "\u{0}",
        "a\u{202e}b",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    texts.push("x".repeat(300));
    texts.push("a.".repeat(2000));
    texts.push(vec!["a"; 100_000].join("."));
    texts
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(hostile_text()),
        3 => "[a-z][a-z0-9_-]{0,12}",
        2 => "[a-z_]{1,4}(\\.[a-z_]{1,4}){0,6}",
        2 => any::<String>(),
    ]
}

/// JSON documents: valid, hostile and arbitrary text.
fn doc() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    let deep = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
    prop_oneof![
        4 => value.prop_map(|v| match v {
            serde_json::Value::Object(_) => v.to_string(),
            other => serde_json::json!({ "v": other }).to_string(),
        }),
        1 => prop::sample::select(vec![
            r#"{"s":"\ud800"}"#.to_string(),
            r#"{"s":"\udc00\ud800"}"#.to_string(),
            r#"{"n":1e999}"#.to_string(),
            r#"{"n":-1e400}"#.to_string(),
            r#"{"n":1e-400}"#.to_string(),
            r#"{a:1}"#.to_string(),
            r#"{"a":1,}"#.to_string(),
            r#"{"a":NaN}"#.to_string(),
            "[]".to_string(),
            "{}".to_string(),
            deep(126),
            deep(127),
            deep(200),
            deep(5000),
            format!("{{\"{}\":1}}", "k".repeat(70_000)),
        ]),
        1 => any::<String>(),
    ]
}

#[derive(Debug, Clone)]
enum Call {
    Create(String),
    Drop(String),
    Index(String, String, String, bool, bool),
    Put(String, String, String),
    Batch(String, Vec<(String, String)>),
    Behind(String, Vec<(String, String)>),
    Flush,
    Get(String, String),
    Delete(String, String),
    Scan(String, Option<String>, u32),
    Update(String, u8, String, String),
    /// A conditional update, scan and count: (collection, condition kind,
    /// field, values, change kind, field, value).
    Filtered(String, u8, String, Vec<String>, u8, String, String),
    State(u8, String, String),
    Load(String, u8, Vec<(String, String)>),
    Log(String),
    Warn(String, String, String),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        2 => text().prop_map(Call::Create),
        1 => text().prop_map(Call::Drop),
        1 => (text(), text(), text(), any::<bool>(), any::<bool>())
            .prop_map(|(c, n, f, u, i)| Call::Index(c, n, f, u, i)),
        4 => (text(), text(), doc()).prop_map(|(c, i, d)| Call::Put(c, i, d)),
        2 => (text(), prop::collection::vec((text(), doc()), 0..5))
            .prop_map(|(c, b)| Call::Batch(c, b)),
        2 => (text(), prop::collection::vec((text(), doc()), 0..5))
            .prop_map(|(c, b)| Call::Behind(c, b)),
        1 => Just(Call::Flush),
        1 => (text(), text()).prop_map(|(c, i)| Call::Get(c, i)),
        1 => (text(), text()).prop_map(|(c, i)| Call::Delete(c, i)),
        1 => (text(), prop::option::of(text()), any::<u32>())
            .prop_map(|(c, a, l)| Call::Scan(c, a, l)),
        2 => (text(), 0u8..4, text(), prop_oneof![doc(), text()])
            .prop_map(|(c, k, f, v)| Call::Update(c, k, f, v)),
        1 => (text(), 0u8..3, prop::collection::vec((text(), doc()), 0..4))
            .prop_map(|(c, k, r)| Call::Load(c, k, r)),
        2 => (
            text(),
            0u8..4,
            text(),
            prop::collection::vec(prop_oneof![doc(), text()], 0..4),
            0u8..5,
            text(),
            prop_oneof![doc(), text()],
        )
            .prop_map(|(c, k, f, v, ck, cf, cv)| Call::Filtered(c, k, f, v, ck, cf, cv)),
        2 => (0u8..4, text(), prop_oneof![text(), Just("x".repeat(70_000))])
            .prop_map(|(k, key, value)| Call::State(k, key, value)),
        1 => text().prop_map(Call::Log),
        1 => (text(), text(), text()).prop_map(|(c, i, m)| Call::Warn(c, i, m)),
    ]
}

fn record((id, doc): (String, String)) -> types::Record {
    types::Record { id, doc }
}

fn change(kind: u8, field: String, value: String) -> store::FieldChange {
    match kind {
        0 => store::FieldChange::SetDefault((field, value)),
        1 => store::FieldChange::Set((field, value)),
        2 => store::FieldChange::Remove(field),
        3 => store::FieldChange::Copy((field, value)),
        _ => store::FieldChange::Rename((field, value)),
    }
}

fn make(state: &mut StepState, call: Call) {
    use log::Host as _;
    use module_state::Host as _;
    use overlay::Host as _;
    use store::Host as _;
    match call {
        Call::Create(c) => drop(state.create_collection(c)),
        Call::Drop(c) => drop(state.drop_collection(c)),
        Call::Index(c, name, field, unique, case_insensitive) => drop(state.create_index(
            c,
            store::IndexSpec {
                name,
                field,
                unique,
                case_insensitive,
            },
        )),
        Call::Put(c, id, doc) => drop(state.put(c, record((id, doc)))),
        Call::Batch(c, batch) => drop(state.put_batch(c, batch.into_iter().map(record).collect())),
        Call::Behind(c, batch) => {
            drop(state.put_batch_behind(c, batch.into_iter().map(record).collect()))
        }
        Call::Flush => drop(state.flush()),
        Call::Get(c, id) => drop(store::Host::get(state, c, id)),
        Call::Delete(c, id) => drop(state.delete(c, id)),
        Call::Scan(c, after, limit) => drop(state.scan(c, after, limit)),
        Call::Update(c, kind, field, value) => {
            drop(state.update_all(c, vec![change(kind, field, value)]))
        }
        Call::Filtered(c, kind, field, values, change_kind, change_field, value) => {
            let condition = match kind {
                0 => {
                    store::Condition::Equals((field, values.into_iter().next().unwrap_or_default()))
                }
                1 => store::Condition::OneOf((field, values)),
                2 => store::Condition::Exists(field),
                _ => store::Condition::Missing(field),
            };
            drop(state.scan_where(c.clone(), vec![condition.clone()], None, 10));
            drop(state.count_where(c.clone(), vec![condition.clone()]));
            drop(state.update_where(
                c,
                vec![condition],
                vec![change(change_kind, change_field, value)],
            ))
        }
        Call::State(kind, key, value) => match kind {
            0 => drop(state.set(key, value)),
            1 => drop(module_state::Host::get(state, key)),
            2 => drop(state.remove(key)),
            _ => drop(state.entries()),
        },
        Call::Load(c, kind, records) => {
            let kind = match kind {
                0 => types::DataKind::System,
                1 => types::DataKind::Reference,
                _ => types::DataKind::Sample,
            };
            drop(state.load(c, kind, records.into_iter().map(record).collect()))
        }
        Call::Log(m) => state.log(log::Level::Info, m),
        Call::Warn(c, i, m) => state.warn_record(c, i, m),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn host_functions_take_any_guest_data(calls in prop::collection::vec(call(), 1..40)) {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::create(&dir.path().join("t.sqlite"), "t").unwrap();
        let mut state = state(Box::new(store));
        for call in calls {
            make(&mut state, call);
        }
        // The last write-behind batch is written before the call ends.
        state.reclaim();
        let db = state.store.as_deref_mut().unwrap();
        // Whatever was accepted reads back with the runner's own reader.
        for collection in db.list_collections("mod-fuzz").unwrap() {
            let mut after: Option<String> = None;
            loop {
                let page = db.scan("mod-fuzz", &collection, after.as_deref(), 100).unwrap();
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                for (id, doc) in page {
                    prop_assert!(
                        serde_json::from_str::<serde_json::Value>(&doc).is_ok(),
                        "record {id:?} of {collection} does not read back: {doc:.200}"
                    );
                }
            }
        }
        prop_assert!(db.dump().is_ok());
    }
}
