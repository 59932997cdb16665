//! `graft validate` and `graft fixture` as a vendor's CI meets them: the
//! sample modules pass against the fixtures in `tests/fixtures`; each
//! faulty build of `mod-notes` fails with the check and the record named;
//! bad input exits 2 with one clear line.

use crate::common::{graft, json};
use graft_sample_modules::{copy_dir, sample_modules_dir, validate_packages_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;

const NOTE_1: &str = "b1d0a7e0-0000-4000-8000-000000000001";
const GENERAL_TYPE: &str = "6a2a4b35-1b3f-4cbb-9c3b-0d2e7f1a2b01";

fn graft_ok(data: &Path, args: &[&str]) -> Output {
    let output = graft(data, args);
    assert!(
        output.status.success(),
        "graft {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Install `id` on a new tenant (with the given install flags), let the
/// tenant put one record of its own into `collection`, and capture the
/// tenant's module to `fixtures/<id>.json`.
fn capture(
    work: &Path,
    modules: &Path,
    (id, flags): (&str, &[&str]),
    (collection, record): (&str, &str),
    fixtures: &Path,
) {
    let data = work.join("tenant-data");
    let module = id.rsplit_once('-').unwrap().0;
    let m = s(modules);
    graft_ok(&data, &["--modules", m, "tenant", "create", "diku"]);
    let mut install = vec!["--modules", m, "install", "--tenant", "diku", id];
    install.extend_from_slice(flags);
    graft_ok(&data, &install);
    let file = work.join("record.json");
    std::fs::write(&file, record).unwrap();
    graft_ok(
        &data,
        &[
            "data",
            "put",
            "--tenant",
            "diku",
            "--module",
            module,
            "--collection",
            collection,
            "--file",
            s(&file),
        ],
    );
    std::fs::create_dir_all(fixtures).unwrap();
    let out = fixtures.join(format!("{id}.json"));
    graft_ok(
        &data,
        &[
            "fixture",
            "capture",
            "--tenant",
            "diku",
            "--module",
            module,
            "--out",
            s(&out),
        ],
    );
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every check of a `--json` result, as (fixture file or "package", check, status, message).
fn checks(result: &Value) -> Vec<(String, String, String, String)> {
    let row = |fixture: &str, c: &Value| {
        (
            fixture.to_string(),
            c["check"].as_str().unwrap().to_string(),
            c["status"].as_str().unwrap().to_string(),
            c["message"].as_str().unwrap().to_string(),
        )
    };
    let mut rows: Vec<_> = result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| row("package", c))
        .collect();
    for fixture in result["fixtures"].as_array().unwrap() {
        let name = Path::new(fixture["fixture"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for c in fixture["checks"].as_array().unwrap() {
            rows.push(row(&name, c));
        }
    }
    rows
}

#[test]
fn every_sample_module_validates_against_its_fixtures() {
    let data = TempDir::new().unwrap();
    let cases: [(&str, &[&str]); 7] = [
        ("mod-users-1.0.0", &["1.0.0"]),
        ("mod-users-1.1.0", &["1.0.0", "1.1.0"]),
        ("mod-users-2.0.0", &["1.0.0", "1.1.0", "2.0.0"]),
        ("mod-inventory-storage-19.0.0", &["19.0.0"]),
        ("mod-inventory-storage-23.0.0", &["19.0.0", "23.0.0"]),
        (
            "mod-inventory-storage-27.0.0",
            &["19.0.0", "23.0.0", "27.0.0"],
        ),
        (
            "mod-inventory-storage-30.0.5",
            &["19.0.0", "23.0.0", "27.0.0", "30.0.5"],
        ),
    ];
    for (package, releases) in cases {
        let dir = sample_modules_dir().join(package);
        let output = graft(
            data.path(),
            &[
                "--json",
                "validate",
                s(&dir),
                "--fixtures",
                s(&fixtures_dir()),
            ],
        );
        let result = json(&output);
        let rows = checks(&result);
        let failed: Vec<_> = rows.iter().filter(|r| r.2 == "fail").collect();
        assert!(failed.is_empty(), "{package}: {failed:#?}");
        assert_eq!(output.status.code(), Some(0), "{package}");
        assert_eq!(result["ok"], true);
        let name = package.rsplit_once('-').unwrap().0;
        let validated: Vec<String> = result["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["release"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = releases.iter().map(|r| format!("{name}-{r}")).collect();
        assert_eq!(validated, expected, "{package}");
        // Every fixture ran the engine's checks (none skipped for a failure).
        for check in [
            "inspect",
            "upgrade",
            "idempotent",
            "simulation",
            "deterministic",
            "overlay",
        ] {
            let passed = rows
                .iter()
                .filter(|r| r.1 == check && r.2 == "pass")
                .count();
            assert_eq!(passed, releases.len(), "{package}: {check}: {rows:#?}");
        }
    }
    // mod-users 2.0.0 rolls back to 1.1.0: that rollback really ran.
    let output = graft(
        data.path(),
        &[
            "--json",
            "validate",
            s(&sample_modules_dir().join("mod-users-2.0.0")),
            "--fixtures",
            s(&fixtures_dir()),
        ],
    );
    let rows = checks(&json(&output));
    let rollback = rows
        .iter()
        .find(|r| r.0 == "mod-users-1.1.0.json" && r.1 == "rollback")
        .unwrap();
    assert_eq!(rollback.2, "pass", "{rollback:?}");
    assert!(
        rollback.3.contains("gave back the fixture's"),
        "{rollback:?}"
    );
}

/// A modules folder with mod-notes 1.0.0 and a 2.0.0 whose plugin is the
/// given build (`None`: the correct one), and a fixture of a tenant at 1.0.0
/// that edited a note type.
struct Notes {
    data: TempDir,
    modules: PathBuf,
    fixtures: PathBuf,
}

fn notes(fault: Option<&str>) -> Notes {
    let data = TempDir::new().unwrap();
    let modules = data.path().join("modules");
    let built = validate_packages_dir();
    copy_dir(
        &built.join("mod-notes-1.0.0"),
        &modules.join("mod-notes-1.0.0"),
    )
    .unwrap();
    copy_dir(
        &built.join("mod-notes-2.0.0"),
        &modules.join("mod-notes-2.0.0"),
    )
    .unwrap();
    if let Some(fault) = fault {
        std::fs::copy(
            built.join(format!("fault-{fault}/plugin.wasm")),
            modules.join("mod-notes-2.0.0/plugin.wasm"),
        )
        .unwrap();
    }
    let fixtures = data.path().join("fixtures");
    let edited = format!(
        r#"{{"id":"{GENERAL_TYPE}","name":"General note","description":"Our own wording","source":"folio"}}"#
    );
    capture(
        data.path(),
        &modules,
        ("mod-notes-1.0.0", &["--load-reference", "--load-sample"]),
        ("note-types", &edited),
        &fixtures,
    );
    Notes {
        data,
        modules,
        fixtures,
    }
}

impl Notes {
    fn validate(&self, extra: &[&str]) -> Output {
        let package = self.modules.join("mod-notes-2.0.0");
        let mut args = vec!["validate", s(&package), "--fixtures", s(&self.fixtures)];
        args.extend_from_slice(extra);
        graft(&self.data.path().join("validate-data"), &args)
    }
}

#[test]
fn a_correct_plugin_passes_with_a_junit_report() {
    let notes = notes(None);
    let junit = notes.data.path().join("report.xml");
    let output = notes.validate(&["--junit", s(&junit)]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    // The package's checks (coverage among them: the one fixture is at the
    // release the plugin upgrades from and rolls back to), then the runs.
    assert!(
        text.contains("13 passed, 0 warnings, 0 failed, 0 skipped")
            && text
                .contains("a fixture at every release it upgrades from or rolls back to ([1.0.0])"),
        "{text}"
    );
    // Its upgrade reads the clock and draws random numbers: deterministic
    // only because the host fixes both per job.
    assert!(
        text.contains("two copies upgraded to identical data"),
        "{text}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(r#"<testsuites name="graft validate mod-notes-2.0.0" tests="13" failures="0" skipped="0">"#),
        "{xml}"
    );
    assert!(xml.contains(r#"name="rollback""#), "{xml}");
}

#[test]
fn each_faulty_plugin_fails_the_check_that_catches_it_and_names_the_record() {
    let cases = [
        (
            "non-idempotent",
            "idempotent",
            format!("record {NOTE_1}, field revision"),
        ),
        (
            "lossy-rollback",
            "rollback",
            format!("record {NOTE_1}, field title"),
        ),
        (
            "simulation-differs",
            "simulation",
            format!("record {NOTE_1}"),
        ),
        (
            "overwrites-edits",
            "overlay",
            format!(
                "record {GENERAL_TYPE}, field description: the tenant's value \"Our own wording\""
            ),
        ),
        (
            "nondeterministic",
            "deterministic",
            format!("record {NOTE_1}, field migrationTicket"),
        ),
        (
            "wrong-describe",
            "describe",
            "describes itself as mod-notes 2.0.1".to_string(),
        ),
    ];
    for (fault, check, record) in cases {
        let notes = notes(Some(fault));
        let junit = notes.data.path().join("report.xml");
        let output = notes.validate(&["--json", "--junit", s(&junit)]);
        assert_eq!(output.status.code(), Some(1), "{fault}");
        let result = json(&output);
        assert_eq!(result["ok"], false, "{fault}");
        let rows = checks(&result);
        let failed = rows
            .iter()
            .find(|r| r.1 == check)
            .unwrap_or_else(|| panic!("{fault}: no check {check}: {rows:#?}"));
        assert_eq!(failed.2, "fail", "{fault}: {rows:#?}");
        assert!(
            failed.3.contains(&record),
            "{fault}: {:?} lacks {record:?}",
            failed.3
        );
        // A failed run of the engine ends with the usual fix.
        assert!(
            check == "describe" || failed.3.contains("; fix: "),
            "{fault}: {:?}",
            failed.3
        );
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(
            xml.contains(&format!(r#"type="{check}""#)),
            "{fault}: {xml}"
        );
        // The table names the check and the record too.
        let table = notes.validate(&[]);
        let text = String::from_utf8_lossy(&table.stdout);
        assert!(
            text.contains(&format!("FAIL {check}")) || text.contains(&record),
            "{fault}: {text}"
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let notes = notes(None);
    let data = notes.data.path().join("bad-input-data");
    let package = notes.modules.join("mod-notes-2.0.0");
    let assert_bad = |args: &[&str], expected: &str| {
        let output = graft(&data, args);
        let text = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.starts_with("error: ") && text.contains(expected),
            "{args:?}: {text}"
        );
        assert_eq!(text.trim_end().lines().count(), 1, "{text}");
        assert!(!text.contains("panicked"), "{text}");
    };
    let missing = notes.data.path().join("no-such");
    assert_bad(
        &["validate", s(&missing), "--fixtures", s(&notes.fixtures)],
        "no such package folder",
    );
    assert_bad(
        &["validate", s(&package), "--fixtures", s(&missing)],
        "cannot read the fixtures folder",
    );
    let empty = notes.data.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_bad(
        &["validate", s(&package), "--fixtures", s(&empty)],
        "no fixtures (*.json)",
    );
    // Fixtures of other modules only.
    assert_bad(
        &["validate", s(&package), "--fixtures", s(&fixtures_dir())],
        "no fixture applies to mod-notes-2.0.0",
    );
    // A broken fixture among good ones is named.
    let broken = notes.data.path().join("broken");
    copy_dir(&notes.fixtures, &broken).unwrap();
    std::fs::write(
        broken.join("truncated.json"),
        "{\"format\": \"graft-fixture/1\", \"tena",
    )
    .unwrap();
    assert_bad(
        &["validate", s(&package), "--fixtures", s(&broken)],
        "truncated.json: not a Graft fixture",
    );
    std::fs::write(
        broken.join("truncated.json"),
        r#"{"format":"graft-fixture/9","capturedAt":"2026-01-01T00:00:00Z","tenant":"t","modules":[],"collections":{}}"#,
    )
    .unwrap();
    assert_bad(
        &["validate", s(&package), "--fixtures", s(&broken)],
        "fixture format \"graft-fixture/9\"",
    );
    // Capture from a tenant that does not exist; restore into one that does.
    assert_bad(
        &[
            "fixture",
            "capture",
            "--tenant",
            "nobody",
            "--out",
            s(&notes.data.path().join("x.json")),
        ],
        "unknown tenant nobody",
    );
    let fixture = notes.fixtures.join("mod-notes-1.0.0.json");
    graft_ok(
        &data,
        &["fixture", "restore", "--tenant", "copy", s(&fixture)],
    );
    assert_bad(
        &["fixture", "restore", "--tenant", "copy", s(&fixture)],
        "tenant copy already exists",
    );
    // A fixture whose records break its own unique index: nothing is left behind.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let types = &mut doc["collections"]["mod-notes"]["note-types"]["records"];
    let mut clash = types[GENERAL_TYPE].clone();
    clash["id"] = Value::from("6a2a4b35-1b3f-4cbb-9c3b-0d2e7f1a2b99");
    types["6a2a4b35-1b3f-4cbb-9c3b-0d2e7f1a2b99"] = clash;
    let clashing = notes.data.path().join("clashing.json");
    std::fs::write(&clashing, doc.to_string()).unwrap();
    assert_bad(
        &["fixture", "restore", "--tenant", "clash", s(&clashing)],
        "record 6a2a4b35-1b3f-4cbb-9c3b-0d2e7f1a2b99 breaks unique index",
    );
    let tenants = json(&graft_ok(&data, &["--json", "tenant", "list"]));
    assert_eq!(tenants["tenants"], serde_json::json!(["copy"]));
}

#[test]
fn a_restored_fixture_captures_back_to_the_same_data() {
    let data = TempDir::new().unwrap();
    let original = fixtures_dir().join("mod-inventory-storage-27.0.0.json");
    graft_ok(
        data.path(),
        &["fixture", "restore", "--tenant", "again", s(&original)],
    );
    let again = data.path().join("again.json");
    graft_ok(
        data.path(),
        &[
            "fixture",
            "capture",
            "--tenant",
            "again",
            "--out",
            s(&again),
        ],
    );
    let read = |path: &Path| -> Value {
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let object = doc.as_object_mut().unwrap();
        object.remove("capturedAt");
        object.remove("tenant");
        doc
    };
    assert_eq!(read(&original), read(&again));
    // And the restored tenant upgrades like any other.
    graft_ok(
        data.path(),
        &[
            "install",
            "--tenant",
            "again",
            "mod-inventory-storage-30.0.5",
            "--load-reference",
        ],
    );
}

#[test]
fn the_plugin_template_builds_installs_and_validates() {
    let data = TempDir::new().unwrap();
    let modules = data.path().join("modules");
    copy_dir(
        &validate_packages_dir().join("mod-widgets-1.0.0"),
        &modules.join("mod-widgets-1.0.0"),
    )
    .unwrap();
    let fixtures = data.path().join("fixtures");
    capture(
        data.path(),
        &modules,
        ("mod-widgets-1.0.0", &["--load-reference"]),
        (
            "widgets",
            r#"{"id":"7d1f0000-0000-4000-8000-000000000001","name":"Left-handed gear","typeId":"2f0c6a1e-5b7d-4c8e-9a10-000000000001"}"#,
        ),
        &fixtures,
    );
    let output = graft(
        &data.path().join("validate-data"),
        &[
            "--json",
            "validate",
            s(&modules.join("mod-widgets-1.0.0")),
            "--fixtures",
            s(&fixtures),
        ],
    );
    let result = json(&output);
    assert_eq!(output.status.code(), Some(0), "{result:#}");
    let rows = checks(&result);
    assert!(rows.iter().all(|r| r.2 != "fail"), "{rows:#?}");
    assert!(
        rows.iter().any(|r| r.1 == "upgrade" && r.2 == "pass"),
        "{rows:#?}"
    );
}

#[test]
fn little_headroom_is_a_warning_and_a_failed_upgrade_names_its_record() {
    // 2 MiB of memory: mod-notes' steps use about 1.1 MiB, over half.
    let notes = notes(None);
    let output = notes.validate(&["--json", "--memory-mb", "2"]);
    let result = json(&output);
    assert_eq!(output.status.code(), Some(0), "{result:#}");
    let rows = checks(&result);
    let resources = rows.iter().find(|r| r.1 == "resources").unwrap();
    assert_eq!(resources.2, "warn", "{rows:#?}");
    let details = result["fixtures"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "resources")
        .unwrap()["details"]
        .to_string();
    assert!(
        details.contains("memory: step") && details.contains("less than 50% headroom"),
        "{details}"
    );

    // mod-test-fail-at-record 2.0.0 fails at its 501st item.
    let data = TempDir::new().unwrap();
    let modules = data.path().join("modules");
    for id in [
        "mod-test-fail-at-record-1.0.0",
        "mod-test-fail-at-record-2.0.0",
    ] {
        copy_dir(
            &graft_sample_modules::test_packages_dir().join(id),
            &modules.join(id),
        )
        .unwrap();
    }
    let fixtures = data.path().join("fixtures");
    capture(
        data.path(),
        &modules,
        ("mod-test-fail-at-record-1.0.0", &[]),
        ("items", r#"{"id":"zz-tenant-item","code":"T1","n":-1}"#),
        &fixtures,
    );
    let output = graft(
        &data.path().join("validate-data"),
        &[
            "--json",
            "validate",
            s(&modules.join("mod-test-fail-at-record-2.0.0")),
            "--fixtures",
            s(&fixtures),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let rows = checks(&json(&output));
    let upgrade = rows.iter().find(|r| r.1 == "upgrade").unwrap();
    assert_eq!(upgrade.2, "fail");
    assert!(
        upgrade.3.contains("step upgrade") && upgrade.3.contains("record item-00500"),
        "{upgrade:?}"
    );
    for later in ["idempotent", "simulation", "deterministic", "rollback"] {
        let row = rows.iter().find(|r| r.1 == later).unwrap();
        assert_eq!(row.2, "skip", "{row:?}");
    }
}
