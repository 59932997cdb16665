//! PostgreSQL's tenants: registered in `graft.tenants`, created whole or
//! not at all, removed with their schemas, and held by an advisory lock.

use super::pool::Connection;
use super::schema::connect;
use super::*;

impl PostgresStore {
    /// Register a new tenant and fill it with `fill`, in one transaction:
    /// the tenant exists, filled, or not at all.
    pub fn create_with(
        url: &str,
        tenant: &str,
        fill: impl FnOnce(&mut PostgresStore) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut store = Self::with(Connection::get(url)?, tenant);
        store.begin().map_err(|e| anyhow::anyhow!("{e}"))?;
        let made = (|| -> anyhow::Result<()> {
            let inserted = store.client.execute(
                "INSERT INTO graft.tenants (tenant, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&tenant, &now()],
            )?;
            if inserted == 0 {
                anyhow::bail!(
                    "tenant {tenant} already exists (in the graft schema of the database)"
                );
            }
            fill(&mut store)?;
            store.commit().map_err(|e| anyhow::anyhow!("{e}"))
        })();
        if made.is_err() {
            store.rollback().ok();
        }
        made
    }

    /// Register a new tenant; fails if it exists.
    pub fn create(url: &str, tenant: &str) -> anyhow::Result<Self> {
        let mut client = Connection::get(url)?;
        let inserted = client.execute(
            "INSERT INTO graft.tenants (tenant, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&tenant, &now()],
        )?;
        if inserted == 0 {
            anyhow::bail!("tenant {tenant} already exists (in the graft schema of the database)");
        }
        Ok(Self::with(client, tenant))
    }

    /// Open an existing tenant.
    pub fn open(url: &str, tenant: &str) -> anyhow::Result<Self> {
        let mut client = Connection::get(url)?;
        let exists = client
            .query_opt("SELECT 1 FROM graft.tenants WHERE tenant = $1", &[&tenant])?
            .is_some();
        if !exists {
            anyhow::bail!(
                "unknown tenant {tenant}: not in the database; create it with `graft tenant create {tenant}`"
            );
        }
        Ok(Self::with(client, tenant))
    }

    /// Every tenant of the database, sorted.
    pub fn list(url: &str) -> anyhow::Result<Vec<String>> {
        let mut client = connect(url)?;
        Ok(client
            .query("SELECT tenant FROM graft.tenants ORDER BY tenant", &[])?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }

    /// Forget a tenant and drop its schemas.
    pub fn remove(url: &str, tenant: &str) -> anyhow::Result<()> {
        let mut client = connect(url)?;
        let mut tx = client.transaction()?;
        let schemas: Vec<String> = tx
            .query(
                "SELECT DISTINCT schema_name FROM graft.collections WHERE tenant = $1",
                &[&tenant],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for schema in schemas {
            tx.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))?;
        }
        for table in [
            "collections",
            "indexes",
            "base",
            "jobs",
            "changes",
            "history",
            "module_state",
            "modules",
            "tenants",
        ] {
            tx.execute(
                &format!("DELETE FROM graft.{table} WHERE tenant = $1"),
                &[&tenant],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub(super) fn with(client: Connection, tenant: &str) -> Self {
        PostgresStore {
            client,
            tenant: tenant.to_string(),
            tables: Tables::new(),
        }
    }
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

impl AdvisoryLock {
    /// Hold the tenant for this runner; a second gets `busy` with the
    /// server process of the one holding it.
    pub fn take(url: &str, tenant: &str) -> anyhow::Result<AdvisoryLock> {
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
            anyhow::bail!(
                "tenant {tenant} busy: another graft runner (database backend pid {}) is working on it; try again when it ends",
                holder.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
            );
        }
        Ok(AdvisoryLock {
            connection: client,
            key,
        })
    }
}
