//! Plugins that fail or misbehave: each ends in a clean failed step with the
//! reason, the tenant's storage exactly as before, and the next run fine.

use graft::host::FailureKind;
use graft::install::ModuleStatus;
use graft::test_support::{modules_folder, with_data, TestRunner};
use graft::{InstallOptions, TenantReport};
use tempfile::TempDir;

const HOSTILE: [&str; 8] = [
    "mod-test-endless-loop-1.0.0",
    "mod-test-memory-bomb-1.0.0",
    "mod-test-read-host-file-1.0.0",
    "mod-test-write-data-folder-1.0.0",
    "mod-test-panic-1.0.0",
    "mod-test-log-flood-1.0.0",
    "mod-test-fail-at-record-2.0.0",
    "mod-test-snoop-1.0.0",
];

fn runner() -> (TestRunner, TempDir) {
    let mut packages = vec![
        "mod-users-1.0.0",
        "mod-test-fail-at-record-1.0.0",
        "mod-test-probe-sandbox-1.0.0",
    ];
    packages.extend(HOSTILE);
    let modules = modules_folder(&packages);
    (TestRunner::new(modules.path()), modules)
}

/// Run a misbehaving module on a tenant that has mod-users with data, and
/// check that the step failed and the tenant is exactly as before.
fn run_failing(runner: &TestRunner, tenant: &str, module: &str) -> TenantReport {
    runner.tenant(tenant);
    runner.install_ok(tenant, &["mod-users-1.0.0"], &with_data(200));
    let before = runner.dump(tenant);
    let report = runner
        .install(tenant, &[module], &InstallOptions::default())
        .unwrap();
    assert!(!report.ok, "{module} should fail");
    assert_eq!(report.modules[0].status, ModuleStatus::RolledBack);
    assert_eq!(
        runner.dump(tenant),
        before,
        "{module} left the tenant changed"
    );
    report
}

fn failure(report: &TenantReport) -> &graft::install::FailureReport {
    report.modules[0].failure.as_ref().unwrap()
}

#[test]
fn endless_loop_stops_at_the_deadline() {
    let (runner, _modules) = runner();
    let report = run_failing(&runner, "t1", "mod-test-endless-loop-1.0.0");
    let f = failure(&report);
    assert_eq!(f.failure.kind, FailureKind::Timeout);
    assert!(
        f.failure.message.contains("deadline of 1.0 s"),
        "{}",
        f.failure.message
    );
    assert_eq!((f.tenant.as_str(), f.step.as_str()), ("t1", "upgrade"));
}

#[test]
fn memory_bomb_stops_at_the_memory_limit() {
    let (runner, _modules) = runner();
    let report = run_failing(&runner, "t1", "mod-test-memory-bomb-1.0.0");
    let f = failure(&report);
    assert_eq!(f.failure.kind, FailureKind::Memory, "{}", f.failure);
    assert!(
        f.failure.message.contains("64 MiB"),
        "{}",
        f.failure.message
    );
    assert!(
        report.modules[0]
            .steps
            .last()
            .unwrap()
            .usage
            .peak_memory_bytes
            <= 64 << 20
    );
}

#[test]
fn host_files_are_out_of_reach() {
    let (runner, _modules) = runner();
    let report = run_failing(&runner, "t1", "mod-test-read-host-file-1.0.0");
    let f = failure(&report);
    assert_eq!(f.failure.kind, FailureKind::Failed);
    assert!(
        f.failure.message.starts_with("cannot read /etc/passwd"),
        "{}",
        f.failure.message
    );
}

#[test]
fn data_folder_is_read_only() {
    let (runner, modules) = runner();
    let report = run_failing(&runner, "t1", "mod-test-write-data-folder-1.0.0");
    let f = failure(&report);
    assert_eq!(f.failure.kind, FailureKind::Failed);
    // The folder is visible (the plugin may read its data) but not writable.
    assert!(
        f.failure.message.contains("folder readable: true"),
        "{}",
        f.failure.message
    );
    assert!(
        f.failure
            .message
            .starts_with("cannot write /reference-data/items/evil.json"),
        "{}",
        f.failure.message
    );
    let folder = modules
        .path()
        .join("mod-test-write-data-folder-1.0.0/reference-data/items");
    assert!(!folder.join("evil.json").exists());
}

#[test]
fn panic_becomes_failed_with_its_message() {
    let (runner, _modules) = runner();
    let report = run_failing(&runner, "t1", "mod-test-panic-1.0.0");
    let f = failure(&report);
    assert_eq!(f.failure.kind, FailureKind::Panic);
    assert!(
        f.failure.message.contains("record item-00042 has no code"),
        "{}",
        f.failure.message
    );
    // The plugin's backtrace names its functions, down to the panicking one.
    assert!(
        f.failure
            .backtrace
            .iter()
            .any(|frame| frame.contains("misbehave")),
        "{:?}",
        f.failure.backtrace
    );
}

#[test]
fn failure_at_a_record_rolls_back_everything_and_names_the_record() {
    let (runner, _modules) = runner();
    runner.tenant("t1");
    runner.install_ok("t1", &["mod-users-1.0.0"], &with_data(200));
    runner.install_ok(
        "t1",
        &["mod-test-fail-at-record-1.0.0"],
        &InstallOptions::default(),
    );
    let before = runner.dump("t1");
    let options = InstallOptions {
        parameters: vec![("failAtRecord".into(), "700".into())],
        ..InstallOptions::default()
    };
    let report = runner
        .install("t1", &["mod-test-fail-at-record-2.0.0"], &options)
        .unwrap();
    assert!(!report.ok);
    let f = failure(&report);
    assert_eq!(f.tenant, "t1");
    assert_eq!(f.module, "mod-test-fail-at-record-2.0.0");
    assert_eq!(f.step, "upgrade");
    assert_eq!(f.failure.collection.as_deref(), Some("items"));
    assert_eq!(f.failure.record_id.as_deref(), Some("item-00700"));
    assert!(f.failure.message.contains("code is malformed"));
    // 700 records were rewritten and audited, a collection and indexes made: all undone.
    assert!(report.modules[0].steps.last().unwrap().writes.updated >= 700);
    assert_eq!(runner.dump("t1"), before);
    // The failure is in the journal, outside the tenant's database.
    let journal = runner.graft.journal().for_tenant("t1").unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].failure.record_id.as_deref(), Some("item-00700"));
}

#[test]
fn log_flood_is_truncated_not_fatal() {
    let (runner, _modules) = runner();
    runner.tenant("t1");
    let report = runner.install_ok(
        "t1",
        &["mod-test-log-flood-1.0.0"],
        &InstallOptions::default(),
    );
    let upgrade = report.modules[0]
        .steps
        .iter()
        .find(|s| s.step == "upgrade")
        .unwrap();
    assert_eq!(upgrade.outcome, "created");
    let log = &upgrade.log;
    let kept: usize = log.lines.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 65536, "kept {kept} bytes of log");
    assert!(log.dropped_lines > 90_000, "dropped {}", log.dropped_lines);
    assert!(
        log.dropped_bytes > 100_000_000,
        "dropped {} bytes",
        log.dropped_bytes
    );
}

#[test]
fn a_failed_module_stops_the_tenant_and_others_are_unaffected() {
    let (runner, _modules) = runner();
    runner.tenant("first");
    let report = runner
        .install(
            "first",
            &["mod-test-panic-1.0.0", "mod-users-1.0.0"],
            &InstallOptions::default(),
        )
        .unwrap();
    assert_eq!(report.modules[0].status, ModuleStatus::RolledBack);
    assert_eq!(report.modules[1].status, ModuleStatus::NotRun);
    assert!(runner.dump("first").modules.is_empty());
    // Every kind of misbehaviour in turn, then a healthy install on the same host.
    for (n, module) in HOSTILE
        .iter()
        .filter(|m| !m.contains("log-flood"))
        .enumerate()
    {
        run_failing(&runner, &format!("h{n}"), module);
    }
    runner.tenant("next");
    let report = runner.install_ok("next", &["mod-users-1.0.0"], &with_data(50));
    assert!(report.ok);
    assert_eq!(
        runner.dump("next").collections["mod-users"]["users"]
            .records
            .len(),
        50
    );
}

#[test]
fn fuel_limit_stops_a_plugin() {
    let modules = modules_folder(&["mod-users-1.0.0", "mod-test-endless-loop-1.0.0"]);
    let limits = graft::Limits {
        fuel: Some(50_000_000),
        ..graft::Limits::default()
    };
    let runner = TestRunner::with_limits(modules.path(), limits);
    let report = run_failing(&runner, "t1", "mod-test-endless-loop-1.0.0");
    assert_eq!(failure(&report).failure.kind, FailureKind::Fuel);
}

#[test]
fn a_plugin_sees_only_its_own_collections() {
    let (runner, _modules) = runner();
    let report = run_failing(&runner, "t1", "mod-test-snoop-1.0.0");
    let f = failure(&report);
    assert_eq!(f.failure.kind, FailureKind::Failed);
    assert!(
        f.failure.message.contains("no collection users"),
        "{}",
        f.failure.message
    );
    assert!(
        f.failure.message.contains(r#"visible: ["items"]"#),
        "{}",
        f.failure.message
    );
}

#[test]
fn no_environment_no_network_no_host_file_system() {
    let (runner, _modules) = runner();
    let report = run_failing(&runner, "t1", "mod-test-probe-sandbox-1.0.0");
    let message = &failure(&report).failure.message;
    assert!(message.contains("env=[] args=[]"), "{message}");
    assert!(message.contains("tcp=refused"), "{message}");
    assert!(message.contains("dns=refused"), "{message}");
    assert!(message.contains("root=Err"), "{message}");
}

/// Counting instructions is compiled into a plugin's code and slows it down,
/// so only calls with a fuel limit, or a host told to count (validate),
/// count them; the others still have their deadline.
#[test]
fn instructions_are_counted_where_limited_or_asked_for() {
    let fuel_of = |runner: &TestRunner| -> Vec<Option<u64>> {
        runner.tenant("t1");
        let report = runner.install_ok("t1", &["mod-users-1.1.0"], &InstallOptions::default());
        report.modules[0]
            .steps
            .iter()
            .map(|s| s.usage.fuel)
            .collect()
    };
    let sample = graft_sample_modules::sample_modules_dir();
    let plain = fuel_of(&TestRunner::new(sample));
    assert!(!plain.is_empty());
    assert!(plain.iter().all(Option::is_none), "{plain:?}");

    let limits = graft::Limits {
        fuel: Some(u64::MAX / 2),
        ..graft::Limits::default()
    };
    let limited = fuel_of(&TestRunner::with_limits(sample, limits));
    assert!(
        limited.iter().all(|f| f.is_some_and(|f| f > 0)),
        "{limited:?}"
    );

    let mut counting = TestRunner::new(sample);
    counting.graft.count_fuel();
    let counted = fuel_of(&counting);
    assert_eq!(counted.len(), limited.len());
    assert!(
        counted.iter().all(|f| f.is_some_and(|f| f > 0)),
        "{counted:?}"
    );
}
