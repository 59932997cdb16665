//! Plugins written in Python and JavaScript, as a vendor of those languages
//! ships them: the SDKs' port of mod-users 2.0.0 (`plugins/python/mod-users`,
//! `plugins/js/mod-users`) is built with the pinned toolchain, assembled
//! with `graft package` into an archive, put beside the Rust packages of
//! 1.0.0 and 1.1.0, and then installed, simulated, upgraded, validated
//! against a fixture and rolled back by the real binary. Each must leave
//! exactly the records the Rust plugin leaves, and a record it cannot
//! migrate must fail the step naming the collection and record.

use crate::common::{graft, json};
use graft::test_support::lang::{self, Lang};
use graft::test_support::{copy_dir, package_dir, package_source};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use tempfile::TempDir;

fn ok(data: &Path, args: &[&str]) -> Output {
    let output = graft(data, args);
    assert!(
        output.status.success(),
        "graft {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A modules folder with the Rust packages of 1.0.0 and 1.1.0, and the
/// package of 2.0.0 with `plugin` assembled by `graft package` as an archive.
fn modules_with(work: &Path, data: &Path, plugin: &Path) -> std::path::PathBuf {
    let modules = work.join("modules");
    for release in ["mod-users-1.0.0", "mod-users-1.1.0"] {
        copy_dir(&package_dir(release), &modules.join(release));
    }
    // The package's source as a vendor keeps it: descriptor and data, no plugin.
    let source = package_source("mod-users-2.0.0", &work.join("source"));
    let dist = work.join("dist");
    let output = ok(
        data,
        &[
            "package",
            s(&source),
            "--plugin",
            s(plugin),
            "--out",
            s(&dist),
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("wrote"), "{text}");
    for file in ["mod-users-2.0.0.tar.gz", "mod-users-2.0.0.tar.gz.sha256"] {
        std::fs::copy(dist.join(file), modules.join(file)).unwrap();
    }
    modules
}

/// The tenant's records and indexes (the fixture's `collections`).
fn collections(data: &Path, modules: &Path, tenant: &str, out: &Path) -> Value {
    ok(
        data,
        &[
            "--modules",
            s(modules),
            "fixture",
            "capture",
            "--tenant",
            tenant,
            "--out",
            s(out),
        ],
    );
    let fixture: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    fixture["collections"].clone()
}

/// Install 1.1.0 with reference data and 300 generated users.
fn tenant_at_1_1_0(data: &Path, modules: &Path, tenant: &str) {
    let m = s(modules);
    ok(data, &["--modules", m, "tenant", "create", tenant]);
    ok(
        data,
        &[
            "--modules",
            m,
            "install",
            "--tenant",
            tenant,
            "mod-users-1.1.0",
            "--load-reference",
            "--load-sample",
            "--param",
            "sampleUsers=300",
        ],
    );
}

fn run_language(lang: Lang) {
    let plugin = lang::mod_users_plugin(lang);
    let work = TempDir::new().unwrap();
    let data = work.path().join("data");
    let modules = modules_with(work.path(), &data, &plugin);
    let m = s(&modules);
    let listed = json(&ok(&data, &["--json", "--modules", m, "modules", "list"]));
    assert!(
        listed.to_string().contains("mod-users-2.0.0"),
        "the archive is a package: {listed}"
    );

    // The same data upgraded by the Rust plugin, to compare against.
    let rust_modules = work.path().join("rust-modules");
    for release in ["mod-users-1.0.0", "mod-users-1.1.0", "mod-users-2.0.0"] {
        copy_dir(&package_dir(release), &rust_modules.join(release));
    }
    tenant_at_1_1_0(&data, &rust_modules, "rust");
    let r = s(&rust_modules);
    ok(
        &data,
        &[
            "--modules",
            r,
            "install",
            "--tenant",
            "rust",
            "mod-users-2.0.0",
        ],
    );
    let rust_after = collections(&data, &rust_modules, "rust", &work.path().join("rust.json"));

    tenant_at_1_1_0(&data, &modules, "diku");
    let fixtures = work.path().join("fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    let before = collections(
        &data,
        &modules,
        "diku",
        &fixtures.join("mod-users-1.1.0.json"),
    );

    // A simulation reports the changes and writes nothing.
    let simulated = json(&ok(
        &data,
        &[
            "--json",
            "--modules",
            m,
            "install",
            "--tenant",
            "diku",
            "mod-users-2.0.0",
            "--simulate",
        ],
    ));
    assert!(
        simulated.to_string().contains("\"simulated\""),
        "{simulated}"
    );
    let unchanged = collections(
        &data,
        &modules,
        "diku",
        &work.path().join("after-simulate.json"),
    );
    assert_eq!(
        unchanged,
        before,
        "{}: a simulation changed the tenant",
        lang.name()
    );

    // The upgrade leaves exactly what the Rust plugin leaves.
    ok(
        &data,
        &[
            "--modules",
            m,
            "install",
            "--tenant",
            "diku",
            "mod-users-2.0.0",
        ],
    );
    let after = collections(&data, &modules, "diku", &work.path().join("after.json"));
    assert_eq!(
        after,
        rust_after,
        "{}: not the Rust plugin's records",
        lang.name()
    );
    let user = after["mod-users"]["users"]["records"]
        .as_object()
        .and_then(|records| records.values().next().cloned())
        .unwrap_or_else(|| panic!("no users in {after}"));
    assert!(
        user["name"]["family"].is_string() && user.get("personal").is_none(),
        "{user}"
    );

    // The rollback gives back the 1.1.0 records exactly.
    ok(
        &data,
        &[
            "--modules",
            m,
            "install",
            "--tenant",
            "diku",
            "mod-users-1.1.0",
        ],
    );
    let back = collections(&data, &modules, "diku", &work.path().join("back.json"));
    assert_eq!(back, before, "{}: the rollback lost something", lang.name());

    // graft validate takes the archive, against the fixture captured at 1.1.0.
    let archive = modules.join("mod-users-2.0.0.tar.gz");
    let validation = graft(
        &data,
        &[
            "--json",
            "validate",
            s(&archive),
            "--fixtures",
            s(&fixtures),
        ],
    );
    let result = json(&validation);
    assert!(validation.status.success(), "{}: {result:#}", lang.name());
    assert_eq!(result["ok"], true);
    let passed: Vec<&str> = result["fixtures"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "pass")
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for check in [
        "inspect",
        "upgrade",
        "idempotent",
        "simulation",
        "deterministic",
        "rollback",
    ] {
        assert!(
            passed.contains(&check),
            "{}: {check} did not pass: {result:#}",
            lang.name()
        );
    }

    // A user the plugin cannot migrate fails the step, naming the record,
    // and the tenant stays as it was.
    let bad = work.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"id":"bad-user","username":"bad","personal":{"lastName":"X"},"name":"already 2.0.0"}"#,
    )
    .unwrap();
    ok(
        &data,
        &[
            "--modules",
            m,
            "data",
            "put",
            "--tenant",
            "diku",
            "--module",
            "mod-users",
            "--collection",
            "users",
            "--file",
            s(&bad),
        ],
    );
    let before_failure = collections(&data, &modules, "diku", &work.path().join("bf.json"));
    let failed = graft(
        &data,
        &[
            "--modules",
            m,
            "install",
            "--tenant",
            "diku",
            "mod-users-2.0.0",
        ],
    );
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stdout)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    for expected in ["bad-user", "users", "must not have the 2.0.0 field"] {
        assert!(
            text.contains(expected),
            "{}: {expected:?} not in {text}",
            lang.name()
        );
    }
    let after_failure = collections(&data, &modules, "diku", &work.path().join("af.json"));
    assert_eq!(
        after_failure,
        before_failure,
        "{}: a failed step left changes",
        lang.name()
    );
}

#[test]
fn a_python_plugin_installs_upgrades_validates_and_rolls_back() {
    run_language(Lang::Python);
}

#[test]
fn a_javascript_plugin_installs_upgrades_validates_and_rolls_back() {
    run_language(Lang::Js);
}

/// `graft new` in a language, then the project's own scripts as a vendor
/// runs them (build.sh ends in `graft package`, make-fixture.sh), then
/// `graft validate` on the archive: all pass as generated.
fn new_project_validates(lang: &str) {
    let work = TempDir::new().unwrap();
    let project = work.path().join("mod-widgets");
    let data = work.path().join("data");
    let made = ok(
        &data,
        &[
            "--json",
            "new",
            "mod-widgets",
            "--lang",
            lang,
            "--dir",
            s(&project),
        ],
    );
    let made = json(&made);
    assert_eq!(made["module"], "mod-widgets");
    for file in [
        "build.sh",
        "make-fixture.sh",
        "README.md",
        "ci/graft-validate.yml",
        "wit/migration.wit",
    ] {
        assert!(project.join(file).is_file(), "{lang}: no {file}");
    }
    let run = |script: &str| {
        let mut command = std::process::Command::new(project.join(script));
        command
            .current_dir(&project)
            .env("GRAFT", env!("CARGO_BIN_EXE_graft"))
            .env_remove("GRAFT_DATABASE")
            .env_remove("GRAFT_MODULES");
        match lang {
            "python" => {
                command.env("PYTHON", lang::python());
            }
            "js" => {
                // What `npm ci` in the project installs: the pinned toolchain.
                std::os::unix::fs::symlink(lang::node_modules(), project.join("node_modules"))
                    .unwrap_or(());
            }
            // Shared between runs, so the SDK's dependencies compile once.
            _ => {
                command.env("CARGO_TARGET_DIR", lang::root().join("target/new-projects"));
            }
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{lang}: {script} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run("build.sh");
    assert!(project
        .join("dist/mod-widgets-1.0.0.tar.gz.sha256")
        .is_file());
    run("make-fixture.sh");
    let validation = graft(
        &data,
        &[
            "--json",
            "validate",
            s(&project.join("dist/mod-widgets-1.0.0.tar.gz")),
            "--fixtures",
            s(&project.join("fixtures")),
        ],
    );
    let result = json(&validation);
    assert!(validation.status.success(), "{lang}: {result:#}");
    assert_eq!(
        result["fixtures"].as_array().map(Vec::len),
        Some(1),
        "{result:#}"
    );
    // A project is never written over.
    let again = graft(
        &data,
        &["new", "mod-widgets", "--lang", lang, "--dir", s(&project)],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn graft_new_makes_a_rust_project_that_validates() {
    new_project_validates("rust");
}

#[test]
fn graft_new_makes_a_python_project_that_validates() {
    new_project_validates("python");
}

#[test]
fn graft_new_makes_a_javascript_project_that_validates() {
    new_project_validates("js");
}
