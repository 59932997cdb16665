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

/// `mod-notes` and its faulty builds, for `graft validate`'s tests (see
/// `tests/validate-packages/README.md`).
pub fn validate_packages_dir() -> &'static Path {
    Path::new(concat!(env!("OUT_DIR"), "/validate-packages"))
}

/// Copy a package folder (or any folder) recursively: tests and benchmarks
/// assemble module folders from the built packages with it.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
