//! What one plugin call owns while it runs (its store, WASI context, memory
//! limiter, log), and the host side of the contract's imports.

use super::bindings::v0_2::graft::migration::{log, module_state, overlay, required, store, types};
use super::pipe::BoundedPipe;
use crate::overlay as host_overlay;
use crate::storage::{
    self, Condition, FieldChange, StoreError, TenantStore, WriteCounts, WriteEffect,
};
use serde::Serialize;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

/// Called with (done, total) when a plugin reports progress.
pub type ProgressFn = Box<dyn FnMut(u64, u64) + Send>;

pub struct StepState {
    /// When the call must end: waits inside WASI are cut here (`clock`).
    pub deadline: Option<std::time::Instant>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    /// The tenant's storage, lent to the call; `None` for calls that must
    /// not touch storage (`describe`).
    pub store: Option<Box<dyn TenantStore>>,
    /// The module whose collections this call may reach.
    pub module: String,
    /// Other modules whose collections the call may read (`required`).
    pub readable: Vec<String>,
    /// The release of the package the call runs for (the overlay records it
    /// with each vendor record).
    pub release: String,
    /// What overlay loads did, by collection.
    pub overlay: Vec<host_overlay::CollectionOverlay>,
    pub log: StepLog,
    pub writes: WriteCounts,
    pub stdout: BoundedPipe,
    pub stderr: BoundedPipe,
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the limit, and remembers that it did so the
/// failure can say `memory` rather than the trap the guest turns it into.
///
/// The limit holds over everything the call's instances hold: the sum of
/// all their linear memories and tables (a component may define many of
/// each), and the number of instances, memories and tables is bounded too.
pub struct MemoryLimiter {
    pub limit: usize,
    pub exceeded: bool,
    /// The most bytes held at once.
    pub peak: usize,
    /// Bytes held now by all memories and tables.
    pub used: usize,
}

/// What the host counts for one table element (a function or host
/// reference: a pointer, with room for wasmtime's own bookkeeping).
const TABLE_ELEMENT_BYTES: usize = 16;
/// Core instances, memories and tables one call may create: a Rust
/// component has a handful of each, an interpreter's (Python, JS) a few
/// dozen.
pub const MAX_INSTANCES: usize = 1000;
pub const MAX_MEMORIES: usize = 32;
pub const MAX_TABLES: usize = 1000;

impl MemoryLimiter {
    pub fn new(limit: usize) -> Self {
        MemoryLimiter {
            limit,
            exceeded: false,
            peak: 0,
            used: 0,
        }
    }

    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let more = desired.saturating_sub(current);
        match self.used.checked_add(more) {
            Some(total) if total <= self.limit => {
                self.used = total;
                self.peak = self.peak.max(total);
                true
            }
            _ => {
                self.exceeded = true;
                false
            }
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// A problem with one record that did not fail the step.
#[derive(Debug, Clone, Serialize)]
pub struct RecordWarning {
    pub collection: String,
    pub record_id: String,
    pub message: String,
}

/// A call's log, bounded in bytes: past the bound, lines are counted and
/// dropped, never fatal.
#[derive(Default, Serialize)]
pub struct StepLog {
    pub lines: Vec<LogLine>,
    pub warnings: Vec<RecordWarning>,
    /// Warnings reported, kept or not.
    pub warning_count: u64,
    pub dropped_lines: u64,
    pub dropped_bytes: u64,
    /// Bytes of the lines and warnings kept.
    pub kept_bytes: u64,
    #[serde(skip)]
    limit: u64,
    #[serde(skip)]
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for StepLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepLog")
            .field("lines", &self.lines.len())
            .field("warnings", &self.warning_count)
            .field("dropped_lines", &self.dropped_lines)
            .finish()
    }
}

impl StepLog {
    pub fn new(limit: u64, progress: Option<ProgressFn>) -> Self {
        StepLog {
            limit,
            progress,
            ..StepLog::default()
        }
    }

    /// Bytes the call logged (kept or dropped): what counts against the
    /// log limit.
    pub fn volume(&self) -> u64 {
        self.kept_bytes + self.dropped_bytes
    }

    fn has_room(&mut self, bytes: usize) -> bool {
        if self.kept_bytes + bytes as u64 > self.limit {
            self.dropped_lines += 1;
            self.dropped_bytes += bytes as u64;
            return false;
        }
        self.kept_bytes += bytes as u64;
        true
    }

    pub fn line(&mut self, level: &'static str, message: String) {
        if self.has_room(message.len()) {
            tracing::debug!(
                target: "graft::plugin",
                level,
                "{}",
                crate::text::escape_controls(&message)
            );
            self.lines.push(LogLine { level, message });
        }
    }

    pub fn warn_record(&mut self, collection: &str, record_id: &str, message: String) {
        self.warning_count += 1;
        if self.has_room(collection.len() + record_id.len() + message.len()) {
            self.warnings.push(RecordWarning {
                collection: collection.to_string(),
                record_id: record_id.to_string(),
                message,
            });
        }
    }

    /// Add captured stdout or stderr as log lines.
    pub fn captured(&mut self, level: &'static str, stream: &str, bytes: &[u8], dropped: u64) {
        for line in String::from_utf8_lossy(bytes).lines() {
            self.line(level, format!("[{stream}] {line}"));
        }
        if dropped > 0 {
            self.dropped_bytes += dropped;
            self.line("warn", format!("[{stream}] {dropped} more bytes dropped"));
        }
    }
}

fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Trace => "trace",
        log::Level::Debug => "debug",
        log::Level::Info => "info",
        log::Level::Warn => "warn",
        log::Level::Error => "error",
    }
}

impl StepState {
    /// The tenant storage and module scope for a storage call.
    fn storage(&mut self) -> Result<(&mut dyn TenantStore, &str), StoreError> {
        match self.store.as_deref_mut() {
            Some(store) => Ok((store, self.module.as_str())),
            None => Err(StoreError::Backend(
                "storage is not available in this call".into(),
            )),
        }
    }
}

impl StepState {
    /// The storage and another module's name, if this call may read it.
    fn readable(
        &mut self,
        other: &str,
    ) -> Result<(&mut dyn TenantStore, String), store::StoreError> {
        if !self.readable.iter().any(|m| m == other) {
            let readable = match self.readable.as_slice() {
                [] => "none".to_string(),
                names => names.join(", "),
            };
            return Err(store::StoreError::NotPermitted(format!(
                "{} may not read module {:?}: only modules providing an interface its \
                 ModuleDescriptor requires are readable (here: {readable})",
                self.module,
                crate::text::truncate(other, 100)
            )));
        }
        let (db, _) = self.storage()?;
        Ok((db, other.to_string()))
    }
}

/// A page of a filtered scan of `module`'s collection, refused where the
/// store cut it by size: a 0.1 plugin's SDK reads a short page as the end
/// (the contract says only that an empty one is), so a page cut by its
/// size is never handed on as if the collection ended there.
fn scan_page(
    db: &mut dyn TenantStore,
    module: &str,
    collection: &str,
    conditions: &[Condition],
    after: Option<String>,
    limit: u32,
) -> Res<Vec<types::Record>> {
    let limit = limit.min(100_000);
    let rows = db.scan_where(module, collection, conditions, after.as_deref(), limit)?;
    if rows.len() < limit as usize {
        if let Some((last, _)) = rows.last() {
            if !db
                .scan_where(module, collection, conditions, Some(last), 1)?
                .is_empty()
            {
                return Err(store::StoreError::Other(format!(
                    "scan of {collection}: {limit} records are more than the {} MiB a page \
                     may hold; scan with fewer records per page",
                    storage::MAX_SCAN_PAGE_BYTES >> 20
                )));
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|(id, doc)| types::Record { id, doc })
        .collect())
}

impl From<StoreError> for store::StoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchCollection(c) => store::StoreError::NoSuchCollection(c),
            StoreError::InvalidName(m) => store::StoreError::InvalidName(m),
            StoreError::InvalidDocument(m) => store::StoreError::InvalidDocument(m),
            StoreError::UniqueViolation {
                collection,
                index,
                record_id,
            } => store::StoreError::UniqueViolation(store::UniqueViolation {
                collection,
                index,
                record_id,
            }),
            StoreError::Backend(m) => store::StoreError::Other(m),
        }
    }
}

impl From<store::IndexSpec> for storage::IndexSpec {
    fn from(spec: store::IndexSpec) -> Self {
        storage::IndexSpec {
            name: spec.name,
            field: spec.field,
            unique: spec.unique,
            case_insensitive: spec.case_insensitive,
        }
    }
}

impl From<storage::IndexSpec> for store::IndexSpec {
    fn from(spec: storage::IndexSpec) -> Self {
        store::IndexSpec {
            name: spec.name,
            field: spec.field,
            unique: spec.unique,
            case_insensitive: spec.case_insensitive,
        }
    }
}

type Res<T> = Result<T, store::StoreError>;

impl types::Host for StepState {}

impl store::Host for StepState {
    fn create_collection(&mut self, name: String) -> Res<bool> {
        let (db, module) = self.storage()?;
        Ok(db.create_collection(module, &name)?)
    }

    fn drop_collection(&mut self, name: String) -> Res<bool> {
        let (db, module) = self.storage()?;
        Ok(db.drop_collection(module, &name)?)
    }

    fn list_collections(&mut self) -> Vec<String> {
        match self.storage() {
            Ok((db, module)) => db.list_collections(module).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    fn create_index(&mut self, collection: String, spec: store::IndexSpec) -> Res<bool> {
        let (db, module) = self.storage()?;
        Ok(db.create_index(module, &collection, &spec.into())?)
    }

    fn drop_index(&mut self, collection: String, name: String) -> Res<bool> {
        let (db, module) = self.storage()?;
        Ok(db.drop_index(module, &collection, &name)?)
    }

    fn list_indexes(&mut self, collection: String) -> Res<Vec<store::IndexSpec>> {
        let (db, module) = self.storage()?;
        Ok(db
            .list_indexes(module, &collection)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    fn get(&mut self, collection: String, id: String) -> Res<Option<String>> {
        let (db, module) = self.storage()?;
        Ok(db.get(module, &collection, &id)?)
    }

    fn put(&mut self, collection: String, rec: types::Record) -> Res<types::WriteEffect> {
        let (db, module) = self.storage()?;
        let effect = db.put(module, &collection, &rec.id, &rec.doc)?;
        self.writes.count(effect);
        Ok(effect.into())
    }

    fn put_batch(
        &mut self,
        collection: String,
        recs: Vec<types::Record>,
    ) -> Res<Vec<types::WriteEffect>> {
        // All or nothing, as the contract says: the store rolls a failed
        // batch back, and a plugin that goes on after the error finds none
        // of it written.
        let records: Vec<(String, String)> = recs.into_iter().map(|r| (r.id, r.doc)).collect();
        let (db, module) = self.storage()?;
        let effects = db.put_batch(module, &collection, &records)?;
        for effect in &effects {
            self.writes.count(*effect);
        }
        Ok(effects.into_iter().map(Into::into).collect())
    }

    fn delete(&mut self, collection: String, id: String) -> Res<bool> {
        let (db, module) = self.storage()?;
        let deleted = db.delete(module, &collection, &id)?;
        self.writes.deleted += u64::from(deleted);
        Ok(deleted)
    }

    fn scan(
        &mut self,
        collection: String,
        after: Option<String>,
        limit: u32,
    ) -> Res<Vec<types::Record>> {
        self.scan_where(collection, Vec::new(), after, limit)
    }

    fn count(&mut self, collection: String) -> Res<u64> {
        self.count_where(collection, Vec::new())
    }

    fn update_all(&mut self, collection: String, changes: Vec<store::FieldChange>) -> Res<u64> {
        self.update_where(collection, Vec::new(), changes)
    }

    fn scan_where(
        &mut self,
        collection: String,
        conditions: Vec<store::Condition>,
        after: Option<String>,
        limit: u32,
    ) -> Res<Vec<types::Record>> {
        let conditions = storage_conditions(conditions);
        let (db, module) = self.storage()?;
        scan_page(db, module, &collection, &conditions, after, limit)
    }

    fn count_where(&mut self, collection: String, conditions: Vec<store::Condition>) -> Res<u64> {
        let conditions = storage_conditions(conditions);
        let (db, module) = self.storage()?;
        Ok(db.count_where(module, &collection, &conditions)?)
    }

    fn update_where(
        &mut self,
        collection: String,
        conditions: Vec<store::Condition>,
        changes: Vec<store::FieldChange>,
    ) -> Res<u64> {
        let conditions = storage_conditions(conditions);
        let (db, module) = self.storage()?;
        let mut changed = 0;
        for change in changes {
            let change = match change {
                store::FieldChange::SetDefault((field, value)) => {
                    FieldChange::SetDefault { field, value }
                }
                store::FieldChange::Set((field, value)) => FieldChange::Set { field, value },
                store::FieldChange::Remove(field) => FieldChange::Remove { field },
                store::FieldChange::Rename((from, to)) => FieldChange::Rename { from, to },
                store::FieldChange::Copy((from, to)) => FieldChange::Copy { from, to },
            };
            changed += db.update_where(module, &collection, &conditions, &change)?;
        }
        self.writes.updated += changed;
        Ok(changed)
    }
}

fn storage_conditions(conditions: Vec<store::Condition>) -> Vec<Condition> {
    conditions
        .into_iter()
        .map(|condition| match condition {
            store::Condition::Equals((field, value)) => Condition::Equals { field, value },
            store::Condition::OneOf((field, values)) => Condition::OneOf { field, values },
            store::Condition::Exists(field) => Condition::Exists { field },
            store::Condition::Missing(field) => Condition::Missing { field },
        })
        .collect()
}

impl From<WriteEffect> for types::WriteEffect {
    fn from(effect: WriteEffect) -> Self {
        match effect {
            WriteEffect::Inserted => types::WriteEffect::Inserted,
            WriteEffect::Replaced => types::WriteEffect::Replaced,
            WriteEffect::Unchanged => types::WriteEffect::Unchanged,
        }
    }
}

impl module_state::Host for StepState {
    fn get(&mut self, key: String) -> Res<Option<String>> {
        storage::check_state_key(&key)?;
        let (db, module) = self.storage()?;
        Ok(db.get_state(module, &key)?)
    }

    fn set(&mut self, key: String, value: String) -> Res<()> {
        storage::check_state_key(&key)?;
        storage::check_state_value(&key, &value)?;
        let (db, module) = self.storage()?;
        if db.get_state(module, &key)?.is_none()
            && db.state_entries(Some(module))?.len() >= storage::MAX_STATE_KEYS
        {
            return Err(store::StoreError::Other(format!(
                "module state {key}: {module} already holds the {} keys a module may keep; \
                 remove one first",
                storage::MAX_STATE_KEYS
            )));
        }
        db.set_state(module, &key, Some(&value))?;
        Ok(())
    }

    fn remove(&mut self, key: String) -> Res<bool> {
        storage::check_state_key(&key)?;
        let (db, module) = self.storage()?;
        Ok(db.set_state(module, &key, None)?)
    }

    fn entries(&mut self) -> Res<Vec<(String, String)>> {
        let (db, module) = self.storage()?;
        Ok(db
            .state_entries(Some(module))?
            .into_iter()
            .map(|entry| (entry.key, entry.value))
            .collect())
    }
}

impl required::Host for StepState {
    fn modules(&mut self) -> Vec<String> {
        let mut modules = self.readable.clone();
        modules.sort();
        modules
    }

    fn list_collections(&mut self, module: String) -> Res<Vec<String>> {
        let (db, module) = self.readable(&module)?;
        Ok(db.list_collections(&module)?)
    }

    fn get(&mut self, module: String, collection: String, id: String) -> Res<Option<String>> {
        let (db, module) = self.readable(&module)?;
        Ok(db.get(&module, &collection, &id)?)
    }

    fn scan(
        &mut self,
        module: String,
        collection: String,
        conditions: Vec<store::Condition>,
        after: Option<String>,
        limit: u32,
    ) -> Res<Vec<types::Record>> {
        let conditions = storage_conditions(conditions);
        let (db, module) = self.readable(&module)?;
        scan_page(db, &module, &collection, &conditions, after, limit)
    }

    fn count(
        &mut self,
        module: String,
        collection: String,
        conditions: Vec<store::Condition>,
    ) -> Res<u64> {
        let conditions = storage_conditions(conditions);
        let (db, module) = self.readable(&module)?;
        Ok(db.count_where(&module, &collection, &conditions)?)
    }
}

impl overlay::Host for StepState {
    fn load(
        &mut self,
        collection: String,
        kind: types::DataKind,
        recs: Vec<types::Record>,
    ) -> Result<overlay::LoadReport, store::StoreError> {
        let kind = match kind {
            types::DataKind::System => host_overlay::Kind::System,
            types::DataKind::Reference => host_overlay::Kind::Reference,
            types::DataKind::Sample => host_overlay::Kind::Sample,
        };
        storage::check_name("collection", &collection)?;
        let Some(db) = self.store.as_deref_mut() else {
            return Err(store::StoreError::Other(
                "storage is not available in this call".into(),
            ));
        };
        // Loads of one collection in one call add up; a collection loaded as
        // two kinds is two entries.
        let position = match self
            .overlay
            .iter()
            .position(|o| o.collection == collection && o.kind == kind)
        {
            Some(position) => position,
            None => {
                self.overlay
                    .push(host_overlay::CollectionOverlay::new(&collection, kind));
                self.overlay.len() - 1
            }
        };
        let entry = &mut self.overlay[position];
        let before = entry.counts;
        let records: Vec<(String, String)> = recs.into_iter().map(|r| (r.id, r.doc)).collect();
        let writes = host_overlay::load(db, &self.module, &self.release, entry, &records)?;
        self.writes.add(writes);
        let after = entry.counts;
        let delta = |f: fn(&host_overlay::OverlayCounts) -> u64| (f(&after) - f(&before)) as u32;
        Ok(overlay::LoadReport {
            inserted: delta(|c| c.inserted),
            replaced: delta(|c| c.applied + c.merged + c.reverted),
            unchanged: delta(|c| c.unchanged),
            kept: delta(|c| c.kept + c.deletions_kept),
            skipped: delta(|c| c.skipped),
        })
    }
}

impl log::Host for StepState {
    fn log(&mut self, level: log::Level, message: String) {
        self.log.line(level_name(level), message);
    }

    fn warn_record(&mut self, collection: String, record_id: String, message: String) {
        self.log.warn_record(&collection, &record_id, message);
    }

    fn progress(&mut self, done: u64, total: u64) {
        if let Some(progress) = self.log.progress.as_mut() {
            progress(done, total);
        }
    }
}
