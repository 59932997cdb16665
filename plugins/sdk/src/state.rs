//! The module's own state for the tenant (contract 0.2): a small key/value
//! store kept beside the module's collections and written in the step's
//! transaction, so a failed step leaves it as it was. Keep in it what the
//! collections cannot tell, above all the release whose steps the plugin
//! last completed: `inspect` can then tell apart two releases whose data
//! look alike.
//!
//! Keys are 1 to 128 letters, digits, `.`, `_`, `-` or `:`; values are text
//! of at most 64 KiB; a module keeps at most 256 keys.

use crate::bindings::graft::migration::module_state as host;
use crate::Result;

/// The key [`release`] and [`set_release`] keep the release in.
pub const RELEASE_KEY: &str = "release";

/// The value of a key, if set.
pub fn get(key: &str) -> Result<Option<String>> {
    Ok(host::get(key)?)
}

/// Set a key, replacing its value.
pub fn set(key: &str, value: &str) -> Result<()> {
    Ok(host::set(key, value)?)
}

/// Remove a key; false if it was not set.
pub fn remove(key: &str) -> Result<bool> {
    Ok(host::remove(key)?)
}

/// Every key and its value, sorted by key.
pub fn entries() -> Result<Vec<(String, String)>> {
    Ok(host::entries()?)
}

/// The release whose steps the plugin last completed, as recorded by
/// [`set_release`]; `None` where no 0.2 plugin recorded one.
pub fn release() -> Result<Option<String>> {
    get(RELEASE_KEY)
}

/// Record the release the storage is now at (at the end of an upgrade or
/// a rollback step).
pub fn set_release(release: &str) -> Result<()> {
    set(RELEASE_KEY, release)
}
