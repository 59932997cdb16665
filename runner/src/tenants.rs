//! The tenants a runner works on, in one of two backends:
//!
//! - SQLite (the default): one database file each, under
//!   `<data-dir>/tenants/<tenant>.sqlite`, held by a file lock;
//! - PostgreSQL: one database for all tenants, in FOLIO's layout (see
//!   `storage::postgres`), held by an advisory lock.

use crate::storage::pool::Connection;
use crate::storage::{PostgresStore, SqliteStore, TenantStore};
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

/// Where tenant data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A folder of SQLite files.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user@host:port/db`).
    Postgres(String),
}

impl Database {
    /// `postgres://...` or `postgresql://...`; anything else is not a
    /// database URL this runner knows.
    pub fn parse_url(url: &str) -> Result<Database> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(url.to_string()))
        } else {
            bail!(
                "database {url:?}: give a PostgreSQL URL, postgres://user:password@host:port/database \
                 (without --database, tenants are SQLite files in the data directory)"
            )
        }
    }
}

pub struct Tenants {
    database: Database,
    /// The SQLite files and their locks.
    dir: PathBuf,
}

const EXTENSION: &str = "sqlite";

impl Tenants {
    /// SQLite tenants in the data directory.
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("tenants");
        Tenants {
            database: Database::Sqlite(dir.clone()),
            dir,
        }
    }

    /// Tenants in `database`; the data directory keeps SQLite's files.
    pub fn in_database(data_dir: &Path, database: Database) -> Self {
        Tenants {
            database,
            dir: data_dir.join("tenants"),
        }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Create a tenant's database; fails if it exists.
    pub fn create(&self, tenant: &str) -> Result<()> {
        self.create_with(tenant, |_| Ok(()))
    }

    /// Create a tenant and fill it (a fixture restored into it) as one
    /// unit, under the tenant's lock: afterwards it exists, filled, or not
    /// at all, whatever happens meanwhile (a kill, a full disk, an error of
    /// `fill`), so the command can simply be run again.
    pub fn create_with(
        &self,
        tenant: &str,
        fill: impl FnOnce(&mut dyn TenantStore) -> Result<()>,
    ) -> Result<()> {
        check_tenant_id(tenant)?;
        let _lock = self.lock(tenant)?;
        match &self.database {
            Database::Sqlite(_) => {
                SqliteStore::create_with(&self.path(tenant), tenant, |store| fill(store))
            }
            Database::Postgres(url) => PostgresStore::create_with(url, tenant, |store| fill(store)),
        }
    }

    /// Open a tenant's database for a job that writes: as `open`, and on
    /// SQLite the file's structure is checked first (`quick_check`), so a
    /// malformed database is refused before anything is written on it.
    pub fn open_to_write(&self, tenant: &str) -> Result<Box<dyn TenantStore>> {
        if let Database::Sqlite(_) = &self.database {
            let path = self.path(tenant);
            let mut store = self.open_sqlite(tenant)?;
            store
                .quick_check()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            return Ok(Box::new(store));
        }
        self.open(tenant)
    }

    fn open_sqlite(&self, tenant: &str) -> Result<SqliteStore> {
        check_tenant_id(tenant)?;
        let path = self.path(tenant);
        if !path.exists() {
            bail!(
                "unknown tenant {tenant}: no database at {}; create it with `graft tenant create {tenant}`",
                path.display()
            );
        }
        SqliteStore::open(&path, tenant)
    }

    /// Open a tenant's database; the error says how to create a missing one.
    pub fn open(&self, tenant: &str) -> Result<Box<dyn TenantStore>> {
        check_tenant_id(tenant)?;
        if let Database::Postgres(url) = &self.database {
            return Ok(Box::new(PostgresStore::open(url, tenant)?));
        }
        Ok(Box::new(self.open_sqlite(tenant)?))
    }

    /// Delete a tenant's database (with SQLite's WAL files): for a tenant
    /// a command has just created and could not fill.
    pub fn remove(&self, tenant: &str) -> Result<()> {
        check_tenant_id(tenant)?;
        if let Database::Postgres(url) = &self.database {
            return PostgresStore::remove(url, tenant);
        }
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

    /// Delete a tenant an operator names, under its lock: its database
    /// goes whatever state it is in (a file graft refuses to open included).
    pub fn delete(&self, tenant: &str) -> Result<()> {
        check_tenant_id(tenant)?;
        let _lock = self.lock(tenant)?;
        let known = match &self.database {
            Database::Sqlite(_) => self.path(tenant).exists(),
            Database::Postgres(_) => self.list()?.iter().any(|t| t == tenant),
        };
        if !known {
            bail!("unknown tenant {tenant}: nothing to delete");
        }
        self.remove(tenant)
    }

    /// Every tenant, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        if let Database::Postgres(url) = &self.database {
            return PostgresStore::list(url);
        }
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
    /// The lock is the operating system's (`flock`) or PostgreSQL's (an
    /// advisory lock held by its own connection), so a runner that is
    /// killed releases it with its process; nothing stale is left behind.
    pub fn lock(&self, tenant: &str) -> Result<TenantLock> {
        check_tenant_id(tenant)?;
        if let Database::Postgres(url) = &self.database {
            return lock_in_postgres(url, tenant);
        }
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
                Ok(TenantLock::File(file))
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

    /// The tenant's SQLite file (with the SQLite backend).
    pub fn path(&self, tenant: &str) -> PathBuf {
        self.dir.join(format!("{tenant}.{EXTENSION}"))
    }
}

/// Okapi's tenant ids (`TenantValidator`, FOLIO's ADR-000002):
/// `^[a-z][a-z0-9]{0,30}$`. No `_`: in FOLIO's layout a schema is
/// `<tenant>_<module>`, and `diku_mod` + `users` would meet `diku` +
/// `mod-users`.
pub fn check_tenant_id(tenant: &str) -> Result<()> {
    let ok = (1..=31).contains(&tenant.len())
        && tenant.starts_with(|c: char| c.is_ascii_lowercase())
        && tenant
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok {
        bail!(
            "invalid tenant id {:?}: use a lower-case letter, then lower-case letters or digits, \
             at most 31 (Okapi's rule for tenant ids)",
            crate::text::truncate(tenant, 100)
        );
    }
    Ok(())
}

/// Held while a runner works on a tenant; released when dropped or when the
/// process ends, however it ends.
pub enum TenantLock {
    File(std::fs::File),
    // Boxed: a pooled connection is large next to a file handle.
    Postgres(Box<AdvisoryLock>),
}

/// A tenant's advisory lock and the connection holding it (a connection of
/// the pool: unlocked and given back when dropped; closed, which releases
/// the lock too, if the unlock fails).
pub struct AdvisoryLock {
    connection: Connection,
    key: i64,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let unlocked = self
            .connection
            .query_one("SELECT pg_advisory_unlock($1)", &[&self.key])
            .map(|row| row.get::<_, bool>(0));
        if !matches!(unlocked, Ok(true)) {
            self.connection.discard();
        }
    }
}

/// The advisory lock key of a tenant: 64 bits of a hash of its id.
fn lock_key(tenant: &str) -> i64 {
    let hash = <sha2::Sha256 as sha2::Digest>::digest(format!("graft-tenant:{tenant}").as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&hash[..8]);
    i64::from_le_bytes(key)
}

fn lock_in_postgres(url: &str, tenant: &str) -> Result<TenantLock> {
    let mut client = Connection::get(url)?;
    let key = lock_key(tenant);
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
        .get(0);
    if !locked {
        let holder: Option<i32> = client
            .query_opt(
                "SELECT pid FROM pg_locks
                 WHERE locktype = 'advisory' AND granted AND objsubid = 1
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND classid::bigint = ($1::bigint >> 32) & 4294967295
                   AND objid::bigint = $1::bigint & 4294967295
                 LIMIT 1",
                &[&key],
            )?
            .map(|row| row.get(0));
        bail!(
            "tenant {tenant} busy: another graft runner (database backend pid {}) is working on it; try again when it ends",
            holder.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
        );
    }
    Ok(TenantLock::Postgres(Box::new(AdvisoryLock {
        connection: client,
        key,
    })))
}
