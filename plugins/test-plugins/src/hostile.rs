//! Attacks on the host, one per cargo feature, written against the contract
//! as an attacker would: each goes for one class of the sandbox's promise
//! (confinement, memory, stack, time, handles, documents, terminal text,
//! trap reasons, set-based updates). The runner's tests expect each to end
//! in a failed step (or a refusal) that names the class, with the runner
//! alive and the tenant as it was.

#![allow(dead_code, unused_imports)]

use graft_plugin_sdk::bindings::graft::migration::{log as host_log, store as host};
use graft_plugin_sdk::{Collection, Context, Error, Outcome, Result};
use serde_json::Value;

fn raw_put(collection: &str, id: &str, doc: String) -> std::result::Result<bool, String> {
    host::put(
        collection,
        &host::Record {
            id: id.to_string(),
            doc,
        },
    )
    .map_err(|e| format!("{e:?}"))
}

/// Reads a file of its data folder that the package made a symbolic link to
/// a host file (the test plants `/reference-data/items/passwd` -> /etc/passwd).
#[cfg(feature = "read-symlink")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    match std::fs::read_to_string("/reference-data/items/passwd") {
        Ok(text) => {
            Collection::<Value>::new("loot").create()?;
            raw_put(
                "loot",
                "passwd",
                serde_json::json!({ "text": text }).to_string(),
            )
            .map_err(Error::failed)?;
            Ok(Outcome::Created)
        }
        Err(e) => Err(Error::failed(format!(
            "cannot read /reference-data/items/passwd: {e}"
        ))),
    }
}

/// Makes the host keep as much as it can: many collections, each with
/// large records (60 x 50 x 128 KiB: a change log that samples 50 per
/// collection, before and after, parsed, would hold over a GiB) (the change log's samples), set-based updates with large
/// values (their texts), then a 100 MB failure message.
#[cfg(feature = "host-memory")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let big = "x".repeat(128 << 10);
    for c in 0..60 {
        let name = format!("c{c}");
        Collection::<Value>::new(&name).create()?;
        for r in 0..50 {
            raw_put(&name, &format!("r{r}"), format!("{{\"big\":\"{big}\"}}"))
                .map_err(Error::failed)?;
        }
        host::update_all(
            &name,
            &[host::FieldChange::Set((
                "other".to_string(),
                format!("\"{big}\""),
            ))],
        )
        .map_err(|e| Error::failed(format!("{e:?}")))?;
    }
    Err(Error::failed("y".repeat(100 << 20)))
}

/// A field path of 100,000 parts, and documents nested 100,000 deep: the
/// host's own parsers and SQL must not recurse on the runner's stack.
#[cfg(feature = "deep-path")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let items = "items";
    let path = vec!["a"; 100_000].join(".");
    let renamed = host::update_all(
        items,
        &[host::FieldChange::Rename((
            "code".to_string(),
            path.clone(),
        ))],
    );
    let set = host::update_all(items, &[host::FieldChange::Set((path, "1".to_string()))]);
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let put = raw_put(items, "deep", deep);
    Err(Error::failed(format!(
        "rename: {}; set: {}; put: {}",
        refused(&renamed),
        refused(&set),
        refused(&put)
    )))
}

fn refused<T: std::fmt::Debug, E: std::fmt::Debug>(result: &std::result::Result<T, E>) -> String {
    match result {
        Ok(v) => format!("accepted ({v:?})"),
        Err(e) => {
            let text = format!("refused ({e:?})");
            text.chars().take(300).collect()
        }
    }
}

/// Sleeps an hour through WASI (poll on a monotonic-clock timer).
#[cfg(feature = "sleep")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    for _ in 0..60 {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
    Err(Error::failed("slept an hour"))
}

/// Opens a data file again and again, holding every handle.
#[cfg(feature = "open-files")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let mut held = Vec::new();
    for n in 0..100_000 {
        match std::fs::File::open("/reference-data/items/item-1.json") {
            Ok(file) => held.push(file),
            Err(e) => return Err(Error::failed(format!("open failed after {n} files: {e}"))),
        }
    }
    Err(Error::failed(format!("held {} files", held.len())))
}

/// Writes documents the write check and the read path might disagree on,
/// and records in `results` what each write did.
#[cfg(feature = "bad-documents")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let long_key = "k".repeat(100_000);
    let mut deep = String::new();
    for _ in 0..300 {
        deep.push_str("{\"a\":");
    }
    deep.push('1');
    deep.push_str(&"}".repeat(300));
    let cases: Vec<(&str, String)> = vec![
        ("lone-surrogate", r#"{"name":"\ud800"}"#.to_string()),
        ("huge-number", r#"{"n":1e999}"#.to_string()),
        ("deep-nesting", deep),
        (
            "long-key-path",
            format!(
                "{}1{}",
                "{\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":".repeat(120),
                "}".repeat(120)
            ),
        ),
        ("long-key", format!("{{\"{long_key}\":1}}")),
        ("control-chars", "{\"name\":\"\\u001b[2J\"}".to_string()),
    ];
    Collection::<Value>::new("items").create()?;
    Collection::<Value>::new("results").create()?;
    for (id, doc) in cases {
        let result = match raw_put("items", id, doc) {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("refused: {}", e.chars().take(200).collect::<String>()),
        };
        raw_put(
            "results",
            id,
            serde_json::json!({ "result": result }).to_string(),
        )
        .map_err(Error::failed)?;
    }
    Ok(Outcome::Created)
}

/// Tries to forge lines and send escape sequences to the operator's terminal.
#[cfg(feature = "forge-output")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let forged = "\x1b[2J\x1b[1;1Hall good\r\nerror: forged line\x07\u{9b}31m\u{202e}";
    host_log::log(host_log::Level::Error, forged);
    host_log::warn_record("items", forged, forged);
    println!("{forged}");
    eprintln!("{forged}");
    Err(Error::failed(forged).at("items", forged))
}

/// Text far wider than a terminal: a 70,000-character failure message.
#[cfg(feature = "wide-text")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    Err(Error::failed("w".repeat(70_000)).at("items", &"i".repeat(250)))
}

/// Ends the process instead of returning a result.
#[cfg(feature = "exit-zero")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    std::process::exit(0)
}

/// Overflows the shadow stack in linear memory (large frames, deep calls).
#[cfg(feature = "shadow-stack")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    fn down(n: u64) -> u64 {
        let mut frame = [n; 8192];
        std::hint::black_box(&mut frame);
        if n == u64::MAX {
            return 0;
        }
        down(n + 1) + frame[7]
    }
    Err(Error::failed(format!("came back from {}", down(0))))
}

/// Renames a field onto itself and into itself.
#[cfg(feature = "bad-rename")]
pub fn misbehave(_ctx: &Context) -> Result<Outcome> {
    let onto = host::update_all(
        "items",
        &[host::FieldChange::Rename(("code".into(), "code".into()))],
    );
    let into = host::update_all(
        "items",
        &[host::FieldChange::Rename((
            "code".into(),
            "code.inner".into(),
        ))],
    );
    Err(Error::failed(format!(
        "onto itself: {}; into itself: {}",
        refused(&onto),
        refused(&into)
    )))
}
