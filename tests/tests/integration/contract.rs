//! Plugins of contract 0.1 and 0.2 in one runner: mod-users 1.0.0 to
//! 2.0.0 are built for 0.1, 2.1.0 for 0.2 (module state, conditional
//! updates, copy); a tenant moves between them both ways.

use graft::fixture::Fixture;
use graft::test_support::{contract_0_2_folder, modules_folder, with_data, TestRunner};
use graft::InstallOptions;
use serde_json::{json, Value};

const RELEASES: [&str; 4] = [
    "mod-users-1.0.0",
    "mod-users-1.1.0",
    "mod-users-2.0.0",
    "mod-users-2.1.0",
];

fn outcomes(report: &graft::TenantReport) -> Vec<(String, String)> {
    report.modules[0]
        .steps
        .iter()
        .map(|s| (s.step.clone(), s.outcome.clone()))
        .collect()
}

fn step(name: &str, outcome: &str) -> (String, String) {
    (name.to_string(), outcome.to_string())
}

/// A user 2.0.0 stores without an email address (the sample users all
/// have one): 2.1.0 must give it the mail contact type.
fn add_user_without_email(runner: &TestRunner) {
    let mut db = runner.graft.tenants().open("diku").unwrap();
    let user = json!({
        "id": "0000aaaa-0000-4000-8000-000000000001",
        "username": "nomail",
        "barcode": "X1",
        "type": "patron",
        "groupId": "3684a786-6671-4268-8ed0-9db82ebca60b",
        "name": {"family": "Post", "given": "Paula"}
    });
    db.put(
        "mod-users",
        "users",
        user["id"].as_str().unwrap(),
        &user.to_string(),
    )
    .unwrap();
}

fn module_state(runner: &TestRunner) -> Value {
    json!(runner.dump("diku").state.get("mod-users"))
}

#[test]
fn a_tenant_moves_from_a_0_1_plugins_release_to_a_0_2_plugins_and_back() {
    let modules = modules_folder(&RELEASES);
    let runner = TestRunner::new(modules.path());
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.1.0"], &with_data(50));
    let at_1_1_0 = runner.data("diku");
    runner.install_ok("diku", &["mod-users-2.0.0"], &InstallOptions::default());
    add_user_without_email(&runner);
    let at_2_0_0 = runner.data("diku");
    assert_eq!(
        module_state(&runner),
        json!(null),
        "0.1 plugins keep no state"
    );

    // 0.1 -> 0.2: the 2.1.0 plugin finds 2.0.0 by its indexes (no state yet).
    let report = runner.install_ok("diku", &["mod-users-2.1.0"], &InstallOptions::default());
    assert_eq!(
        outcomes(&report),
        [
            step("inspect", "release 2.0.0"),
            step("upgrade", "upgraded")
        ]
    );
    let upgrade = &report.modules[0].steps[1];
    assert_eq!(upgrade.writes.updated, 51 + 51, "contact type and copy");
    let dump = runner.dump("diku");
    assert_eq!(dump.state["mod-users"]["release"], "2.1.0");
    let users = &dump.collections["mod-users"]["users"].records;
    assert_eq!(users.len(), 51);
    for (id, user) in users {
        assert_eq!(user["patronGroup"], user["groupId"], "{id}");
        let expected = if user["contact"]["email"].is_null() {
            "001"
        } else {
            "002"
        };
        assert_eq!(user["preferredContactTypeId"], json!(expected), "{id}");
    }
    assert_eq!(
        users["0000aaaa-0000-4000-8000-000000000001"]["preferredContactTypeId"],
        json!("001")
    );
    // The change log tells the conditions.
    let changes = format!("{:?}", report.changes());
    assert!(changes.contains("where contact.email present"), "{changes}");

    // Reapplied: only the module state tells 2.1.0 from 2.0.0.
    let reinstall = InstallOptions {
        reinstall: true,
        ..InstallOptions::default()
    };
    let report = runner.install_ok("diku", &["mod-users-2.1.0"], &reinstall);
    assert_eq!(
        outcomes(&report),
        [
            step("inspect", "release 2.1.0"),
            step("upgrade", "unchanged")
        ]
    );

    // 0.2 -> 0.1, by the 0.2 plugin's rollback: exactly 2.0.0's data, and
    // no state left for the 0.1 plugin to be misled by.
    let report = runner.install_ok("diku", &["mod-users-2.0.0"], &InstallOptions::default());
    assert_eq!(
        outcomes(&report),
        [
            step("inspect", "release 2.1.0"),
            step("rollback", "downgraded")
        ]
    );
    assert_eq!(runner.data("diku"), at_2_0_0);
    assert_eq!(module_state(&runner), json!(null));
    let report = runner.install_ok("diku", &["mod-users-2.0.0"], &reinstall);
    assert_eq!(report.modules[0].steps[0].outcome, "release 2.0.0");

    // Up again, and down two releases at once.
    runner.install_ok("diku", &["mod-users-2.1.0"], &InstallOptions::default());
    let report = runner.install_ok("diku", &["mod-users-1.1.0"], &InstallOptions::default());
    assert_eq!(report.modules[0].steps[1].outcome, "downgraded");
    let mut expected = at_1_1_0;
    // The user added at 2.0.0, in 1.1.0's shape.
    expected["mod-users"]["users"]["records"]["0000aaaa-0000-4000-8000-000000000001"] = json!({
        "id": "0000aaaa-0000-4000-8000-000000000001",
        "username": "nomail",
        "barcode": "X1",
        "type": "patron",
        "patronGroup": "3684a786-6671-4268-8ed0-9db82ebca60b",
        "personal": {"lastName": "Post", "firstName": "Paula"}
    });
    assert_eq!(runner.data("diku"), expected);
    assert_eq!(module_state(&runner), json!(null));
}

#[test]
fn a_0_2_release_installed_from_nothing_equals_the_upgraded_one() {
    let modules = modules_folder(&RELEASES);
    let upgraded = TestRunner::new(modules.path());
    upgraded.tenant("diku");
    upgraded.install_ok("diku", &["mod-users-1.0.0"], &with_data(40));
    upgraded.install_ok("diku", &["mod-users-2.1.0"], &InstallOptions::default());
    let fresh = TestRunner::new(modules.path());
    fresh.tenant("diku");
    let report = fresh.install_ok("diku", &["mod-users-2.1.0"], &with_data(40));
    assert_eq!(report.modules[0].steps[1].outcome, "created");
    // Set-based (the upgrade) and per record (the sample, in 2.1.0's
    // shape) agree, record for record. (The reference data differ: the
    // upgrade did not load 2.1.0's.)
    let users = |runner: &TestRunner| runner.data("diku")["mod-users"]["users"].clone();
    assert!(users(&fresh) == users(&upgraded), "the users differ");
    assert_eq!(module_state(&fresh), module_state(&upgraded));
}

#[test]
fn a_simulated_0_2_step_leaves_data_and_module_state_as_they_were() {
    let modules = modules_folder(&RELEASES);
    let runner = TestRunner::new(modules.path());
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-2.0.0"], &with_data(30));
    let before = runner.dump("diku");
    let simulate = InstallOptions {
        simulate: true,
        ..InstallOptions::default()
    };
    let report = runner
        .install("diku", &["mod-users-2.1.0"], &simulate)
        .unwrap();
    assert!(report.ok && report.simulated);
    assert_eq!(report.modules[0].steps[1].outcome, "upgraded");
    assert_eq!(runner.dump("diku"), before);
    assert!(runner.dump("diku").state.is_empty());
}

#[test]
fn a_0_2_package_validates_against_a_fixture_of_a_0_1_release() {
    let modules = modules_folder(&RELEASES);
    let mut runner = TestRunner::new(modules.path());
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-2.0.0"], &with_data(30));
    let fixtures = tempfile::TempDir::new().unwrap();
    let mut db = runner.graft.tenants().open("diku").unwrap();
    Fixture::capture(&mut *db, Some("mod-users"))
        .unwrap()
        .write(&fixtures.path().join("at-2.0.0.json"))
        .unwrap();
    drop(db);
    let package = modules.path().join("mod-users-2.1.0");
    let validation = runner
        .graft
        .validate(
            &package,
            fixtures.path(),
            Some(modules.path().into()),
            None,
            false,
        )
        .unwrap();
    let report = serde_json::to_string_pretty(&validation).unwrap();
    assert!(validation.ok, "{report}");
    for check in ["upgrade", "idempotent", "simulation", "rollback"] {
        assert!(report.contains(&format!("\"{check}")), "{check}: {report}");
    }
    assert!(report.contains("graft:migration@0.2.0"), "{report}");
    // Only 2.0.0 has a fixture: the releases it also upgrades from and
    // rolls back to are named, a warning, or with --strict a failure.
    let coverage = validation
        .checks
        .iter()
        .find(|c| c.check == "coverage")
        .unwrap();
    assert_eq!(coverage.status, graft::validate::Status::Warn);
    assert!(
        coverage.message.contains("no fixture at 1.0.0, 1.1.0")
            && coverage
                .message
                .contains("graft fixture capture --module mod-users"),
        "{}",
        coverage.message
    );
    let strict = runner
        .graft
        .validate(
            &package,
            fixtures.path(),
            Some(modules.path().into()),
            None,
            true,
        )
        .unwrap();
    assert!(!strict.ok);
}

#[test]
fn packages_list_their_contract_version() {
    let modules = modules_folder(&["mod-users-2.0.0", "mod-users-2.1.0", "mod-future-1.0.0"]);
    let runner = TestRunner::new(modules.path());
    let (packages, _) = runner.graft.packages().unwrap();
    let contracts: Vec<(String, String)> = packages
        .iter()
        .map(|p| (p.id.to_string(), runner.graft.contract_of(p)))
        .collect();
    assert_eq!(
        contracts,
        [
            (
                "mod-future-1.0.0".to_string(),
                "0.3.0 (not supported)".to_string()
            ),
            ("mod-users-2.0.0".to_string(), "0.1.0".to_string()),
            ("mod-users-2.1.0".to_string(), "0.2.0".to_string()),
        ]
    );
}

/// A 0.2 plugin reads the module its descriptor requires (mod-users, by
/// its `users` interface), in the same transaction, and nothing else: an
/// enabled module it does not require, and itself through `required`, are
/// refused; what it read is not changed; a failed step keeps nothing.
#[test]
fn a_0_2_plugin_reads_the_modules_it_requires_and_no_other() {
    let modules = modules_folder(&[
        "mod-users-2.0.0",
        "ix-1.0.0",
        "mod-test-read-required-1.0.0",
    ]);
    let runner = TestRunner::new(modules.path());
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-2.0.0", "ix-1.0.0"], &with_data(20));
    let before = runner.dump("diku");

    let fail = InstallOptions {
        parameters: vec![("failAfterReading".into(), "yes".into())],
        ..InstallOptions::default()
    };
    let report = runner
        .install("diku", &["mod-test-read-required-1.0.0"], &fail)
        .unwrap();
    let failure = report.failure().expect("asked to fail");
    assert!(
        failure.failure.message.contains("asked to fail"),
        "{failure:?}"
    );
    assert_eq!(runner.dump("diku"), before);

    runner.install_ok(
        "diku",
        &["mod-test-read-required-1.0.0"],
        &InstallOptions::default(),
    );
    let dump = runner.dump("diku");
    let seen = &dump.collections["mod-test-read-required"]["summary"].records["seen"];
    assert_eq!(seen["modules"], json!(["mod-users"]));
    assert_eq!(
        seen["collections"],
        json!(["addresstypes", "groups", "users"])
    );
    assert_eq!(seen["patrons"], json!(20));
    assert_eq!(seen["withEmail"], json!(20));
    assert_eq!(seen["staffGroup"], json!("staff"));
    for (field, module) in [("unrequired", "ix"), ("itself", "mod-test-read-required")] {
        let text = seen[field].as_str().unwrap();
        assert!(
            text.contains(&format!("may not read module \"{module}\""))
                && text.contains("here: mod-users"),
            "{field}: {text}"
        );
    }
    assert_eq!(
        dump.collections["mod-users"], before.collections["mod-users"],
        "reading changed nothing"
    );
}

/// A runner whose tenant diku has mod-users 1.0.0 with a few users, beside
/// the test package `package`, and the tenant's dump before anything else.
fn with_mod_users(package: &str) -> (tempfile::TempDir, TestRunner, graft::storage::Dump) {
    let modules = modules_folder(&["mod-users-1.0.0", package]);
    let runner = TestRunner::new(modules.path());
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(10));
    let before = runner.dump("diku");
    (modules, runner, before)
}

/// Install `package`, expecting its step to fail: the failure.
fn failure_of(
    runner: &TestRunner,
    package: &str,
    options: &InstallOptions,
) -> graft::host::CallFailure {
    let report = runner.install("diku", &[package], options).unwrap();
    report.failure().expect("the step fails").failure.clone()
}

/// Install `package` on a tenant at mod-users 1.0.0, expecting its step to
/// fail: the failure, the tenant checked to be left exactly as it was.
fn failure_alone(package: &str) -> graft::host::CallFailure {
    let (_modules, runner, before) = with_mod_users(package);
    let failure = failure_of(&runner, package, &InstallOptions::default());
    assert_eq!(runner.dump("diku"), before, "{package} changed the tenant");
    failure
}

/// A panic inside the SDK's `update_each` names the record it happened at:
/// the operator sees the collection and id, not only the panic's text.
#[test]
fn a_panic_while_rewriting_a_record_names_the_record() {
    let failure = failure_alone("mod-test-panic-at-record-1.0.0");
    assert_eq!(failure.kind, graft::host::FailureKind::Panic);
    assert!(
        failure.message.contains("cannot read the code"),
        "{failure:?}"
    );
    assert_eq!(failure.collection.as_deref(), Some("items"));
    assert_eq!(failure.record_id.as_deref(), Some("item-00042"));
}

/// A record that does not fit the plugin's typed struct names the record
/// and the field path inside it, so the vendor finds the field, not only
/// the record.
#[test]
fn a_record_of_the_wrong_shape_names_the_field_path() {
    let failure = failure_alone("mod-test-wrong-type-1.0.0");
    assert_eq!(failure.collection.as_deref(), Some("items"));
    assert_eq!(failure.record_id.as_deref(), Some("item-00042"));
    assert!(
        failure
            .message
            .contains("cannot read record: field shelf.row: invalid type: string \"three\""),
        "{failure:?}"
    );
}

/// A step that fails at a collection the module does not have (a typo)
/// lists the collections it has.
#[test]
fn a_failure_at_a_missing_collection_lists_the_collections_there_are() {
    let failure = failure_alone("mod-test-typo-1.0.0");
    assert_eq!(failure.collection.as_deref(), Some("itmes"));
    assert!(
        failure
            .message
            .contains("mod-test-typo has no collection itmes; its collections: items"),
        "{failure:?}"
    );
}

/// Write-behind: a batch the runner refuses (a record that is not a JSON
/// object) fails the step, naming the record, whether the plugin hears the
/// error at its next batch or never asks; the tenant is left exactly as it
/// was.
#[test]
fn a_write_behind_error_at_record_n_leaves_the_tenant_as_it_was() {
    let (_modules, runner, before) = with_mod_users("mod-test-behind-fail-1.0.0");
    for (extra, expected) in [
        (None, "invalid document"),
        (Some("neverFlush"), "write-behind batch failed"),
    ] {
        let mut parameters = vec![("failAtRecord".to_string(), "item-00437".to_string())];
        parameters.extend(extra.map(|p| (p.to_string(), "yes".to_string())));
        let options = InstallOptions {
            parameters,
            ..InstallOptions::default()
        };
        let failure = failure_of(&runner, "mod-test-behind-fail-1.0.0", &options);
        assert_eq!(
            failure.kind,
            graft::host::FailureKind::Failed,
            "{failure:?}"
        );
        let text = format!("{failure:?}");
        assert!(
            text.contains(expected) && text.contains("item-00437"),
            "{text}"
        );
        assert_eq!(runner.dump("diku"), before, "{extra:?}");
    }
    // Without a bad record the same plugin commits every rewritten item.
    let fine = InstallOptions {
        parameters: vec![("failAtRecord".into(), "none".into())],
        ..InstallOptions::default()
    };
    let report = runner.install_ok("diku", &["mod-test-behind-fail-1.0.0"], &fine);
    assert_eq!(report.modules[0].steps[1].writes.inserted, 1000);
    let dump = runner.dump("diku");
    assert_eq!(dump.state["mod-test-behind-fail"]["rewrite"], "started");
    let items = &dump.collections["mod-test-behind-fail"]["items"].records;
    assert_eq!(items.len(), 1000);
    assert!(items.values().all(|item| item["rewritten"] == json!(true)));
}

/// The same mod-users source built for each contract: its 0.2 build goes
/// through the sample lifecycle (install with data, upgrade step by step
/// and at once, reapply, downgrade) leaving exactly what the 0.1 build
/// leaves after every step, and validates against the repository's
/// fixtures as the 0.1 build does.
#[test]
fn a_0_2_build_of_mod_users_passes_the_0_1_builds_lifecycle() {
    let names = ["mod-users-1.0.0", "mod-users-1.1.0", "mod-users-2.0.0"];
    let old_modules = modules_folder(&names);
    let new_modules = contract_0_2_folder(&names);
    let old = TestRunner::new(old_modules.path());
    let mut new = TestRunner::new(new_modules.path());
    let (packages, _) = new.graft.packages().unwrap();
    assert!(packages.iter().all(|p| new.graft.contract_of(p) == "0.2.0"));
    let reinstall = InstallOptions {
        reinstall: true,
        ..InstallOptions::default()
    };
    let steps: [(&str, &[&str], InstallOptions); 6] = [
        ("install", &["mod-users-1.0.0"], with_data(200)),
        ("upgrade", &["mod-users-1.1.0"], InstallOptions::default()),
        ("upgrade", &["mod-users-2.0.0"], InstallOptions::default()),
        ("reapply", &["mod-users-2.0.0"], reinstall),
        ("downgrade", &["mod-users-1.1.0"], InstallOptions::default()),
        (
            "upgrade at once",
            &["mod-users-2.0.0"],
            InstallOptions::default(),
        ),
    ];
    for runner in [&old, &new] {
        runner.tenant("diku");
    }
    for (what, ids, options) in &steps {
        let reports: Vec<_> = [&old, &new]
            .iter()
            .map(|runner| outcomes(&runner.install_ok("diku", ids, options)))
            .collect();
        assert_eq!(reports[0], reports[1], "{what}");
        assert!(
            old.data("diku") == new.data("diku"),
            "{what}: the data differ"
        );
    }
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let package = new_modules.path().join("mod-users-2.0.0");
    let validation = new
        .graft
        .validate(
            &package,
            std::path::Path::new(fixtures),
            Some(new_modules.path().into()),
            None,
            true,
        )
        .unwrap();
    let report = serde_json::to_string_pretty(&validation).unwrap();
    assert!(validation.ok, "{report}");
    assert!(report.contains("graft:migration@0.2.0"), "{report}");
}
