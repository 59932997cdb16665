//! Install, upgrade, reapply and downgrade of the sample module mod-users,
//! with its real plugins.

use graft::install::{Action, ModuleStatus};
use graft::test_support::{with_data, TestRunner};
use graft::InstallOptions;
use serde_json::json;

fn outcomes(report: &graft::TenantReport) -> Vec<(String, String)> {
    report.modules[0]
        .steps
        .iter()
        .map(|s| (s.step.clone(), s.outcome.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn install_reapply_upgrade_and_downgrade() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");

    let report = runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(500));
    assert_eq!(report.modules[0].action, Action::Install);
    assert_eq!(
        outcomes(&report),
        pairs(&[
            ("inspect", "empty"),
            ("upgrade", "created"),
            ("load-reference", "created"),
            ("load-sample", "created")
        ])
    );
    let sample = &report.modules[0].steps[3];
    assert_eq!(sample.writes.inserted, 500);
    let reference = &report.modules[0].steps[2];
    assert_eq!(reference.writes.inserted, 8, "4 groups and 4 address types");
    let after_install = runner.data("diku");

    // The same release again, reinstalled: the plugin looks at the data and
    // changes nothing.
    let reinstall = InstallOptions {
        reinstall: true,
        ..with_data(500)
    };
    let report = runner.install_ok("diku", &["mod-users-1.0.0"], &reinstall);
    assert_eq!(report.modules[0].action, Action::Reapply);
    assert_eq!(
        outcomes(&report),
        pairs(&[
            ("inspect", "release 1.0.0"),
            ("upgrade", "unchanged"),
            ("load-reference", "unchanged"),
            ("load-sample", "unchanged")
        ])
    );
    assert!(report.modules[0]
        .steps
        .iter()
        .all(|s| s.writes.total() == 0));
    assert_eq!(runner.data("diku"), after_install);

    // The breaking upgrade, straight from 1.0.0 through 1.1.0 to 2.0.0.
    let report = runner.install_ok("diku", &["mod-users-2.0.0"], &InstallOptions::default());
    assert_eq!(
        outcomes(&report),
        pairs(&[("inspect", "release 1.0.0"), ("upgrade", "upgraded")])
    );
    let dump = runner.dump("diku");
    let users = &dump.collections["mod-users"]["users"];
    assert_eq!(users.records.len(), 500);
    let user = &users.records["5a3b1e00-0000-4000-8000-000000000001"];
    assert_eq!(user["type"], json!("patron"));
    assert_eq!(user["name"]["family"], json!("Garcia"));
    assert_eq!(user["contact"]["email"], json!("user1@example.org"));
    assert!(user.get("personal").is_none() && user.get("patronGroup").is_none());
    assert!(users
        .indexes
        .iter()
        .any(|i| i.name == "users-contact-email"));
    assert_eq!(dump.modules[0].module_id, "mod-users-2.0.0");

    // Downgrade 2.0.0 -> 1.1.0 with the 2.0.0 plugin's rollback: the data
    // equals a direct 1.1.0 install, record by record and index by index.
    // Reference data of 1.1.0 (it adds an address type) comes with it.
    let report = runner.install_ok("diku", &["mod-users-1.1.0"], &with_data(500));
    assert_eq!(report.modules[0].action, Action::Downgrade);
    assert_eq!(
        outcomes(&report),
        pairs(&[
            ("inspect", "release 2.0.0"),
            ("rollback", "downgraded"),
            ("load-reference", "upgraded"),
            ("load-sample", "unchanged")
        ])
    );
    runner.tenant("direct");
    runner.install_ok("direct", &["mod-users-1.1.0"], &with_data(500));
    assert_eq!(runner.data("diku"), runner.data("direct"));
    assert_eq!(runner.dump("diku").modules[0].module_id, "mod-users-1.1.0");
}

#[test]
fn stepwise_upgrades_equal_a_direct_install() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("stepwise");
    runner.tenant("direct");
    runner.install_ok("stepwise", &["mod-users-1.0.0"], &with_data(300));
    runner.install_ok("stepwise", &["mod-users-1.1.0"], &with_data(300));
    runner.install_ok("stepwise", &["mod-users-2.0.0"], &with_data(300));
    runner.install_ok("direct", &["mod-users-2.0.0"], &with_data(300));
    // The vendor's change to a group the tenant never touched (2.0.0 gives
    // graduates 730 days) reaches the stepwise tenant too.
    assert_eq!(runner.data("stepwise"), runner.data("direct"));
    let graduate = "ad0bc554-d5bc-463c-85d1-5562127ae91b";
    let groups = &runner.dump("stepwise").collections["mod-users"]["groups"];
    assert_eq!(
        groups.records[graduate]["expirationOffsetInDays"],
        json!(730)
    );
}

#[test]
fn reference_data_never_overwrites_the_tenant() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(0));
    // The tenant edits a vendor group and adds an address type of its own
    // that has the name the vendor adds in 1.1.0.
    let mut db = runner.graft.tenants().open("diku").unwrap();
    let staff = "3684a786-6671-4268-8ed0-9db82ebca60b";
    db.put(
        "mod-users",
        "groups",
        staff,
        r#"{"id":"3684a786-6671-4268-8ed0-9db82ebca60b","group":"staff","desc":"Our staff"}"#,
    )
    .unwrap();
    db.put(
        "mod-users",
        "addresstypes",
        "tenant-shipping",
        r#"{"id":"tenant-shipping","addressType":"Shipping","desc":"Ours"}"#,
    )
    .unwrap();
    drop(db);

    let report = runner.install_ok("diku", &["mod-users-1.1.0"], &with_data(0));
    let load = report.modules[0]
        .steps
        .iter()
        .find(|s| s.step == "load-reference")
        .unwrap();
    assert_eq!(
        load.writes.total(),
        0,
        "nothing of the tenant's is overwritten"
    );
    assert_eq!(load.warnings, 1, "the colliding vendor record is reported");
    let notes: Vec<_> = load.overlay.iter().flat_map(|o| &o.notes).collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].record_id, "b6f4d1c6-0dfa-463c-9534-f49c4f0ae090");
    assert_eq!(notes[0].what, "skipped");
    assert!(
        notes[0].detail.contains("addresstypes-addressType"),
        "{notes:?}"
    );
    let dump = runner.dump("diku");
    assert_eq!(
        dump.collections["mod-users"]["groups"].records[staff]["desc"],
        json!("Our staff")
    );
    assert_eq!(
        dump.collections["mod-users"]["addresstypes"].records["tenant-shipping"]["desc"],
        json!("Ours")
    );
}

#[test]
fn history_records_every_step_with_the_plugin_hash() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(10));
    runner.install_ok("diku", &["mod-users-2.0.0"], &InstallOptions::default());
    let history = runner.dump("diku").history;
    let steps: Vec<(&str, &str)> = history
        .iter()
        .map(|h| (h.module_to.as_str(), h.step.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("mod-users-1.0.0", "inspect"),
            ("mod-users-1.0.0", "upgrade"),
            ("mod-users-1.0.0", "load-reference"),
            ("mod-users-1.0.0", "load-sample"),
            ("mod-users-2.0.0", "inspect"),
            ("mod-users-2.0.0", "upgrade"),
        ]
    );
    assert!(history.iter().all(|h| h.plugin_sha256.len() == 64));
    assert_ne!(history[0].plugin_sha256, history[5].plugin_sha256);
    assert_eq!(history[3].inserted, 10);
    assert_eq!(history[5].module_from.as_deref(), Some("mod-users-1.0.0"));
}

#[test]
fn downgrade_to_a_release_the_plugin_cannot_reach_is_refused_up_front() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-2.0.0"], &with_data(5));
    let before = runner.dump("diku");
    let error = runner
        .install("diku", &["mod-users-1.0.0"], &InstallOptions::default())
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("can roll back to 1.1.0"),
        "{error:#}"
    );
    assert_eq!(runner.dump("diku"), before);
    let reinstall = InstallOptions {
        reinstall: true,
        ..InstallOptions::default()
    };
    let report = runner.install_ok("diku", &["mod-users-2.0.0"], &reinstall);
    assert_eq!(report.modules[0].status, ModuleStatus::Committed);
}

#[test]
fn compiled_plugins_are_cached_and_reused() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.tenant("east");
    runner.install_ok("diku", &["mod-users-1.0.0"], &InstallOptions::default());
    runner.install_ok("east", &["mod-users-1.0.0"], &InstallOptions::default());
    let cache = runner.graft.data_dir().join("cache");
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let modified = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();
    // A second runner on the same data directory loads the compiled code
    // (the release is reinstalled, so that its plugin runs).
    let reopen = || runner.reopen(graft_sample_modules::sample_modules_dir());
    let ids = [graft::ModuleId::parse("mod-users-1.0.0").unwrap()];
    let reinstall = InstallOptions {
        reinstall: true,
        ..InstallOptions::default()
    };
    assert!(reopen().install("diku", &ids, &reinstall).unwrap().ok);
    assert_eq!(
        std::fs::metadata(&cached[0]).unwrap().modified().unwrap(),
        modified
    );
    // A corrupt cache entry is ignored and rewritten, never fatal.
    std::fs::write(&cached[0], b"garbage").unwrap();
    assert!(reopen().install("diku", &ids, &reinstall).unwrap().ok);
    assert!(std::fs::metadata(&cached[0]).unwrap().len() > 1000);
}

/// Users of shapes the generator never makes: the breaking upgrade and its
/// rollback keep every field, and give back exactly the records they got.
#[test]
fn rollback_restores_users_of_any_shape_exactly() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.1.0"], &with_data(3));
    let odd = [
        json!({"id": "odd-1", "username": "x1", "patronGroup": "g", "custom": {"a": [1, 2]},
               "personal": {"lastName": "L", "middleName": "M", "preferredContactTypeId": "002"}}),
        json!({"id": "odd-2", "username": "x2"}),
        json!({"id": "odd-3", "username": "x3", "personal": {}}),
        json!({"id": "odd-4", "username": "x4", "personal": {"email": "e@x", "firstName": "Ünï"}}),
    ];
    let mut db = runner.graft.tenants().open("diku").unwrap();
    for user in &odd {
        db.put(
            "mod-users",
            "users",
            user["id"].as_str().unwrap(),
            &user.to_string(),
        )
        .unwrap();
    }
    drop(db);
    let before = runner.dump("diku").collections;

    runner.install_ok("diku", &["mod-users-2.0.0"], &InstallOptions::default());
    let users = runner.dump("diku").collections["mod-users"]["users"]
        .records
        .clone();
    assert_eq!(
        users["odd-1"]["name"],
        json!({"family": "L", "middleName": "M", "preferredContactTypeId": "002"})
    );
    assert_eq!(users["odd-1"]["groupId"], json!("g"));
    assert!(users["odd-1"].get("contact").is_none());
    assert_eq!(users["odd-2"], json!({"id": "odd-2", "username": "x2"}));
    assert_eq!(users["odd-3"]["name"], json!({}));
    assert_eq!(users["odd-4"]["contact"], json!({"email": "e@x"}));

    runner.install_ok("diku", &["mod-users-1.1.0"], &InstallOptions::default());
    assert_eq!(runner.dump("diku").collections, before);
}

/// A record the 2.0.0 upgrade cannot migrate fails the step, names the
/// record, and leaves the tenant exactly as it was.
#[test]
fn real_plugin_failing_at_a_record_names_it_and_changes_nothing() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.1.0"], &with_data(2000));
    // Ids sort after the generated users, so 2,000 records are rewritten first.
    let mut db = runner.graft.tenants().open("diku").unwrap();
    db.put(
        "mod-users",
        "users",
        "zz-broken",
        r#"{"id":"zz-broken","username":"zz","name":"already 2.0.0?"}"#,
    )
    .unwrap();
    drop(db);
    let before = runner.dump("diku");
    let report = runner
        .install("diku", &["mod-users-2.0.0"], &InstallOptions::default())
        .unwrap();
    assert!(!report.ok);
    let failure = report.modules[0].failure.as_ref().unwrap();
    assert_eq!(failure.to_string(), "tenant diku, module mod-users-2.0.0, step upgrade: failed: a 1.1.0 user must not have the 2.0.0 field \"name\" (collection users, record zz-broken)");
    assert!(report.modules[0].steps.last().unwrap().writes.updated >= 2000);
    assert_eq!(runner.dump("diku"), before);
}
