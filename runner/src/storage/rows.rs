//! The runner's metadata rows, read alike from either backend: the columns
//! each query selects, in order, and the values made of a row. A backend
//! says only how to read one column of its rows (`Columns`).

use super::{ChangeRecord, EnabledModule, HistoryEntry, JobRecord, StoreResult};

pub(super) const MODULE_COLUMNS: &str = "name, module_id, enabled, updated_at, descriptor";

pub(super) const HISTORY_COLUMNS: &str = "job_id, module_name, step, module_from, module_to, \
     outcome, detail, inserted, updated, deleted, duration_ms, plugin_sha256, at";

/// A job's columns but its plan, which each backend reads as text its own way.
pub(super) const JOB_COLUMNS: &str = "job_id, started_at, finished_at, commit_mode";

pub(super) const CHANGE_COLUMNS: &str =
    "module, collection, inserted, updated, deleted, schema, samples, overlay, digest";

/// One column of a backend's row, by position.
pub(super) trait Columns {
    fn text(&self, at: usize) -> StoreResult<String>;
    fn maybe_text(&self, at: usize) -> StoreResult<Option<String>>;
    fn count(&self, at: usize) -> StoreResult<u64>;
    fn flag(&self, at: usize) -> StoreResult<bool>;
}

pub(super) fn module(row: &impl Columns) -> StoreResult<EnabledModule> {
    Ok(EnabledModule {
        name: row.text(0)?,
        module_id: row.text(1)?,
        enabled: row.flag(2)?,
        updated_at: row.text(3)?,
        descriptor: row.maybe_text(4)?,
    })
}

pub(super) fn history(row: &impl Columns) -> StoreResult<HistoryEntry> {
    Ok(HistoryEntry {
        job_id: row.text(0)?,
        module_name: row.text(1)?,
        step: row.text(2)?,
        module_from: row.maybe_text(3)?,
        module_to: row.text(4)?,
        outcome: row.text(5)?,
        detail: row.maybe_text(6)?,
        inserted: row.count(7)?,
        updated: row.count(8)?,
        deleted: row.count(9)?,
        duration_ms: row.count(10)?,
        plugin_sha256: row.text(11)?,
        at: row.text(12)?,
    })
}

/// `JOB_COLUMNS`, then the plan as JSON text.
pub(super) fn job(row: &impl Columns) -> StoreResult<JobRecord> {
    Ok(JobRecord {
        job_id: row.text(0)?,
        started_at: row.text(1)?,
        finished_at: row.text(2)?,
        commit: row.text(3)?,
        plan: serde_json::from_str(&row.text(4)?).unwrap_or(serde_json::Value::Null),
    })
}

pub(super) fn change(row: &impl Columns) -> StoreResult<ChangeRecord> {
    Ok(ChangeRecord {
        module: row.text(0)?,
        collection: row.text(1)?,
        inserted: row.count(2)?,
        updated: row.count(3)?,
        deleted: row.count(4)?,
        schema: row.text(5)?,
        samples: row.text(6)?,
        overlay: row.text(7)?,
        digest: row.text(8)?,
    })
}

/// The sha256 kept beside a base record, to find tenant edits cheaply.
pub(super) fn base_sha256(doc: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(doc.as_bytes()))
}

/// A count as both backends store it (a signed 64-bit integer).
pub(super) fn signed(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
