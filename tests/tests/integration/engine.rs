//! The install engine as operators run it: install lists, simulation,
//! atomic jobs, inspect, the change log, warnings, disable and purge, locks
//! and many tenants.

use graft::changelog::{Op, SAMPLES};
use graft::fanout::Fanout;
use graft::host::FailureKind;
use graft::install::{CommitMode, Job, ModuleStatus};
use graft::plan::{PlanAction, Request, Stage};
use graft::storage::EnabledModule;
use graft::test_support::{modules_folder, with_data, TestRunner};
use graft::InstallOptions;
use serde_json::json;
use std::path::Path;

fn install_list(release: &str) -> Vec<Request> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/platform-complete")
        .join(format!("install-{release}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A platform's install list names modules Graft has no package of.
fn platform_list() -> InstallOptions {
    InstallOptions {
        allow_unmanaged: true,
        ..InstallOptions::default()
    }
}

#[test]
fn real_install_lists_plan_against_the_sample_packages() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    for release in ["R2-2023-GA", "R1-2024-GA", "R2-2024-GA"] {
        let list = install_list(release);
        assert!(list.len() >= 140, "{release}");
        let options = InstallOptions {
            simulate: true,
            allow_unmanaged: true,
            ..InstallOptions::default()
        };
        let report = runner
            .graft
            .run("diku", &Job::InstallList(list.clone()), &options)
            .unwrap();
        assert!(report.ok);
        // Every entry is in the plan, none dropped; none has a package here.
        let planned: Vec<&str> = report.plan.iter().map(|e| e.id.as_str()).collect();
        let listed: Vec<&str> = list.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(planned, listed, "{release}");
        assert!(
            report.plan.iter().all(|e| e.stage == Stage::NotManaged),
            "{release}"
        );
        assert!(report.plan[0]
            .message
            .as_deref()
            .unwrap()
            .contains("not managed by Graft"));
    }
}

#[test]
fn upgrade_from_r1_2024_to_r2_2024_where_packages_exist() {
    let modules = modules_folder(&[
        "mod-users-19.3.1",
        "mod-users-19.4.5",
        "mod-users-bl-7.7.3",
        "mod-users-bl-7.9.3",
    ]);
    let runner = TestRunner::new(modules.path());
    runner.tenant("diku");
    let r1 = runner
        .graft
        .run(
            "diku",
            &Job::InstallList(install_list("R1-2024-GA")),
            &platform_list(),
        )
        .unwrap();
    assert!(r1.ok);
    let done: Vec<&str> = r1
        .plan
        .iter()
        .filter(|e| e.stage == Stage::Done)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(done, ["mod-users-19.3.1", "mod-users-bl-7.7.3"]);
    assert_eq!(r1.plan.len(), 148);

    let r2 = runner
        .graft
        .run(
            "diku",
            &Job::InstallList(install_list("R2-2024-GA")),
            &platform_list(),
        )
        .unwrap();
    assert!(r2.ok, "{:?}", r2.failure());
    let upgraded: Vec<(&str, Option<&str>)> = r2
        .plan
        .iter()
        .filter(|e| e.stage == Stage::Done)
        .map(|e| (e.id.as_str(), e.from.as_deref()))
        .collect();
    // The provider of `users` first, then the module that requires it.
    assert_eq!(
        upgraded,
        [
            ("mod-users-19.4.5", Some("mod-users-19.3.1")),
            ("mod-users-bl-7.9.3", Some("mod-users-bl-7.7.3"))
        ]
    );
    assert_eq!(r2.plan.len(), 152);
    assert_eq!(
        r2.plan
            .iter()
            .filter(|e| e.stage == Stage::NotManaged)
            .count(),
        150
    );
    let modules: Vec<String> = runner
        .dump("diku")
        .modules
        .into_iter()
        .map(|m| m.module_id)
        .collect();
    assert_eq!(modules, ["mod-users-19.4.5", "mod-users-bl-7.9.3"]);
}

#[test]
fn simulation_writes_nothing_and_reports_the_real_changes() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(500));
    let before = runner.state_hash("diku");
    let dump = runner.dump("diku");

    let job = Job::enable(&[graft::ModuleId::parse("mod-users-2.0.0").unwrap()]);
    let simulate = InstallOptions {
        simulate: true,
        ..with_data(500)
    };
    let simulated = runner.graft.run("diku", &job, &simulate).unwrap();
    assert!(simulated.ok && simulated.simulated);
    assert_eq!(simulated.modules[0].status, ModuleStatus::Simulated);
    assert_eq!(
        runner.state_hash("diku"),
        before,
        "a simulation changed the database file"
    );
    assert_eq!(runner.dump("diku"), dump);

    let real = runner.graft.run("diku", &job, &with_data(500)).unwrap();
    assert!(real.ok);
    assert_eq!(simulated.changes(), real.changes());
    let users = real
        .changes()
        .into_iter()
        .find(|c| c.collection == "users")
        .unwrap();
    assert_eq!(
        users.updated, 1000,
        "500 by the set-based update, 500 rewritten"
    );
    assert_ne!(runner.state_hash("diku"), before);
}

#[test]
fn an_atomic_job_commits_all_modules_or_none() {
    let modules = modules_folder(&[
        "mod-users-1.0.0",
        "mod-users-1.1.0",
        "mod-test-panic-1.0.0",
        "mod-test-fail-at-record-1.0.0",
    ]);
    let runner = TestRunner::new(modules.path());
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(100));
    let before = runner.dump("diku");
    let ids = [
        "mod-users-1.1.0",
        "mod-test-panic-1.0.0",
        "mod-test-fail-at-record-1.0.0",
    ];
    let report = runner
        .install("diku", &ids, &InstallOptions::default())
        .unwrap();
    assert!(!report.ok);
    let statuses: Vec<ModuleStatus> = report.modules.iter().map(|m| m.status).collect();
    assert_eq!(
        statuses,
        [
            ModuleStatus::RolledBack,
            ModuleStatus::RolledBack,
            ModuleStatus::NotRun
        ]
    );
    let stages: Vec<Stage> = report.plan.iter().map(|e| e.stage).collect();
    assert_eq!(stages, [Stage::RolledBack, Stage::Failed, Stage::NotRun]);
    let failure = report.failure().unwrap();
    assert_eq!(
        (failure.module.as_str(), failure.step.as_str()),
        ("mod-test-panic-1.0.0", "upgrade")
    );
    assert_eq!(failure.failure.kind, FailureKind::Panic);
    assert_eq!(runner.dump("diku"), before);

    // Module by module, the first stays committed.
    let per_module = InstallOptions {
        commit: CommitMode::PerModule,
        ..InstallOptions::default()
    };
    let report = runner.install("diku", &ids, &per_module).unwrap();
    let statuses: Vec<ModuleStatus> = report.modules.iter().map(|m| m.status).collect();
    assert_eq!(
        statuses,
        [
            ModuleStatus::Committed,
            ModuleStatus::RolledBack,
            ModuleStatus::NotRun
        ]
    );
    let enabled: Vec<String> = runner
        .dump("diku")
        .modules
        .into_iter()
        .map(|m| m.module_id)
        .collect();
    assert_eq!(enabled, ["mod-users-1.1.0"]);

    // Okapi's ignoreErrors: a failed module does not stop the ones after it.
    runner.tenant("east");
    runner.install_ok("east", &["mod-users-1.0.0"], &with_data(100));
    let ignoring = InstallOptions {
        commit: CommitMode::PerModule,
        ignore_errors: true,
        ..InstallOptions::default()
    };
    let report = runner.install("east", &ids, &ignoring).unwrap();
    assert!(!report.ok, "a failure is still a failure");
    let statuses: Vec<ModuleStatus> = report.modules.iter().map(|m| m.status).collect();
    assert_eq!(
        statuses[..2],
        [ModuleStatus::Committed, ModuleStatus::RolledBack]
    );
    assert_ne!(
        statuses[2],
        ModuleStatus::NotRun,
        "the module after the failure ran"
    );
    // In one transaction there is nothing to go on with: refused up front.
    let atomic = InstallOptions {
        ignore_errors: true,
        ..InstallOptions::default()
    };
    let error = runner.install("east", &ids, &atomic).unwrap_err();
    assert!(format!("{error:#}").contains("--ignore-errors needs --commit per-module"));
}

#[test]
fn install_lists_name_only_modules_graft_knows_unless_allowed() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    let list = install_list("R1-2024-GA");
    let error = runner
        .graft
        .run("diku", &Job::InstallList(list), &InstallOptions::default())
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("--allow-unmanaged"), "{message}");
    assert!(message.contains("unknown module"), "{message}");
    assert!(runner.dump("diku").modules.is_empty(), "nothing written");
}

#[test]
fn when_storage_disagrees_with_the_record_the_data_wins() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.1.0"], &with_data(50));
    // As after a restored backup: the record says 1.0.0, the data is 1.1.0.
    let mut db = runner.graft.tenants().open("diku").unwrap();
    let mut module: EnabledModule = db.modules().unwrap().remove(0);
    module.module_id = "mod-users-1.0.0".into();
    db.set_module(&module).unwrap();
    drop(db);
    let report = runner.install_ok("diku", &["mod-users-2.0.0"], &InstallOptions::default());
    let module = &report.modules[0];
    assert_eq!(module.stored.as_deref(), Some("release 1.1.0"));
    assert_eq!(
        module.discrepancy.as_deref(),
        Some("storage holds mod-users-1.1.0 but mod-users-1.0.0 is recorded: the data wins")
    );
    let dump = runner.dump("diku");
    assert_eq!(
        dump.history
            .iter()
            .find(|h| h.step == "inspect" && h.module_to == "mod-users-2.0.0")
            .unwrap()
            .detail,
        module.discrepancy
    );
    let user = dump.collections["mod-users"]["users"]
        .records
        .values()
        .next()
        .unwrap()
        .clone();
    assert!(user.get("contact").is_some() && user.get("personal").is_none());
}

#[test]
fn the_change_log_keeps_counts_and_records_before_and_after() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(200));
    let report = runner.install_ok("diku", &["mod-users-2.0.0"], &InstallOptions::default());
    let mut db = runner.graft.tenants().open("diku").unwrap();
    let jobs = db.jobs().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1].job_id, report.job_id);
    assert_eq!(jobs[1].plan[0]["stage"], "done");
    let saved = graft::changelog::job_changes(&mut *db, &report.job_id).unwrap();
    assert_eq!(saved.iter().collect::<Vec<_>>(), report.changes());
    let users = saved.iter().find(|c| c.collection == "users").unwrap();
    assert_eq!((users.inserted, users.updated, users.deleted), (0, 400, 0));
    assert!(users.schema.contains(
        &r#"set-based update: set type = "patron" where missing (200 records)"#.to_string()
    ));
    assert!(users.schema.contains(&"drop index users-email".to_string()));
    assert!(users
        .schema
        .contains(&"create index users-contact-email on contact.email".to_string()));
    assert_eq!(users.samples.len(), SAMPLES);
    let sample = &users.samples[0];
    assert_eq!(sample.op, Op::Update);
    let (before, after) = (
        sample.before.as_ref().unwrap(),
        sample.after.as_ref().unwrap(),
    );
    assert!(before.get("personal").is_some() && before["type"] == json!("patron"));
    assert!(after.get("name").is_some() && after.get("personal").is_none());

    let first = graft::changelog::job_changes(&mut *db, &jobs[0].job_id).unwrap();
    let users = first.iter().find(|c| c.collection == "users").unwrap();
    assert_eq!(users.inserted, 200);
    assert_eq!(users.schema[0], "create collection");
    assert_eq!(users.samples[0].op, Op::Insert);
}

#[test]
fn record_warnings_over_the_limit_fail_the_module() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(0));
    let mut db = runner.graft.tenants().open("diku").unwrap();
    db.put(
        "mod-users",
        "addresstypes",
        "ours",
        r#"{"id":"ours","addressType":"Shipping"}"#,
    )
    .unwrap();
    drop(db);
    let before = runner.dump("diku");
    let strict = InstallOptions {
        max_warnings: Some(0),
        ..with_data(0)
    };
    let report = runner
        .install("diku", &["mod-users-1.1.0"], &strict)
        .unwrap();
    let failure = report.failure().unwrap();
    assert_eq!(failure.failure.kind, FailureKind::Warnings);
    assert_eq!(failure.step, "load-reference");
    assert_eq!(
        failure.failure.message,
        "1 record warnings, more than --max-warnings 0"
    );
    assert_eq!(runner.dump("diku"), before);
    let lenient = InstallOptions {
        max_warnings: Some(1),
        ..with_data(0)
    };
    assert!(
        runner
            .install("diku", &["mod-users-1.1.0"], &lenient)
            .unwrap()
            .ok
    );
}

#[test]
fn disable_keeps_the_data_and_purge_removes_it() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(30));
    let disable = Job::Modules(vec![Request {
        id: "mod-users".into(),
        action: graft::plan::RequestAction::Disable,
    }]);
    let report = runner
        .graft
        .run("diku", &disable, &InstallOptions::default())
        .unwrap();
    assert!(report.ok);
    assert_eq!(report.plan[0].action, PlanAction::Disable);
    let dump = runner.dump("diku");
    assert!(!dump.modules[0].enabled);
    assert_eq!(dump.collections["mod-users"]["users"].records.len(), 30);

    // Enabling again finds the data where it was.
    let report = runner.install_ok("diku", &["mod-users-1.0.0"], &InstallOptions::default());
    assert_eq!(report.modules[0].outcome_of("upgrade"), Some("unchanged"));

    let purge = InstallOptions {
        purge: true,
        ..InstallOptions::default()
    };
    let report = runner.graft.run("diku", &disable, &purge).unwrap();
    assert!(report.ok);
    let users = report
        .changes()
        .into_iter()
        .find(|c| c.collection == "users")
        .unwrap()
        .clone();
    assert_eq!(users.deleted, 30);
    let dump = runner.dump("diku");
    assert!(dump.modules.is_empty());
    assert!(dump.collections.is_empty());
}

#[test]
fn a_busy_tenant_is_refused_and_freed_when_its_runner_ends() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    let lock = runner.graft.tenants().lock("diku").unwrap();
    let error = runner
        .install("diku", &["mod-users-1.0.0"], &InstallOptions::default())
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("tenant diku busy: another graft runner"),
        "{error:#}"
    );
    assert!(runner.dump("diku").modules.is_empty());
    drop(lock);
    runner.install_ok("diku", &["mod-users-1.0.0"], &InstallOptions::default());
}

#[test]
fn many_tenants_in_parallel_behind_a_canary() {
    let modules = modules_folder(&["mod-users-1.0.0", "mod-users-2.0.0", "mod-test-panic-1.0.0"]);
    let runner = TestRunner::new(modules.path());
    let tenants: Vec<String> = (1..=6).map(|n| format!("t{n}")).collect();
    for tenant in &tenants {
        runner.tenant(tenant);
        runner.install_ok(tenant, &["mod-users-1.0.0"], &with_data(20));
    }
    let fanout = Fanout {
        tenants: tenants.clone(),
        canary: Some("t4".into()),
        parallel: 3,
        on_done: None,
    };
    let outcomes = runner
        .graft
        .run_many(&Job::UpgradeAll, &InstallOptions::default(), &fanout);
    let order: Vec<&str> = outcomes.iter().map(|o| o.tenant.as_str()).collect();
    assert_eq!(order, ["t4", "t1", "t2", "t3", "t5", "t6"]);
    assert!(outcomes.iter().all(|o| o.ok()));
    for tenant in &tenants {
        assert_eq!(runner.dump(tenant).modules[0].module_id, "mod-users-2.0.0");
    }

    // A canary that fails stops the others before they start.
    let panic = Job::enable(&[graft::ModuleId::parse("mod-test-panic-1.0.0").unwrap()]);
    let before = runner.dump("t2");
    let outcomes = runner
        .graft
        .run_many(&panic, &InstallOptions::default(), &fanout);
    assert_eq!(outcomes.len(), 1);
    assert!(!outcomes[0].ok());
    assert_eq!(runner.dump("t2"), before);
}

/// mod-notes 2.0.0 stamps each note with the wall clock and a random batch
/// number: the host fixes the first per job and seeds the second by tenant,
/// release and step.
#[test]
fn plugins_read_the_jobs_clock_and_seeded_random_numbers() {
    let modules = modules_folder(&["mod-notes-1.0.0", "mod-notes-2.0.0"]);
    let runner = TestRunner::new(modules.path());
    let sample = InstallOptions {
        load_sample: true,
        ..InstallOptions::default()
    };
    let pinned = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_790_000_000_123);
    let stamp = |tenant: &str| -> Vec<serde_json::Value> {
        let data = runner.data(tenant);
        data["mod-notes"]["notes"]["records"]
            .as_object()
            .unwrap()
            .values()
            .map(|note| note["migration"].clone())
            .collect()
    };
    for tenant in ["a", "b", "c"] {
        runner.tenant(tenant);
        runner.install_ok(tenant, &["mod-notes-1.0.0"], &sample);
    }
    let at = |clock| InstallOptions {
        clock,
        ..InstallOptions::default()
    };
    runner.install_ok("a", &["mod-notes-2.0.0"], &at(Some(pinned)));
    runner.install_ok("b", &["mod-notes-2.0.0"], &at(Some(pinned)));
    let before = std::time::SystemTime::now();
    runner.install_ok("c", &["mod-notes-2.0.0"], &at(None));
    let after = std::time::SystemTime::now();

    let (a, b, c) = (stamp("a"), stamp("b"), stamp("c"));
    assert_eq!(a.len(), 5);
    // One clock for the whole job, the pinned one.
    assert!(
        a.iter()
            .all(|m| m["atMillis"] == json!(1_790_000_000_123u64)),
        "{a:?}"
    );
    // Seeded by tenant: a and b read the same clock but draw differently.
    assert!(a.iter().all(|m| m == &a[0]));
    assert_ne!(a[0]["batch"], b[0]["batch"]);
    // Unpinned: the job's start, read by every call of the job.
    let millis = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    };
    let stamped = c[0]["atMillis"].as_u64().unwrap();
    assert!(
        millis(before) <= stamped && stamped <= millis(after),
        "{stamped}"
    );
    assert!(c.iter().all(|m| m == &c[0]));

    // The same tenant, release and step draw the same numbers again: a
    // rerun after a rollback writes what the first run wrote.
    let rerun = TestRunner::new(modules.path());
    rerun.tenant("a");
    rerun.install_ok("a", &["mod-notes-1.0.0"], &sample);
    rerun.install_ok("a", &["mod-notes-2.0.0"], &at(Some(pinned)));
    assert_eq!(rerun.data("a"), runner.data("a"));
}

/// Okapi's `uptodate`: a module already at the requested release is not run
/// again (no plugin, no history row), unless the job reinstalls it.
#[test]
fn modules_already_at_the_release_are_uptodate_and_not_run() {
    let runner = TestRunner::with_sample_modules();
    runner.tenant("diku");
    runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(20));
    let before = runner.dump("diku");

    let again = runner.install_ok("diku", &["mod-users-1.0.0"], &with_data(20));
    assert!(again.modules.is_empty(), "no module ran");
    assert_eq!(again.plan.len(), 1);
    assert_eq!(again.plan[0].action, PlanAction::Uptodate);
    assert_eq!(again.plan[0].stage, Stage::Done);
    let after = runner.dump("diku");
    assert_eq!(after.history, before.history, "no step ran");
    assert_eq!(after.collections, before.collections);

    let upgrade_all = runner
        .graft
        .run("diku", &Job::UpgradeAll, &InstallOptions::default())
        .unwrap();
    assert!(upgrade_all.ok);
    // mod-users' newest release is 2.0.0: the upgrade runs, then is uptodate.
    assert_eq!(upgrade_all.modules.len(), 1);
    let second = runner
        .graft
        .run("diku", &Job::UpgradeAll, &InstallOptions::default())
        .unwrap();
    assert!(second.modules.is_empty());
    assert!(second.plan.iter().all(|e| e.action == PlanAction::Uptodate));

    let reinstall = InstallOptions {
        reinstall: true,
        ..InstallOptions::default()
    };
    let forced = runner
        .graft
        .run("diku", &Job::UpgradeAll, &reinstall)
        .unwrap();
    assert_eq!(forced.modules.len(), 1, "--reinstall runs it again");
    assert_eq!(forced.modules[0].outcome_of("upgrade"), Some("unchanged"));
}
