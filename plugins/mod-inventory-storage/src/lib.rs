//! The migration plugin of the sample module `mod-inventory-storage`, built
//! once per release (features `v19_0_0`, `v23_0_0`, `v27_0_0`, `v30_0_5`).
//!
//! Its collections are those its package ships data for (one folder per
//! collection under `reference-data/` and `sample-data/`), with the unique
//! indexes the real module defines (`unique-constraints.json`, from its own
//! `schema.json`), case-insensitive as FOLIO's `lower(...)` indexes are.
//! Reference and sample data load through the runner's overlay, so a
//! tenant's edits survive every upgrade. The release the storage is at is
//! kept in a `module-info` record, so `inspect` reads it from the data.

use graft_plugin_sdk::{
    data, log, Collection, Context, DataKind, Description, Error, IndexSpec, Migration, Outcome,
    Result, StoredState,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[cfg(feature = "v30_0_5")]
const RELEASE: &str = "30.0.5";
#[cfg(all(feature = "v27_0_0", not(feature = "v30_0_5")))]
const RELEASE: &str = "27.0.0";
#[cfg(all(
    feature = "v23_0_0",
    not(any(feature = "v27_0_0", feature = "v30_0_5"))
))]
const RELEASE: &str = "23.0.0";
#[cfg(not(any(feature = "v23_0_0", feature = "v27_0_0", feature = "v30_0_5")))]
const RELEASE: &str = "19.0.0";

const RELEASES: [&str; 4] = ["19.0.0", "23.0.0", "27.0.0", "30.0.5"];

/// For each collection folder, its unique field sets, as the real module defines them.
const UNIQUE_CONSTRAINTS: &str =
    include_str!("../../../sample-modules/mod-inventory-storage/unique-constraints.json");

const MODULE_INFO: &str = "module-info";

struct InventoryStorage;

impl Migration for InventoryStorage {
    fn describe() -> Description {
        let position = RELEASES.iter().position(|r| *r == RELEASE).unwrap_or(0);
        Description::new("mod-inventory-storage", RELEASE).upgrades_from(&RELEASES[..position])
    }

    fn inspect() -> StoredState {
        match stored_release() {
            Ok(Some(release)) => StoredState::Release(release),
            Ok(None) => StoredState::Empty,
            Err(e) => StoredState::Unrecognised(e.to_string()),
        }
    }

    fn upgrade(_ctx: &Context) -> Result<Outcome> {
        let from = stored_release()?;
        if from.as_deref() == Some(RELEASE) {
            return Ok(Outcome::Unchanged);
        }
        if let Some(from) = &from {
            if !RELEASES.contains(&from.as_str()) || position(from) > position(RELEASE) {
                return Err(Error::unsupported(format!(
                    "storage is at mod-inventory-storage {from}, which this plugin ({RELEASE}) cannot upgrade"
                )));
            }
        }
        let constraints: Value = serde_json::from_str(UNIQUE_CONSTRAINTS)?;
        for collection in collections()? {
            let records = Collection::<Value>::new(&collection);
            records.create()?;
            let unique = constraints[&collection]["unique"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for fields in unique {
                let fields: Vec<&str> = fields
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if fields.is_empty() {
                    continue;
                }
                let name = format!("{collection}-{}", fields.join("-"));
                records.create_index(IndexSpec::unique_ci(&name, &fields.join(",")))?;
            }
        }
        let info = Collection::<Value>::new(MODULE_INFO);
        info.create()?;
        info.put("release", &json!({"id": "release", "release": RELEASE}))?;
        Ok(if from.is_none() {
            Outcome::Created
        } else {
            Outcome::Upgraded
        })
    }

    fn load_data(_ctx: &Context, kind: DataKind) -> Result<Outcome> {
        data::load_folder(kind)
    }
}

graft_plugin_sdk::export_migration!(InventoryStorage);

fn position(release: &str) -> usize {
    RELEASES
        .iter()
        .position(|r| *r == release)
        .unwrap_or(usize::MAX)
}

fn stored_release() -> Result<Option<String>> {
    let info = Collection::<Value>::new(MODULE_INFO);
    if !info.exists() {
        return Ok(None);
    }
    match info.get("release")? {
        Some(record) => Ok(record["release"].as_str().map(String::from)),
        None => Err(Error::failed("module-info has no release record")),
    }
}

/// The collections of this release: every folder of its reference and
/// sample data. A folder that holds folders rather than records is not a
/// collection; it is reported and left out.
fn collections() -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for kind in [DataKind::Reference, DataKind::Sample] {
        for collection in data::collections(kind)? {
            let folder = data::folder(kind).join(&collection);
            let holds_records = std::fs::read_dir(&folder)
                .map(|entries| {
                    entries
                        .flatten()
                        .any(|e| e.path().extension().is_some_and(|x| x == "json"))
                })
                .unwrap_or(false);
            if holds_records {
                names.insert(collection);
            } else {
                log::warn(&format!(
                    "{}: holds no records (folders only): not a collection",
                    folder.display()
                ));
            }
        }
    }
    Ok(names)
}
