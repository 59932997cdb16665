//! What only PostgreSQL has: adopting a module's schema in an existing
//! FOLIO database. Runs when `GRAFT_TEST_POSTGRES` names a server (CI
//! starts one; see the README), and says so when it does not.

use crate::common;

use crate::common::{database_for, graft, json};
use graft_sample_modules::sample_modules_dir;
use std::path::Path;
use tempfile::TempDir;

const BOOK: &str = "1a54b431-2e4f-452d-9cae-9cee66c9a892";
const SELECTED: &str = "a1dc1ce3-d56f-4d8a-b498-d5d674ccc845";

fn ok(data: &Path, args: &[&str]) -> serde_json::Value {
    let output = graft(data, args);
    assert!(
        output.status.success(),
        "graft {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    json(&output)
}

/// A FOLIO tenant's mod-inventory-storage 19.0.0 schema, as RMB lays it out
/// (an extra column, FOLIO's index names), with its reference data loaded
/// and then changed by the tenant.
fn folio_schema(url: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute("CREATE SCHEMA diku_mod_inventory_storage")
        .unwrap();
    let data = sample_modules_dir().join("mod-inventory-storage-19.0.0/reference-data");
    let mut folders: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    folders.sort();
    for folder in folders {
        let table = folder
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_");
        client
            .batch_execute(&format!(
                "CREATE TABLE diku_mod_inventory_storage.{table} (
                     id uuid PRIMARY KEY, jsonb jsonb NOT NULL, creation_date timestamp, created_by text);
                 CREATE INDEX {table}_name_idx ON diku_mod_inventory_storage.{table} ((jsonb->>'name'))"
            ))
            .unwrap();
        for file in std::fs::read_dir(&folder).unwrap() {
            let Ok(text) = std::fs::read_to_string(file.unwrap().path()) else {
                continue; // a folder where a record should be
            };
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let Some(id) = doc["id"].as_str() else {
                continue;
            };
            client
                .execute(
                    &format!(
                        "INSERT INTO diku_mod_inventory_storage.{table} (id, jsonb) VALUES ($1::text::uuid, $2::text::jsonb)"
                    ),
                    &[&id, &doc.to_string()],
                )
                .unwrap();
        }
    }
    client
        .batch_execute(&format!(
            "UPDATE diku_mod_inventory_storage.material_types
                SET jsonb = jsonb_set(jsonb, '{{name}}', '\"book (monograph)\"') WHERE id = '{BOOK}';
             DELETE FROM diku_mod_inventory_storage.loan_types WHERE id = '{SELECTED}';
             CREATE TABLE diku_mod_inventory_storage.rmb_internal (name text)"
        ))
        .unwrap();
}

#[test]
fn an_adopted_folio_schema_upgrades_and_keeps_the_tenants_edits() {
    let data = TempDir::new().unwrap();
    let Some(url) = database_for(data.path()) else {
        eprintln!("GRAFT_TEST_POSTGRES is not set: adopt is PostgreSQL-only, not tested here");
        return;
    };
    folio_schema(&url);
    let d = data.path();
    let adopted = ok(
        d,
        &[
            "--json",
            "adopt",
            "--tenant",
            "diku",
            "--module",
            "mod-inventory-storage-19.0.0",
        ],
    );
    let collections = adopted["collections"].as_array().unwrap();
    assert!(collections.len() >= 20, "{adopted:#}");
    let material = collections
        .iter()
        .find(|c| c["collection"] == "material-types")
        .unwrap();
    assert_eq!(material["table"], "material_types");
    assert_eq!(material["indexes"][0]["field"], "name");
    assert!(adopted["bases"]["material-types"].as_u64().unwrap() > 0);
    assert_eq!(adopted["skipped"][0][0], "rmb_internal");

    // The tenant's edit and deletion show against the vendor's bases...
    let diff = ok(
        d,
        &[
            "--json",
            "reference",
            "diff",
            "--tenant",
            "diku",
            "--module",
            "mod-inventory-storage",
        ],
    );
    let text = diff.to_string();
    assert!(text.contains(BOOK) && text.contains(SELECTED), "{diff:#}");

    // ... and survive the upgrade, which runs in the same schema.
    let upgraded = ok(
        d,
        &[
            "--json",
            "install",
            "--tenant",
            "diku",
            "mod-inventory-storage-30.0.5",
            "--load-reference",
        ],
    );
    assert_eq!(upgraded["ok"], true, "{upgraded:#}");
    let book = ok(
        d,
        &[
            "--json",
            "data",
            "get",
            "--tenant",
            "diku",
            "--module",
            "mod-inventory-storage",
            "--collection",
            "material-types",
            BOOK,
        ],
    );
    assert!(book.to_string().contains("book (monograph)"), "{book:#}");
    let selected = graft(
        d,
        &[
            "data",
            "get",
            "--tenant",
            "diku",
            "--module",
            "mod-inventory-storage",
            "--collection",
            "loan-types",
            SELECTED,
        ],
    );
    assert!(
        !selected.status.success(),
        "the deleted loan type came back"
    );
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'diku_mod_inventory_storage'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        tables > collections.len() as i64,
        "30.0.5's new collections are in the same schema"
    );
    let status = ok(d, &["--json", "status", "--tenant", "diku"]);
    assert_eq!(
        status["modules"][0]["module_id"],
        "mod-inventory-storage-30.0.5"
    );

    // Adopting twice, or without PostgreSQL, is bad input.
    let again = graft(
        d,
        &[
            "adopt",
            "--tenant",
            "diku",
            "--module",
            "mod-inventory-storage-19.0.0",
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("registered already"));
}

#[test]
fn adopt_needs_postgres() {
    let data = TempDir::new().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_graft"))
        .args(["--data-dir", data.path().to_str().unwrap()])
        .args(["adopt", "--tenant", "diku", "--module", "mod-users-1.0.0"])
        .env_remove("GRAFT_DATABASE")
        .env_remove("GRAFT_MODULES")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("give --database postgres://"));
}

/// Three workers, 200 tenants, one worker killed with SIGKILL in the middle
/// of a job: the others take its job over, every tenant is upgraded exactly
/// once, and nothing is lost.
#[test]
fn workers_share_a_queue_and_survive_a_killed_worker() {
    use std::os::unix::process::ExitStatusExt;
    let data = TempDir::new().unwrap();
    let Some(url) = database_for(data.path()) else {
        eprintln!("GRAFT_TEST_POSTGRES is not set: workers are PostgreSQL-only, not tested here");
        return;
    };
    let d = data.path();
    let tenants: Vec<String> = (1..=200).map(|n| format!("t{n:03}")).collect();
    let mut create = vec!["--json", "tenant", "create"];
    create.extend(tenants.iter().map(String::as_str));
    ok(d, &create);
    let installed = graft(
        d,
        &[
            "install",
            "--all-tenants",
            "mod-users-1.1.0",
            "--load-sample",
            "--param",
            "sampleUsers=300",
            "--parallel",
            "4",
        ],
    );
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let queued = ok(d, &["--json", "upgrade", "--all-tenants", "--queue"]);
    assert_eq!(queued["tenants"].as_array().unwrap().len(), 200);

    let worker = |id: &str| {
        common::command(d)
            .args(["--json", "worker", "--id", id, "--exit-when-idle"])
            .args(["--heartbeat-secs", "0.3", "--stale-secs", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut doomed = worker("w1");
    let survivors = [worker("w2"), worker("w3")];
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // Kill w1 once it has finished a few jobs and is inside another.
    let started = std::time::Instant::now();
    let in_flight: i64 = loop {
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'done'),
                        max(seq) FILTER (WHERE state = 'running')
                 FROM graft.queue WHERE worker = 'w1'",
                &[],
            )
            .unwrap();
        let (done, running): (i64, Option<i64>) = (row.get(0), row.get(1));
        if done >= 3 {
            if let Some(seq) = running {
                break seq;
            }
        }
        assert!(started.elapsed().as_secs() < 120, "w1 never got going");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    doomed.kill().unwrap();
    assert_eq!(doomed.wait().unwrap().signal(), Some(9));

    for survivor in survivors {
        let output = survivor.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let progress = ok(d, &["--json", "jobs"]);
    let batch = &progress["batches"][0];
    assert_eq!(
        (batch["done"].as_i64(), batch["failed"].as_i64()),
        (Some(200), Some(0)),
        "{progress:#}"
    );

    // The job w1 died in was taken over and finished by another worker.
    let row = client
        .query_one(
            "SELECT worker, attempts, state FROM graft.queue WHERE seq = $1",
            &[&in_flight],
        )
        .unwrap();
    let (taker, attempts, state): (String, i32, String) = (row.get(0), row.get(1), row.get(2));
    assert!(taker == "w2" || taker == "w3", "{taker}");
    assert_eq!((attempts, state.as_str()), (2, "done"));

    // Every tenant upgraded exactly once, with every user migrated.
    let upgrades = client
        .query(
            "SELECT tenant, count(*) FROM graft.history
             WHERE step = 'upgrade' AND module_to = 'mod-users-2.0.0' AND outcome = 'upgraded'
             GROUP BY tenant ORDER BY tenant",
            &[],
        )
        .unwrap();
    assert_eq!(upgrades.len(), 200);
    assert!(upgrades.iter().all(|row| row.get::<_, i64>(1) == 1));
    for tenant in &tenants {
        let users = client
            .query_one(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE jsonb ? 'personal') FROM {tenant}_mod_users.users"
                ),
                &[],
            )
            .unwrap();
        assert_eq!(
            (users.get::<_, i64>(0), users.get::<_, i64>(1)),
            (300, 0),
            "{tenant}"
        );
    }
    let modules: Vec<String> = client
        .query("SELECT DISTINCT module_id FROM graft.modules", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(modules, ["mod-users-2.0.0"]);
}
