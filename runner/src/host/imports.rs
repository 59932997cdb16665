//! The host side of the contract's imports (0.2's; 0.1's call these, see
//! `contract`): storage, module state, required modules, the overlay and
//! the log, on what the call's `StepState` holds.

use super::bindings::v0_2::graft::migration::{log, module_state, overlay, required, store, types};
use super::state::StepState;
use crate::overlay as host_overlay;
use crate::storage::{self, Condition, FieldChange, StoreError, TenantStore, WriteEffect};

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

    fn put_batch_behind(&mut self, collection: String, recs: Vec<types::Record>) -> Res<()> {
        self.reclaim();
        if let Some(e) = self.behind.take_error() {
            return Err(e.into());
        }
        let store = self.take_storage()?;
        let records: Vec<(String, String)> = recs.into_iter().map(|r| (r.id, r.doc)).collect();
        self.behind.send(store, &self.module, &collection, records);
        Ok(())
    }

    fn flush(&mut self) -> Res<Vec<types::WriteEffect>> {
        self.reclaim();
        if let Some(e) = self.behind.take_error() {
            return Err(e.into());
        }
        Ok(self
            .behind
            .take_effects()
            .into_iter()
            .map(Into::into)
            .collect())
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
    // Keys and values are checked by the storage, as documents are.
    fn get(&mut self, key: String) -> Res<Option<String>> {
        let (db, module) = self.storage()?;
        Ok(db.get_state(module, &key)?)
    }

    fn set(&mut self, key: String, value: String) -> Res<()> {
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
        self.reclaim();
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
