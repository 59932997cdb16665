//! The compiled-plugin cache's entries: a magic, a checksum of the
//! compiled code, then the code; checked before it is loaded.

use super::*;

/// A cache entry starts with this, then the xxh3-128 checksum of the
/// serialized component, then the component: what is loaded is checked
/// first. A checksum, not a MAC: it finds a flipped bit or a torn file;
/// whoever can write the cache could as well write a matching checksum (see
/// the threat model). xxh3 rather than sha256: a cached load is about half
/// a millisecond, which sha256 of a few MB would multiply.
pub(super) const CACHE_MAGIC: &[u8; 8] = b"graftcw1";
pub(super) const CACHE_HEADER: usize = 8 + 16;

pub(super) fn cache_checksum(serialized: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(serialized).to_le_bytes()
}

pub(super) fn cache_entry(serialized: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(CACHE_HEADER + serialized.len());
    entry.extend_from_slice(CACHE_MAGIC);
    entry.extend_from_slice(&cache_checksum(serialized));
    entry.extend_from_slice(serialized);
    entry
}

/// The serialized component of a cache entry, if its checksum holds; else
/// what is wrong with it.
pub(super) fn read_cache_entry(path: &Path) -> Result<Vec<u8>, String> {
    let mut entry = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    if entry.len() < CACHE_HEADER || &entry[..8] != CACHE_MAGIC {
        return Err("is not in graft's cache format".into());
    }
    if cache_checksum(&entry[CACHE_HEADER..]) != entry[8..CACHE_HEADER] {
        return Err("does not match its checksum (corrupted)".into());
    }
    entry.drain(..CACHE_HEADER);
    Ok(entry)
}

impl Host {
    /// Compile a plugin, or load its compilation from the cache (and cache
    /// a new one).
    pub(super) fn compile(
        &self,
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<Component> {
        let cached = self
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{sha256}-{}.cwasm", runtime.key())));
        if let Some(cached) = cached.as_ref().filter(|p| p.exists()) {
            match read_cache_entry(cached) {
                // SAFETY: deserializing runs the bytes as native code. These
                // are exactly the bytes `Component::serialize` wrote for an
                // engine with the same compatibility hash (part of the name):
                // their checksum, written with them, was checked just now, so
                // a flipped bit or a truncated file is never loaded. (Whoever
                // can write the cache folder can run code as the runner: it
                // must be the runner's alone, see the threat model.)
                Ok(serialized) => {
                    match unsafe { Component::deserialize(&runtime.engine, &serialized) } {
                        Ok(component) => return Ok(component),
                        Err(e) => tracing::warn!(
                            "{}: ignoring unusable cached compilation: {e}",
                            cached.display()
                        ),
                    }
                }
                Err(why) => tracing::warn!(
                    "{}: recompiling the plugin: the cached compilation {why}",
                    cached.display()
                ),
            }
        }
        let component = Component::new(&runtime.engine, bytes).map_err(|e| {
            anyhow!(
                "{}: not a valid WebAssembly component: {e:#}",
                path.display()
            )
        })?;
        if let Some(cached) = cached {
            // Write then rename, so a reader never sees half a file.
            let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
            let written = component
                .serialize()
                .map_err(|e| anyhow!("{e}"))
                .and_then(|data| std::fs::write(&tmp, cache_entry(&data)).map_err(Into::into))
                .and_then(|()| std::fs::rename(&tmp, &cached).map_err(Into::into));
            if let Err(e) = written {
                tracing::warn!(
                    "{}: cannot cache the compiled plugin: {e}",
                    cached.display()
                );
            }
        }
        Ok(component)
    }
}
