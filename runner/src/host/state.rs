//! What one plugin call owns while it runs (its store, WASI context, memory
//! limiter, log); the host side of the contract's imports is `imports`.

use super::behind::Behind;
use super::pipe::BoundedPipe;
use crate::overlay as host_overlay;
use crate::storage::{StoreError, TenantStore, WriteCounts};
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
    /// The write-behind batch being written, if any, and what batches did.
    pub behind: Behind,
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
    pub(super) progress: Option<ProgressFn>,
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

impl StepState {
    /// Take the storage back from a write-behind batch (waiting for it to
    /// be written), counting its writes.
    pub(super) fn reclaim(&mut self) {
        if let Some(Some((store, effects))) = self.behind.reclaim() {
            for effect in effects {
                self.writes.count(effect);
            }
            self.store = Some(store);
        }
    }

    /// The tenant storage and module scope for a storage call, once any
    /// write-behind batch is written.
    pub(super) fn storage(&mut self) -> Result<(&mut dyn TenantStore, &str), StoreError> {
        self.reclaim();
        match self.store.as_deref_mut() {
            Some(store) => Ok((store, self.module.as_str())),
            None => Err(no_storage()),
        }
    }

    /// The tenant storage itself, to hand to a write-behind batch (taken
    /// back by `reclaim`), once any earlier batch is written.
    pub(super) fn take_storage(&mut self) -> Result<Box<dyn TenantStore>, StoreError> {
        self.reclaim();
        self.store.take().ok_or_else(no_storage)
    }
}

fn no_storage() -> StoreError {
    StoreError::Backend("storage is not available in this call".into())
}
