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

std::thread_local! {
    /// The record `at_record` is working on: (collection, id).
    static CURRENT: std::cell::RefCell<Option<(String, String)>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` on one record: a panic inside it tells the runner the record
/// (after the panic message, on standard error, as `graft-record:
/// COLLECTION<tab>ID`), so the operator sees where it happened.
pub fn at_record<R>(collection: &str, record_id: &str, f: impl FnOnce() -> R) -> R {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            CURRENT.with(|current| {
                if let Some((collection, id)) = current.borrow().as_ref() {
                    eprintln!("graft-record: {collection}\t{id}");
                }
            });
        }));
    });
    CURRENT.with(|current| {
        *current.borrow_mut() = Some((collection.to_string(), record_id.to_string()))
    });
    let result = f();
    CURRENT.with(|current| *current.borrow_mut() = None);
    result
}
