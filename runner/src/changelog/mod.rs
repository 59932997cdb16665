//! The change log: every record insert, update and delete, and every
//! collection and index change, of a job, by module and collection.
//!
//! `RecordingStore` wraps a tenant's store and sees every write, whoever
//! makes it (a plugin, the overlay, the runner), so nothing escapes the log.
//! Counts are exact; each collection keeps the first `SAMPLES` record
//! changes with their before and after, so a run over millions of records
//! keeps a log of bounded size, and a digest of all of them in order, so two
//! runs (a simulation and the real one, or two runs on copies of a tenant)
//! can be compared exactly.

use crate::storage::{
    ChangeRecord, Condition, Dump, EnabledModule, FieldChange, HistoryEntry, IndexSpec, JobRecord,
    StateEntry, StoreResult, TenantStore, WriteEffect,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Instant;
use xxhash_rust::xxh3::Xxh3;

mod saved;

pub use saved::{job_changes, save_job, take_changes};

/// Record changes kept with before and after, per collection and job.
pub const SAMPLES: usize = 50;

/// Bytes of samples and schema texts one job's log keeps, over all its
/// collections: a plugin decides how many collections and how large the
/// documents are, so the host's memory is bounded in bytes, not in counts.
/// Past it, changes are still counted and digested, not kept.
pub const KEPT_BYTES: usize = 4 << 20;

/// A schema change's text is cut here (its digest covers all of it).
const SCHEMA_TEXT_BYTES: usize = 1024;

/// What a job changed in one collection of one module.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionChanges {
    pub module: String,
    pub collection: String,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Collection and index changes, and set-based updates, in order.
    pub schema: Vec<String>,
    /// The first record changes, with their documents before and after.
    pub samples: Vec<RecordChange>,
    /// What vendor data loads did here (system, reference, sample), if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlay: Vec<crate::overlay::CollectionOverlay>,
    /// xxh3-128 of every change, in order: each record write with its id
    /// and document, each schema change. Equal digests, equal changes.
    #[serde(default)]
    pub digest: String,
}

/// The last entry of a collection's `schema` once the job's log is full
/// (see `KEPT_BYTES`): later changes are counted and digested, not kept.
pub const SCHEMA_NOT_KEPT: &str = "(more changes, not kept: the job's change log is full)";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    pub id: String,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl CollectionChanges {
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }
}

/// A store that logs every change made through it.
pub struct RecordingStore {
    inner: Box<dyn TenantStore>,
    /// A job touches a handful of collections: a list searched by name
    /// costs no allocation per write, unlike a map keyed by owned strings.
    changes: Vec<CollectionChanges>,
    /// The running digest of each entry of `changes`.
    digests: Vec<Xxh3>,
    /// Bytes of samples and schema texts kept, against `KEPT_BYTES`.
    kept_bytes: usize,
}

impl RecordingStore {
    pub fn new(inner: Box<dyn TenantStore>) -> Self {
        RecordingStore {
            inner,
            changes: Vec::new(),
            digests: Vec::new(),
            kept_bytes: 0,
        }
    }

    fn entry(&mut self, module: &str, collection: &str) -> &mut CollectionChanges {
        let position = self.position(module, collection);
        &mut self.changes[position]
    }

    /// Add one change to the collection's digest: a tag, then its parts,
    /// each ended by a byte no JSON text or name contains. Returns the
    /// collection's entry, for its counts (one lookup per write).
    fn fingerprint(
        &mut self,
        module: &str,
        collection: &str,
        tag: u8,
        parts: &[&str],
    ) -> &mut CollectionChanges {
        let position = self.position(module, collection);
        let digest = &mut self.digests[position];
        digest.update(&[tag]);
        for part in parts {
            digest.update(part.as_bytes());
            digest.update(&[0xff]);
        }
        &mut self.changes[position]
    }

    fn position(&mut self, module: &str, collection: &str) -> usize {
        match self
            .changes
            .iter()
            .position(|c| c.module == module && c.collection == collection)
        {
            Some(position) => position,
            None => {
                self.changes.push(CollectionChanges {
                    module: module.to_string(),
                    collection: collection.to_string(),
                    ..CollectionChanges::default()
                });
                self.digests.push(Xxh3::new());
                self.changes.len() - 1
            }
        }
    }

    /// How many more changes the collection's sample takes.
    fn sample_room(&self, module: &str, collection: &str) -> usize {
        if self.kept_bytes >= KEPT_BYTES {
            return 0;
        }
        let taken = self
            .changes
            .iter()
            .find(|c| c.module == module && c.collection == collection)
            .map_or(0, |c| c.samples.len());
        SAMPLES.saturating_sub(taken)
    }

    fn wants_sample(&self, module: &str, collection: &str) -> bool {
        self.sample_room(module, collection) > 0
    }

    fn sample(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        op: Op,
        before: Option<String>,
        after: Option<&str>,
    ) {
        let size = id.len() + before.as_ref().map_or(0, String::len) + after.map_or(0, str::len);
        if self.kept_bytes + size > KEPT_BYTES {
            // The log is full: no later change is sampled either, so what
            // is kept is the same whatever the sizes that follow.
            self.kept_bytes = KEPT_BYTES;
            return;
        }
        let parse = |doc: &str| serde_json::from_str(doc).unwrap_or(Value::String(doc.to_string()));
        let change = RecordChange {
            id: id.to_string(),
            op,
            before: before.as_deref().map(parse),
            after: after.map(parse),
        };
        let entry = self.entry(module, collection);
        if entry.samples.len() < SAMPLES {
            entry.samples.push(change);
            self.kept_bytes += size;
        }
    }

    /// Count (and fingerprint) a put that changed something; sample it
    /// when the document before was read for the sample.
    fn record_put(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
        effect: WriteEffect,
        before: Option<Option<String>>,
    ) {
        if effect == WriteEffect::Unchanged {
            return;
        }
        let entry = self.fingerprint(module, collection, b'P', &[id, doc]);
        if effect == WriteEffect::Inserted {
            entry.inserted += 1;
        } else {
            entry.updated += 1;
        }
        if let Some(before) = before {
            let op = if effect == WriteEffect::Inserted {
                Op::Insert
            } else {
                Op::Update
            };
            self.sample(module, collection, id, op, before, Some(doc));
        }
    }

    fn schema(&mut self, module: &str, collection: &str, what: String) {
        let kept = crate::text::truncate(&what, SCHEMA_TEXT_BYTES).into_owned();
        let full = self.kept_bytes + kept.len() > KEPT_BYTES;
        if !full {
            self.kept_bytes += kept.len();
        }
        let entry = self.fingerprint(module, collection, b'S', &[&what]);
        if !full {
            entry.schema.push(kept);
        } else if entry.schema.last().map(String::as_str) != Some(SCHEMA_NOT_KEPT) {
            entry.schema.push(SCHEMA_NOT_KEPT.to_string());
        }
    }
}

impl TenantStore for RecordingStore {
    fn tenant(&self) -> &str {
        self.inner.tenant()
    }
    fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.inner.set_deadline(deadline)
    }
    fn begin(&mut self) -> StoreResult<()> {
        self.inner.begin()
    }
    fn commit(&mut self) -> StoreResult<()> {
        self.inner.commit()
    }
    fn rollback(&mut self) -> StoreResult<()> {
        self.inner.rollback()
    }

    fn create_collection(&mut self, module: &str, collection: &str) -> StoreResult<bool> {
        let created = self.inner.create_collection(module, collection)?;
        if created {
            self.schema(module, collection, "create collection".into());
        }
        Ok(created)
    }

    fn drop_collection(&mut self, module: &str, collection: &str) -> StoreResult<bool> {
        let records = match self.inner.count(module, collection) {
            Ok(n) => n,
            Err(_) => return self.inner.drop_collection(module, collection),
        };
        let dropped = self.inner.drop_collection(module, collection)?;
        if dropped {
            self.entry(module, collection).deleted += records;
            self.schema(
                module,
                collection,
                format!("drop collection ({records} records)"),
            );
        }
        Ok(dropped)
    }

    fn list_collections(&mut self, module: &str) -> StoreResult<Vec<String>> {
        self.inner.list_collections(module)
    }

    fn create_index(
        &mut self,
        module: &str,
        collection: &str,
        spec: &IndexSpec,
    ) -> StoreResult<bool> {
        let created = self.inner.create_index(module, collection, spec)?;
        if created {
            let kind = match (spec.unique, spec.case_insensitive) {
                (true, true) => "unique case-insensitive ",
                (true, false) => "unique ",
                (false, true) => "case-insensitive ",
                (false, false) => "",
            };
            self.schema(
                module,
                collection,
                format!("create {kind}index {} on {}", spec.name, spec.field),
            );
        }
        Ok(created)
    }

    fn drop_index(&mut self, module: &str, collection: &str, name: &str) -> StoreResult<bool> {
        let dropped = self.inner.drop_index(module, collection, name)?;
        if dropped {
            self.schema(module, collection, format!("drop index {name}"));
        }
        Ok(dropped)
    }

    fn list_indexes(&mut self, module: &str, collection: &str) -> StoreResult<Vec<IndexSpec>> {
        self.inner.list_indexes(module, collection)
    }

    fn get(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<Option<String>> {
        self.inner.get(module, collection, id)
    }

    fn put(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<WriteEffect> {
        // The document before is read only while the sample has room.
        let before = if self.wants_sample(module, collection) {
            Some(self.inner.get(module, collection, id)?)
        } else {
            None
        };
        let effect = self.inner.put(module, collection, id, doc)?;
        self.record_put(module, collection, id, doc, effect, before);
        Ok(effect)
    }

    fn put_batch(
        &mut self,
        module: &str,
        collection: &str,
        records: &[(String, String)],
    ) -> StoreResult<Vec<WriteEffect>> {
        // The documents before, for as many records as the sample has room
        // for (fewer are sampled when some of them turn out unchanged; the
        // next batch fills the rest).
        let befores = records
            .iter()
            .take(self.sample_room(module, collection))
            .map(|(id, _)| self.inner.get(module, collection, id))
            .collect::<StoreResult<Vec<_>>>()?;
        let effects = self.inner.put_batch(module, collection, records)?;
        let mut befores = befores.into_iter();
        for ((id, doc), effect) in records.iter().zip(&effects) {
            self.record_put(module, collection, id, doc, *effect, befores.next());
        }
        Ok(effects)
    }

    fn insert_if_absent(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<bool> {
        let inserted = self.inner.insert_if_absent(module, collection, id, doc)?;
        if inserted {
            self.fingerprint(module, collection, b'P', &[id, doc])
                .inserted += 1;
            if self.wants_sample(module, collection) {
                self.sample(module, collection, id, Op::Insert, None, Some(doc));
            }
        }
        Ok(inserted)
    }

    fn delete(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<bool> {
        let before = if self.wants_sample(module, collection) {
            self.inner.get(module, collection, id)?
        } else {
            None
        };
        let deleted = self.inner.delete(module, collection, id)?;
        if deleted {
            self.fingerprint(module, collection, b'D', &[id]).deleted += 1;
            if before.is_some() {
                self.sample(module, collection, id, Op::Delete, before, None);
            }
        }
        Ok(deleted)
    }

    fn scan_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        self.inner
            .scan_where(module, collection, conditions, after, limit)
    }

    fn count_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
    ) -> StoreResult<u64> {
        self.inner.count_where(module, collection, conditions)
    }

    fn update_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        change: &FieldChange,
    ) -> StoreResult<u64> {
        let changed = self
            .inner
            .update_where(module, collection, conditions, change)?;
        if changed > 0 {
            let what = match change {
                FieldChange::SetDefault { field, value } => {
                    format!("set {field} = {value} where missing")
                }
                FieldChange::Set { field, value } => format!("set {field} = {value}"),
                FieldChange::Remove { field } => format!("remove {field}"),
                FieldChange::Rename { from, to } => format!("rename {from} to {to}"),
                FieldChange::Copy { from, to } => format!("copy {from} to {to}"),
            };
            let filter = match conditions {
                [] => String::new(),
                conditions => format!(" on records where {}", describe(conditions)),
            };
            self.entry(module, collection).updated += changed;
            self.schema(
                module,
                collection,
                format!("set-based update: {what}{filter} ({changed} records)"),
            );
        }
        Ok(changed)
    }

    fn get_state(&mut self, module: &str, key: &str) -> StoreResult<Option<String>> {
        self.inner.get_state(module, key)
    }
    fn set_state(&mut self, module: &str, key: &str, value: Option<&str>) -> StoreResult<bool> {
        self.inner.set_state(module, key, value)
    }
    fn state_entries(&mut self, module: Option<&str>) -> StoreResult<Vec<StateEntry>> {
        self.inner.state_entries(module)
    }

    fn modules(&mut self) -> StoreResult<Vec<EnabledModule>> {
        self.inner.modules()
    }
    fn set_module(&mut self, module: &EnabledModule) -> StoreResult<()> {
        self.inner.set_module(module)
    }
    fn remove_module(&mut self, name: &str) -> StoreResult<()> {
        self.inner.remove_module(name)
    }
    fn add_history(&mut self, entry: &HistoryEntry) -> StoreResult<()> {
        self.inner.add_history(entry)
    }
    fn history(&mut self) -> StoreResult<Vec<HistoryEntry>> {
        self.inner.history()
    }
    fn save_job(&mut self, job: &JobRecord, changes: &[ChangeRecord]) -> StoreResult<()> {
        self.inner.save_job(job, changes)
    }
    fn jobs(&mut self) -> StoreResult<Vec<JobRecord>> {
        self.inner.jobs()
    }
    fn changes(&mut self, job_id: &str) -> StoreResult<Vec<ChangeRecord>> {
        self.inner.changes(job_id)
    }
    fn get_base(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
    ) -> StoreResult<Option<String>> {
        self.inner.get_base(module, collection, id)
    }
    fn put_base(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
        release: &str,
        kind: &str,
    ) -> StoreResult<()> {
        self.inner
            .put_base(module, collection, id, doc, release, kind)
    }
    fn delete_base(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<()> {
        self.inner.delete_base(module, collection, id)
    }
    fn base_records(
        &mut self,
        module: &str,
        collection: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        self.inner.base_records(module, collection)
    }
    fn base_collections(&mut self, module: &str) -> StoreResult<Vec<(String, String)>> {
        self.inner.base_collections(module)
    }
    fn all_collections(&mut self) -> StoreResult<Vec<(String, String)>> {
        self.inner.all_collections()
    }
    fn all_base_collections(&mut self) -> StoreResult<Vec<(String, String)>> {
        self.inner.all_base_collections()
    }
    fn dump(&mut self) -> StoreResult<Dump> {
        self.inner.dump()
    }
}

impl RecordingStore {
    /// The changes recorded since the last call, in (module, collection)
    /// order, each with its digest.
    pub fn take_changes(&mut self) -> Vec<CollectionChanges> {
        let mut changes = std::mem::take(&mut self.changes);
        for (entry, digest) in changes.iter_mut().zip(std::mem::take(&mut self.digests)) {
            entry.digest = format!("{:032x}", digest.digest128());
        }
        changes.sort_by(|a, b| (&a.module, &a.collection).cmp(&(&b.module, &b.collection)));
        changes
    }
}

/// Conditions as people read them: `type = "staff" and email present`.
fn describe(conditions: &[Condition]) -> String {
    let one = |c: &Condition| match c {
        Condition::Equals { field, value } => format!("{field} = {value}"),
        Condition::OneOf { field, values } => format!("{field} in [{}]", values.join(", ")),
        Condition::Exists { field } => format!("{field} present"),
        Condition::Missing { field } => format!("{field} missing"),
    };
    let text = conditions.iter().map(one).collect::<Vec<_>>().join(" and ");
    crate::text::truncate(&text, 500).into_owned()
}

#[cfg(test)]
mod tests;
