//! The `graft` command as operators and CI meet it: exit codes, one-line
//! errors, JSON output.

use crate::common::{assert_clean_error, command, database_for, graft, json, open_tenant, stderr};
use tempfile::TempDir;

/// A reader that stops early (`graft ... | head`) ends graft quietly, as
/// it ends other tools: no panic about a failed print.
#[test]
fn a_closed_stdout_is_no_panic() {
    let data = TempDir::new().unwrap();
    for args in [
        vec!["--help"],
        vec!["wit"],
        vec!["modules", "list"],
        vec!["new", "mod-piped", "--lang", "js", "--dir"],
    ] {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if args[0] == "new" {
            args.push(data.path().join("piped").to_string_lossy().into_owned());
        }
        let mut child = command(data.path())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before graft writes a line.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let text = stderr(&output);
        assert!(
            !text.contains("panicked") && !text.contains("Broken pipe"),
            "graft {args:?}: {text}"
        );
    }
}

#[test]
fn help_teaches_the_commands_and_exit_codes() {
    let data = TempDir::new().unwrap();
    let output = graft(data.path(), &["--help"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "install",
        "demo",
        "Exit codes",
        "--deadline-secs",
        "graft tenant create diku",
    ] {
        assert!(text.contains(expected), "{expected} missing from --help");
    }
}

#[test]
fn install_upgrade_and_status_as_json() {
    let data = TempDir::new().unwrap();
    assert!(graft(data.path(), &["tenant", "create", "diku"])
        .status
        .success());
    let output = graft(
        data.path(),
        &[
            "--json",
            "install",
            "--tenant",
            "diku",
            "mod-users-1.0.0",
            "--load-reference",
            "--load-sample",
            "--param",
            "sampleUsers=25",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let result = json(&output);
    assert_eq!(result["ok"], true);
    let report = &result["tenants"][0];
    assert_eq!(report["tenant"], "diku");
    assert_eq!(report["plan"][0]["id"], "mod-users-1.0.0");
    assert_eq!(report["plan"][0]["stage"], "done");
    assert_eq!(report["modules"][0]["steps"][3]["step"], "load-sample");
    assert_eq!(report["modules"][0]["steps"][3]["writes"]["inserted"], 25);

    let output = graft(
        data.path(),
        &["--json", "install", "--tenant", "diku", "mod-users-2.0.0"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let status = json(&graft(
        data.path(),
        &["--json", "status", "--tenant", "diku"],
    ));
    assert_eq!(status["modules"][0]["module_id"], "mod-users-2.0.0");
    let history = json(&graft(
        data.path(),
        &["--json", "history", "--tenant", "diku"],
    ));
    assert_eq!(history["steps"].as_array().unwrap().len(), 6);
    let tenants = json(&graft(data.path(), &["--json", "tenant", "list"]));
    assert_eq!(tenants["tenants"], serde_json::json!(["diku"]));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let data = TempDir::new().unwrap();
    assert_clean_error(
        &graft(data.path(), &["tenant", "create", "Diku"]),
        2,
        "invalid tenant id \"Diku\"",
    );
    assert_clean_error(
        &graft(
            data.path(),
            &["install", "--tenant", "nobody", "mod-users-1.0.0"],
        ),
        2,
        "graft tenant create nobody",
    );
    assert!(graft(data.path(), &["tenant", "create", "diku"])
        .status
        .success());
    assert_clean_error(
        &graft(data.path(), &["tenant", "create", "diku"]),
        2,
        "tenant diku already exists",
    );
    assert_clean_error(
        &graft(
            data.path(),
            &["install", "--tenant", "diku", "mod-users-1.x"],
        ),
        2,
        "module \"mod-users-1.x\": missing version component in \"1.x\"",
    );
    assert_clean_error(
        &graft(
            data.path(),
            &["install", "--tenant", "diku", "mod-users", "--pre-release", "maybe"],
        ),
        2,
        "Expected \"true\", \"false\", \"only\" or undefined/null for parameter preRelease, but got: maybe",
    );
    // As Okapi: disabling what is not enabled is an error.
    assert_clean_error(
        &graft(data.path(), &["disable", "--tenant", "diku", "mod-users"]),
        2,
        "tenant diku: cannot disable mod-users: it is not enabled",
    );
    // --ignore-errors only where each module commits on its own.
    assert_clean_error(
        &graft(
            data.path(),
            &[
                "install",
                "--tenant",
                "diku",
                "mod-users-1.0.0",
                "--ignore-errors",
            ],
        ),
        2,
        "--ignore-errors needs --commit per-module",
    );
    assert_clean_error(
        &graft(
            data.path(),
            &["install", "--tenant", "diku", "mod-users-3.0.0"],
        ),
        2,
        "unknown module mod-users-3.0.0",
    );
    let modules = TempDir::new().unwrap();
    let broken = modules.path().join("mod-users-1.0.0");
    graft_sample_modules::copy_dir(
        &graft_sample_modules::sample_modules_dir().join("mod-users-1.0.0"),
        &broken,
    )
    .unwrap();
    std::fs::write(
        broken.join("ModuleDescriptor.json"),
        r#"{"id": "mod-users-1.0.0", "provides": [{"id": "users"}]}"#,
    )
    .unwrap();
    let modules_arg = modules.path().to_str().unwrap();
    assert_clean_error(
        &graft(
            data.path(),
            &[
                "--modules",
                modules_arg,
                "install",
                "--tenant",
                "diku",
                "mod-users-1.0.0",
            ],
        ),
        2,
        "provides[0].version",
    );
    assert_clean_error(
        &graft(data.path(), &["--deadline-secs", "1e30", "tenant", "list"]),
        2,
        "--deadline-secs must be",
    );
    assert_clean_error(
        &graft(data.path(), &["--memory-mb", "0", "tenant", "list"]),
        2,
        "--memory-mb must be",
    );
    // clap's own usage errors use the same code.
    assert_eq!(
        graft(data.path(), &["install", "--tenant", "diku"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn failed_step_exits_1_and_names_where() {
    let data = TempDir::new().unwrap();
    let modules = TempDir::new().unwrap();
    graft_sample_modules::copy_dir(
        &graft_sample_modules::test_packages_dir().join("mod-test-panic-1.0.0"),
        &modules.path().join("mod-test-panic-1.0.0"),
    )
    .unwrap();
    let modules_arg = modules.path().to_str().unwrap();
    assert!(graft(data.path(), &["tenant", "create", "diku"])
        .status
        .success());
    let output = graft(
        data.path(),
        &[
            "--modules",
            modules_arg,
            "install",
            "--tenant",
            "diku",
            "mod-test-panic-1.0.0",
        ],
    );
    assert_clean_error(
        &output,
        1,
        "error: tenant diku, module mod-test-panic-1.0.0, step upgrade: panic:",
    );
    assert!(stderr(&output).contains("record item-00042 has no code"));
    let history = json(&graft(
        data.path(),
        &["--json", "history", "--tenant", "diku"],
    ));
    assert_eq!(history["steps"].as_array().unwrap().len(), 0);
    assert_eq!(history["failed"][0]["failure"]["kind"], "panic");
}

#[test]
fn demo_runs_on_a_fresh_data_dir() {
    let data = TempDir::new().unwrap();
    let output = graft(data.path(), &["--json", "demo", "--users", "200"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let demo = json(&output);
    assert_eq!(demo["ok"], true);
    let jobs = demo["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 7);
    assert_eq!(jobs[6]["report"]["modules"][0]["action"], "downgrade");
    assert_eq!(jobs[6]["report"]["modules"][0]["to"], "mod-users-1.1.0");
    // A second run, often in the same second, gets its own fresh folder.
    let again = graft(data.path(), &["--json", "demo", "--users", "10"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(json(&again)["ok"], true);
    assert_ne!(json(&again)["data_dir"], demo["data_dir"]);
}

/// SIGKILL in the middle of an upgrade: the transaction never commits, the
/// lock dies with the process, and a rerun gives what an uninterrupted run
/// gives.
#[test]
fn a_killed_runner_leaves_nothing_half_done() {
    use std::os::unix::process::ExitStatusExt;
    let data = TempDir::new().unwrap();
    // Enough users that the upgrade runs for a few seconds on either
    // backend.
    let users = "sampleUsers=60000";
    for tenant in ["killed", "whole"] {
        assert!(graft(data.path(), &["tenant", "create", tenant])
            .status
            .success());
        let output = graft(
            data.path(),
            &[
                "install",
                "--tenant",
                tenant,
                "mod-users-1.1.0",
                "--load-sample",
                "--param",
                users,
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let mut child = command(data.path())
        .args(["install", "--tenant", "killed", "mod-users-2.0.0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the upgrade is writing: SQLite's write-ahead log is
    // growing, or PostgreSQL has rewritten users in the open transaction.
    let writing = || match database_for(data.path()) {
        None => {
            let wal = data.path().join("tenants/killed.sqlite-wal");
            std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) >= 4 << 20
        }
        Some(url) => {
            // A transaction of the runner's, open for a moment, whose
            // statement now (or last) was on the tenant's users.
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let writers: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()
                       AND query ILIKE '%killed_mod_users%users%'
                       AND now() - xact_start > interval '200 milliseconds'",
                    &[],
                )
                .unwrap()
                .get(0);
            writers > 0
        }
    };
    let started = std::time::Instant::now();
    while !writing() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the upgrade ended before it could be killed"
        );
        assert!(
            started.elapsed().as_secs() < 120,
            "the upgrade never started writing"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));

    let status = json(&graft(
        data.path(),
        &["--json", "status", "--tenant", "killed"],
    ));
    assert_eq!(
        status["modules"][0]["module_id"], "mod-users-1.1.0",
        "nothing of the killed run is committed"
    );
    for tenant in ["killed", "whole"] {
        let output = graft(
            data.path(),
            &["--json", "install", "--tenant", tenant, "mod-users-2.0.0"],
        );
        assert!(output.status.success(), "{tenant}: {}", stderr(&output));
    }
    let dump = |tenant: &str| open_tenant(data.path(), tenant).dump().unwrap().collections;
    assert!(
        dump("killed") == dump("whole"),
        "the rerun differs from an uninterrupted run"
    );
}

#[test]
fn install_lists_simulation_and_changes_from_the_command_line() {
    let data = TempDir::new().unwrap();
    assert!(graft(data.path(), &["tenant", "create", "diku", "east"])
        .status
        .success());
    let list = data.path().join("install.json");
    std::fs::write(&list, r#"[{"id": "mod-users-1.0.0", "action": "enable"}, {"id": "folio_users-11.0.11", "action": "enable"}]"#).unwrap();
    let list_arg = list.to_str().unwrap();
    let output = graft(
        data.path(),
        &[
            "--json",
            "install",
            "--tenants",
            "diku,east",
            "--file",
            list_arg,
            "--simulate",
            "--allow-unmanaged",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let result = json(&output);
    assert_eq!(result["tenants"][1]["simulated"], true);
    assert_eq!(result["tenants"][1]["plan"][1]["stage"], "not-managed");
    let status = json(&graft(
        data.path(),
        &["--json", "status", "--tenant", "diku"],
    ));
    assert_eq!(status["modules"], serde_json::json!([]));

    let output = graft(
        data.path(),
        &[
            "--json",
            "install",
            "--all-tenants",
            "--file",
            list_arg,
            "--load-reference",
            "--allow-unmanaged",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = graft(
        data.path(),
        &[
            "--json",
            "upgrade",
            "--all-tenants",
            "--canary",
            "east",
            "--parallel",
            "2",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["tenants"][0]["tenant"], "east");
    let changes = json(&graft(
        data.path(),
        &["--json", "changes", "--tenant", "diku"],
    ));
    let jobs = changes["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let groups = jobs[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["collection"] == "groups")
        .unwrap()
        .clone();
    assert_eq!(groups["inserted"], 4);
    let job = jobs[1]["job"]["job_id"].as_str().unwrap();
    let text = graft(data.path(), &["changes", "--tenant", "diku", "--job", job]);
    assert!(String::from_utf8_lossy(&text.stdout)
        .contains("create index users-contact-email on contact.email"));

    // Without --allow-unmanaged, an entry with no package is Okapi's error.
    assert_clean_error(
        &graft(
            data.path(),
            &["install", "--tenant", "diku", "--file", list_arg],
        ),
        2,
        "unknown module folio_users-11.0.11: no package of folio_users",
    );
    // Okapi's install parameters, in the list itself.
    std::fs::write(
        &list,
        r#"{"modules": [{"id": "mod-users", "action": "enable"}],
            "parameters": {"reinstall": "true", "simulate": true, "preRelease": "false"}}"#,
    )
    .unwrap();
    let output = graft(
        data.path(),
        &["--json", "install", "--tenant", "diku", "--file", list_arg],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let result = json(&output);
    assert_eq!(
        result["tenants"][0]["simulated"], true,
        "simulate from the list"
    );
    assert_eq!(
        result["tenants"][0]["plan"][0]["action"], "enable",
        "reinstall from the list"
    );
    std::fs::write(
        &list,
        r#"{"modules": [], "parameters": {"preRelease": "sometimes"}}"#,
    )
    .unwrap();
    assert_clean_error(
        &graft(data.path(), &["install", "--tenant", "diku", "--file", list_arg]),
        2,
        "parameters: Expected \"true\", \"false\", \"only\" or undefined/null for parameter preRelease, but got: sometimes",
    );
    std::fs::write(&list, r#"{"modules": [], "parameters": {"dryRun": true}}"#).unwrap();
    assert_clean_error(
        &graft(
            data.path(),
            &["install", "--tenant", "diku", "--file", list_arg],
        ),
        2,
        "unknown field `dryRun`",
    );
    std::fs::write(&list, r#"[{"id": "mod-users-1.0.0", "action": "install"}]"#).unwrap();
    assert_clean_error(
        &graft(
            data.path(),
            &["install", "--tenant", "diku", "--file", list_arg],
        ),
        2,
        "entry 0: unknown variant `install`",
    );
    assert_clean_error(
        &graft(
            data.path(),
            &["changes", "--tenant", "diku", "--job", "job-0"],
        ),
        2,
        "tenant diku has no job job-0",
    );
}

#[test]
fn data_commands_and_reference_diff() {
    let data = TempDir::new().unwrap();
    assert!(graft(data.path(), &["tenant", "create", "diku"])
        .status
        .success());
    let output = graft(
        data.path(),
        &[
            "install",
            "--tenant",
            "diku",
            "mod-inventory-storage-19.0.0",
            "--load-reference",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let target = [
        "--tenant",
        "diku",
        "--module",
        "mod-inventory-storage",
        "--collection",
        "loan-types",
    ];
    let list = json(&graft(
        data.path(),
        &[&["--json", "data", "list"][..], &target].concat(),
    ));
    let first = list[0].clone();
    let id = first["id"].as_str().unwrap().to_string();

    let mut edited = first.clone();
    edited["name"] = serde_json::json!("Our loan type");
    let file = data.path().join("record.json");
    std::fs::write(&file, edited.to_string()).unwrap();
    let put = graft(
        data.path(),
        &[
            &["--json", "data", "put"][..],
            &target,
            &["--file", file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(put.status.success(), "{}", stderr(&put));
    assert_eq!(json(&put)["changes"][0]["updated"], 1);
    let got = json(&graft(
        data.path(),
        &[&["data", "get"][..], &target, &[id.as_str()]].concat(),
    ));
    assert_eq!(got["name"], "Our loan type");

    // The same unique name twice: refused, nothing written.
    let mut twin = list[1].clone();
    twin["name"] = serde_json::json!("our LOAN type");
    std::fs::write(&file, twin.to_string()).unwrap();
    let refused = graft(
        data.path(),
        &[
            &["data", "put"][..],
            &target,
            &["--file", file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_clean_error(&refused, 2, "breaks unique index loan-types-name");

    let delete = graft(
        data.path(),
        &[
            &["data", "delete"][..],
            &target,
            &[list[2]["id"].as_str().unwrap()],
        ]
        .concat(),
    );
    assert!(delete.status.success(), "{}", stderr(&delete));
    let diff = json(&graft(
        data.path(),
        &[
            "--json",
            "reference",
            "diff",
            "--tenant",
            "diku",
            "--module",
            "mod-inventory-storage",
        ],
    ));
    let changes = diff["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["what"], "edited");
    assert_eq!(changes[0]["fields"][0]["field"], "name");
    assert_eq!(changes[0]["fields"][0]["tenant"], "Our loan type");
    assert_eq!(changes[1]["what"], "deleted");
    let history = json(&graft(
        data.path(),
        &["--json", "changes", "--tenant", "diku"],
    ));
    assert_eq!(
        history["jobs"].as_array().unwrap().len(),
        3,
        "the install and two edits"
    );
}

#[test]
fn a_config_file_sets_defaults_and_a_bad_one_is_bad_input() {
    let data = TempDir::new().unwrap();
    let modules = data.path().join("modules");
    graft_sample_modules::copy_dir(
        &graft_sample_modules::sample_modules_dir().join("mod-users-1.0.0"),
        &modules.join("mod-users-1.0.0"),
    )
    .unwrap();
    let config = data.path().join("graft.toml");
    std::fs::write(
        &config,
        format!("modules = {:?}\n", modules.to_str().unwrap()),
    )
    .unwrap();
    let listed = json(&graft(
        data.path(),
        &[
            "--json",
            "--config",
            config.to_str().unwrap(),
            "modules",
            "list",
        ],
    ));
    let packages = listed["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1, "{listed:#}");

    std::fs::write(&config, "databse = \"postgres://x\"\n").unwrap();
    let output = graft(
        data.path(),
        &["--config", config.to_str().unwrap(), "tenant", "list"],
    );
    assert_clean_error(&output, 2, "graft.toml: line 1: unknown field `databse`");
    std::fs::write(&config, "database = \"mysql://x\"\n").unwrap();
    let output = graft(
        data.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--database",
            "sqlite-please",
            "tenant",
            "list",
        ],
    );
    assert_clean_error(&output, 2, "give a PostgreSQL URL");
}

/// The subcommands `graft --help` lists, with those of each command group
/// (`tenant create`, `data put`, ...), as the words one types.
fn every_subcommand(data: &std::path::Path) -> Vec<Vec<String>> {
    fn commands(help: &str) -> Vec<String> {
        help.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            // A command's line is indented two spaces; a wrapped
            // description goes on lines indented further.
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .filter(|c| c != "help")
            .collect()
    }
    let top = String::from_utf8(graft(data, &["--help"]).stdout).unwrap();
    let mut all = Vec::new();
    for command in commands(&top) {
        let help = String::from_utf8(graft(data, &[&command, "--help"]).stdout).unwrap();
        let nested = commands(&help);
        if nested.is_empty() {
            all.push(vec![command]);
        } else {
            all.extend(nested.into_iter().map(|n| vec![command.clone(), n]));
        }
    }
    all
}

/// Every command of the README, in its order, on the real binary, and every
/// subcommand `--help` lists among them: a command nobody runs can break
/// unseen (`graft disable` once panicked in clap on every call).
#[test]
fn every_command_of_the_readme_runs_end_to_end() {
    let data = TempDir::new().unwrap();
    let d = data.path();
    let files = TempDir::new().unwrap();
    let file = |name: &str| files.path().join(name).to_str().unwrap().to_string();
    let wit_dir = d.join("wit").to_str().unwrap().to_string();
    let (install_list, record, fixtures, junit) = (
        file("install.json"),
        file("record.json"),
        file("fixtures"),
        file("validate.xml"),
    );
    std::fs::write(
        file("install.json"),
        r#"[{"id": "mod-inventory-storage-19.0.0", "action": "enable"}]"#,
    )
    .unwrap();
    std::fs::write(file("record.json"), r#"{"id": "g1", "group": "visitors"}"#).unwrap();
    std::fs::create_dir(file("fixtures")).unwrap();
    let fixture = format!("{}/mod-users-1.1.0.json", file("fixtures"));
    let package = graft_sample_modules::sample_modules_dir()
        .join("mod-users-2.0.0")
        .to_str()
        .unwrap()
        .to_string();
    let (project, dist) = (file("mod-widgets"), file("dist"));
    let archive = format!("{dist}/mod-users-2.0.0.tar.gz");
    let modules_dir = graft_sample_modules::sample_modules_dir()
        .to_str()
        .unwrap()
        .to_string();
    let on_postgres = database_for(d).is_some();
    // PostgreSQL's commands, on SQLite, are bad input that says so.
    let pg_only = if on_postgres { 0 } else { 2 };
    let steps: Vec<(Vec<&str>, i32)> = vec![
        (vec!["tenant", "create", "diku"], 0),
        (vec!["tenant", "list"], 0),
        (vec!["tenant", "create", "scratch"], 0),
        (vec!["tenant", "delete", "scratch"], 0),
        (vec!["modules", "list"], 0),
        (
            vec![
                "install",
                "--tenant",
                "diku",
                "mod-users-1.0.0",
                "--load-reference",
                "--load-sample",
                "--param",
                "sampleUsers=50",
            ],
            0,
        ),
        (
            vec![
                "install",
                "--tenant",
                "diku",
                "mod-users-2.0.0",
                "--simulate",
            ],
            0,
        ),
        (vec!["install", "--tenant", "diku", "mod-users-2.0.0"], 0),
        (vec!["install", "--tenant", "diku", "mod-users-1.1.0"], 0),
        (vec!["install", "--tenant", "diku", "mod-users"], 0),
        (
            vec![
                "install",
                "--tenant",
                "diku",
                "--file",
                &install_list,
                "--allow-unmanaged",
            ],
            0,
        ),
        (
            vec![
                "upgrade",
                "--all-tenants",
                "--canary",
                "diku",
                "--parallel",
                "4",
            ],
            0,
        ),
        (
            vec!["disable", "--tenant", "diku", "mod-inventory-storage"],
            0,
        ),
        // Enabled again (its data was kept), to be disabled with --purge.
        (
            vec!["install", "--tenant", "diku", "mod-inventory-storage"],
            0,
        ),
        (
            vec![
                "disable",
                "--tenant",
                "diku",
                "mod-inventory-storage",
                "--purge",
            ],
            0,
        ),
        (vec!["status", "--tenant", "diku"], 0),
        (vec!["history", "--tenant", "diku"], 0),
        (vec!["changes", "--tenant", "diku"], 0),
        (
            vec![
                "reference",
                "diff",
                "--tenant",
                "diku",
                "--module",
                "mod-users",
            ],
            0,
        ),
        (
            vec![
                "data",
                "list",
                "--tenant",
                "diku",
                "--module",
                "mod-users",
                "--collection",
                "groups",
            ],
            0,
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
            0,
        ),
        (
            vec![
                "data",
                "get",
                "--tenant",
                "diku",
                "--module",
                "mod-users",
                "--collection",
                "groups",
                "g1",
            ],
            0,
        ),
        (
            vec![
                "data",
                "delete",
                "--tenant",
                "diku",
                "--module",
                "mod-users",
                "--collection",
                "groups",
                "g1",
            ],
            0,
        ),
        // A vendor's fixture: a tenant of its own at the release.
        (vec!["tenant", "create", "vendor"], 0),
        (
            vec![
                "install",
                "--tenant",
                "vendor",
                "mod-users-1.1.0",
                "--load-reference",
                "--load-sample",
            ],
            0,
        ),
        (
            vec![
                "fixture",
                "capture",
                "--tenant",
                "vendor",
                "--module",
                "mod-users",
                "--out",
                &fixture,
            ],
            0,
        ),
        (vec!["fixture", "restore", "--tenant", "copy", &fixture], 0),
        (
            vec![
                "validate",
                &package,
                "--fixtures",
                &fixtures,
                "--junit",
                &junit,
            ],
            0,
        ),
        (
            vec!["adopt", "--tenant", "diku", "--module", "mod-users-2.0.0"],
            pg_only,
        ),
        (vec!["upgrade", "--all-tenants", "--queue"], pg_only),
        (vec!["worker", "--exit-when-idle"], pg_only),
        (vec!["jobs"], pg_only),
        (vec!["demo", "--users", "20"], 0),
        (vec!["wit", "--out", &wit_dir], 0),
        // A vendor's project, written (each language builds in languages.rs).
        (
            vec!["new", "mod-widgets", "--lang", "python", "--dir", &project],
            0,
        ),
        (vec!["package", &package, "--out", &dist], 0),
        (
            vec![
                "--modules",
                &modules_dir,
                "validate",
                &archive,
                "--fixtures",
                &fixtures,
            ],
            0,
        ),
    ];
    let mut ran: Vec<Vec<String>> = Vec::new();
    for (args, code) in &steps {
        let output = graft(d, args);
        let text = stderr(&output);
        assert!(
            !text.contains("panicked") && output.status.code().is_some(),
            "graft {}: {text}",
            args.join(" ")
        );
        // `adopt` of an existing module on PostgreSQL is refused: the
        // point here is that it runs and answers, exit 1 or 2, not that it adopts.
        if args[0] != "adopt" {
            assert_eq!(
                output.status.code(),
                Some(*code),
                "graft {}: {text}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout)
            );
        }
        // A global option before the command (`--modules DIR`) is not part of it.
        let command = match args.first() {
            Some(&"--modules") => &args[2..],
            _ => &args[..],
        };
        ran.push(command.iter().map(|a| a.to_string()).collect());
    }
    for subcommand in every_subcommand(d) {
        assert!(
            ran.iter().any(|args| args.starts_with(&subcommand)),
            "no step runs `graft {}`: add it here and to the README",
            subcommand.join(" ")
        );
    }
}

/// `graft modules list PREFIX` filters as Okapi's `filter`: a module name,
/// or a name and version prefix.
#[test]
fn modules_list_filters_by_id_prefix() {
    let data = TempDir::new().unwrap();
    let listed = |filter: &str| -> Vec<String> {
        let output = graft(data.path(), &["--json", "modules", "list", filter]);
        assert!(output.status.success(), "{}", stderr(&output));
        json(&output)["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        listed("mod-users"),
        ["mod-users-1.0.0", "mod-users-1.1.0", "mod-users-2.0.0"]
    );
    assert_eq!(
        listed("mod-users-1"),
        ["mod-users-1.0.0", "mod-users-1.1.0"]
    );
    assert_eq!(listed("mod-users-1.1"), ["mod-users-1.1.0"]);
    // Each package with the contract version its plugin was built for.
    let output = graft(data.path(), &["--json", "modules", "list", "mod-users-1.1"]);
    assert_eq!(json(&output)["packages"][0]["contract"], "0.1.0");
    let table = graft(data.path(), &["modules", "list", "mod-users-1.1"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("CONTRACT") && table.contains("0.1.0"),
        "{table}"
    );
    assert!(
        listed("mod-user").is_empty(),
        "a prefix of the name is not the name"
    );
    assert_clean_error(
        &graft(data.path(), &["modules", "list", "mod-users-1.x"]),
        2,
        "missing version component",
    );
}

/// The binary stands alone: copied into an empty folder, with nothing of the
/// build machine (no modules folder named, none beside the data directory),
/// `graft demo` runs from the sample packages the binary carries.
#[test]
fn the_binary_alone_runs_the_demo() {
    let alone = TempDir::new().unwrap();
    let binary = alone.path().join("graft");
    std::fs::copy(env!("CARGO_BIN_EXE_graft"), &binary).unwrap();
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(&binary);
        command.current_dir(alone.path()).args(args);
        for name in [
            "GRAFT_MODULES",
            "GRAFT_DATA_DIR",
            "GRAFT_CONFIG",
            "GRAFT_DATABASE",
        ] {
            command.env_remove(name);
        }
        command.output().unwrap()
    };
    let samples = || -> Vec<String> {
        std::fs::read_dir(alone.path().join("graft-data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("sample-modules-"))
            .collect()
    };
    // A command that reads no package writes none.
    assert!(run(&["tenant", "create", "probe"]).status.success());
    assert!(samples().is_empty(), "{:?}", samples());
    let output = run(&["--json", "demo", "--users", "20"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["ok"], true);
    // The packages were written under the default data directory, there.
    let written = samples();
    assert_eq!(written.len(), 1, "{written:?}");
    let listed = json(&run(&["--json", "modules", "list"]));
    let dir = listed["modules_dir"].as_str().unwrap();
    assert!(dir.ends_with(&written[0]), "{dir}");
    assert_eq!(listed["packages"].as_array().unwrap().len(), 7);
    // A `modules` folder beside the data directory wins over the samples.
    std::fs::create_dir(alone.path().join("modules")).unwrap();
    let listed = json(&run(&["--json", "modules", "list"]));
    assert_eq!(listed["modules_dir"], "modules");
    assert!(listed["packages"].as_array().unwrap().is_empty());
}

/// `graft wit` prints a contract the binary implements (the newest unless
/// `--contract` says), or writes it.
#[test]
fn wit_prints_the_contract() {
    let data = TempDir::new().unwrap();
    let source = |file: &str| {
        std::fs::read_to_string(format!("{}/../wit/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let output = graft(data.path(), &["wit"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        source("0.2.0/migration.wit")
    );
    for version in ["0.1", "0.1.0"] {
        let output = graft(data.path(), &["wit", "--contract", version]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            source("migration.wit")
        );
    }
    let out = data.path().join("contract");
    let output = graft(data.path(), &["wit", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(out.join("migration.wit")).unwrap(),
        source("0.2.0/migration.wit")
    );
    let output = graft(data.path(), &["wit", "--contract", "0.3"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("supports graft:migration@0.1.x and @0.2.x"),
        "{}",
        stderr(&output)
    );
    let help = graft(data.path(), &["wit", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("wasi:sockets") && help.contains("read-only") && help.contains("--contract"),
        "{help}"
    );
}
