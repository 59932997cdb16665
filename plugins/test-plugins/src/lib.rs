//! Plugins that misbehave on purpose, one per cargo feature, so the runner's
//! tests can show that each misbehaviour ends in a clean `failed` step with
//! storage exactly as before. Each first writes records, so that there is
//! something to roll back, then misbehaves.

use graft_plugin_sdk::{
    Collection, Context, Description, IndexSpec, Migration, Outcome, Result, StoredState,
};
use serde_json::{json, Value};

const BEHAVIOUR: &str = if cfg!(feature = "endless-loop") {
    "endless-loop"
} else if cfg!(feature = "memory-bomb") {
    "memory-bomb"
} else if cfg!(feature = "read-host-file") {
    "read-host-file"
} else if cfg!(feature = "write-data-folder") {
    "write-data-folder"
} else if cfg!(feature = "log-flood") {
    "log-flood"
} else if cfg!(feature = "panic") {
    "panic"
} else if cfg!(feature = "fail-at-record") {
    "fail-at-record"
} else if cfg!(feature = "generic") {
    "generic"
} else if cfg!(feature = "probe-sandbox") {
    "probe-sandbox"
} else if cfg!(feature = "snoop") {
    "snoop"
} else if cfg!(feature = "wrong-describe") {
    "wrong-describe"
} else if cfg!(feature = "read-symlink") {
    "read-symlink"
} else if cfg!(feature = "host-memory") {
    "host-memory"
} else if cfg!(feature = "deep-path") {
    "deep-path"
} else if cfg!(feature = "sleep") {
    "sleep"
} else if cfg!(feature = "open-files") {
    "open-files"
} else if cfg!(feature = "bad-documents") {
    "bad-documents"
} else if cfg!(feature = "forge-output") {
    "forge-output"
} else if cfg!(feature = "wide-text") {
    "wide-text"
} else if cfg!(feature = "exit-zero") {
    "exit-zero"
} else if cfg!(feature = "shadow-stack") {
    "shadow-stack"
} else if cfg!(feature = "bad-rename") {
    "bad-rename"
} else if cfg!(feature = "squat") {
    "squat"
} else if cfg!(feature = "typo") {
    "typo"
} else if cfg!(feature = "panic-at-record") {
    "panic-at-record"
} else if cfg!(feature = "wrong-type") {
    "wrong-type"
} else if cfg!(feature = "behind-fail") {
    "behind-fail"
} else if cfg!(feature = "read-required") {
    "read-required"
} else {
    "well-behaved"
};

const RELEASE: &str = if cfg!(any(feature = "generic", feature = "squat")) {
    release_of(MODULE_ID)
} else if cfg!(feature = "release-2") {
    "2.0.0"
} else {
    "1.0.0"
};

/// The `generic` plugin is built once per module id, given at compile time.
const MODULE_ID: &str = match option_env!("GRAFT_TEST_MODULE_ID") {
    Some(id) => id,
    None => "mod-test-generic-1.0.0",
};

/// Splits an Okapi module id at the first `-<digit>`, at compile time.
const fn split_at_version(id: &str) -> usize {
    let bytes = id.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i - 1] == b'-' && bytes[i].is_ascii_digit() {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

const fn release_of(id: &str) -> &str {
    id.split_at(split_at_version(id)).1
}

const fn name_of(id: &str) -> &str {
    id.split_at(split_at_version(id) - 1).0
}
const ITEMS: &str = "items";
const SEEDED: u64 = 1000;

struct Test;

impl Migration for Test {
    fn describe() -> Description {
        let name = if cfg!(any(feature = "generic", feature = "squat")) {
            name_of(MODULE_ID).to_string()
        } else if cfg!(feature = "wrong-describe") {
            "mod-someone-else".to_string()
        } else {
            format!("mod-test-{BEHAVIOUR}")
        };
        Description::new(&name, RELEASE).upgrades_from(if RELEASE == "2.0.0" {
            &["1.0.0"]
        } else {
            &[]
        })
    }

    fn inspect() -> StoredState {
        if cfg!(feature = "generic") {
            return generic::inspect();
        }
        if Collection::<Value>::new(ITEMS).exists() {
            StoredState::Release(RELEASE.into())
        } else {
            StoredState::Empty
        }
    }

    fn upgrade(ctx: &Context) -> Result<Outcome> {
        if cfg!(feature = "generic") {
            return generic::upgrade();
        }
        if cfg!(feature = "squat") {
            return squat();
        }
        let items = Collection::<Value>::new(ITEMS);
        if items.create()? {
            items.create_index(IndexSpec::unique("items-code", "code"))?;
            let mut writer = items.writer(100);
            for n in 0..SEEDED {
                writer.put(
                    &format!("item-{n:05}"),
                    &json!({"code": format!("C{n}"), "n": n}),
                )?;
            }
            writer.finish()?;
        }
        misbehave(ctx)
    }
}

#[cfg(feature = "endless-loop")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

#[cfg(feature = "memory-bomb")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![7u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

#[cfg(feature = "read-host-file")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => {
            graft_plugin_sdk::log::info(&format!("read /etc/passwd: {} bytes", text.len()));
            Ok(Outcome::Created)
        }
        Err(e) => Err(graft_plugin_sdk::Error::failed(format!(
            "cannot read /etc/passwd: {e}"
        ))),
    }
}

#[cfg(feature = "write-data-folder")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let listed = std::fs::read_dir("/reference-data").is_ok();
    match std::fs::write("/reference-data/items/evil.json", b"{}") {
        Ok(()) => Ok(Outcome::Created),
        Err(e) => Err(graft_plugin_sdk::Error::failed(format!(
            "cannot write /reference-data/items/evil.json (folder readable: {listed}): {e}"
        ))),
    }
}

#[cfg(feature = "log-flood")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let line = "x".repeat(1000);
    for n in 0..100_000 {
        graft_plugin_sdk::log::info(&format!("{n} {line}"));
        if n % 10 == 0 {
            println!("stdout {n} {line}");
            eprintln!("stderr {n} {line}");
        }
    }
    Ok(Outcome::Created)
}

#[cfg(feature = "panic")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let broken: Option<&str> = std::hint::black_box(None);
    panic!("record item-00042 has no code: {broken:?}");
}

/// Rewrites every item with `update_each`, whose batches are written
/// behind; the item `failAtRecord` (default item-00500) becomes a JSON
/// array, which the runner refuses when it writes that batch; the module
/// state it set first goes with the failed step. With
/// `neverFlush`, hands one such batch over itself and ends without asking
/// for its result: the step must fail all the same.
#[cfg(feature = "behind-fail")]
fn misbehave(ctx: &Context) -> Result<Outcome> {
    // Module state written in the step: a failed step must leave none.
    graft_plugin_sdk::state::set("rewrite", "started")?;
    let bad = ctx
        .param("failAtRecord")
        .unwrap_or("item-00500")
        .to_string();
    if ctx.param("neverFlush").is_some() {
        use graft_plugin_sdk::bindings::graft::migration::store;
        let record = graft_plugin_sdk::Record {
            id: bad,
            doc: "[1]".into(),
        };
        store::put_batch_behind(ITEMS, &[record])?;
        return Ok(Outcome::Created);
    }
    Collection::<Value>::new(ITEMS).update_each(100, |id, mut item| {
        if id == bad {
            return Ok(Some(json!([1])));
        }
        item["rewritten"] = Value::Bool(true);
        Ok(Some(item))
    })?;
    Ok(Outcome::Created)
}

/// Counts a collection whose name it misspelt: the SDK's error names the
/// collection, the runner adds those the module has.
#[cfg(feature = "typo")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    Collection::<Value>::new("itmes").count()?;
    Ok(Outcome::Created)
}

/// Rewrites every item with `update_each` and panics at item-00042: the
/// runner must name the record (the SDK tells it after the panic message).
#[cfg(feature = "panic-at-record")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    Collection::<Value>::new(ITEMS).update_each(10, |id, mut item| {
        if id == "item-00042" {
            let code: Option<&str> = std::hint::black_box(None);
            panic!("cannot read the code: {code:?}");
        }
        item["checked"] = Value::Bool(true);
        Ok(Some(item))
    })?;
    Ok(Outcome::Created)
}

/// Gives item-00042 a shelf whose row is text, then reads the items as a
/// typed struct: the SDK's error must name the record and the field path
/// (`shelf.row`), not only what serde expected.
#[cfg(feature = "wrong-type")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Shelf {
        row: u32,
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Item {
        code: String,
        n: u64,
        shelf: Option<Shelf>,
    }
    let items = Collection::<Value>::new(ITEMS);
    items.put(
        "item-00042",
        &json!({"code": "C42", "n": 42, "shelf": {"row": "three"}}),
    )?;
    for entry in Collection::<Item>::new(ITEMS).scan(100) {
        entry?;
    }
    Ok(Outcome::Created)
}

/// Reports what of the host it can reach: environment, arguments, network,
/// the root of the file system. The test expects none of it.
#[cfg(feature = "probe-sandbox")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    let tcp = match std::net::TcpStream::connect("127.0.0.1:5432") {
        Ok(_) => "connected".to_string(),
        Err(e) => format!("refused ({e})"),
    };
    let dns = match std::net::ToSocketAddrs::to_socket_addrs("localhost:80") {
        Ok(addrs) => format!("resolved {}", addrs.count()),
        Err(e) => format!("refused ({e})"),
    };
    let root = std::fs::read_dir("/")
        .map(|d| d.count())
        .map_err(|e| e.to_string());
    Err(graft_plugin_sdk::Error::failed(format!(
        "env={env:?} args={args:?} tcp={tcp} dns={dns} root={root:?}"
    )))
}

/// Looks for another module's collection (mod-users' `users`).
#[cfg(feature = "snoop")]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let visible = graft_plugin_sdk::bindings::graft::migration::store::list_collections();
    match Collection::<Value>::new("users").count() {
        Ok(n) => {
            graft_plugin_sdk::log::info(&format!("saw {n} users"));
            Ok(Outcome::Created)
        }
        Err(e) => Err(graft_plugin_sdk::Error::failed(format!(
            "cannot see users ({e}); visible: {visible:?}"
        ))),
    }
}

/// Reads the module it requires (mod-users: its patrons, through an index
/// and without one, and one group), tries a module it does not require, and
/// records what it saw in `summary`; fails the step if asked
/// (`failAfterReading`), to show that nothing of it stays.
#[cfg(feature = "read-required")]
fn misbehave(ctx: &Context) -> Result<Outcome> {
    use graft_plugin_sdk::required::{self, ReadOnly};
    use graft_plugin_sdk::Filter;
    let users = ReadOnly::<Value>::new("mod-users", "users");
    let patrons = users.count_where(&Filter::new().equals("type", "patron"))?;
    let mut scanned = 0;
    for item in users.scan_where(&Filter::new().exists("contact.email"), 7) {
        item?;
        scanned += 1;
    }
    let group = ReadOnly::<Value>::new("mod-users", "groups")
        .get("3684a786-6671-4268-8ed0-9db82ebca60b")?
        .map(|g| g["group"].clone());
    let denied =
        |module: &str| match ReadOnly::<Value>::new(module, "items").count_where(&Filter::new()) {
            Ok(n) => format!("read {n}"),
            Err(e) => e.to_string(),
        };
    let summary = Collection::<Value>::new("summary");
    summary.create()?;
    summary.put(
        "seen",
        &json!({
            "modules": required::modules(),
            "collections": ReadOnly::<Value>::collections("mod-users")?,
            "patrons": patrons,
            "withEmail": scanned,
            "staffGroup": group,
            "unrequired": denied("ix"),
            "itself": denied("mod-test-read-required"),
        }),
    )?;
    if ctx.param("failAfterReading").is_some() {
        return Err(graft_plugin_sdk::Error::failed(
            "asked to fail after reading",
        ));
    }
    Ok(Outcome::Created)
}

/// At 1.0.0 only seeds; the 2.0.0 upgrade rewrites every item, adds a
/// collection and an index, and fails at record `failAtRecord` (default 500).
#[cfg(feature = "fail-at-record")]
fn misbehave(ctx: &Context) -> Result<Outcome> {
    if RELEASE == "1.0.0" {
        return Ok(Outcome::Created);
    }
    let fail_at: usize = ctx
        .param("failAtRecord")
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let audit = Collection::<Value>::new("audit");
    audit.create()?;
    audit.create_index(IndexSpec::plain("audit-item", "item"))?;
    let items = Collection::<Value>::new(ITEMS);
    items.create_index(IndexSpec::plain("items-n", "n"))?;
    let mut writer = items.writer(100);
    for (n, item) in items.scan(250).enumerate() {
        let (id, mut doc) = item?;
        if n == fail_at {
            writer.flush()?;
            return Err(
                graft_plugin_sdk::Error::failed("cannot migrate: code is malformed").at(ITEMS, &id),
            );
        }
        doc["migrated"] = json!(true);
        writer.put(&id, &doc)?;
        audit.put(&format!("audit-{n}"), &json!({"item": id}))?;
    }
    writer.finish()?;
    Ok(Outcome::Upgraded)
}

// The attacks are written against contract 0.1's raw calls.
#[cfg(not(feature = "contract-0-2"))]
mod hostile;
#[cfg(feature = "hostile")]
use hostile::misbehave;

/// Takes the names other modules' tables and indexes would have: the
/// collections named in `GRAFT_TEST_COLLECTIONS` at compile time, each with
/// the indexes of mod-users' collection of that name.
fn squat() -> Result<Outcome> {
    let names = option_env!("GRAFT_TEST_COLLECTIONS").unwrap_or("users");
    for name in names.split(',') {
        let collection = Collection::<Value>::new(name);
        collection.create()?;
        collection.create_index(IndexSpec::unique_ci(
            &format!("{name}-username"),
            "username",
        ))?;
        collection.put("squatter", &json!({"username": "squatter"}))?;
    }
    Ok(Outcome::Created)
}

#[cfg(not(any(
    feature = "hostile",
    feature = "endless-loop",
    feature = "memory-bomb",
    feature = "read-host-file",
    feature = "write-data-folder",
    feature = "log-flood",
    feature = "panic",
    feature = "fail-at-record",
    feature = "snoop",
    feature = "probe-sandbox",
    feature = "read-required",
    feature = "panic-at-record",
    feature = "wrong-type",
    feature = "typo",
    feature = "behind-fail"
)))]
fn misbehave(_ctx: &Context) -> Result<Outcome> {
    Ok(Outcome::Created)
}

/// A well-behaved migration for any module id: a `records` collection with
/// a marker of the release its data is at.
mod generic {
    use super::RELEASE;
    use graft_plugin_sdk::{Collection, IndexSpec, Outcome, Result, StoredState};
    use serde_json::{json, Value};

    fn records() -> Collection<Value> {
        Collection::new("records")
    }

    pub fn inspect() -> StoredState {
        match records().get("release-marker") {
            Ok(Some(marker)) => {
                StoredState::Release(marker["release"].as_str().unwrap_or("?").to_string())
            }
            Ok(None) => StoredState::Empty,
            Err(e) => StoredState::Unrecognised(e.to_string()),
        }
    }

    pub fn upgrade() -> Result<Outcome> {
        let records = records();
        let created = records.create()?;
        if created {
            records.create_index(IndexSpec::plain("records-release", "release"))?;
        }
        let marker = json!({"id": "release-marker", "release": RELEASE});
        if records.get("release-marker")?.as_ref() == Some(&marker) {
            return Ok(Outcome::Unchanged);
        }
        records.put("release-marker", &marker)?;
        Ok(if created {
            Outcome::Created
        } else {
            Outcome::Upgraded
        })
    }
}

graft_plugin_sdk::export_migration!(Test);
