//! Bad packages and bad requests: each a clear error naming the file or
//! field, and nothing written.

use graft::test_support::{modules_folder, package_dir, with_data, TestRunner};
use graft::InstallOptions;
use std::path::Path;
use tempfile::TempDir;

/// A modules folder with mod-users and a package `mod-broken-1.0.0` made by
/// `make` from a copy of a healthy package.
fn with_broken(make: impl FnOnce(&Path)) -> TempDir {
    let modules = modules_folder(&["mod-users-1.0.0"]);
    let broken = modules.path().join("mod-broken-1.0.0");
    graft::test_support::copy_dir(&package_dir("mod-users-1.0.0"), &broken);
    let descriptor = serde_json::json!({"id": "mod-broken-1.0.0", "provides": [{"id": "broken", "version": "1.0"}]});
    std::fs::write(broken.join("ModuleDescriptor.json"), descriptor.to_string()).unwrap();
    make(&broken);
    modules
}

/// Install `module` on a tenant that already has data; expect an error that
/// contains every part of `expected`, and the tenant unchanged.
fn refused(modules: &Path, module: &str, expected: &[&str]) {
    let runner = TestRunner::new(modules);
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(20));
    let before = runner.dump("diku");
    let error = runner
        .install(
            "diku",
            &["mod-users-1.0.0", module],
            &InstallOptions::default(),
        )
        .unwrap_err();
    let message = format!("{error:#}");
    for part in expected {
        assert!(message.contains(part), "expected {part:?} in: {message}");
    }
    assert!(!message.contains('\n'), "one line: {message}");
    assert_eq!(runner.dump("diku"), before);
}

#[test]
fn missing_plugin() {
    let modules = with_broken(|dir| std::fs::remove_file(dir.join("plugin.wasm")).unwrap());
    refused(
        modules.path(),
        "mod-broken-1.0.0",
        &["plugin.wasm", "plugin of mod-broken-1.0.0 is missing"],
    );
}

#[test]
fn garbled_plugin() {
    let modules =
        with_broken(|dir| std::fs::write(dir.join("plugin.wasm"), b"this is not wasm").unwrap());
    refused(
        modules.path(),
        "mod-broken-1.0.0",
        &["plugin.wasm", "not a WebAssembly file"],
    );
}

#[test]
fn truncated_component() {
    let modules = with_broken(|dir| {
        let bytes = std::fs::read(dir.join("plugin.wasm")).unwrap();
        std::fs::write(dir.join("plugin.wasm"), &bytes[..bytes.len() / 2]).unwrap();
    });
    refused(
        modules.path(),
        "mod-broken-1.0.0",
        &["plugin.wasm", "not a valid WebAssembly component"],
    );
}

#[test]
fn core_module_instead_of_component() {
    // The smallest valid core module: the header alone.
    let modules =
        with_broken(|dir| std::fs::write(dir.join("plugin.wasm"), b"\0asm\x01\0\0\0").unwrap());
    refused(
        modules.path(),
        "mod-broken-1.0.0",
        &["core WebAssembly module, not a component", "wasm32-wasip2"],
    );
}

#[test]
fn component_for_another_contract_version() {
    for (package, version) in [
        ("mod-future-1.0.0", "graft:migration@0.3.0"),
        ("mod-far-future-1.0.0", "graft:migration@1.0.0"),
    ] {
        let modules = modules_folder(&["mod-users-1.0.0", package]);
        refused(
            modules.path(),
            package,
            &[
                version,
                "this runner supports graft:migration@0.1.x and @0.2.x",
            ],
        );
    }
}

#[test]
fn plugin_that_is_not_what_its_descriptor_says() {
    let modules = modules_folder(&["mod-users-1.0.0", "mod-test-wrong-describe-1.0.0"]);
    refused(
        modules.path(),
        "mod-test-wrong-describe-1.0.0",
        &[
            "describes itself as mod-someone-else 1.0.0",
            "ModuleDescriptor is mod-test-wrong-describe-1.0.0",
        ],
    );
}

#[test]
fn invalid_descriptors_name_the_field() {
    let cases: [(&str, &[&str]); 4] = [
        (
            r#"{"id": "mod-broken-1.0.0", "provides": [{"id": "x", "version": "one"}]}"#,
            &["provides[0].version"],
        ),
        (
            r#"{"id": "mod-broken-1.0.0", "requires": [{"id": "x"}]}"#,
            &["requires[0].version"],
        ),
        (r#"{"name": "broken"}"#, &["field id is missing"]),
        (r#"{"id": "mod-broken-1.0.0", "#, &["not JSON"]),
    ];
    for (descriptor, expected) in cases {
        let modules = with_broken(|dir| {
            std::fs::write(dir.join("ModuleDescriptor.json"), descriptor).unwrap()
        });
        let mut expected = expected.to_vec();
        expected.push("ModuleDescriptor.json: invalid ModuleDescriptor");
        refused(modules.path(), "mod-broken-1.0.0", &expected);
    }
}

#[test]
fn unknown_settings_in_graft_json() {
    let modules = with_broken(|dir| {
        std::fs::write(dir.join("graft.json"), r#"{"limits": {"deadline": 5}}"#).unwrap()
    });
    refused(
        modules.path(),
        "mod-broken-1.0.0",
        &["graft.json", "unknown field `deadline`"],
    );
}

#[test]
fn unknown_module_and_tenant() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    let error = runner
        .install("diku", &["mod-users-7.0.0"], &InstallOptions::default())
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("unknown module mod-users-7.0.0: mod-users has packages"),
        "{error:#}"
    );
    let error = runner
        .install("diku", &["mod-nothing-1.0.0"], &InstallOptions::default())
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("no package of mod-nothing"),
        "{error:#}"
    );
    let error = runner
        .install("nobody", &["mod-users-1.0.0"], &InstallOptions::default())
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("unknown tenant nobody"),
        "{error:#}"
    );
    assert!(runner.dump("diku").modules.is_empty());
    assert!(!runner
        .graft
        .tenants()
        .list()
        .unwrap()
        .contains(&"nobody".to_string()));
}
