//! Package archives: a package folder as one `<module-id>.tar.gz`, with its
//! sha256 beside it in `<module-id>.tar.gz.sha256` (the format `sha256sum
//! -c` reads), as `graft package` writes them and vendors publish them.
//!
//! An archive comes from a vendor, so it is read as hostile: only regular
//! files and folders, every path relative and inside one top folder, no
//! links or devices, and bounded in entries and bytes whatever its headers
//! claim. It is unpacked once into a folder named by its sha256 (written
//! under a temporary name, then renamed), so a half-written unpack is never
//! read as a package and the same archive is never unpacked twice.

use super::{read_at_most, MAX_PLUGIN_BYTES};
use anyhow::{anyhow, bail, Context as _, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The file name ending of a package archive.
pub const ARCHIVE_SUFFIX: &str = ".tar.gz";
/// The ending of the checksum file beside it.
pub const CHECKSUM_SUFFIX: &str = ".sha256";

/// Bounds of what one archive may unpack to: more entries or bytes than a
/// package can use is refused, not written. The largest entry is a plugin.
const MAX_ENTRIES: usize = 100_000;
const MAX_TOTAL_BYTES: u64 = 1 << 30;
const MAX_ENTRY_BYTES: u64 = MAX_PLUGIN_BYTES;
/// The compressed archive itself, read whole to hash it.
const MAX_ARCHIVE_BYTES: u64 = 512 << 20;

/// Whether a path names a package archive.
pub fn is_archive(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(ARCHIVE_SUFFIX) && n.len() > ARCHIVE_SUFFIX.len())
}

/// The module id an archive's file name claims (`mod-users-2.0.0` of
/// `mod-users-2.0.0.tar.gz`).
pub fn archive_stem(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()?.strip_suffix(ARCHIVE_SUFFIX)
}

/// Write `dir` (a package folder) as `out`, a gzipped tar whose one top
/// folder is `top`, reproducibly: entries sorted, times and owners zeroed.
/// Returns the archive's sha256 in hex, also written to `<out>.sha256`.
pub fn pack(dir: &Path, top: &str, out: &Path) -> Result<String> {
    let temporary = out.with_extension("partial");
    let file = std::fs::File::create(&temporary)
        .with_context(|| format!("{}: cannot write", temporary.display()))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut paths = Vec::new();
    collect(dir, Path::new(""), &mut paths)?;
    append_dir(&mut tar, Path::new(top))?;
    for relative in paths {
        let path = dir.join(&relative);
        let name = Path::new(top).join(&relative);
        if path.is_dir() {
            append_dir(&mut tar, &name)?;
        } else {
            let mut header = tar::Header::new_gnu();
            let len = std::fs::metadata(&path)
                .with_context(|| format!("{}: cannot read", path.display()))?
                .len();
            header.set_size(len);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            let file = std::fs::File::open(&path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            tar.append_data(&mut header, &name, file)
                .with_context(|| format!("{}: cannot add to the archive", path.display()))?;
        }
    }
    let gz = tar
        .into_inner()
        .with_context(|| format!("{}: cannot write", temporary.display()))?;
    gz.finish()
        .and_then(|file| file.sync_all())
        .with_context(|| format!("{}: cannot write", temporary.display()))?;
    std::fs::rename(&temporary, out).with_context(|| format!("{}: cannot write", out.display()))?;
    let digest = sha256_of(out)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sums = checksum_path(out);
    std::fs::write(&sums, format!("{digest}  {name}\n"))
        .with_context(|| format!("{}: cannot write", sums.display()))?;
    Ok(digest)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &Path) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut header, name, std::io::empty())
        .with_context(|| format!("{}: cannot add to the archive", name.display()))
}

/// Every file and folder under `dir`, relative, sorted, parents first.
fn collect(dir: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let here = dir.join(relative);
    let mut entries: Vec<_> = std::fs::read_dir(&here)
        .with_context(|| format!("{}: cannot read", here.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("{}: cannot read", here.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = relative.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            out.push(path.clone());
            collect(dir, &path, out)?;
        } else if kind.is_file() {
            out.push(path);
        } else {
            bail!(
                "{}: not a regular file or folder: a package holds only files and folders",
                dir.join(&path).display()
            );
        }
    }
    Ok(())
}

/// A digest of a folder's files (names and contents, in name order): two
/// package folders with the same digest hold the same package.
pub fn tree_digest(dir: &Path) -> Result<[u8; 32]> {
    let mut paths = Vec::new();
    collect(dir, Path::new(""), &mut paths)?;
    let mut hasher = Sha256::new();
    for relative in paths {
        let path = dir.join(&relative);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        if path.is_file() {
            hasher.update(read_at_most(&path, MAX_ENTRY_BYTES)?);
        }
        hasher.update([0]);
    }
    Ok(hasher.finalize().into())
}

/// `<archive>.sha256`.
pub fn checksum_path(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(CHECKSUM_SUFFIX);
    PathBuf::from(name)
}

/// The sha256 of a file, in hex.
pub fn sha256_of(path: &Path) -> Result<String> {
    let bytes = read_at_most(path, MAX_ARCHIVE_BYTES)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The package folder of `archive`, unpacked (once) under `into`: checks the
/// archive against its `.sha256` file where there is one, then unpacks it
/// into `<into>/<sha256>/`. Returns the package folder (the archive's one
/// top folder).
pub fn unpacked(archive: &Path, into: &Path) -> Result<PathBuf> {
    let meta = std::fs::symlink_metadata(archive)
        .with_context(|| format!("{}: cannot read the archive", archive.display()))?;
    if !meta.is_file() {
        bail!(
            "{}: not a regular file: a package archive must be the .tar.gz itself",
            archive.display()
        );
    }
    // An archive seen before, unchanged, is not read and hashed again.
    let seen = into.join(SEEN_FOLDER).join(seen_key(archive, &meta));
    if let Some(digest) = std::fs::read_to_string(&seen)
        .ok()
        .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        if into.join(&digest).is_dir() {
            check_sum(archive, &digest)?;
            return top_folder(&into.join(&digest))
                .map_err(|e| anyhow!("{}: {e:#}", archive.display()));
        }
    }
    let bytes = read_at_most(archive, MAX_ARCHIVE_BYTES)?;
    let digest = hex::encode(Sha256::digest(&bytes));
    check_sum(archive, &digest)?;
    let target = into.join(&digest);
    if !target.is_dir() {
        std::fs::create_dir_all(into)
            .with_context(|| format!("{}: cannot make the folder", into.display()))?;
        let temporary = tempfile::Builder::new()
            .prefix(".unpacking-")
            .tempdir_in(into)
            .with_context(|| format!("{}: cannot make a folder in it", into.display()))?;
        unpack(&bytes, temporary.path()).map_err(|e| anyhow!("{}: {e:#}", archive.display()))?;
        let kept = temporary.keep();
        if let Err(e) = std::fs::rename(&kept, &target) {
            // Another process unpacked the same archive first: use its copy.
            let _ = std::fs::remove_dir_all(&kept);
            if !target.is_dir() {
                return Err(anyhow!("{}: cannot write: {e}", target.display()));
            }
        }
    }
    let folder = top_folder(&target).map_err(|e| anyhow!("{}: {e:#}", archive.display()))?;
    remember(&seen, &digest);
    Ok(folder)
}

/// Where `unpacked` remembers the digests of archives it read.
const SEEN_FOLDER: &str = ".seen";

/// An archive file as it is now: its real path, size, modification and
/// change times and inode. A file changed in any of these is read and hashed
/// again (file times tick in milliseconds, not at every write: a file
/// rewritten within the same tick, at the same size and inode, would be
/// taken as unchanged).
fn seen_key(archive: &Path, meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let path = archive
        .canonicalize()
        .unwrap_or_else(|_| archive.to_path_buf());
    let key = format!(
        "{}\0{}\0{}.{}\0{}.{}\0{}",
        path.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino()
    );
    hex::encode(&Sha256::digest(key.as_bytes())[..16])
}

/// Best effort: a digest not remembered only costs hashing the archive again.
fn remember(seen: &Path, digest: &str) {
    let Some(folder) = seen.parent() else { return };
    if std::fs::create_dir_all(folder).is_err() {
        return;
    }
    let partial = seen.with_extension("partial");
    if std::fs::write(&partial, digest).is_ok() {
        let _ = std::fs::rename(&partial, seen);
    }
}

/// The archive's `.sha256` file, if present, must name this digest.
fn check_sum(archive: &Path, digest: &str) -> Result<()> {
    let sums = checksum_path(archive);
    if std::fs::symlink_metadata(&sums).is_err() {
        return Ok(());
    }
    let text = read_at_most(&sums, 4096)?;
    let text = String::from_utf8_lossy(&text);
    let expected = text.split_whitespace().next().unwrap_or("");
    if !expected.eq_ignore_ascii_case(digest) {
        bail!(
            "{}: the archive's sha256 is {digest}, but {} says {expected:?}: \
             the archive is damaged or not the one published; fetch it again",
            archive.display(),
            sums.display()
        );
    }
    Ok(())
}

fn top_folder(unpacked: &Path) -> Result<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(unpacked)
        .with_context(|| format!("{}: cannot read", unpacked.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.len() {
        1 if entries[0].is_dir() => Ok(entries.remove(0)),
        _ => bail!(
            "the archive must hold one folder (the package, e.g. mod-users-2.0.0/) \
             with everything in it: make it with `graft package`"
        ),
    }
}

/// Unpack gzipped tar bytes into `dest`, refusing anything a package does
/// not hold and stopping at the bounds.
fn unpack(bytes: &[u8], dest: &Path) -> Result<()> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut total = 0u64;
    let mut top: Option<std::ffi::OsString> = None;
    let entries = tar
        .entries()
        .context("not a gzipped tar archive: make it with `graft package`")?;
    for (count, entry) in entries.enumerate() {
        let mut entry =
            entry.context("not a readable gzipped tar archive: make it with `graft package`")?;
        if count >= MAX_ENTRIES {
            bail!("more than {MAX_ENTRIES} entries: this is not a package graft can use");
        }
        let path = entry
            .path()
            .context("an entry's name is not valid")?
            .into_owned();
        let shown = path.display().to_string();
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_owned()),
                Component::CurDir => {}
                _ => bail!(
                    "{shown:?}: confinement: an entry's path must stay inside the package \
                     (no absolute path, no ..)"
                ),
            }
        }
        let Some(first) = parts.first() else {
            continue;
        };
        match &top {
            None => top = Some(first.clone()),
            Some(existing) if existing != first => bail!(
                "{shown:?}: the archive must hold one folder (the package) with everything in it"
            ),
            Some(_) => {}
        }
        let target = parts
            .iter()
            .fold(dest.to_path_buf(), |p, part| p.join(part));
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&target)
                .with_context(|| format!("{shown:?}: cannot unpack"))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if parts.len() == 1 {
                    bail!("{shown:?}: the archive must hold one folder (the package) with everything in it");
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("{shown:?}: cannot unpack"))?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .with_context(|| format!("{shown:?}: cannot unpack (a second entry of that name?)"))?;
                let limit = MAX_ENTRY_BYTES.min(MAX_TOTAL_BYTES - total);
                let copied = std::io::copy(&mut (&mut entry).take(limit + 1), &mut file)
                    .with_context(|| format!("{shown:?}: cannot unpack"))?;
                if copied > limit {
                    bail!(
                        "{shown:?}: more than {} MiB (or the archive more than {} MiB in all): \
                         this is not a package graft can use",
                        MAX_ENTRY_BYTES >> 20,
                        MAX_TOTAL_BYTES >> 20
                    );
                }
                total += copied;
            }
            other => bail!(
                "{shown:?}: confinement: a {other:?} entry; a package archive holds only files and folders"
            ),
        }
    }
    if top.is_none() {
        bail!("the archive is empty: make it with `graft package`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::raw_archive as archive;

    fn unpack_error(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mod-x-1.0.0.tar.gz");
        std::fs::write(&path, bytes).unwrap();
        let err = unpacked(&path, &dir.path().join("unpacked")).unwrap_err();
        // Nothing half-unpacked is left where a package would be read.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("unpacked"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
        format!("{err:#}")
    }

    const FILE: tar::EntryType = tar::EntryType::Regular;
    const DIR: tar::EntryType = tar::EntryType::Directory;

    #[test]
    fn a_package_packs_and_unpacks_reproducibly() {
        let dir = tempfile::tempdir().unwrap();
        let package = dir.path().join("src");
        std::fs::create_dir_all(package.join("reference-data/groups")).unwrap();
        std::fs::write(package.join("ModuleDescriptor.json"), "{}").unwrap();
        std::fs::write(
            package.join("reference-data/groups/a.json"),
            "{\"id\":\"a\"}",
        )
        .unwrap();
        let first = pack(&package, "mod-x-1.0.0", &dir.path().join("a.tar.gz")).unwrap();
        let second = pack(&package, "mod-x-1.0.0", &dir.path().join("b.tar.gz")).unwrap();
        assert_eq!(first, second, "the same folder packs to the same bytes");
        let sums = std::fs::read_to_string(dir.path().join("a.tar.gz.sha256")).unwrap();
        assert_eq!(sums, format!("{first}  a.tar.gz\n"));
        let out = unpacked(&dir.path().join("a.tar.gz"), &dir.path().join("u")).unwrap();
        assert_eq!(out, dir.path().join("u").join(&first).join("mod-x-1.0.0"));
        assert_eq!(
            std::fs::read_to_string(out.join("reference-data/groups/a.json")).unwrap(),
            "{\"id\":\"a\"}"
        );
        // Unpacked once: a second read uses the same folder.
        assert_eq!(
            unpacked(&dir.path().join("a.tar.gz"), &dir.path().join("u")).unwrap(),
            out
        );
    }

    #[test]
    fn hostile_archives_are_refused_with_the_entry_named() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                archive(&[("m/../../etc/x", FILE, b"x", None)]),
                "\"m/../../etc/x\": confinement",
            ),
            (
                archive(&[("/etc/x", FILE, b"x", None)]),
                "\"/etc/x\": confinement",
            ),
            (
                archive(&[
                    ("m", DIR, b"", None),
                    ("m/link", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
                ]),
                "\"m/link\": confinement: a Symlink entry",
            ),
            (
                archive(&[("m/hard", tar::EntryType::Link, b"", Some("/etc/passwd"))]),
                "\"m/hard\": confinement: a Link entry",
            ),
            (
                archive(&[("m/dev", tar::EntryType::Char, b"", None)]),
                "confinement: a Char entry",
            ),
            (
                archive(&[("m/fifo", tar::EntryType::Fifo, b"", None)]),
                "confinement: a Fifo entry",
            ),
            (
                archive(&[
                    ("a/x.json", FILE, b"{}", None),
                    ("b/y.json", FILE, b"{}", None),
                ]),
                "\"b/y.json\": the archive must hold one folder",
            ),
            (
                archive(&[("loose.json", FILE, b"{}", None)]),
                "must hold one folder",
            ),
            (
                archive(&[("m/x", FILE, b"1", None), ("m/x", FILE, b"2", None)]),
                "\"m/x\": cannot unpack (a second entry of that name?)",
            ),
            (b"not gzip at all".to_vec(), "not a"),
            (archive(&[]), "the archive is empty"),
        ];
        for (bytes, expected) in cases {
            let error = unpack_error(&bytes);
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_bound() {
        // 300 MiB of zeros, a few hundred KiB compressed: refused at 256 MiB.
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(FILE);
        header.set_size(300 << 20);
        header.set_mode(0o644);
        header.set_path("m/plugin.wasm").unwrap();
        header.set_cksum();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        tar.append(&header, std::io::repeat(0).take(300 << 20))
            .unwrap();
        gz.write_all(&tar.into_inner().unwrap()).unwrap();
        let error = unpack_error(&gz.finish().unwrap());
        assert!(
            error.contains("\"m/plugin.wasm\": more than 256 MiB"),
            "{error}"
        );
    }

    #[test]
    fn an_archive_replaced_in_place_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mod-x-1.0.0.tar.gz");
        let into = dir.path().join("u");
        std::fs::write(&path, archive(&[("m/a.json", FILE, b"{}", None)])).unwrap();
        let first = unpacked(&path, &into).unwrap();
        assert!(first.join("a.json").is_file());
        // The second read uses what the first remembered, and gives the same.
        assert_eq!(unpacked(&path, &into).unwrap(), first);
        std::fs::remove_file(&path).unwrap();
        // Past the file system's clock tick (see `seen_key`).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, archive(&[("m/b.json", FILE, b"{}", None)])).unwrap();
        let second = unpacked(&path, &into).unwrap();
        assert!(second.join("b.json").is_file(), "{}", second.display());
        // A checksum file written later is still checked on a remembered archive.
        std::fs::write(checksum_path(&path), "00  mod-x-1.0.0.tar.gz\n").unwrap();
        assert!(unpacked(&path, &into).is_err());
    }

    #[test]
    fn a_wrong_checksum_file_refuses_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mod-x-1.0.0.tar.gz");
        std::fs::write(&path, archive(&[("m/x.json", FILE, b"{}", None)])).unwrap();
        std::fs::write(checksum_path(&path), "0000  mod-x-1.0.0.tar.gz\n").unwrap();
        let error = format!("{:#}", unpacked(&path, &dir.path().join("u")).unwrap_err());
        assert!(
            error.contains("says \"0000\": the archive is damaged"),
            "{error}"
        );
        assert!(!dir.path().join("u").exists());
    }
}
