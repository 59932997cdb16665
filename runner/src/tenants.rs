//! The tenants of a data directory: one SQLite database file each, under
//! `<data-dir>/tenants/<tenant>.sqlite`.

use crate::storage::{SqliteStore, TenantStore};
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

pub struct Tenants {
    dir: PathBuf,
}

const EXTENSION: &str = "sqlite";

impl Tenants {
    pub fn new(data_dir: &Path) -> Self {
        Tenants {
            dir: data_dir.join("tenants"),
        }
    }

    /// Create a tenant's database; fails if it exists.
    pub fn create(&self, tenant: &str) -> Result<()> {
        check_tenant_id(tenant)?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("{}: cannot create", self.dir.display()))?;
        SqliteStore::create(&self.path(tenant), tenant)?;
        Ok(())
    }

    /// Open a tenant's database; the error says how to create a missing one.
    pub fn open(&self, tenant: &str) -> Result<Box<dyn TenantStore>> {
        check_tenant_id(tenant)?;
        let path = self.path(tenant);
        if !path.exists() {
            bail!(
                "unknown tenant {tenant}: no database at {}; create it with `graft tenant create {tenant}`",
                path.display()
            );
        }
        Ok(Box::new(SqliteStore::open(&path, tenant)?))
    }

    /// Delete a tenant's database (with SQLite's WAL files): for a tenant
    /// a command has just created and could not fill.
    pub fn remove(&self, tenant: &str) -> Result<()> {
        check_tenant_id(tenant)?;
        let path = self.path(tenant);
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                std::fs::remove_file(&file)
                    .with_context(|| format!("{}: cannot remove", file.display()))?;
            }
        }
        Ok(())
    }

    /// Every tenant, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut tenants: Vec<String> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == EXTENSION))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        tenants.sort();
        Ok(tenants)
    }

    /// Hold the tenant for one runner: a second gets a clear `busy` error.
    /// The lock is the operating system's (`flock`), so a runner that is
    /// killed releases it with its process; nothing stale is left behind.
    pub fn lock(&self, tenant: &str) -> Result<TenantLock> {
        check_tenant_id(tenant)?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("{}: cannot create", self.dir.display()))?;
        let path = self.dir.join(format!("{tenant}.lock"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open the tenant lock", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                use std::io::{Seek, Write};
                file.set_len(0).ok();
                file.seek(std::io::SeekFrom::Start(0)).ok();
                write!(file, "{}", std::process::id()).ok();
                Ok(TenantLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                bail!(
                    "tenant {tenant} busy: another graft runner (pid {}) is working on it; try again when it ends",
                    holder.trim()
                )
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("{}: cannot lock", path.display()))
            }
        }
    }

    pub fn path(&self, tenant: &str) -> PathBuf {
        self.dir.join(format!("{tenant}.{EXTENSION}"))
    }
}

/// Okapi tenant ids: a letter, then letters, digits or `_`, lower case.
pub fn check_tenant_id(tenant: &str) -> Result<()> {
    let ok = (1..=63).contains(&tenant.len())
        && tenant.starts_with(|c: char| c.is_ascii_lowercase())
        && tenant
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("invalid tenant id {tenant:?}: use a lower-case letter, then lower-case letters, digits or '_' (at most 63)");
    }
    Ok(())
}

/// Held while a runner works on a tenant; released when dropped or when the
/// process ends, however it ends.
pub struct TenantLock {
    _file: std::fs::File,
}
