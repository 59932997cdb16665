//! What an operator's environment does to a run (a journal that cannot be
//! written, a corrupted cache entry or database, an empty or foreign tenant
//! file, a kill at any moment, bad input): the outcome is never hidden, a
//! corrupt file is never trusted, every bad input is refused before any
//! tenant runs, and the data is exactly as before or as committed.

use crate::common::{command, database_for, graft, json, open_tenant};
use graft::storage::Dump;
use std::path::Path;
use std::process::Output;
use tempfile::TempDir;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Bad input: exit 2 and exactly one line, which says `expected`.
fn assert_one_line_error(output: &Output, expected: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(
        text.starts_with("error: ") && text.contains(expected),
        "{expected:?} in {text}"
    );
}

fn on_sqlite(data: &Path) -> bool {
    database_for(data).is_none()
}

/// A data directory with tenant `diku` on mod-users 1.0.0 and 50 users.
fn diku(modules: Option<&Path>) -> TempDir {
    let data = TempDir::new().unwrap();
    let d = data.path();
    assert!(graft(d, &["tenant", "create", "diku"]).status.success());
    let mut args = Vec::new();
    if let Some(m) = modules {
        args.extend(["--modules", m.to_str().unwrap()]);
    }
    args.extend([
        "install",
        "--tenant",
        "diku",
        "mod-users-1.0.0",
        "--load-reference",
        "--load-sample",
        "--param",
        "sampleUsers=50",
    ]);
    let out = graft(d, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    data
}

fn dump(data: &Path, tenant: &str) -> Dump {
    open_tenant(data, tenant).dump().unwrap()
}

/// The sample packages and one test package, in a folder of their own.
fn modules_with(test_package: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    let sample = graft_sample_modules::sample_modules_dir();
    for entry in std::fs::read_dir(sample).unwrap() {
        let entry = entry.unwrap();
        graft_sample_modules::copy_dir(&entry.path(), &dir.path().join(entry.file_name())).unwrap();
    }
    graft_sample_modules::copy_dir(
        &graft_sample_modules::test_packages_dir().join(test_package),
        &dir.path().join(test_package),
    )
    .unwrap();
    dir
}

/// 1. A journal that cannot be written adds a warning; the step's failure
/// is reported first and exactly, and the exit code is the job's.
#[test]
fn an_unwritable_journal_never_hides_the_outcome() {
    let modules = modules_with("mod-test-panic-1.0.0");
    let m = modules.path().to_str().unwrap();
    let data = diku(Some(modules.path()));
    let d = data.path();
    std::fs::create_dir(d.join("journal.jsonl")).unwrap();
    let before = dump(d, "diku");
    let out = graft(
        d,
        &[
            "--modules",
            m,
            "install",
            "--tenant",
            "diku",
            "mod-test-panic-1.0.0",
        ],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("error: tenant diku, module mod-test-panic-1.0.0, step upgrade: panic:"),
        "{text}"
    );
    assert!(
        text.contains("warning: the failure above is not in the journal"),
        "{text}"
    );
    assert_eq!(dump(d, "diku"), before);
    // The same for machines.
    let out = graft(
        d,
        &[
            "--modules",
            m,
            "--json",
            "install",
            "--tenant",
            "diku",
            "mod-test-panic-1.0.0",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = &json(&out)["tenants"][0];
    assert_eq!(report["modules"][0]["failure"]["kind"], "panic");
    assert!(report["warnings"][0].as_str().unwrap().contains("journal"));
}

/// 2. A flipped byte in a compiled-plugin cache entry is found by its
/// checksum and the plugin compiled again, with a warning: never loaded.
#[test]
fn a_corrupt_cache_entry_is_recompiled_not_run() {
    let data = diku(None);
    let d = data.path();
    let cache = d.join("cache");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert!(!entries.is_empty());
    for entry in &entries {
        let mut bytes = std::fs::read(entry).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        std::fs::write(entry, bytes).unwrap();
    }
    assert!(graft(d, &["tenant", "create", "next"]).status.success());
    let out = graft(d, &["install", "--tenant", "next", "mod-users-1.0.0"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("does not match its checksum"), "{text}");
    // A run after that uses the entry written again, quietly.
    assert!(graft(d, &["tenant", "create", "third"]).status.success());
    let out = graft(d, &["install", "--tenant", "third", "mod-users-1.0.0"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("checksum"), "{}", stderr(&out));
}

/// 3. An empty or another tenant's file is never taken for a tenant, and
/// `graft tenant delete` removes it.
#[test]
fn empty_or_foreign_tenant_files_are_refused() {
    let data = diku(None);
    let d = data.path();
    if !on_sqlite(d) {
        return;
    }
    let tenants = d.join("tenants");
    std::fs::write(tenants.join("ghost.sqlite"), b"").unwrap();
    std::fs::copy(tenants.join("diku.sqlite"), tenants.join("copy.sqlite")).unwrap();
    for (tenant, why) in [
        ("ghost", "an empty or foreign file"),
        ("copy", "database of tenant diku"),
    ] {
        for args in [
            vec!["status", "--tenant", tenant],
            vec!["install", "--tenant", tenant, "mod-users-2.0.0"],
        ] {
            let out = graft(d, &args);
            assert_one_line_error(&out, why);
        }
    }
    assert_eq!(
        std::fs::metadata(tenants.join("ghost.sqlite"))
            .unwrap()
            .len(),
        0
    );
    let out = graft(d, &["tenant", "delete", "ghost", "copy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!tenants.join("ghost.sqlite").exists() && !tenants.join("copy.sqlite").exists());
    assert_one_line_error(
        &graft(d, &["tenant", "delete", "ghost"]),
        "unknown tenant ghost",
    );
}

/// 4. A malformed database is refused before a job writes on it, and the
/// file is left exactly as it was.
#[test]
fn a_malformed_database_is_refused_before_writing() {
    let data = diku(None);
    let d = data.path();
    if !on_sqlite(d) {
        return;
    }
    let file = d.join("tenants/diku.sqlite");
    // Garble the cell pointers of the users table's root page: a page graft
    // does not read to open the tenant, and one SQLite's check walks.
    let (root, page): (i64, i64) = {
        let conn = rusqlite::Connection::open(&file).unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'mod_users__users'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        let page = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        (root, page)
    };
    let mut bytes = std::fs::read(&file).unwrap();
    let start = ((root - 1) * page) as usize;
    for b in &mut bytes[start + 12..start + 600] {
        *b = 0xff;
    }
    std::fs::write(&file, &bytes).unwrap();
    let out = graft(d, &["install", "--tenant", "diku", "mod-users-2.0.0"]);
    assert_one_line_error(&out, "malformed");
    assert!(stderr(&out).contains("diku.sqlite"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "the file was written on"
    );
}

/// 6 and 7. Every input is checked before any tenant runs, each bad one
/// with one line.
#[test]
fn every_input_is_checked_before_any_tenant_runs() {
    let data = diku(None);
    let d = data.path();
    let before = dump(d, "diku");
    for (args, expected) in [
        (
            vec!["install", "--tenants", "diku,../x", "mod-users-2.0.0"],
            "invalid tenant id",
        ),
        (
            vec!["install", "--tenants", "diku,,x", "mod-users-2.0.0"],
            "invalid tenant id",
        ),
        (
            vec!["install", "--tenants", "diku,nobody", "mod-users-2.0.0"],
            "unknown tenant nobody",
        ),
        (
            vec!["install", "--tenants", "diku,diku", "mod-users-2.0.0"],
            "named twice",
        ),
        (
            vec!["upgrade", "--tenants", "diku,UPPER"],
            "invalid tenant id",
        ),
        (vec!["tenant", "create", "ok", "diku_mod"], "Okapi's rule"),
        (
            vec![
                "reference",
                "diff",
                "--tenant",
                "diku",
                "--module",
                "mod-nothing",
            ],
            "no module mod-nothing",
        ),
    ] {
        let out = graft(d, &args);
        assert_one_line_error(&out, expected);
    }
    assert!(graft(d, &["tenant", "list"]).stdout.starts_with(b"diku\n"));
    assert!(!String::from_utf8_lossy(&graft(d, &["tenant", "list"]).stdout).contains("ok"));
    for bad in ["", "mod-users-", "-1.0.0"] {
        let list = d.join("list.json");
        std::fs::write(
            &list,
            serde_json::json!([
                {"id": "mod-users-2.0.0", "action": "enable"},
                {"id": bad, "action": "enable"}
            ])
            .to_string(),
        )
        .unwrap();
        let out = graft(
            d,
            &[
                "install",
                "--tenant",
                "diku",
                "--file",
                list.to_str().unwrap(),
            ],
        );
        assert_one_line_error(&out, "install list entry 1");
    }
    assert_eq!(
        dump(d, "diku"),
        before,
        "a tenant ran before the input was checked"
    );
    // A fixture whose module name is not its id's.
    let fixture = d.join("fixture.json");
    let out = graft(
        d,
        &[
            "fixture",
            "capture",
            "--tenant",
            "diku",
            "--out",
            fixture.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&fixture).unwrap().replacen(
        "\"name\": \"mod-users\"",
        "\"name\": \"mod-other\"",
        1,
    );
    std::fs::write(&fixture, text).unwrap();
    let out = graft(
        d,
        &[
            "fixture",
            "restore",
            "--tenant",
            "copy",
            fixture.to_str().unwrap(),
        ],
    );
    assert_one_line_error(&out, "a fixture's module name is its id's name");
}

/// 9. `--json` over many tenants is one JSON document, written tenant by
/// tenant (the memory it needs is B8's), with a summary at the end.
#[test]
fn many_tenants_stream_one_json_document() {
    let data = diku(None);
    let d = data.path();
    for tenant in ["east", "west"] {
        assert!(graft(d, &["tenant", "create", tenant]).status.success());
        assert!(
            graft(d, &["install", "--tenant", tenant, "mod-users-1.0.0"])
                .status
                .success()
        );
    }
    let out = graft(
        d,
        &["--json", "upgrade", "--all-tenants", "--parallel", "2"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let result = json(&out);
    assert_eq!(result["ok"], true);
    assert_eq!(result["tenants"].as_array().unwrap().len(), 3);
    assert_eq!(result["summary"].as_array().unwrap().len(), 3);
    assert_eq!(result["not_run"], serde_json::json!([]));
}

// --- Kills at random moments --------------------------------------------

/// What a tenant holds, without the moments and ids of jobs (which differ
/// between two runs of one command).
fn state(data: &Path, tenant: &str) -> Option<serde_json::Value> {
    let tenants = match database_for(data) {
        Some(url) => {
            graft::storage::Tenants::in_database(data, graft::storage::Database::Postgres(url))
        }
        None => graft::storage::Tenants::new(data),
    };
    let dump = tenants.open(tenant).ok()?.dump().ok()?;
    let modules: Vec<_> = dump
        .modules
        .iter()
        .map(|m| (m.name.clone(), m.module_id.clone(), m.enabled))
        .collect();
    Some(serde_json::json!({
        "collections": dump.collections,
        "bases": dump.bases,
        "modules": modules,
    }))
}

fn integrity_ok(data: &Path) {
    if !on_sqlite(data) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(data.join("tenants")) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sqlite") {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let result: String = conn
                .query_row("PRAGMA integrity_check", [], |row| row.get(0))
                .unwrap();
            assert_eq!(result, "ok", "{}", path.display());
        }
    }
}

/// Each command that writes, killed (SIGKILL) at a few fixed moments of
/// its run: the database passes SQLite's integrity check, and the tenant is
/// exactly as before the command or as an uninterrupted run leaves it;
/// running the command again then gives the uninterrupted result.
#[test]
fn kills_at_random_moments_leave_before_or_after() {
    let fixture_dir = TempDir::new().unwrap();
    let fixture = fixture_dir.path().join("diku.json");
    {
        let data = diku(None);
        let out = graft(
            data.path(),
            &[
                "fixture",
                "capture",
                "--tenant",
                "diku",
                "--out",
                fixture.to_str().unwrap(),
            ],
        );
        assert!(out.status.success());
    }
    let record = fixture_dir.path().join("record.json");
    std::fs::write(&record, r#"{"id": "g9", "group": "killed"}"#).unwrap();
    let fixture = fixture.to_str().unwrap().to_string();
    let record = record.to_str().unwrap().to_string();
    // (what it does to, the command, its tenant)
    let commands: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["install", "--tenant", "diku", "mod-users-2.0.0"],
            "diku",
        ),
        (vec!["upgrade", "--all-tenants"], "diku"),
        (
            vec![
                "install",
                "--tenant",
                "diku",
                "mod-inventory-storage-30.0.5",
                "--load-reference",
            ],
            "diku",
        ),
        (
            vec!["fixture", "restore", "--tenant", "copy", &fixture],
            "copy",
        ),
        (
            vec![
                "data",
                "put",
                "--tenant",
                "diku",
                "--module",
                "mod-users",
                "--collection",
                "groups",
                "--file",
                &record,
            ],
            "diku",
        ),
        (
            vec!["disable", "--tenant", "diku", "mod-users", "--purge"],
            "diku",
        ),
        (vec!["tenant", "create", "fresh"], "fresh"),
    ];
    // Moments spread over a command's life: start-up, compiling the plugin
    // (a fresh data directory has no cache), running, committing.
    let delays_ms = [5u64, 60, 250, 700];
    for (args, tenant) in &commands {
        let reference = diku(None);
        let out = graft(reference.path(), args);
        assert!(
            out.status.success(),
            "graft {}: {}",
            args.join(" "),
            stderr(&out)
        );
        let after = state(reference.path(), tenant);
        for delay in delays_ms {
            let data = diku(None);
            let d = data.path();
            let before = state(d, tenant);
            let mut child = command(d).args(args).spawn().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay));
            child.kill().ok();
            child.wait().unwrap();
            integrity_ok(d);
            let now = state(d, tenant);
            assert!(
                now == before || now == after,
                "graft {} killed after {delay} ms left {tenant} neither as before nor as after",
                args.join(" ")
            );
            // Run again: the uninterrupted result (a tenant already created
            // says so).
            let again = graft(d, args);
            // Where the kill came after the commit, running again may say
            // there is nothing to do (a tenant exists, a module is gone).
            assert!(
                again.status.success() || now == after,
                "graft {} again after a kill at {delay} ms: {}",
                args.join(" "),
                stderr(&again)
            );
            assert_eq!(
                state(d, tenant),
                after,
                "graft {} after a kill",
                args.join(" ")
            );
        }
    }
}
