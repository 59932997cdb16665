//! Typed access to the module's collections.

use crate::bindings::graft::migration::store as host;
use crate::bindings::graft::migration::types::Record;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// An index on one field of a collection's documents.
pub type IndexSpec = host::IndexSpec;

impl IndexSpec {
    /// A unique index, compared exactly.
    pub fn unique(name: &str, field: &str) -> Self {
        Self::new(name, field, true, false)
    }

    /// A unique index compared case-insensitively, as FOLIO's
    /// `lower(jsonb->>'field')` indexes.
    pub fn unique_ci(name: &str, field: &str) -> Self {
        Self::new(name, field, true, true)
    }

    /// A plain (non-unique) index for lookups.
    pub fn plain(name: &str, field: &str) -> Self {
        Self::new(name, field, false, false)
    }

    /// An index on several fields together (FOLIO's `code` and `typeId`),
    /// unique over their combination if `unique`.
    pub fn compound(name: &str, fields: &[&str], unique: bool) -> Self {
        Self::new(name, &fields.join(","), unique, false)
    }

    fn new(name: &str, field: &str, unique: bool, case_insensitive: bool) -> Self {
        host::IndexSpec {
            name: name.to_string(),
            field: field.to_string(),
            unique,
            case_insensitive,
        }
    }
}

/// A change the runner applies to every record of a collection in one
/// statement (see [`Collection::update_all`]).
#[derive(Debug, Clone)]
pub enum FieldChange {
    /// Set `field` to `value` where the field is missing.
    SetDefault(String, serde_json::Value),
    /// Set `field` to `value` on every record.
    Set(String, serde_json::Value),
    /// Remove `field` from every record.
    Remove(String),
    /// Move the value at one path to another.
    Rename(String, String),
    /// Copy the value at one path to another, on the records that have it
    /// (contract 0.2).
    #[cfg(feature = "contract-0-2")]
    Copy(String, String),
}

impl FieldChange {
    fn to_host(&self) -> host::FieldChange {
        match self {
            FieldChange::SetDefault(f, v) => {
                host::FieldChange::SetDefault((f.clone(), v.to_string()))
            }
            FieldChange::Set(f, v) => host::FieldChange::Set((f.clone(), v.to_string())),
            FieldChange::Remove(f) => host::FieldChange::Remove(f.clone()),
            FieldChange::Rename(a, b) => host::FieldChange::Rename((a.clone(), b.clone())),
            #[cfg(feature = "contract-0-2")]
            FieldChange::Copy(a, b) => host::FieldChange::Copy((a.clone(), b.clone())),
        }
    }
}

/// Which records a scan, count or update takes (contract 0.2): those for
/// which every condition holds. Values are compared as JSON values (the
/// number 3 equals 3.0, never the string "3"). A condition on a field with
/// an index (one field, not case-insensitive) is served by the index.
///
/// ```ignore
/// let staff = Filter::new().equals("type", "staff").exists("contact.email");
/// users.update_where(&staff, &[FieldChange::SetDefault("preferredContactTypeId".into(), "002".into())])?;
/// ```
#[cfg(feature = "contract-0-2")]
#[derive(Debug, Clone, Default)]
pub struct Filter(Vec<host::Condition>);

#[cfg(feature = "contract-0-2")]
impl Filter {
    /// Every record.
    pub fn new() -> Self {
        Filter::default()
    }

    /// The field holds `value` (`null` matches a field holding null, never
    /// a missing one).
    pub fn equals(mut self, field: &str, value: impl Into<serde_json::Value>) -> Self {
        let value = value.into().to_string();
        self.0
            .push(host::Condition::Equals((field.to_string(), value)));
        self
    }

    /// The field holds one of `values`.
    pub fn one_of<V: Into<serde_json::Value>>(
        mut self,
        field: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        let values = values.into_iter().map(|v| v.into().to_string()).collect();
        self.0
            .push(host::Condition::OneOf((field.to_string(), values)));
        self
    }

    /// The field is present (any value, null included).
    pub fn exists(mut self, field: &str) -> Self {
        self.0.push(host::Condition::Exists(field.to_string()));
        self
    }

    /// The field is absent.
    pub fn missing(mut self, field: &str) -> Self {
        self.0.push(host::Condition::Missing(field.to_string()));
        self
    }
}

/// What a write did to one record (contract 0.2).
#[cfg(feature = "contract-0-2")]
pub type Effect = crate::bindings::graft::migration::types::WriteEffect;

/// What a batch writer's writes did, record by record (contract 0.2).
#[cfg(feature = "contract-0-2")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub inserted: u64,
    pub replaced: u64,
    pub unchanged: u64,
}

/// One collection of the module, with documents of type `T` (use
/// `serde_json::Value` to work on documents of any shape and keep fields
/// this release does not know).
pub struct Collection<T> {
    name: String,
    _doc: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Collection {
            name: self.name.clone(),
            _doc: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Collection<T> {
    /// The collection called `name` (it need not exist yet).
    pub fn new(name: &str) -> Self {
        Collection {
            name: name.to_string(),
            _doc: PhantomData,
        }
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the collection exists.
    pub fn exists(&self) -> bool {
        host::list_collections().iter().any(|c| c == &self.name)
    }

    /// Create the collection; false if it already existed.
    pub fn create(&self) -> Result<bool> {
        Ok(host::create_collection(&self.name)?)
    }

    /// Drop the collection and its indexes; false if it did not exist.
    pub fn drop_collection(&self) -> Result<bool> {
        Ok(host::drop_collection(&self.name)?)
    }

    /// The same as [`Collection::drop_collection`], kept for plugins
    /// written before it (the name reads like Rust's `drop`).
    pub fn drop(&self) -> Result<bool> {
        self.drop_collection()
    }

    /// Create an index; false if it already existed with this definition.
    pub fn create_index(&self, spec: IndexSpec) -> Result<bool> {
        Ok(host::create_index(&self.name, &spec)?)
    }

    /// Drop an index; false if it did not exist.
    pub fn drop_index(&self, name: &str) -> Result<bool> {
        Ok(host::drop_index(&self.name, name)?)
    }

    /// The collection's indexes.
    pub fn indexes(&self) -> Result<Vec<IndexSpec>> {
        Ok(host::list_indexes(&self.name)?)
    }

    /// Whether an index of this name exists.
    pub fn has_index(&self, name: &str) -> Result<bool> {
        Ok(self.indexes()?.iter().any(|i| i.name == name))
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Result<Option<T>> {
        match host::get(&self.name, id)? {
            Some(doc) => Ok(Some(self.decode(id, &doc)?)),
            None => Ok(None),
        }
    }

    /// Insert or replace a record; true if it was inserted.
    pub fn put(&self, id: &str, doc: &T) -> Result<bool> {
        let record = self.encode(id, doc)?;
        #[cfg(not(feature = "contract-0-2"))]
        return Ok(host::put(&self.name, &record)?);
        #[cfg(feature = "contract-0-2")]
        return Ok(host::put(&self.name, &record)? == Effect::Inserted);
    }

    /// Insert or replace a record; what the write did (contract 0.2).
    #[cfg(feature = "contract-0-2")]
    pub fn put_effect(&self, id: &str, doc: &T) -> Result<Effect> {
        let record = self.encode(id, doc)?;
        Ok(host::put(&self.name, &record)?)
    }

    /// The records for which `filter` holds, in id order, `page_size` at a
    /// time (contract 0.2).
    #[cfg(feature = "contract-0-2")]
    pub fn scan_where(&self, filter: &Filter, page_size: u32) -> Scan<T> {
        Scan {
            filter: filter.0.clone(),
            ..self.scan(page_size)
        }
    }

    /// The conditions of a filter, for the host calls of `required`.
    #[cfg(feature = "contract-0-2")]
    pub(crate) fn conditions(filter: &Filter) -> &[host::Condition] {
        &filter.0
    }

    /// The number of records for which `filter` holds (contract 0.2).
    #[cfg(feature = "contract-0-2")]
    pub fn count_where(&self, filter: &Filter) -> Result<u64> {
        Ok(host::count_where(&self.name, &filter.0)?)
    }

    /// Apply changes, in one statement each, to the records for which
    /// `filter` holds (contract 0.2); the filter is evaluated again before
    /// each change. Returns how many record changes were made.
    #[cfg(feature = "contract-0-2")]
    pub fn update_where(&self, filter: &Filter, changes: &[FieldChange]) -> Result<u64> {
        let changes: Vec<_> = changes.iter().map(FieldChange::to_host).collect();
        Ok(host::update_where(&self.name, &filter.0, &changes)?)
    }

    /// Delete a record; false if there was none.
    pub fn delete(&self, id: &str) -> Result<bool> {
        Ok(host::delete(&self.name, id)?)
    }

    /// The number of records.
    pub fn count(&self) -> Result<u64> {
        Ok(host::count(&self.name)?)
    }

    /// Every record, in id order, fetched `page_size` at a time so that a
    /// collection of millions never sits in memory at once.
    pub fn scan(&self, page_size: u32) -> Scan<T> {
        Scan {
            collection: self.clone(),
            page_size: page_size.max(1),
            after: None,
            page: Vec::new().into_iter(),
            done: false,
            #[cfg(feature = "contract-0-2")]
            filter: Vec::new(),
            #[cfg(feature = "contract-0-2")]
            module: None,
        }
    }

    /// A writer that sends records to the runner `batch_size` at a time.
    /// Call [`BatchWriter::finish`] at the end to write the last batch.
    pub fn writer(&self, batch_size: usize) -> BatchWriter<T> {
        BatchWriter {
            collection: self.clone(),
            batch_size: batch_size.max(1),
            pending: Vec::with_capacity(batch_size.max(1)),
            inserted: 0,
            written: 0,
            #[cfg(feature = "contract-0-2")]
            counts: WriteCounts::default(),
        }
    }

    /// Rewrite records one at a time, streaming: each page read is passed
    /// through `f` record by record and written back as one batch, with
    /// progress reported as it goes. `f` returns the record's new
    /// document, or `None` to leave the record as it is. An error of `f`
    /// names the record unless it names one itself, and so does a panic
    /// inside `f` (the runner reports the record it happened at). Returns
    /// the records written.
    ///
    /// On contract 0.2 each batch is written behind: the next page is read
    /// first, then the batch handed to the runner, which writes it while
    /// `f` transforms that page.
    pub fn update_each(
        &self,
        page_size: u32,
        mut f: impl FnMut(&str, T) -> Result<Option<T>>,
    ) -> Result<u64> {
        let total = self.count()?;
        let page_size = page_size.max(1);
        let mut after: Option<String> = None;
        let mut batch: Vec<Record> = Vec::new();
        let (mut done, mut written) = (0u64, 0u64);
        loop {
            let page = host::scan(&self.name, after.as_deref(), page_size)?;
            if !batch.is_empty() {
                written += batch.len() as u64;
                send_batch(&self.name, &batch)?;
                batch.clear();
            }
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let short = page.len() < page_size as usize;
            for record in page {
                let doc = self.decode(&record.id, &record.doc)?;
                let id = record.id;
                let changed = crate::log::at_record(&self.name, &id, || f(&id, doc))
                    .map_err(|e| e.or_at(&self.name, &id))?;
                if let Some(doc) = changed {
                    batch.push(self.encode(&id, &doc)?);
                }
            }
            done += page_size as u64;
            crate::log::progress(done.min(total), total);
            if short {
                break;
            }
        }
        if !batch.is_empty() {
            written += batch.len() as u64;
            send_batch(&self.name, &batch)?;
        }
        collect_batches()?;
        crate::log::progress(total, total);
        Ok(written)
    }

    /// Apply changes to every record in one statement each, done by the
    /// runner (far faster than a scan and a write per record); returns how
    /// many records changed.
    pub fn update_all(&self, changes: &[FieldChange]) -> Result<u64> {
        let changes: Vec<_> = changes.iter().map(FieldChange::to_host).collect();
        Ok(host::update_all(&self.name, &changes)?)
    }

    fn decode(&self, id: &str, doc: &str) -> Result<T> {
        decode(doc)
            .map_err(|e| Error::failed(format!("cannot read record: {e}")).at(&self.name, id))
    }

    fn encode(&self, id: &str, doc: &T) -> Result<Record> {
        let doc = serde_json::to_string(doc)
            .map_err(|e| Error::failed(format!("cannot write record: {e}")).at(&self.name, id))?;
        Ok(Record {
            id: id.to_string(),
            doc,
        })
    }
}

/// A document as `T`. A document that does not fit names the field path
/// where it stops fitting (`address.city: invalid type: ...`), so the
/// vendor can find the field in the record, not just the record.
pub(crate) fn decode<T: DeserializeOwned>(doc: &str) -> std::result::Result<T, String> {
    let mut reader = serde_json::Deserializer::from_str(doc);
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." => e.into_inner().to_string(),
            _ => format!("field {path}: {}", e.into_inner()),
        }
    })
}

/// A paged scan over a collection, yielding `(id, document)` in id order.
/// Records written behind the scan's position are not seen again, so a scan
/// may rewrite the records it reads.
pub struct Scan<T> {
    collection: Collection<T>,
    page_size: u32,
    after: Option<String>,
    page: std::vec::IntoIter<Record>,
    done: bool,
    #[cfg(feature = "contract-0-2")]
    filter: Vec<host::Condition>,
    /// Another module's collection, read through `required` (contract 0.2).
    #[cfg(feature = "contract-0-2")]
    module: Option<String>,
}

impl<T> Scan<T> {
    /// A scan of another module's collection (contract 0.2's `required`).
    #[cfg(feature = "contract-0-2")]
    pub(crate) fn of_module(
        module: &str,
        collection: &str,
        filter: &Filter,
        page_size: u32,
    ) -> Self {
        Scan {
            collection: Collection {
                name: collection.to_string(),
                _doc: PhantomData,
            },
            page_size: page_size.max(1),
            after: None,
            page: Vec::new().into_iter(),
            done: false,
            filter: filter.0.clone(),
            module: Some(module.to_string()),
        }
    }

    fn fetch(&self) -> std::result::Result<Vec<Record>, host::StoreError> {
        let (name, after) = (&self.collection.name, self.after.as_deref());
        #[cfg(feature = "contract-0-2")]
        if let Some(module) = &self.module {
            use crate::bindings::graft::migration::required;
            return required::scan(module, name, &self.filter, after, self.page_size);
        }
        #[cfg(feature = "contract-0-2")]
        if !self.filter.is_empty() {
            return host::scan_where(name, &self.filter, after, self.page_size);
        }
        host::scan(name, after, self.page_size)
    }
}

impl<T: Serialize + DeserializeOwned> Iterator for Scan<T> {
    type Item = Result<(String, T)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.page.next() {
                self.after = Some(record.id.clone());
                let doc = self.collection.decode(&record.id, &record.doc);
                return Some(doc.map(|doc| (record.id, doc)));
            }
            if self.done {
                return None;
            }
            match self.fetch() {
                Ok(page) => {
                    self.done = page.len() < self.page_size as usize;
                    self.page = page.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
    }
}

/// Buffers writes and sends them to the runner in batches.
pub struct BatchWriter<T> {
    collection: Collection<T>,
    batch_size: usize,
    pending: Vec<Record>,
    inserted: u64,
    written: u64,
    #[cfg(feature = "contract-0-2")]
    counts: WriteCounts,
}

impl<T: Serialize + DeserializeOwned> BatchWriter<T> {
    /// Queue a record for insert-or-replace.
    pub fn put(&mut self, id: &str, doc: &T) -> Result<()> {
        self.pending.push(self.collection.encode(id, doc)?);
        if self.pending.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Send the queued records now. On an error none of them is written
    /// (the runner writes a batch all or nothing) and they stay queued. On
    /// contract 0.2 the runner writes them behind, while the plugin goes on:
    /// the error of a batch comes with the next send or with `finish`.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let inserted = self.send()?;
        self.inserted += inserted;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Write what is left; returns (records written, of which inserted).
    pub fn finish(mut self) -> Result<(u64, u64)> {
        self.flush()?;
        self.collect()?;
        Ok((self.written, self.inserted))
    }

    /// Write what is left; returns what the writes did, record by record
    /// (contract 0.2).
    #[cfg(feature = "contract-0-2")]
    pub fn finish_counts(mut self) -> Result<WriteCounts> {
        self.flush()?;
        self.collect()?;
        Ok(self.counts)
    }

    /// Send the queued records; returns how many were inserted, where that
    /// is known at once (contract 0.1).
    fn send(&mut self) -> std::result::Result<u64, host::StoreError> {
        send_batch(&self.collection.name, &self.pending)
    }

    /// Wait for the batches handed over, and count what they did.
    #[cfg(feature = "contract-0-2")]
    fn collect(&mut self) -> Result<()> {
        for effect in collect_batches()? {
            match effect {
                Effect::Inserted => self.counts.inserted += 1,
                Effect::Replaced => self.counts.replaced += 1,
                Effect::Unchanged => self.counts.unchanged += 1,
            }
        }
        self.inserted = self.counts.inserted;
        Ok(())
    }

    #[cfg(not(feature = "contract-0-2"))]
    fn collect(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Send a batch: on contract 0.1 written at once, returning how many were
/// inserted; on 0.2 handed to the runner to write behind, its effects
/// counted when collected (`collect_batches`), so 0 here.
fn send_batch(collection: &str, batch: &[Record]) -> std::result::Result<u64, host::StoreError> {
    #[cfg(feature = "contract-0-2")]
    return host::put_batch_behind(collection, batch).map(|()| 0);
    #[cfg(not(feature = "contract-0-2"))]
    return host::put_batch(collection, batch).map(u64::from);
}

/// Wait for the batches written behind, hear their error, and return what
/// each record did (contract 0.2).
#[cfg(feature = "contract-0-2")]
fn collect_batches() -> Result<Vec<Effect>> {
    Ok(host::flush()?)
}

/// Nothing to wait for on contract 0.1: every batch was written at once.
#[cfg(not(feature = "contract-0-2"))]
fn collect_batches() -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::decode;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct User {
        name: Name,
        tags: Vec<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Name {
        family: String,
    }

    #[test]
    fn a_document_that_does_not_fit_names_the_field_path() {
        let error = decode::<User>(r#"{"name": {"family": 7}, "tags": []}"#).unwrap_err();
        assert!(
            error.starts_with("field name.family: invalid type: integer `7`"),
            "{error}"
        );
        let error = decode::<User>(r#"{"name": {"family": "X"}, "tags": [1, "b"]}"#).unwrap_err();
        assert!(
            error.starts_with("field tags[1]: invalid type: string"),
            "{error}"
        );
        let error = decode::<User>(r#"{"name": {}, "tags": []}"#).unwrap_err();
        assert!(
            error.starts_with("field name: missing field `family`"),
            "{error}"
        );
        // Not JSON at all: no path to name.
        let error = decode::<User>("[").unwrap_err();
        assert!(!error.starts_with("field"), "{error}");
        assert!(decode::<User>(r#"{"name": {"family": "X"}, "tags": [1]}"#).is_ok());
    }
}
