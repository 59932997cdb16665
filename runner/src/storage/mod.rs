//! Tenant storage: a module's collections of (id, JSON document) records and
//! the runner's metadata, behind one trait so that backends (SQLite now,
//! PostgreSQL next) are interchangeable.
//!
//! A `TenantStore` is one tenant's database. Everything a module's install
//! writes, data and metadata alike, happens between `begin` and `commit`, so
//! a failure anywhere is undone by `rollback`.

pub(crate) mod pool;
pub mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a storage call failed. The variants mirror the contract's
/// `store-error`, so plugins can react to them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no collection {0}")]
    NoSuchCollection(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    #[error("record {record_id} breaks unique index {index} of {collection}")]
    UniqueViolation {
        collection: String,
        index: String,
        record_id: String,
    },
    #[error("storage: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An index on one field (a dotted path) of a collection's documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSpec {
    pub name: String,
    pub field: String,
    pub unique: bool,
    pub case_insensitive: bool,
}

/// A set-based change applied to every record of a collection.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldChange {
    /// Set the field to the JSON value where it is missing.
    SetDefault { field: String, value: String },
    /// Set the field to the JSON value on every record.
    Set { field: String, value: String },
    /// Remove the field.
    Remove { field: String },
    /// Move the value at `from` to `to`.
    Rename { from: String, to: String },
}

/// What a write did to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteEffect {
    Inserted,
    Replaced,
    /// The stored document already was exactly this one.
    Unchanged,
}

/// A module as the tenant has it (enabled, or disabled with its data kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnabledModule {
    pub name: String,
    pub module_id: String,
    pub enabled: bool,
    pub updated_at: String,
    /// The ModuleDescriptor it was installed with (JSON), so plans know what
    /// it provides even when its package is gone.
    #[serde(skip)]
    pub descriptor: Option<String>,
}

/// One job run on a tenant, kept with the changes it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub started_at: String,
    pub finished_at: String,
    /// `atomic` or `per-module`.
    pub commit: String,
    /// The plan as an Okapi install list, with the stage each entry reached.
    pub plan: serde_json::Value,
}

/// One step of an install job, as recorded with the data it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub job_id: String,
    pub module_name: String,
    pub step: String,
    pub module_from: Option<String>,
    pub module_to: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub duration_ms: u64,
    pub plugin_sha256: String,
    pub at: String,
}

/// Everything a tenant's database holds, in a form that compares equal
/// exactly when the data and metadata are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dump {
    /// module -> collection -> (indexes, id -> document)
    pub collections: BTreeMap<String, BTreeMap<String, CollectionDump>>,
    pub modules: Vec<EnabledModule>,
    pub history: Vec<HistoryEntry>,
    pub jobs: Vec<JobRecord>,
    /// module -> collection -> id -> the vendor's copy (the overlay's base).
    pub bases: BTreeMap<String, BTreeMap<String, BTreeMap<String, serde_json::Value>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionDump {
    pub indexes: Vec<IndexSpec>,
    pub records: BTreeMap<String, serde_json::Value>,
}

/// One tenant's database. Collection calls are scoped by module name: a
/// module can only name its own collections.
pub trait TenantStore: Send {
    /// The tenant this store belongs to.
    fn tenant(&self) -> &str;

    /// Interrupt any statement still running at `deadline` (the deadline of
    /// the plugin call it serves: wasmtime's epochs do not stop host code).
    fn set_deadline(&mut self, deadline: Option<std::time::Instant>);

    /// Start a transaction; everything until `commit` or `rollback` is one unit.
    fn begin(&mut self) -> StoreResult<()>;
    fn commit(&mut self) -> StoreResult<()>;
    fn rollback(&mut self) -> StoreResult<()>;

    fn create_collection(&mut self, module: &str, collection: &str) -> StoreResult<bool>;
    fn drop_collection(&mut self, module: &str, collection: &str) -> StoreResult<bool>;
    fn list_collections(&mut self, module: &str) -> StoreResult<Vec<String>>;
    fn create_index(
        &mut self,
        module: &str,
        collection: &str,
        spec: &IndexSpec,
    ) -> StoreResult<bool>;
    fn drop_index(&mut self, module: &str, collection: &str, name: &str) -> StoreResult<bool>;
    fn list_indexes(&mut self, module: &str, collection: &str) -> StoreResult<Vec<IndexSpec>>;

    fn get(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<Option<String>>;
    fn put(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<WriteEffect>;
    /// `put` each `(id, document)` in order, all or nothing: on an error,
    /// which names the record, none of the batch is written and the
    /// transaction stays usable. Returns each record's effect, in order.
    fn put_batch(
        &mut self,
        module: &str,
        collection: &str,
        records: &[(String, String)],
    ) -> StoreResult<Vec<WriteEffect>>;
    /// Insert the record only if no record has this id.
    fn insert_if_absent(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<bool>;
    fn delete(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<bool>;
    /// Up to `limit` records with ids after `after`, in id order, and no
    /// more than `MAX_SCAN_PAGE_BYTES` of them (at least one): a page may be
    /// short; the end is an empty page.
    fn scan(
        &mut self,
        module: &str,
        collection: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>>;
    fn count(&mut self, module: &str, collection: &str) -> StoreResult<u64>;
    /// Apply one set-based change to every record; returns the records changed.
    fn update_all(
        &mut self,
        module: &str,
        collection: &str,
        change: &FieldChange,
    ) -> StoreResult<u64>;

    fn modules(&mut self) -> StoreResult<Vec<EnabledModule>>;
    fn set_module(&mut self, module: &EnabledModule) -> StoreResult<()>;
    /// Forget a module entirely (after its data was purged).
    fn remove_module(&mut self, name: &str) -> StoreResult<()>;
    fn add_history(&mut self, entry: &HistoryEntry) -> StoreResult<()>;
    fn history(&mut self) -> StoreResult<Vec<HistoryEntry>>;
    /// Record a job and add the changes it made (a job that commits module
    /// by module saves several times).
    fn save_job(
        &mut self,
        job: &JobRecord,
        changes: &[crate::changelog::CollectionChanges],
    ) -> StoreResult<()>;
    fn jobs(&mut self) -> StoreResult<Vec<JobRecord>>;
    fn changes(&mut self, job_id: &str) -> StoreResult<Vec<crate::changelog::CollectionChanges>>;

    /// The vendor's copy of a system or reference record, as last loaded:
    /// the base a tenant's edits are found against.
    fn get_base(&mut self, module: &str, collection: &str, id: &str)
        -> StoreResult<Option<String>>;
    /// `kind` is `system` or `reference`.
    fn put_base(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
        release: &str,
        kind: &str,
    ) -> StoreResult<()>;
    fn delete_base(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<()>;
    /// Every base record of a collection: (id, document), in id order.
    fn base_records(
        &mut self,
        module: &str,
        collection: &str,
    ) -> StoreResult<Vec<(String, String)>>;
    /// The collections of a module that have base records, with their kind.
    fn base_collections(&mut self, module: &str) -> StoreResult<Vec<(String, String)>>;

    /// All data and metadata, for comparisons and fixtures.
    fn dump(&mut self) -> StoreResult<Dump>;

    /// The changes recorded since the last call, if this store records them
    /// (see `changelog::RecordingStore`).
    fn take_changes(&mut self) -> Vec<crate::changelog::CollectionChanges> {
        Vec::new()
    }
}

/// Before creating an index: `Some(false)` if one of that name and
/// definition exists (nothing to do), an error if one of that name differs,
/// `None` if there is none.
pub(crate) fn existing_index(
    db: &mut dyn TenantStore,
    module: &str,
    collection: &str,
    spec: &IndexSpec,
) -> StoreResult<Option<bool>> {
    check_name("index", &spec.name)?;
    check_index_fields(&spec.field)?;
    match db
        .list_indexes(module, collection)?
        .into_iter()
        .find(|i| i.name == spec.name)
    {
        None => Ok(None),
        Some(existing) if &existing == spec => Ok(Some(false)),
        Some(_) => Err(StoreError::InvalidName(format!(
            "index {} of {collection} exists with another definition: drop it first",
            spec.name
        ))),
    }
}

/// The largest document a record may have. A page of a scan holds at
/// least one whole record, so this also bounds what one read costs.
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// The most bytes of ids and documents one page of a scan holds: the caller
/// (and, for a plugin's scan, the host) holds a page whole.
pub const MAX_SCAN_PAGE_BYTES: usize = 64 << 20;

/// A scan page from rows in id order: at most `MAX_SCAN_PAGE_BYTES`, and at
/// least one record whatever its size. A page may so be shorter than asked
/// for; the end of a collection is an empty page.
pub(crate) fn page_by_bytes<E>(
    rows: impl Iterator<Item = Result<(String, String), E>>,
    error: impl Fn(E) -> StoreError,
) -> StoreResult<Vec<(String, String)>> {
    let mut page = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let (id, doc) = row.map_err(&error)?;
        bytes += id.len() + doc.len();
        if bytes > MAX_SCAN_PAGE_BYTES && !page.is_empty() {
            break;
        }
        page.push((id, doc));
    }
    Ok(page)
}

/// A record's document must be one JSON object, strictly RFC 8259 (SQLite's
/// own parser would also take JSON5, which PostgreSQL refuses: a plugin
/// tested on one backend must not fail on the other), and readable by
/// every reader of the runner: what is checked here is exactly what the
/// read path (`serde_json`) accepts, so a record that was written can
/// always be listed, dumped and captured again. That refuses lone UTF-16
/// surrogates, numbers out of a double's range (`1e999`) and nesting
/// deeper than 128. The error names the record and where the text goes
/// wrong.
pub(crate) fn check_document(id: &str, doc: &str) -> StoreResult<()> {
    if doc.len() > MAX_DOCUMENT_BYTES {
        return Err(StoreError::InvalidDocument(format!(
            "record {}: the document has {} bytes, more than the {} MiB a record may have",
            crate::text::truncate(id, 255),
            doc.len(),
            MAX_DOCUMENT_BYTES >> 20
        )));
    }
    if let Err(e) = json_check::readable(doc) {
        return Err(StoreError::InvalidDocument(format!(
            "record {}: the document is not JSON graft can read back: {e}",
            crate::text::truncate(id, 255)
        )));
    }
    if !doc.trim_start().starts_with('{') {
        return Err(StoreError::InvalidDocument(format!(
            "record {}: the document is not a JSON object",
            crate::text::truncate(id, 255)
        )));
    }
    Ok(())
}

/// The value of a set-based change must be JSON the read path accepts
/// (see `check_document`).
pub(crate) fn check_json_value(value: &str) -> StoreResult<()> {
    if value.len() > MAX_DOCUMENT_BYTES {
        return Err(StoreError::InvalidDocument(format!(
            "a value of {} bytes, more than the {} MiB a record may have",
            value.len(),
            MAX_DOCUMENT_BYTES >> 20
        )));
    }
    json_check::readable(value).map_err(|e| {
        StoreError::InvalidDocument(format!(
            "value {:?} is not JSON graft can read back: {e}",
            crate::text::truncate(value, 200)
        ))
    })
}

/// Checks a set-based change before any backend sees it: its fields, a
/// rename that goes somewhere else (not onto itself, not into itself,
/// which would delete the field), and its value.
pub(crate) fn check_change(change: &FieldChange) -> StoreResult<()> {
    match change {
        FieldChange::SetDefault { field, value } | FieldChange::Set { field, value } => {
            check_field(field)?;
            check_json_value(value)
        }
        FieldChange::Remove { field } => check_field(field),
        FieldChange::Rename { from, to } => {
            check_field(from)?;
            check_field(to)?;
            // Onto itself or into itself, the field would be deleted; onto
            // a field that holds it, whatever of its value shares a name
            // with it would be.
            if from == to
                || to.starts_with(&format!("{from}."))
                || from.starts_with(&format!("{to}."))
            {
                return Err(StoreError::InvalidName(format!(
                    "rename {from} to {to}: a field cannot move onto itself or into itself, \
                     nor onto a field that holds it"
                )));
            }
            Ok(())
        }
    }
}

/// A JSON check that allocates nothing: serde_json's own parser, with its
/// own limits, visiting every value and discarding it.
mod json_check {
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Readable;

    impl<'de> Deserialize<'de> for Readable {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ReadableVisitor)
        }
    }

    struct ReadableVisitor;

    impl<'de> Visitor<'de> for ReadableVisitor {
        type Value = Readable;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_str<E>(self, _: &str) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_unit<E>(self) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Readable, A::Error> {
            while seq.next_element::<Readable>()?.is_some() {}
            Ok(Readable)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Readable, A::Error> {
            while map.next_entry::<Readable, Readable>()?.is_some() {}
            Ok(Readable)
        }
    }

    pub fn readable(text: &str) -> Result<(), serde_json::Error> {
        serde_json::from_str::<Readable>(text).map(|_| ())
    }
}

/// An index's expressions, one per field (several for a compound index),
/// each the backend's `extract` of the field, in `lower(...)` when
/// case-insensitive.
pub(crate) fn index_expressions(spec: &IndexSpec, extract: impl Fn(&str) -> String) -> String {
    spec.field
        .split(',')
        .map(|field| {
            if spec.case_insensitive {
                format!("lower({})", extract(field))
            } else {
                extract(field)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Record ids: 1 to 255 characters.
pub(crate) fn check_id(id: &str) -> StoreResult<()> {
    if id.is_empty() || id.len() > 255 {
        return Err(StoreError::InvalidName(format!(
            "record id {:?}: use 1 to 255 characters",
            crate::text::truncate(id, 200)
        )));
    }
    Ok(())
}

/// Checks a collection or index name: what a plugin passes is used in
/// table names, so only plain names are allowed.
pub fn check_name(kind: &str, name: &str) -> StoreResult<()> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(format!(
            "{kind} name {:?}: use 1 to 63 letters, digits, '-' or '_', starting with a letter",
            crate::text::truncate(name, 200)
        )))
    }
}

/// Checks an index field: a dotted path, or several joined by commas for
/// a compound index (`code,statisticalCodeTypeId`).
pub fn check_index_fields(fields: &str) -> StoreResult<()> {
    fields.split(',').try_for_each(check_field)
}

/// A field path's bounds: the backends walk paths in their own (recursive)
/// code on the runner's stack, so a guest's path of 100,000 parts must
/// never reach them.
pub const MAX_FIELD_DEPTH: usize = 32;
pub const MAX_FIELD_BYTES: usize = 1024;

/// Checks a dotted field path such as `personal.email`.
pub fn check_field(field: &str) -> StoreResult<()> {
    let ok = !field.is_empty()
        && field.len() <= MAX_FIELD_BYTES
        && field.split('.').count() <= MAX_FIELD_DEPTH
        && field.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(format!(
            "field path {:?}: use names of letters, digits and '_' joined by '.', at most \
             {MAX_FIELD_DEPTH} names and {MAX_FIELD_BYTES} characters",
            crate::text::truncate(field, 200)
        )))
    }
}

/// The current time as RFC 3339, for metadata.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
