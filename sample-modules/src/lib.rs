//! Where the build put the module packages it assembled (see `build.rs`).

use std::path::Path;

/// The sample modules' packages (`mod-users-1.0.0`, ...), each a folder with
/// a ModuleDescriptor, data folders and a freshly built `plugin.wasm`.
pub fn sample_modules_dir() -> &'static Path {
    Path::new(concat!(env!("OUT_DIR"), "/sample-modules"))
}

/// Packages of misbehaving plugins, for the runner's tests.
pub fn test_packages_dir() -> &'static Path {
    Path::new(concat!(env!("OUT_DIR"), "/test-packages"))
}
