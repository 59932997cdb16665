//! The migration plugin of `mod-widgets`, from Graft's template (`graft new`),
//! built for contract 0.2.
//!
//! One plugin per release, declared as a chain of releases: each release's
//! `up` step (and, where it can be undone, its `down` step). The SDK
//! derives the rest: `describe`, `inspect` (the release recorded in the
//! module's state, written in the same transaction as the data), the walk
//! from whatever release a tenant is at up to this one, and rollbacks.
//!
//! To add release 1.1.0: append `.release("1.1.0", upgrade_to_1_1_0)` to
//! `releases` (and `.down(rollback_1_1_0)` if it can be undone), write the
//! step, set the ModuleDescriptor's id to `mod-widgets-1.1.0`, capture
//! fixtures of tenants at 1.0.0 and run `graft validate` on them.

use graft_plugin_sdk::{Chain, Collection, Context, IndexSpec, ReleaseChain, Releases, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const ITEMS: &str = "widgets";
const ITEM_TYPES: &str = "widget-types";

/// A typed view of a record, for steps that rewrite records
/// (`Collection::<Item>::new(ITEMS).update_each(...)`). `rest` keeps every
/// field this release does not know, so a migration never drops data it
/// was not written for.
#[derive(Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    #[serde(rename = "typeId", skip_serializing_if = "Option::is_none")]
    pub type_id: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

pub struct Plugin;

impl ReleaseChain for Plugin {
    fn releases() -> Releases {
        // The module's name must agree with the ModuleDescriptor's id.
        Releases::new("mod-widgets").release("1.0.0", create_1_0_0)
    }

    // Vendor data are loaded by the default `load_data`: every collection
    // folder of the package's data folders, through the runner's overlay,
    // so a tenant's edits to reference records survive and its deletions
    // stay deleted. Never write vendor data with plain puts.
}

graft_plugin_sdk::export_migration!(Chain<Plugin>);

fn create_1_0_0(_ctx: &Context) -> Result<()> {
    let items = Collection::<Item>::new(ITEMS);
    items.create()?;
    items.create_index(IndexSpec::unique_ci("widgets-name", "name"))?;
    items.create_index(IndexSpec::plain("widgets-typeId", "typeId"))?;
    let types = Collection::<Value>::new(ITEM_TYPES);
    types.create()?;
    types.create_index(IndexSpec::unique_ci("widget-types-name", "name"))?;
    Ok(())
}
