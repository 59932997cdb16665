//! SQLite's tenants: one database file each, `<dir>/<tenant>.sqlite`, held
//! by an OS file lock beside it (`<tenant>.lock`, `flock`).

use super::SqliteStore;
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

const EXTENSION: &str = "sqlite";

/// The folder of a runner's SQLite tenants.
#[derive(Debug, Clone)]
pub struct SqliteFiles {
    dir: PathBuf,
}

/// A tenant's file lock: held until dropped or the process ends.
pub struct FileLock {
    _file: std::fs::File,
}

impl SqliteFiles {
    pub fn new(dir: &Path) -> SqliteFiles {
        SqliteFiles {
            dir: dir.to_path_buf(),
        }
    }

    /// The tenant's database file.
    pub fn path(&self, tenant: &str) -> PathBuf {
        self.dir.join(format!("{tenant}.{EXTENSION}"))
    }

    pub fn exists(&self, tenant: &str) -> bool {
        self.path(tenant).exists()
    }

    pub fn create_with(
        &self,
        tenant: &str,
        fill: impl FnOnce(&mut SqliteStore) -> Result<()>,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("{}: cannot create", self.dir.display()))?;
        SqliteStore::create_with(&self.path(tenant), tenant, fill)
    }

    /// Open a tenant's database; the error says how to create a missing one.
    pub fn open(&self, tenant: &str) -> Result<SqliteStore> {
        let path = self.path(tenant);
        if !path.exists() {
            bail!(
                "unknown tenant {tenant}: no database at {}; create it with `graft tenant create {tenant}`",
                path.display()
            );
        }
        SqliteStore::open(&path, tenant)
    }

    /// As `open`, with the file's structure checked first (`quick_check`),
    /// so a malformed database is refused before anything is written on it.
    pub fn open_to_write(&self, tenant: &str) -> Result<SqliteStore> {
        let mut store = self.open(tenant)?;
        store
            .quick_check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.path(tenant).display()))?;
        Ok(store)
    }

    /// Delete a tenant's database with SQLite's WAL files.
    pub fn remove(&self, tenant: &str) -> Result<()> {
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

    /// Every tenant with a database file, sorted.
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

    /// The tenant's file lock; a second runner gets `busy` with the pid of
    /// the one holding it.
    pub fn lock(&self, tenant: &str) -> Result<FileLock> {
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
                Ok(FileLock { _file: file })
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
}
