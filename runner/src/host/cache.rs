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
