//! Read-only access to the collections of the modules this module requires
//! (contract 0.2): a module whose plugin needs another module's reference
//! data reads it here, for the same tenant and in the same transaction, as
//! a FOLIO module reads it through HTTP today.
//!
//! A module is readable when it is enabled for the tenant and provides an
//! interface the ModuleDescriptor lists in `requires`. Nothing else of other
//! modules is visible, and nothing of them can be written: a call on any
//! other module fails with `not-permitted`.

use crate::bindings::graft::migration::required as host;
use crate::collection::{Collection, Filter, Scan};
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// The modules this call may read, sorted by name.
pub fn modules() -> Vec<String> {
    host::modules()
}

/// A collection of a module this module requires, with documents of type
/// `T`, read only.
pub struct ReadOnly<T> {
    module: String,
    name: String,
    _doc: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> ReadOnly<T> {
    /// The collection `collection` of module `module` (e.g. `mod-users`).
    pub fn new(module: &str, collection: &str) -> Self {
        ReadOnly {
            module: module.to_string(),
            name: collection.to_string(),
            _doc: PhantomData,
        }
    }

    /// The module's collections.
    pub fn collections(module: &str) -> Result<Vec<String>> {
        Ok(host::list_collections(module)?)
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Result<Option<T>> {
        match host::get(&self.module, &self.name, id)? {
            Some(doc) => crate::collection::decode(&doc).map(Some).map_err(|e| {
                Error::failed(format!("cannot read record of {}: {e}", self.module))
                    .at(&self.name, id)
            }),
            None => Ok(None),
        }
    }

    /// The number of records for which `filter` holds.
    pub fn count_where(&self, filter: &Filter) -> Result<u64> {
        Ok(host::count(
            &self.module,
            &self.name,
            Collection::<T>::conditions(filter),
        )?)
    }

    /// The records for which `filter` holds, in id order, `page_size` at a
    /// time.
    pub fn scan_where(&self, filter: &Filter, page_size: u32) -> Scan<T> {
        Scan::of_module(&self.module, &self.name, filter, page_size)
    }
}
