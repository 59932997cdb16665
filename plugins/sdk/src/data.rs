//! Vendor data: reading the package's read-only data folders and loading
//! records through the runner's overlay, which applies the rule of each kind:
//! system data is replaced by the vendor's copy; reference data is merged
//! with the tenant's edits field by field (see `wit/migration.wit`); sample
//! data is inserted where absent and never overwrites what the tenant has.
//! Load a release's whole set of a kind in one `load-data` call: what is not
//! loaded is taken as dropped by the vendor.
//!
//! A package's data lives in `system-data/`, `reference-data/` and
//! `sample-data/`, one sub-folder per collection and one JSON file per
//! record; the runner shows them to the plugin, read-only, at
//! `/system-data`, `/reference-data` and `/sample-data`.

use crate::bindings::graft::migration::overlay;
use crate::bindings::graft::migration::types::Record;
use crate::{log, DataKind, Error, Outcome, Result};
use std::path::{Path, PathBuf};

/// How many records go to the runner per overlay call.
const LOAD_BATCH: usize = 1000;

/// What a load did, summed over its batches.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    pub inserted: u64,
    pub replaced: u64,
    pub unchanged: u64,
    pub kept: u64,
    pub skipped: u64,
}

impl LoadReport {
    /// The outcome of a step that did these loads.
    pub fn outcome(&self) -> Outcome {
        if self.inserted + self.replaced == 0 {
            Outcome::Unchanged
        } else if self.unchanged + self.kept == 0 && self.replaced == 0 {
            Outcome::Created
        } else {
            Outcome::Upgraded
        }
    }

    fn add(&mut self, other: &overlay::LoadReport) {
        self.inserted += u64::from(other.inserted);
        self.replaced += u64::from(other.replaced);
        self.unchanged += u64::from(other.unchanged);
        self.kept += u64::from(other.kept);
        self.skipped += u64::from(other.skipped);
    }

    fn merge(&mut self, other: LoadReport) {
        self.inserted += other.inserted;
        self.replaced += other.replaced;
        self.unchanged += other.unchanged;
        self.kept += other.kept;
        self.skipped += other.skipped;
    }
}

/// The folder the runner mounts for a kind of data.
pub fn folder(kind: DataKind) -> &'static Path {
    Path::new(match kind {
        DataKind::System => "/system-data",
        DataKind::Reference => "/reference-data",
        DataKind::Sample => "/sample-data",
    })
}

/// The collections (sub-folders) of a kind's data folder, sorted; empty if
/// the package has no data of that kind.
pub fn collections(kind: DataKind) -> Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(folder(kind)) else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::failed(format!("{}: {e}", folder(kind).display())))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The records of one collection's data folder, in file-name order. A file
/// that is not a JSON object with a string `id` is reported as a warning
/// (named by its file) and skipped, never fatal.
pub fn read_records(kind: DataKind, collection: &str) -> Result<Vec<Record>> {
    let dir = folder(kind).join(collection);
    let entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::failed(format!("{}: {e}", dir.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    let mut files: Vec<PathBuf> = Vec::new();
    for path in entries {
        if path.is_dir() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            log::warn_record(
                collection,
                &name,
                "not a record: a folder (records are JSON files in the collection folder)",
            );
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files.sort();
    let mut records = Vec::with_capacity(files.len());
    for path in files {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        match read_record(&path) {
            Ok(record) => records.push(record),
            Err(problem) => log::warn_record(collection, &file, &problem),
        }
    }
    Ok(records)
}

fn read_record(path: &Path) -> std::result::Result<Record, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let Some(object) = doc.as_object() else {
        return Err("not a record: the file holds no JSON object".into());
    };
    let Some(id) = object.get("id").and_then(|id| id.as_str()) else {
        return Err("not a record: no string \"id\" field".into());
    };
    Ok(Record {
        id: id.to_string(),
        doc: doc.to_string(),
    })
}

/// Load records into a collection with the rule of their kind.
pub fn load(collection: &str, kind: DataKind, records: &[Record]) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    for batch in records.chunks(LOAD_BATCH) {
        let part = overlay::load(collection, kind, batch)
            .map_err(|e| Error::from(e).in_collection(collection))?;
        report.add(&part);
    }
    Ok(report)
}

/// Load every collection folder of a kind's data folder; the outcome is
/// `unchanged` when nothing was written.
pub fn load_folder(kind: DataKind) -> Result<Outcome> {
    let mut total = LoadReport::default();
    for collection in collections(kind)? {
        let records = read_records(kind, &collection)?;
        total.merge(load(&collection, kind, &records)?);
    }
    Ok(total.outcome())
}
