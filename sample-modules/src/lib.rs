//! Where the build put the module packages it assembled (see `build.rs`).

use std::path::Path;

/// The sample modules' packages (`mod-users-1.0.0`, ...), each a folder with
/// a ModuleDescriptor, data folders and a freshly built `plugin.wasm`.
pub fn sample_modules_dir() -> &'static Path {
    Path::new(concat!(env!("OUT_DIR"), "/sample-modules"))
}

/// The sample packages, packed and compressed by `build.rs`: compiled into
/// the binary, so that `graft` needs no build folder to find them.
pub static SAMPLE_PACKAGES: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sample-modules.pack.gz"));

/// Write the packages of `packed` (see `SAMPLE_PACKAGES`) into the folder
/// `to`. A path that would leave `to` is refused.
pub fn unpack(packed: &[u8], to: &Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind, Read};
    let bad = |what: &str| Error::new(ErrorKind::InvalidData, format!("sample packages: {what}"));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(packed).read_to_end(&mut bytes)?;
    let mut rest = bytes
        .strip_prefix(b"GRAFTPK1".as_slice())
        .ok_or_else(|| bad("not a package pack"))?;
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if rest.len() < n {
            return None;
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Some(head)
    }
    while !rest.is_empty() {
        let len = take(&mut rest, 4).ok_or_else(|| bad("truncated"))?;
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        let path = take(&mut rest, len).ok_or_else(|| bad("truncated"))?;
        let path = std::str::from_utf8(path).map_err(|_| bad("a path is not UTF-8"))?;
        let relative = Path::new(path);
        if !relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(bad(&format!("{path:?} leaves the folder")));
        }
        let size = take(&mut rest, 8).ok_or_else(|| bad("truncated"))?;
        let size = u64::from_le_bytes(size.try_into().unwrap()) as usize;
        let data = take(&mut rest, size).ok_or_else(|| bad("truncated"))?;
        let file = to.join(relative);
        std::fs::create_dir_all(file.parent().unwrap_or(to))?;
        std::fs::write(&file, data)?;
    }
    Ok(())
}

/// The sample module mod-users (1.0.0, 1.1.0, 2.0.0) with the same plugin
/// source built for contract 0.2, for the tests and benchmarks that run a
/// module's two builds side by side.
pub fn contract_0_2_packages_dir() -> &'static Path {
    Path::new(concat!(env!("OUT_DIR"), "/contract-0.2-packages"))
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
