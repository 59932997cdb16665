//! What only PostgreSQL has: adopting a module's schema in an existing
//! FOLIO database. Runs when `GRAFT_TEST_POSTGRES` names a server (CI
//! starts one; see the README), and says so when it does not.

mod common;

use common::{database_for, graft, json};
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
