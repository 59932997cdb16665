//! The tenants a runner works on, in one of two backends, and the one place
//! that chooses between them:
//!
//! - SQLite (the default): one database file each, under
//!   `<data-dir>/tenants/<tenant>.sqlite`, held by a file lock
//!   (`sqlite::SqliteFiles`);
//! - PostgreSQL: one database for all tenants, in FOLIO's layout (see
//!   `storage::postgres`), held by an advisory lock.

use super::postgres::AdvisoryLock;
use super::sqlite::SqliteFiles;
use super::{PostgresStore, TenantStore};
use anyhow::{bail, Result};
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
    /// SQLite's files, and the locks of its tenants.
    files: SqliteFiles,
}

impl Tenants {
    /// SQLite tenants in the data directory.
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("tenants");
        Tenants {
            database: Database::Sqlite(dir.clone()),
            files: SqliteFiles::new(&dir),
        }
    }

    /// Tenants in `database`; the data directory keeps SQLite's files.
    pub fn in_database(data_dir: &Path, database: Database) -> Self {
        Tenants {
            database,
            files: SqliteFiles::new(&data_dir.join("tenants")),
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
            Database::Sqlite(_) => self.files.create_with(tenant, |store| fill(store)),
            Database::Postgres(url) => PostgresStore::create_with(url, tenant, |store| fill(store)),
        }
    }

    /// Open a tenant's database for a job that writes: as `open`, and on
    /// SQLite the file's structure is checked first (`quick_check`), so a
    /// malformed database is refused before anything is written on it.
    pub fn open_to_write(&self, tenant: &str) -> Result<Box<dyn TenantStore>> {
        check_tenant_id(tenant)?;
        match &self.database {
            Database::Sqlite(_) => Ok(Box::new(self.files.open_to_write(tenant)?)),
            Database::Postgres(url) => Ok(Box::new(PostgresStore::open(url, tenant)?)),
        }
    }

    /// Open a tenant's database; the error says how to create a missing one.
    pub fn open(&self, tenant: &str) -> Result<Box<dyn TenantStore>> {
        check_tenant_id(tenant)?;
        match &self.database {
            Database::Sqlite(_) => Ok(Box::new(self.files.open(tenant)?)),
            Database::Postgres(url) => Ok(Box::new(PostgresStore::open(url, tenant)?)),
        }
    }

    /// Delete a tenant's database: for a tenant a command has just created
    /// and could not fill.
    pub fn remove(&self, tenant: &str) -> Result<()> {
        check_tenant_id(tenant)?;
        match &self.database {
            Database::Sqlite(_) => self.files.remove(tenant),
            Database::Postgres(url) => PostgresStore::remove(url, tenant),
        }
    }

    /// Delete a tenant an operator names, under its lock: its database
    /// goes whatever state it is in (a file graft refuses to open included).
    pub fn delete(&self, tenant: &str) -> Result<()> {
        check_tenant_id(tenant)?;
        let _lock = self.lock(tenant)?;
        let known = match &self.database {
            Database::Sqlite(_) => self.files.exists(tenant),
            Database::Postgres(_) => self.list()?.iter().any(|t| t == tenant),
        };
        if !known {
            bail!("unknown tenant {tenant}: nothing to delete");
        }
        self.remove(tenant)
    }

    /// Every tenant, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        match &self.database {
            Database::Sqlite(_) => self.files.list(),
            Database::Postgres(url) => PostgresStore::list(url),
        }
    }

    /// Hold the tenant for one runner: a second gets a clear `busy` error.
    /// The lock is the operating system's (`flock`) or PostgreSQL's (an
    /// advisory lock held by its own connection), so a runner that is
    /// killed releases it with its process; nothing stale is left behind.
    pub fn lock(&self, tenant: &str) -> Result<TenantLock> {
        check_tenant_id(tenant)?;
        Ok(match &self.database {
            Database::Sqlite(_) => TenantLock {
                _held: Box::new(self.files.lock(tenant)?),
            },
            Database::Postgres(url) => TenantLock {
                _held: Box::new(AdvisoryLock::take(url, tenant)?),
            },
        })
    }

    /// The tenant's SQLite file (with the SQLite backend).
    pub fn path(&self, tenant: &str) -> PathBuf {
        self.files.path(tenant)
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
/// process ends, however it ends. What holds it is the backend's.
pub struct TenantLock {
    _held: Box<dyn Send>,
}
