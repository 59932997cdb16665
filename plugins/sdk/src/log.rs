//! Messages, record warnings and progress, kept by the runner with the step.
//!
//! The runner bounds the volume a step may log; past it, messages are
//! counted and dropped. Standard output and error also reach the log.

use crate::bindings::graft::migration::log as host;

pub use host::Level;

/// Log a message at a level.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Log an informational message.
pub fn info(message: &str) {
    host::log(Level::Info, message);
}

/// Log a warning that is not about one record.
pub fn warn(message: &str) {
    host::log(Level::Warn, message);
}

/// Report a problem with one record that does not fail the step: the record
/// is skipped and the operator is told which and why.
pub fn warn_record(collection: &str, record_id: &str, message: &str) {
    host::warn_record(collection, record_id, message);
}

/// Report progress of a long step: `done` of `total` records.
pub fn progress(done: u64, total: u64) {
    host::progress(done, total);
}
