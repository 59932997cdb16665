//! The migration plugin of `mod-widgets`, from Graft's template (`graft new`).
//!
//! One plugin per release. It knows every step from an empty tenant up to
//! its own release, so any older tenant can be brought up to date, and it
//! finds the release the data is at by looking at the data (`inspect`),
//! never by trusting what was recorded.
//!
//! To add release 1.1.0: set `RELEASE`, append it to `RELEASES`, write
//! `upgrade_to_1_1_0` and call it from `upgrade`, make `stored_release`
//! recognise it (an index or collection only 1.1.0 has), and, if 1.1.0 can
//! be undone, list `1.0.0` in `rolls_back_to` and write `rollback`. Then
//! capture fixtures of tenants at 1.0.0 and run `graft validate` on them.

use graft_plugin_sdk::{
    data, Collection, Context, DataKind, Description, Error, IndexSpec, Migration, Outcome, Result,
    StoredState,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The release this plugin migrates to; it must match the ModuleDescriptor.
const RELEASE: &str = "1.0.0";
/// Every release, oldest first.
const RELEASES: [&str; 1] = ["1.0.0"];

const ITEMS: &str = "widgets";
const ITEM_TYPES: &str = "widget-types";
/// The index whose presence marks storage at 1.0.0.
const NAME_INDEX: &str = "widgets-name";

/// A typed view of a record. `rest` keeps every field this release does not
/// know, so a migration never drops data it was not written for.
#[derive(Serialize, Deserialize)]
struct Item {
    name: String,
    #[serde(rename = "typeId", skip_serializing_if = "Option::is_none")]
    type_id: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

struct Plugin;

impl Migration for Plugin {
    fn describe() -> Description {
        // Releases this one can upgrade from: all before it.
        Description::new("mod-widgets", RELEASE).upgrades_from(&RELEASES[..RELEASES.len() - 1])
    }

    fn inspect() -> StoredState {
        stored_release().unwrap_or_else(|e| StoredState::Unrecognised(e.to_string()))
    }

    fn upgrade(_ctx: &Context) -> Result<Outcome> {
        let from = match stored_release()? {
            StoredState::Empty => None,
            StoredState::Release(release) => Some(release),
            StoredState::Unrecognised(what) => {
                return Err(Error::failed(format!("storage not recognised: {what}")))
            }
        };
        // Running again on data already at this release changes nothing:
        // `graft validate` checks that a second run is `unchanged`.
        if from.as_deref() == Some(RELEASE) {
            return Ok(Outcome::Unchanged);
        }
        let start = match &from {
            None => 0,
            Some(release) => match RELEASES.iter().position(|r| r == release) {
                Some(position) => position + 1,
                None => {
                    return Err(Error::unsupported(format!(
                        "storage holds mod-widgets {release}, which this plugin does not know"
                    )))
                }
            },
        };
        for release in &RELEASES[start..] {
            match *release {
                "1.0.0" => create_1_0_0()?,
                other => unreachable!("no step to {other}"),
            }
        }
        Ok(if from.is_none() {
            Outcome::Created
        } else {
            Outcome::Upgraded
        })
    }

    fn load_data(_ctx: &Context, kind: DataKind) -> Result<Outcome> {
        // Through the runner's overlay: a tenant's edits to reference
        // records survive, and a tenant's deletions stay deleted. Never
        // write vendor data with plain puts.
        data::load_folder(kind)
    }
}

graft_plugin_sdk::export_migration!(Plugin);

/// Find the release from the shape of the storage.
fn stored_release() -> Result<StoredState> {
    let items = Collection::<Item>::new(ITEMS);
    if !items.exists() {
        return Ok(StoredState::Empty);
    }
    if items.has_index(NAME_INDEX)? {
        return Ok(StoredState::Release("1.0.0".into()));
    }
    Ok(StoredState::Unrecognised(format!(
        "{ITEMS} exists without the index {NAME_INDEX}"
    )))
}

fn create_1_0_0() -> Result<()> {
    let items = Collection::<Item>::new(ITEMS);
    items.create()?;
    items.create_index(IndexSpec::unique_ci(NAME_INDEX, "name"))?;
    items.create_index(IndexSpec::plain("widgets-typeId", "typeId"))?;
    let types = Collection::<Value>::new(ITEM_TYPES);
    types.create()?;
    types.create_index(IndexSpec::unique_ci("widget-types-name", "name"))?;
    Ok(())
}
