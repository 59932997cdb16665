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
        }
    }
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
    pub fn drop(&self) -> Result<bool> {
        Ok(host::drop_collection(&self.name)?)
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
        Ok(host::put(&self.name, &record)?)
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
        }
    }

    /// Apply changes to every record in one statement each, done by the
    /// runner (far faster than a scan and a write per record); returns how
    /// many records changed.
    pub fn update_all(&self, changes: &[FieldChange]) -> Result<u64> {
        let changes: Vec<_> = changes.iter().map(FieldChange::to_host).collect();
        Ok(host::update_all(&self.name, &changes)?)
    }

    fn decode(&self, id: &str, doc: &str) -> Result<T> {
        serde_json::from_str(doc)
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

/// A paged scan over a collection, yielding `(id, document)` in id order.
/// Records written behind the scan's position are not seen again, so a scan
/// may rewrite the records it reads.
pub struct Scan<T> {
    collection: Collection<T>,
    page_size: u32,
    after: Option<String>,
    page: std::vec::IntoIter<Record>,
    done: bool,
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
            match host::scan(&self.collection.name, self.after.as_deref(), self.page_size) {
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
    /// (the runner writes a batch all or nothing) and they stay queued.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let inserted = host::put_batch(&self.collection.name, &self.pending)?;
        self.inserted += u64::from(inserted);
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Write what is left; returns (records written, of which inserted).
    pub fn finish(mut self) -> Result<(u64, u64)> {
        self.flush()?;
        Ok((self.written, self.inserted))
    }
}
