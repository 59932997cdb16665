//! The journal of failed module steps. A failed module leaves the tenant's
//! database exactly as it was, metadata included, so the record of the
//! failure lives beside it: `<data-dir>/journal.jsonl`, one JSON line each.

use crate::host::CallFailure;
use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at: String,
    pub job_id: String,
    pub tenant: String,
    pub module_from: Option<String>,
    pub module_to: String,
    pub step: String,
    /// The failure happened in a simulation.
    #[serde(default)]
    pub simulated: bool,
    pub failure: CallFailure,
}

pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn new(data_dir: &Path) -> Self {
        Journal {
            path: data_dir.join("journal.jsonl"),
        }
    }

    pub fn append(&self, entry: &JournalEntry) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("{}: cannot open the journal", self.path.display()))?;
        let line = serde_json::to_string(entry)?;
        writeln!(file, "{line}").with_context(|| format!("{}: cannot write", self.path.display()))
    }

    /// The entries of one tenant, oldest first; unreadable lines are skipped.
    pub fn for_tenant(&self, tenant: &str) -> Result<Vec<JournalEntry>> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Ok(Vec::new());
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<JournalEntry>(line).ok())
            .filter(|entry| entry.tenant == tenant)
            .collect())
    }
}
