//! Tenant storage: a module's collections of (id, JSON document) records and
//! the runner's metadata, behind one trait so that the backends (SQLite, the
//! embedded default, and PostgreSQL) are interchangeable.
//!
//! A `TenantStore` is one tenant's database. Everything a module's install
//! writes, data and metadata alike, happens between `begin` and `commit`, so
//! a failure anywhere is undone by `rollback`. Each backend is whole in its
//! folder (schema, SQL, tenant databases and their locks); what they share
//! is written once here: the trait and its types, the checks made before
//! any write (`checks`), the dump (`dump`), the metadata's columns
//! (`rows`), and which backend a tenant lives in (`tenants`).
//!
//! Storage knows nothing of the layers above it: the change log, the
//! overlay and the installer hand it plain records.

mod checks;
mod dump;
mod filters;
pub mod postgres;
#[cfg(test)]
mod query_tests;
mod rows;
pub mod sqlite;
mod tables;
pub mod tenants;
#[cfg(test)]
mod tests;
mod updates;

pub(crate) use checks::{
    check_change, check_document, check_id, check_state_key, check_state_value, existing_index,
    index_expressions, page_by_bytes,
};
pub use checks::{
    check_field, check_index_fields, check_name, MAX_DOCUMENT_BYTES, MAX_FIELD_BYTES,
    MAX_FIELD_DEPTH, MAX_SCAN_PAGE_BYTES, MAX_STATE_KEYS, MAX_STATE_KEY_BYTES,
    MAX_STATE_VALUE_BYTES,
};
use filters::{where_sql, FilterDialect, JsonType};
pub use filters::{MAX_CONDITIONS, MAX_ONE_OF};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
use tables::{TableLookup, Tables};
pub use tenants::{check_tenant_id, Database, TenantLock, Tenants};
use updates::{update_sql, UpdateDialect};

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
    /// Copy the value at `from` to `to`, where `from` is present.
    Copy { from: String, to: String },
}

/// A condition on one field of a document; values are JSON texts, compared
/// as JSON values (see the contract's `condition`).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Equals {
        field: String,
        value: String,
    },
    OneOf {
        field: String,
        values: Vec<String>,
    },
    /// Present, with any value (`null` included).
    Exists {
        field: String,
    },
    Missing {
        field: String,
    },
}

/// One entry of a module's own state (the contract's `module-state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    pub module: String,
    pub key: String,
    pub value: String,
}

/// What a write did to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteEffect {
    Inserted,
    Replaced,
    /// The stored document already was exactly this one.
    Unchanged,
}

/// Records written by a step, by what the writes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCounts {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl WriteCounts {
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }

    pub fn add(&mut self, other: WriteCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }

    /// Count one record write by what it did.
    pub fn count(&mut self, effect: WriteEffect) {
        match effect {
            WriteEffect::Inserted => self.inserted += 1,
            WriteEffect::Replaced => self.updated += 1,
            WriteEffect::Unchanged => {}
        }
    }
}

/// One collection's part of a job's change log, as storage keeps it: the
/// counts and digest, and the details (schema changes, sample records,
/// overlay loads) as the JSON text the change log made of them. Storage
/// stores and returns it; the change log gives it meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeRecord {
    pub module: String,
    pub collection: String,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub schema: String,
    pub samples: String,
    pub overlay: String,
    pub digest: String,
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
    /// module -> key -> value: each module's own state.
    pub state: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionDump {
    pub indexes: Vec<IndexSpec>,
    pub records: BTreeMap<String, serde_json::Value>,
}

/// One tenant's database. Collection calls are scoped by module name: a
/// module can only name its own collections.
///
/// `Any` lets a layer above find its own decorator again behind a
/// `Box<dyn TenantStore>` (the change log's `take_changes`).
pub trait TenantStore: Send + std::any::Any {
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
    ) -> StoreResult<Vec<(String, String)>> {
        self.scan_where(module, collection, &[], after, limit)
    }
    fn count(&mut self, module: &str, collection: &str) -> StoreResult<u64> {
        self.count_where(module, collection, &[])
    }
    /// As `scan`, only the records for which every condition holds.
    fn scan_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>>;
    /// The records for which every condition holds.
    fn count_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
    ) -> StoreResult<u64>;
    /// Apply one set-based change to every record for which every condition
    /// holds (none: every record); returns the records changed.
    fn update_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        change: &FieldChange,
    ) -> StoreResult<u64>;

    /// The value of a key of a module's own state.
    fn get_state(&mut self, module: &str, key: &str) -> StoreResult<Option<String>>;
    /// Set (`Some`) or remove (`None`) a key of a module's own state;
    /// returns whether the key was set before.
    fn set_state(&mut self, module: &str, key: &str, value: Option<&str>) -> StoreResult<bool>;
    /// The state of one module, or of every module, sorted by module and key.
    fn state_entries(&mut self, module: Option<&str>) -> StoreResult<Vec<StateEntry>>;

    fn modules(&mut self) -> StoreResult<Vec<EnabledModule>>;
    fn set_module(&mut self, module: &EnabledModule) -> StoreResult<()>;
    /// Forget a module entirely (after its data was purged), its own state
    /// with it.
    fn remove_module(&mut self, name: &str) -> StoreResult<()>;
    fn add_history(&mut self, entry: &HistoryEntry) -> StoreResult<()>;
    fn history(&mut self) -> StoreResult<Vec<HistoryEntry>>;
    /// Record a job and add the changes it made (a job that commits module
    /// by module saves several times).
    fn save_job(&mut self, job: &JobRecord, changes: &[ChangeRecord]) -> StoreResult<()>;
    fn jobs(&mut self) -> StoreResult<Vec<JobRecord>>;
    fn changes(&mut self, job_id: &str) -> StoreResult<Vec<ChangeRecord>>;

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

    /// Every collection of every module: (module, collection), in order.
    fn all_collections(&mut self) -> StoreResult<Vec<(String, String)>>;
    /// Every collection, of any module, that has base records: (module,
    /// collection), in order.
    fn all_base_collections(&mut self) -> StoreResult<Vec<(String, String)>>;

    /// All data and metadata, for comparisons and fixtures.
    fn dump(&mut self) -> StoreResult<Dump> {
        dump::dump(self)
    }
}

/// The current time as RFC 3339, for metadata.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
