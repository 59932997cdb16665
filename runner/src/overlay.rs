//! Loading vendor data by kind, so that an upgrade never loses what a
//! tenant did (first version: the three-way merge of reference data is its
//! own piece of work).
//!
//! - system data: the vendor's copy replaces the stored record;
//! - reference data: inserted where absent, never overwritten;
//! - sample data: inserted where absent, never overwritten.
//!
//! A record that collides on a unique index with a record the tenant has is
//! not loaded and is reported; the load goes on.

use crate::host::WriteCounts;
use crate::storage::{StoreError, TenantStore, WriteEffect};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    System,
    Reference,
    Sample,
}

/// Counts of what a load did, as the contract reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    pub inserted: u32,
    pub replaced: u32,
    pub unchanged: u32,
    pub kept: u32,
    pub skipped: u32,
}

#[derive(Debug, Clone)]
pub struct Skipped {
    pub record_id: String,
    pub reason: String,
}

pub struct LoadOutcome {
    pub report: LoadReport,
    pub writes: WriteCounts,
    pub skipped: Vec<Skipped>,
}

/// Load records of one kind into a module's collection.
pub fn load(
    db: &mut dyn TenantStore,
    module: &str,
    collection: &str,
    kind: Kind,
    records: &[(String, String)],
) -> Result<LoadOutcome, StoreError> {
    let mut outcome = LoadOutcome {
        report: LoadReport::default(),
        writes: WriteCounts::default(),
        skipped: Vec::new(),
    };
    for (id, doc) in records {
        let written = match kind {
            Kind::System => db.put(module, collection, id, doc),
            Kind::Reference | Kind::Sample => {
                match db.insert_if_absent(module, collection, id, doc) {
                    Ok(true) => Ok(WriteEffect::Inserted),
                    // Present: the tenant's copy stays, whatever it is.
                    Ok(false) => Ok(WriteEffect::Unchanged),
                    Err(e) => Err(e),
                }
            }
        };
        match written {
            Ok(WriteEffect::Inserted) => {
                outcome.report.inserted += 1;
                outcome.writes.inserted += 1;
            }
            Ok(WriteEffect::Replaced) => {
                outcome.report.replaced += 1;
                outcome.writes.updated += 1;
            }
            Ok(WriteEffect::Unchanged) => {
                let same = kind == Kind::System
                    || same_document(db.get(module, collection, id)?.as_deref(), doc);
                if same {
                    outcome.report.unchanged += 1;
                } else {
                    outcome.report.kept += 1;
                }
            }
            Err(StoreError::UniqueViolation { index, .. }) => {
                outcome.report.skipped += 1;
                outcome.skipped.push(Skipped {
                    record_id: id.clone(),
                    reason: format!(
                        "not loaded: collides on unique index {index} with a record the tenant has"
                    ),
                });
            }
            Err(StoreError::InvalidDocument(why)) | Err(StoreError::InvalidName(why)) => {
                outcome.report.skipped += 1;
                outcome.skipped.push(Skipped {
                    record_id: id.clone(),
                    reason: format!("not loaded: {why}"),
                });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(outcome)
}

/// Equal as JSON, however each is spelled.
fn same_document(stored: Option<&str>, doc: &str) -> bool {
    match stored {
        Some(stored) if stored == doc => true,
        Some(stored) => {
            let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
            parse(stored).is_some() && parse(stored) == parse(doc)
        }
        None => false,
    }
}
