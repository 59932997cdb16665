//! # Graft plugin SDK
//!
//! Write the upgrade logic of a module as a Graft plugin: a WebAssembly
//! component that the `graft` runner calls, tenant by tenant, inside a
//! database transaction. This crate wraps the raw contract in plain Rust:
//! `graft:migration@0.1.0` (`wit/migration.wit`) by default, and
//! `graft:migration@0.2.0` (`wit/0.2.0/migration.wit`) with the feature
//! `contract-0-2`, which adds [`state`] (the module's own key/value state),
//! [`required`] (read-only access to the modules this module requires),
//! [`Releases`] (a release chain from which the SDK derives `describe`,
//! `inspect`, the upgrade walk and the rollback chain),
//! [`Filter`]ed scans, counts and updates, [`FieldChange::Copy`] and the
//! [`Effect`] of each write. Everything of 0.1 works the same on 0.2.
//!
//!
//! - implement [`Migration`] on a unit struct and export it with
//!   [`export_migration!`];
//! - read and write your module's data through typed [`Collection`]s
//!   (serde), with a paged [`Scan`] and a [`BatchWriter`];
//! - load vendor data through [`data`], which applies the right rule for each
//!   [`DataKind`] (system data replaced, reference and sample data kept);
//! - report with [`log`]: messages, warnings tied to one record, progress.
//!
//! Return an [`Error`] to fail a step: the runner rolls back everything the
//! step wrote. A panic, a trap or a breached limit does the same.
//!
//! ## Example
//!
//! ```no_run
//! use graft_plugin_sdk::{Collection, Context, Description, Migration, Outcome, Result, StoredState, IndexSpec};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Note { id: String, text: String }
//!
//! struct Notes;
//!
//! impl Migration for Notes {
//!     fn describe() -> Description {
//!         Description::new("mod-notes", "1.0.0")
//!     }
//!     fn inspect() -> StoredState {
//!         if Collection::<Note>::new("notes").exists() {
//!             StoredState::Release("1.0.0".into())
//!         } else {
//!             StoredState::Empty
//!         }
//!     }
//!     fn upgrade(_ctx: &Context) -> Result<Outcome> {
//!         let notes = Collection::<Note>::new("notes");
//!         if !notes.create()? {
//!             return Ok(Outcome::Unchanged);
//!         }
//!         notes.create_index(IndexSpec::unique("notes-text", "text"))?;
//!         Ok(Outcome::Created)
//!     }
//! }
//!
//! graft_plugin_sdk::export_migration!(Notes);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and put the
//! `.wasm` next to the module's `ModuleDescriptor.json`.

// The generated export code names this crate by its own name, also from inside it.
extern crate self as graft_plugin_sdk;

#[cfg(feature = "contract-0-2")]
mod chain;
mod collection;
pub mod data;
mod error;
pub mod log;
#[cfg(feature = "contract-0-2")]
pub mod required;
#[cfg(feature = "contract-0-2")]
pub mod state;

/// One record as the runner hands it over: its id and JSON text.
pub use bindings::graft::migration::types::Record;
#[cfg(feature = "contract-0-2")]
pub use chain::{Chain, ReleaseChain, Releases, Step};
pub use collection::{BatchWriter, Collection, FieldChange, IndexSpec, Scan};
#[cfg(feature = "contract-0-2")]
pub use collection::{Effect, Filter, WriteCounts};
pub use error::{Error, Result};

use std::collections::BTreeMap;
use std::marker::PhantomData;

/// The raw bindings generated from the contract. Plugins should not need
/// them; they are public for the [`export_migration!`] macro.
#[doc(hidden)]
#[cfg(not(feature = "contract-0-2"))]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/migration.wit",
        world: "plugin",
        pub_export_macro: true,
        runtime_path: "::graft_plugin_sdk::__wit_bindgen::rt",
        default_bindings_module: "::graft_plugin_sdk::bindings",
    });
}

#[doc(hidden)]
#[cfg(feature = "contract-0-2")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/0.2.0/migration.wit",
        world: "plugin",
        pub_export_macro: true,
        runtime_path: "::graft_plugin_sdk::__wit_bindgen::rt",
        default_bindings_module: "::graft_plugin_sdk::bindings",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

use bindings::exports::graft::migration::migration as exports;
use bindings::graft::migration::types as wit;

/// The contract version this SDK builds plugins for.
#[cfg(not(feature = "contract-0-2"))]
pub const CONTRACT_VERSION: &str = "0.1.0";
/// The contract version this SDK builds plugins for.
#[cfg(feature = "contract-0-2")]
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The kind of vendor data being loaded.
pub use wit::DataKind;

/// A successful step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Storage was created from nothing.
    Created,
    /// Existing storage was changed.
    Upgraded,
    /// Storage already was as asked: nothing written.
    Unchanged,
}

/// What the plugin finds in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredState {
    /// Nothing of the module is stored.
    Empty,
    /// Storage is at this release.
    Release(String),
    /// Storage holds something the plugin does not recognise (say what).
    Unrecognised(String),
}

/// Who the plugin is. The runner checks it against the ModuleDescriptor.
#[derive(Debug, Clone)]
pub struct Description {
    pub module_name: String,
    pub release: String,
    pub upgrades_from: Vec<String>,
    pub rolls_back_to: Vec<String>,
}

impl Description {
    /// A plugin of `module_name` that migrates to `release`.
    pub fn new(module_name: &str, release: &str) -> Self {
        Description {
            module_name: module_name.to_string(),
            release: release.to_string(),
            upgrades_from: Vec::new(),
            rolls_back_to: Vec::new(),
        }
    }

    /// Releases whose data this plugin upgrades.
    pub fn upgrades_from(mut self, releases: &[&str]) -> Self {
        self.upgrades_from = releases.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Releases this plugin can roll back to.
    pub fn rolls_back_to(mut self, releases: &[&str]) -> Self {
        self.rolls_back_to = releases.iter().map(|r| r.to_string()).collect();
        self
    }
}

/// What the runner asks of a step.
#[derive(Debug, Clone)]
pub struct Context {
    /// The tenant, e.g. `diku`.
    pub tenant: String,
    /// The module id recorded before this step (`mod-users-1.0.0`), absent
    /// on a first install. A hint only: look at the data with `inspect`.
    pub module_from: Option<String>,
    /// The module id this step moves to.
    pub module_to: String,
    /// Tenant parameters (`loadReference`, `loadSample`, and the operator's own).
    pub parameters: BTreeMap<String, String>,
    /// True in a simulation: behave exactly as in a real run.
    pub simulate: bool,
}

impl Context {
    /// A tenant parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// The release part of `module_to` (`2.0.0` of `mod-users-2.0.0`).
    pub fn release_to(&self) -> &str {
        release_of(&self.module_to)
    }

    /// The release part of `module_from`, if any.
    pub fn release_from(&self) -> Option<&str> {
        self.module_from.as_deref().map(release_of)
    }
}

/// The release of an Okapi module id: everything after the first `-<digit>`.
fn release_of(module_id: &str) -> &str {
    let bytes = module_id.as_bytes();
    (1..bytes.len())
        .find(|&i| bytes[i - 1] == b'-' && bytes[i].is_ascii_digit())
        .map_or(module_id, |i| &module_id[i..])
}

/// The upgrade logic of one module release. Each function runs in a fresh
/// instance, in its own transaction, for one tenant.
pub trait Migration {
    /// Who this plugin is.
    fn describe() -> Description;

    /// What the storage holds now, found from the data itself.
    fn inspect() -> StoredState;

    /// Bring storage from whatever it holds to this release (`ctx.module_to`).
    fn upgrade(ctx: &Context) -> Result<Outcome>;

    /// Bring storage from this release back to the older `ctx.module_to`.
    /// The default refuses: a plugin that supports downgrades overrides it.
    fn rollback(ctx: &Context) -> Result<Outcome> {
        Err(Error::unsupported(format!(
            "{} cannot be rolled back to {}",
            Self::describe().release,
            ctx.module_to
        )))
    }

    /// Load vendor data of one kind. The default loads every collection
    /// folder of the package's data folder for `kind` through the overlay
    /// (see [`data::load_folder`]).
    fn load_data(_ctx: &Context, kind: DataKind) -> Result<Outcome> {
        data::load_folder(kind)
    }
}

/// Bridges a [`Migration`] to the generated export trait.
#[doc(hidden)]
pub struct Adapter<M>(PhantomData<M>);

impl<M: Migration> exports::Guest for Adapter<M> {
    fn describe() -> wit::Description {
        let d = M::describe();
        wit::Description {
            module_name: d.module_name,
            release: d.release,
            upgrades_from: d.upgrades_from,
            rolls_back_to: d.rolls_back_to,
            contract: CONTRACT_VERSION.to_string(),
        }
    }

    fn inspect() -> wit::StoredState {
        match M::inspect() {
            StoredState::Empty => wit::StoredState::Empty,
            StoredState::Release(r) => wit::StoredState::Release(r),
            StoredState::Unrecognised(what) => wit::StoredState::Unrecognised(what),
        }
    }

    fn upgrade(ctx: wit::Context) -> std::result::Result<wit::Outcome, wit::Failure> {
        finish(M::upgrade(&ctx.into()))
    }

    fn rollback(ctx: wit::Context) -> std::result::Result<wit::Outcome, wit::Failure> {
        finish(M::rollback(&ctx.into()))
    }

    fn load_data(
        ctx: wit::Context,
        kind: wit::DataKind,
    ) -> std::result::Result<wit::Outcome, wit::Failure> {
        finish(M::load_data(&ctx.into(), kind))
    }
}

fn finish(result: Result<Outcome>) -> std::result::Result<wit::Outcome, wit::Failure> {
    result
        .map(|outcome| match outcome {
            Outcome::Created => wit::Outcome::Created,
            Outcome::Upgraded => wit::Outcome::Upgraded,
            Outcome::Unchanged => wit::Outcome::Unchanged,
        })
        .map_err(Error::into_failure)
}

impl From<wit::Context> for Context {
    fn from(ctx: wit::Context) -> Self {
        Context {
            tenant: ctx.tenant,
            module_from: ctx.module_from,
            module_to: ctx.module_to,
            parameters: ctx.parameters.into_iter().collect(),
            simulate: ctx.simulate,
        }
    }
}

/// Export a [`Migration`] as the plugin's entry points. Use it once, at the
/// root of the plugin crate.
#[macro_export]
macro_rules! export_migration {
    ($migration:ty) => {
        type __GraftExportedMigration = $crate::Adapter<$migration>;
        $crate::bindings::export!(__GraftExportedMigration with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::release_of;

    #[test]
    fn release_is_after_first_dash_digit() {
        assert_eq!(release_of("mod-users-2.0.0"), "2.0.0");
        assert_eq!(release_of("mod-inventory-storage-30.0.5"), "30.0.5");
        assert_eq!(
            release_of("folio_users-1.0.0-SNAPSHOT.12"),
            "1.0.0-SNAPSHOT.12"
        );
        assert_eq!(release_of("mod-users"), "mod-users");
    }
}
