//! A tenant's whole database as one value, read through the trait, so both
//! backends dump exactly alike (the tests compare dumps across runs).

use super::{CollectionDump, Dump, StoreError, StoreResult, TenantStore};
use std::collections::BTreeMap;

/// Records read per page of a collection.
const PAGE: u32 = 10_000;

pub(super) fn dump<S: TenantStore + ?Sized>(store: &mut S) -> StoreResult<Dump> {
    let mut collections: BTreeMap<String, BTreeMap<String, CollectionDump>> = BTreeMap::new();
    for (module, collection) in store.all_collections()? {
        let indexes = store.list_indexes(&module, &collection)?;
        let mut records = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.scan(&module, &collection, after.as_deref(), PAGE)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (id, doc) in page {
                records.insert(id, parse(&doc)?);
            }
        }
        collections
            .entry(module)
            .or_default()
            .insert(collection, CollectionDump { indexes, records });
    }
    let mut bases: BTreeMap<String, BTreeMap<String, BTreeMap<String, serde_json::Value>>> =
        BTreeMap::new();
    for (module, collection) in store.all_base_collections()? {
        let mut records = BTreeMap::new();
        for (id, doc) in store.base_records(&module, &collection)? {
            records.insert(id, parse(&doc)?);
        }
        bases.entry(module).or_default().insert(collection, records);
    }
    let mut state: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for entry in store.state_entries(None)? {
        state
            .entry(entry.module)
            .or_default()
            .insert(entry.key, entry.value);
    }
    Ok(Dump {
        collections,
        state,
        modules: store.modules()?,
        history: store.history()?,
        jobs: store.jobs()?,
        bases,
    })
}

fn parse(doc: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(doc).map_err(|e| StoreError::InvalidDocument(e.to_string()))
}
