//! A tenant's SQLite database: the runner's tables, creating a database
//! whole or not at all, opening only the tenant's own, converting old
//! layouts, and the table and index names modules get.

use super::*;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS graft_tenant (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS graft_modules (
    name TEXT PRIMARY KEY,
    module_id TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    descriptor TEXT
);
CREATE TABLE IF NOT EXISTS graft_base (
    module TEXT NOT NULL,
    collection TEXT NOT NULL,
    record_id TEXT NOT NULL,
        doc TEXT NOT NULL,
        sha256 TEXT NOT NULL,
    release TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (module, collection, record_id)
);
CREATE TABLE IF NOT EXISTS graft_jobs (
    job_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    commit_mode TEXT NOT NULL,
    plan TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS graft_changes (
    job_id TEXT NOT NULL,
    module TEXT NOT NULL,
    collection TEXT NOT NULL,
    inserted INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    schema TEXT NOT NULL,
    samples TEXT NOT NULL,
    overlay TEXT NOT NULL,
    digest TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, module, collection)
);
CREATE TABLE IF NOT EXISTS graft_history (
    seq INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    module_name TEXT NOT NULL,
    step TEXT NOT NULL,
    module_from TEXT,
    module_to TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    inserted INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    plugin_sha256 TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS graft_collections (
    module TEXT NOT NULL,
    collection TEXT NOT NULL,
    table_name TEXT NOT NULL UNIQUE,
    PRIMARY KEY (module, collection)
);
CREATE TABLE IF NOT EXISTS graft_module_state (
    module TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (module, key)
);
CREATE TABLE IF NOT EXISTS graft_indexes (
    module TEXT NOT NULL,
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    field TEXT NOT NULL,
    is_unique INTEGER NOT NULL,
    case_insensitive INTEGER NOT NULL,
    sql_name TEXT NOT NULL UNIQUE,
    PRIMARY KEY (module, collection, name)
);
";

impl SqliteStore {
    /// Create the database of a new tenant; fails if the file exists.
    pub fn create(path: &Path, tenant: &str) -> anyhow::Result<Self> {
        Self::create_with(path, tenant, |_| Ok(()))?;
        Self::open(path, tenant)
    }

    /// Create the database of a new tenant, filled by `fill` in one
    /// transaction, and put it at `path` only when it is whole: it is made
    /// under a temporary name beside it and linked into place at the end
    /// (a link never replaces a file), so a kill, a full disk or a failed
    /// `fill` leaves no tenant behind, and the command can be run again.
    pub fn create_with(
        path: &Path,
        tenant: &str,
        fill: impl FnOnce(&mut SqliteStore) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if path.exists() {
            anyhow::bail!("tenant {tenant} already exists ({})", path.display());
        }
        let temp = PathBuf::from(format!("{}.creating", path.display()));
        let remove_temp = || {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", temp.display()));
            }
        };
        // A temporary file left by a killed create (the caller holds the
        // tenant's lock, so no other create is writing it).
        remove_temp();
        let made = (|| -> anyhow::Result<()> {
            let mut store = Self::create_at(&temp, tenant)?;
            store.begin().map_err(|e| anyhow::anyhow!("{e}"))?;
            fill(&mut store)?;
            store.commit().map_err(|e| anyhow::anyhow!("{e}"))?;
            // Closing checkpoints the WAL into the file: the file is whole.
            store.conn.close().map_err(|(_, e)| e)?;
            std::fs::hard_link(&temp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!("tenant {tenant} already exists ({})", path.display())
                } else {
                    anyhow::anyhow!("{}: cannot create: {e}", path.display())
                }
            })?;
            if let Some(dir) = path.parent() {
                // The new name is durable once its folder is.
                std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
            }
            Ok(())
        })();
        remove_temp();
        made
    }

    /// A new database at `path` with the runner's schema and its tenant row.
    pub(super) fn create_at(path: &Path, tenant: &str) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        // 16 KiB pages keep a JSON document of a few KB on its page, with
        // no overflow chain to follow on every read and write (measured: 2-3x
        // faster inserts and set-based updates of 1 KB documents than 4 KiB).
        // It can only be set before the first table exists.
        conn.pragma_update(None, "page_size", 16384)?;
        let store = Self::init(conn, tenant)?;
        store.conn.execute(
            "INSERT INTO graft_tenant (key, value) VALUES ('tenant', ?1), ('created_at', ?2)",
            params![tenant, now()],
        )?;
        Ok(store)
    }

    /// Open the database of an existing tenant. The file must be the
    /// tenant's own: a database with its tenant row naming it. An empty
    /// file, another tenant's or a foreign one is refused (never
    /// initialised as if it were a new tenant), and so is a database SQLite
    /// finds malformed.
    pub fn open(path: &Path, tenant: &str) -> anyhow::Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let refuse = |why: String| {
            anyhow::anyhow!(
                "{}: not usable as the database of tenant {tenant}: {why}; restore it from a \
                 backup, or remove the tenant with `graft tenant delete {tenant}`",
                path.display()
            )
        };
        let conn = Connection::open_with_flags(path, flags).map_err(|e| refuse(e.to_string()))?;
        let owner: Option<String> = conn
            .query_row(
                "SELECT value FROM graft_tenant WHERE key = 'tenant'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(_, Some(m)) if m.starts_with("no such table") => {
                    refuse("it holds no graft tenant (an empty or foreign file)".into())
                }
                other => refuse(other.to_string()),
            })?;
        match owner {
            Some(owner) if owner == tenant => Self::init(conn, tenant),
            Some(owner) => Err(refuse(format!("it is the database of tenant {owner}"))),
            None => Err(refuse("its tenant row is missing".into())),
        }
    }

    /// SQLite's `quick_check`: the file's pages and structure are sound.
    /// Run before a job writes, so a malformed database is never written on.
    pub fn quick_check(&mut self) -> StoreResult<()> {
        let result: String = self
            .conn
            .query_row("PRAGMA quick_check(1)", [], |row| row.get(0))
            .map_err(backend)?;
        if result != "ok" {
            return Err(StoreError::Backend(format!(
                "the database of tenant {} is malformed ({result}): restore it from a backup",
                self.tenant
            )));
        }
        Ok(())
    }

    pub(super) fn init(conn: Connection, tenant: &str) -> anyhow::Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // SQLite's default page cache (2 MiB) on purpose: 64 MiB made the
        // 1M-record benchmarks slower, not faster (B1's native leg 14.3 s ->
        // 12.9 s and B2 6.4 s -> 5.7 s with the default); the OS caches the file.
        conn.execute_batch(SCHEMA)?;
        // Databases made before change digests existed get the column.
        let has_digest: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('graft_changes') WHERE name = 'digest'",
            [],
            |row| row.get(0),
        )?;
        if !has_digest {
            conn.execute_batch(
                "ALTER TABLE graft_changes ADD COLUMN digest TEXT NOT NULL DEFAULT ''",
            )?;
        }
        let mut store = SqliteStore {
            conn,
            tenant: tenant.to_string(),
            tables: Tables::new(),
        };
        store.convert_text_tables().map_err(|e| {
            anyhow::anyhow!("cannot convert the collections of tenant {tenant} to JSONB: {e}")
        })?;
        Ok(store)
    }

    /// Collections made before documents were stored as JSONB hold JSON
    /// text: rebuild them, once, in one transaction (a failure leaves them
    /// as they were). Their indexes are made again from `graft_indexes`.
    pub(super) fn convert_text_tables(&mut self) -> StoreResult<()> {
        let text_tables: Vec<(String, String, String)> = {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT c.module, c.collection, c.table_name FROM graft_collections c
                     WHERE (SELECT type FROM pragma_table_info(c.table_name) WHERE name = 'doc') = 'TEXT'",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        if text_tables.is_empty() {
            return Ok(());
        }
        tracing::info!(
            tenant = %self.tenant,
            collections = text_tables.len(),
            "storing documents as JSONB (once per tenant database)"
        );
        self.begin()?;
        let converted = text_tables
            .iter()
            .try_for_each(|(module, collection, table)| {
                // A '-' is in no name `sql_ident` makes: no table has this one.
                let new = format!("{table}-jsonb");
                self.conn
                    .execute_batch(&format!(
                        "{};
                     INSERT INTO \"{new}\" (id, doc) SELECT id, jsonb(doc) FROM \"{table}\";
                     DROP TABLE \"{table}\";
                     ALTER TABLE \"{new}\" RENAME TO \"{table}\";",
                        create_table_sql(&new)
                    ))
                    .map_err(backend)?;
                for spec in self.list_indexes(module, collection)? {
                    let sql_name: String = self
                        .conn
                        .query_row(
                            "SELECT sql_name FROM graft_indexes
                             WHERE module = ?1 AND collection = ?2 AND name = ?3",
                            params![module, collection, spec.name],
                            |row| row.get(0),
                        )
                        .map_err(backend)?;
                    self.create_index_sql(table, collection, &spec, &sql_name)?;
                }
                Ok(())
            });
        match converted {
            Ok(()) => self.commit(),
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    /// `base`, or `base_2`, `base_3`, ...: the first name no table or index
    /// of the database has, compared as SQLite compares names (ASCII case
    /// folded). Two modules or collections may map to one identifier
    /// (`a-b` and `a_b`, `mod-Users` and `mod-users`, or a module whose
    /// collection is named like another's table or index): neither may then
    /// take the other's, and none can squat a name another needs later.
    pub(super) fn free_name(&mut self, base: &str) -> StoreResult<String> {
        let mut name = base.to_string();
        for n in 2.. {
            let taken: bool = self
                .conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE lower(name) = lower(?1))
                         OR EXISTS (SELECT 1 FROM graft_collections WHERE lower(table_name) = lower(?1))
                         OR EXISTS (SELECT 1 FROM graft_indexes WHERE lower(sql_name) = lower(?1))",
                    [&name],
                    |row| row.get(0),
                )
                .map_err(backend)?;
            if !taken {
                break;
            }
            name = format!("{base}_{n}");
        }
        Ok(name)
    }
}
