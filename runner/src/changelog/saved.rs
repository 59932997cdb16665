//! The change log as storage keeps it: a job's changes handed down as
//! `ChangeRecord`s and read back, and the changes a `RecordingStore` holds
//! taken from behind a `Box<dyn TenantStore>`.

use super::{CollectionChanges, RecordingStore};
use crate::storage::{ChangeRecord, JobRecord, StoreResult, TenantStore};

impl CollectionChanges {
    /// As storage keeps it.
    pub fn to_record(&self) -> ChangeRecord {
        let text = |value: serde_json::Result<String>| value.unwrap_or_else(|_| "[]".into());
        ChangeRecord {
            module: self.module.clone(),
            collection: self.collection.clone(),
            inserted: self.inserted,
            updated: self.updated,
            deleted: self.deleted,
            schema: text(serde_json::to_string(&self.schema)),
            samples: text(serde_json::to_string(&self.samples)),
            overlay: text(serde_json::to_string(&self.overlay)),
            digest: self.digest.clone(),
        }
    }

    /// From what storage kept; details it cannot read are left empty (the
    /// counts and digest stay exact).
    pub fn from_record(record: ChangeRecord) -> CollectionChanges {
        CollectionChanges {
            schema: serde_json::from_str(&record.schema).unwrap_or_default(),
            samples: serde_json::from_str(&record.samples).unwrap_or_default(),
            overlay: serde_json::from_str(&record.overlay).unwrap_or_default(),
            module: record.module,
            collection: record.collection,
            inserted: record.inserted,
            updated: record.updated,
            deleted: record.deleted,
            digest: record.digest,
        }
    }
}

/// The changes recorded since the last call, if `db` is a `RecordingStore`
/// (nothing otherwise).
pub fn take_changes(db: &mut dyn TenantStore) -> Vec<CollectionChanges> {
    let any: &mut dyn std::any::Any = db;
    match any.downcast_mut::<RecordingStore>() {
        Some(recording) => recording.take_changes(),
        None => Vec::new(),
    }
}

/// Record a job with the changes it made.
pub fn save_job(
    db: &mut dyn TenantStore,
    job: &JobRecord,
    changes: &[CollectionChanges],
) -> StoreResult<()> {
    let records: Vec<ChangeRecord> = changes.iter().map(CollectionChanges::to_record).collect();
    db.save_job(job, &records)
}

/// The changes a job made, as the change log recorded them.
pub fn job_changes(db: &mut dyn TenantStore, job_id: &str) -> StoreResult<Vec<CollectionChanges>> {
    Ok(db
        .changes(job_id)?
        .into_iter()
        .map(CollectionChanges::from_record)
        .collect())
}
