//! Each backend's map from (module, collection) to its table, looked up
//! once per store: the lookup is written once here, the query that finds a
//! table is the backend's.

use super::{StoreError, StoreResult};
use std::collections::HashMap;

/// Tables found so far; cleared on rollback, since a rolled back
/// transaction may have created or dropped tables.
pub(super) struct Tables<T> {
    known: HashMap<(String, String), T>,
}

impl<T: Clone> Tables<T> {
    pub(super) fn new() -> Self {
        Tables {
            known: HashMap::new(),
        }
    }

    /// The collection's table, from the map or else from `query` (which
    /// then is remembered); `None` if the collection does not exist.
    pub(super) fn find(
        &mut self,
        module: &str,
        collection: &str,
        query: impl FnOnce() -> StoreResult<Option<T>>,
    ) -> StoreResult<Option<T>> {
        let key = (module.to_string(), collection.to_string());
        if let Some(table) = self.known.get(&key) {
            return Ok(Some(table.clone()));
        }
        let table = query()?;
        if let Some(table) = &table {
            self.known.insert(key, table.clone());
        }
        Ok(table)
    }

    pub(super) fn insert(&mut self, module: &str, collection: &str, table: T) {
        self.known
            .insert((module.to_string(), collection.to_string()), table);
    }

    pub(super) fn remove(&mut self, module: &str, collection: &str) {
        self.known
            .remove(&(module.to_string(), collection.to_string()));
    }

    pub(super) fn clear(&mut self) {
        self.known.clear();
    }
}

/// How a backend finds a collection's table.
pub(super) trait TableLookup {
    type Table;

    /// The collection's table; `None` if the collection does not exist.
    fn find_table(&mut self, module: &str, collection: &str) -> StoreResult<Option<Self::Table>>;

    /// A table that must exist: its absence is the contract's
    /// `NoSuchCollection`.
    fn table(&mut self, module: &str, collection: &str) -> StoreResult<Self::Table> {
        self.find_table(module, collection)?
            .ok_or_else(|| StoreError::NoSuchCollection(collection.to_string()))
    }
}
