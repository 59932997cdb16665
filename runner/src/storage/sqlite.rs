//! The embedded default backend: one SQLite database file per tenant.
//!
//! A collection is a table `(id TEXT PRIMARY KEY, doc BLOB)` whose `doc` is
//! SQLite's binary JSON (JSONB, SQLite 3.45+) and must be an object (a CHECK
//! constraint, so even the runner cannot store anything else); indexes are
//! expression indexes on `json_extract`. Documents are parsed once, when
//! written (`jsonb(?)`); the CHECK and every index read the binary form
//! without parsing text again, and reads render text (`json(doc)`).
//! The runner's metadata lives in `graft_*` tables of the same file, so it
//! commits and rolls back with the data it describes.

use super::*;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::collections::HashMap;
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

pub struct SqliteStore {
    conn: Connection,
    tenant: String,
    /// (module, collection) -> table; cleared on rollback, since a rolled
    /// back transaction may have created or dropped tables.
    tables: HashMap<(String, String), String>,
}

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
    fn create_at(path: &Path, tenant: &str) -> anyhow::Result<Self> {
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

    fn init(conn: Connection, tenant: &str) -> anyhow::Result<Self> {
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
            tables: HashMap::new(),
        };
        store.convert_text_tables().map_err(|e| {
            anyhow::anyhow!("cannot convert the collections of tenant {tenant} to JSONB: {e}")
        })?;
        Ok(store)
    }

    /// Collections made before documents were stored as JSONB hold JSON
    /// text: rebuild them, once, in one transaction (a failure leaves them
    /// as they were). Their indexes are made again from `graft_indexes`.
    fn convert_text_tables(&mut self) -> StoreResult<()> {
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
    fn free_name(&mut self, base: &str) -> StoreResult<String> {
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

    fn table(&mut self, module: &str, collection: &str) -> StoreResult<String> {
        self.find_table(module, collection)?
            .ok_or_else(|| StoreError::NoSuchCollection(collection.to_string()))
    }

    fn find_table(&mut self, module: &str, collection: &str) -> StoreResult<Option<String>> {
        let key = (module.to_string(), collection.to_string());
        if let Some(table) = self.tables.get(&key) {
            return Ok(Some(table.clone()));
        }
        let table: Option<String> = self
            .conn
            .query_row(
                "SELECT table_name FROM graft_collections WHERE module = ?1 AND collection = ?2",
                params![module, collection],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)?;
        if let Some(table) = &table {
            self.tables.insert(key, table.clone());
        }
        Ok(table)
    }

    /// Create the index itself (not its `graft_indexes` row); returns its
    /// SQL name.
    fn create_index_sql(
        &mut self,
        table: &str,
        collection: &str,
        spec: &IndexSpec,
        sql_name: &str,
    ) -> StoreResult<()> {
        let unique = if spec.unique { "UNIQUE " } else { "" };
        let created = self.conn.execute_batch(&format!(
            "CREATE {unique}INDEX \"{sql_name}\" ON \"{table}\" ({})",
            index_expression(spec)
        ));
        match created {
            Ok(()) => Ok(()),
            // SQLite names the table's columns, not the index, when existing rows collide.
            Err(rusqlite::Error::SqliteFailure(code, _))
                if code.code == ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::UniqueViolation {
                    collection: collection.to_string(),
                    index: spec.name.clone(),
                    record_id: String::new(),
                })
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// Insert a record whose id and document were checked, unless the id
    /// exists; true if inserted.
    fn insert_new(
        &mut self,
        table: &str,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<bool> {
        let inserted = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO \"{table}\" (id, doc) VALUES (?1, jsonb(?2)) ON CONFLICT (id) DO NOTHING"
            ))
            .and_then(|mut stmt| stmt.execute(params![id, doc]))
            .map_err(|e| self.write_error(e, module, collection, id))?;
        Ok(inserted == 1)
    }

    /// Map a failed write to the contract's error, naming the index by the
    /// name the module gave it.
    fn write_error(
        &self,
        e: rusqlite::Error,
        module: &str,
        collection: &str,
        id: &str,
    ) -> StoreError {
        if let rusqlite::Error::SqliteFailure(code, Some(message)) = &e {
            if code.code == ErrorCode::ConstraintViolation {
                if let Some(sql_name) = message.strip_prefix("UNIQUE constraint failed: index '") {
                    let sql_name = sql_name.trim_end_matches('\'');
                    let index = self
                        .conn
                        .query_row(
                            "SELECT name FROM graft_indexes WHERE module = ?1 AND sql_name = ?2",
                            params![module, sql_name],
                            |row| row.get::<_, String>(0),
                        )
                        .unwrap_or_else(|_| sql_name.to_string());
                    return StoreError::UniqueViolation {
                        collection: collection.to_string(),
                        index,
                        record_id: id.to_string(),
                    };
                }
                if message.starts_with("CHECK constraint failed") {
                    return StoreError::InvalidDocument(format!(
                        "record {id}: the document is not a JSON object"
                    ));
                }
            }
        }
        backend(e)
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
        return StoreError::Backend("interrupted: the plugin call ran past its deadline".into());
    }
    StoreError::Backend(e.to_string())
}

/// Table and index names derived from what modules call them.
fn sql_ident(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
        .collect::<Vec<_>>()
        .join("__")
}

/// A collection's table. `doc` is always written through `jsonb(?)`, which
/// parses JSON text and fails on anything else, so the CHECK needs only to
/// look at the (binary) root's type.
fn create_table_sql(table: &str) -> String {
    format!(
        "CREATE TABLE \"{table}\" (
            id TEXT PRIMARY KEY NOT NULL,
            doc BLOB NOT NULL CHECK (json_type(doc) = 'object')
        )"
    )
}

/// `personal.email` -> `$.personal.email` (the path was checked by `check_field`).
fn json_path(field: &str) -> String {
    format!("$.{field}")
}

/// The index's expressions on `json_extract`.
fn index_expression(spec: &IndexSpec) -> String {
    index_expressions(spec, |field| {
        format!("json_extract(doc, '{}')", json_path(field))
    })
}

impl TenantStore for SqliteStore {
    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        match deadline {
            // About every 10,000 SQLite VM instructions: microseconds apart.
            Some(deadline) => self
                .conn
                .progress_handler(10_000, Some(move || std::time::Instant::now() >= deadline)),
            None => self.conn.progress_handler(0, None::<fn() -> bool>),
        }
    }

    fn begin(&mut self) -> StoreResult<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)
    }

    fn commit(&mut self) -> StoreResult<()> {
        self.conn.execute_batch("COMMIT").map_err(backend)
    }

    fn rollback(&mut self) -> StoreResult<()> {
        self.tables.clear();
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch("ROLLBACK").map_err(backend)
    }

    fn create_collection(&mut self, module: &str, collection: &str) -> StoreResult<bool> {
        check_name("collection", collection)?;
        if self.find_table(module, collection)?.is_some() {
            return Ok(false);
        }
        let table = self.free_name(&sql_ident(&[module, collection]))?;
        self.conn
            .execute_batch(&create_table_sql(&table))
            .map_err(backend)?;
        self.conn
            .execute(
                "INSERT INTO graft_collections (module, collection, table_name) VALUES (?1, ?2, ?3)",
                params![module, collection, table],
            )
            .map_err(backend)?;
        self.tables
            .insert((module.into(), collection.into()), table);
        Ok(true)
    }

    fn drop_collection(&mut self, module: &str, collection: &str) -> StoreResult<bool> {
        let Some(table) = self.find_table(module, collection)? else {
            return Ok(false);
        };
        self.conn
            .execute_batch(&format!("DROP TABLE \"{table}\""))
            .map_err(backend)?;
        self.conn
            .execute(
                "DELETE FROM graft_indexes WHERE module = ?1 AND collection = ?2",
                params![module, collection],
            )
            .map_err(backend)?;
        self.conn
            .execute(
                "DELETE FROM graft_collections WHERE module = ?1 AND collection = ?2",
                params![module, collection],
            )
            .map_err(backend)?;
        self.conn
            .execute(
                "DELETE FROM graft_base WHERE module = ?1 AND collection = ?2",
                params![module, collection],
            )
            .map_err(backend)?;
        self.tables
            .remove(&(module.to_string(), collection.to_string()));
        Ok(true)
    }

    fn list_collections(&mut self, module: &str) -> StoreResult<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT collection FROM graft_collections WHERE module = ?1 ORDER BY collection",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([module], |row| row.get(0))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn create_index(
        &mut self,
        module: &str,
        collection: &str,
        spec: &IndexSpec,
    ) -> StoreResult<bool> {
        let table = self.table(module, collection)?;
        if let Some(created) = existing_index(self, module, collection, spec)? {
            return Ok(created);
        }
        let sql_name = self.free_name(&sql_ident(&["ix", &table, &spec.name]))?;
        self.create_index_sql(&table, collection, spec, &sql_name)?;
        self.conn
            .execute(
                "INSERT INTO graft_indexes (module, collection, name, field, is_unique, case_insensitive, sql_name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![module, collection, spec.name, spec.field, spec.unique, spec.case_insensitive, sql_name],
            )
            .map_err(backend)?;
        Ok(true)
    }

    fn drop_index(&mut self, module: &str, collection: &str, name: &str) -> StoreResult<bool> {
        self.table(module, collection)?;
        let sql_name: Option<String> = self
            .conn
            .query_row(
                "SELECT sql_name FROM graft_indexes WHERE module = ?1 AND collection = ?2 AND name = ?3",
                params![module, collection, name],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)?;
        let Some(sql_name) = sql_name else {
            return Ok(false);
        };
        self.conn
            .execute_batch(&format!("DROP INDEX \"{sql_name}\""))
            .map_err(backend)?;
        self.conn
            .execute(
                "DELETE FROM graft_indexes WHERE module = ?1 AND collection = ?2 AND name = ?3",
                params![module, collection, name],
            )
            .map_err(backend)?;
        Ok(true)
    }

    fn list_indexes(&mut self, module: &str, collection: &str) -> StoreResult<Vec<IndexSpec>> {
        self.table(module, collection)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, field, is_unique, case_insensitive FROM graft_indexes
                 WHERE module = ?1 AND collection = ?2 ORDER BY name",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![module, collection], |row| {
                Ok(IndexSpec {
                    name: row.get(0)?,
                    field: row.get(1)?,
                    unique: row.get(2)?,
                    case_insensitive: row.get(3)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn get(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<Option<String>> {
        let table = self.table(module, collection)?;
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT json(doc) FROM \"{table}\" WHERE id = ?1"))
            .map_err(backend)?;
        stmt.query_row([id], |row| row.get(0))
            .optional()
            .map_err(backend)
    }

    fn put(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<WriteEffect> {
        check_id(id)?;
        check_document(id, doc)?;
        let table = self.table(module, collection)?;
        // An update first: a migration mostly rewrites records that exist,
        // and this way that costs one statement. Documents are compared in
        // their binary form: one that differs only in spacing is unchanged.
        let updated = self
            .conn
            .prepare_cached(&format!(
                "UPDATE \"{table}\" SET doc = jsonb(?2) WHERE id = ?1 AND doc IS NOT jsonb(?2)"
            ))
            .and_then(|mut stmt| stmt.execute(params![id, doc]))
            .map_err(|e| self.write_error(e, module, collection, id))?;
        if updated == 1 {
            return Ok(WriteEffect::Replaced);
        }
        if self.insert_new(&table, module, collection, id, doc)? {
            Ok(WriteEffect::Inserted)
        } else {
            Ok(WriteEffect::Unchanged)
        }
    }

    fn put_batch(
        &mut self,
        module: &str,
        collection: &str,
        records: &[(String, String)],
    ) -> StoreResult<Vec<WriteEffect>> {
        // All or nothing through a savepoint: SQLite keeps the original of
        // each page the batch touches (B1's native leg pays about 11% for
        // it, the plugin leg nothing measurable), and a failed batch goes
        // back to it.
        self.conn
            .execute_batch("SAVEPOINT graft_batch")
            .map_err(backend)?;
        let written: StoreResult<Vec<_>> = records
            .iter()
            .map(|(id, doc)| self.put(module, collection, id, doc))
            .collect();
        match written {
            Ok(effects) => {
                self.conn
                    .execute_batch("RELEASE graft_batch")
                    .map_err(backend)?;
                Ok(effects)
            }
            Err(e) => {
                // Fails only where SQLite already rolled the transaction
                // back (an interrupt); the write's own error says more.
                self.conn
                    .execute_batch("ROLLBACK TO graft_batch; RELEASE graft_batch")
                    .ok();
                Err(e)
            }
        }
    }

    fn insert_if_absent(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<bool> {
        check_id(id)?;
        check_document(id, doc)?;
        let table = self.table(module, collection)?;
        self.insert_new(&table, module, collection, id, doc)
    }

    fn delete(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<bool> {
        let table = self.table(module, collection)?;
        let deleted = self
            .conn
            .prepare_cached(&format!("DELETE FROM \"{table}\" WHERE id = ?1"))
            .and_then(|mut stmt| stmt.execute([id]))
            .map_err(backend)?;
        Ok(deleted == 1)
    }

    fn scan(
        &mut self,
        module: &str,
        collection: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let table = self.table(module, collection)?;
        // Two statements, not `?1 IS NULL OR id > ?1`: that form cannot use
        // the primary key, and every page would scan and sort the table.
        let mut stmt = match after {
            Some(_) => self.conn.prepare_cached(&format!(
                "SELECT id, json(doc) FROM \"{table}\" WHERE id > ?1 ORDER BY id LIMIT ?2"
            )),
            None => self.conn.prepare_cached(&format!(
                "SELECT id, json(doc) FROM \"{table}\" ORDER BY id LIMIT ?1"
            )),
        }
        .map_err(backend)?;
        let row = |row: &rusqlite::Row| Ok((row.get(0)?, row.get(1)?));
        let rows = match after {
            Some(after) => stmt.query_map(params![after, limit], row),
            None => stmt.query_map(params![limit], row),
        }
        .map_err(backend)?;
        page_by_bytes(rows, backend)
    }

    fn count(&mut self, module: &str, collection: &str) -> StoreResult<u64> {
        let table = self.table(module, collection)?;
        self.conn
            .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |row| {
                row.get(0)
            })
            .map_err(backend)
    }

    fn update_all(
        &mut self,
        module: &str,
        collection: &str,
        change: &FieldChange,
    ) -> StoreResult<u64> {
        check_change(change)?;
        let table = self.table(module, collection)?;
        let (sql, value) = match change {
            FieldChange::SetDefault { field, value } => {
                let path = json_path(field);
                (
                    format!("UPDATE \"{table}\" SET doc = jsonb_set(doc, '{path}', json(?1)) WHERE json_type(doc, '{path}') IS NULL"),
                    Some(value),
                )
            }
            FieldChange::Set { field, value } => {
                let path = json_path(field);
                (
                    format!(
                        "UPDATE \"{table}\" SET doc = jsonb_set(doc, '{path}', json(?1))
                         WHERE doc IS NOT jsonb_set(doc, '{path}', json(?1))"
                    ),
                    Some(value),
                )
            }
            FieldChange::Remove { field } => {
                let path = json_path(field);
                (
                    format!("UPDATE \"{table}\" SET doc = jsonb_remove(doc, '{path}') WHERE json_type(doc, '{path}') IS NOT NULL"),
                    None,
                )
            }
            FieldChange::Rename { from, to } => {
                let (from, to) = (json_path(from), json_path(to));
                (
                    format!(
                        "UPDATE \"{table}\" SET doc = jsonb_remove(jsonb_set(doc, '{to}', doc -> '{from}'), '{from}')
                         WHERE json_type(doc, '{from}') IS NOT NULL"
                    ),
                    None,
                )
            }
        };
        let changed = match value {
            Some(value) => self.conn.execute(&sql, [value]),
            None => self.conn.execute(&sql, []),
        }
        .map_err(|e| self.write_error(e, module, collection, "(set-based update)"))?;
        Ok(changed as u64)
    }

    fn modules(&mut self) -> StoreResult<Vec<EnabledModule>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, module_id, enabled, updated_at, descriptor FROM graft_modules ORDER BY name")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(EnabledModule {
                    name: row.get(0)?,
                    module_id: row.get(1)?,
                    enabled: row.get(2)?,
                    updated_at: row.get(3)?,
                    descriptor: row.get(4)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn set_module(&mut self, m: &EnabledModule) -> StoreResult<()> {
        self.conn
            .execute(
                "INSERT INTO graft_modules (name, module_id, enabled, updated_at, descriptor) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET module_id = ?2, enabled = ?3, updated_at = ?4, descriptor = ?5",
                params![m.name, m.module_id, m.enabled, m.updated_at, m.descriptor],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn remove_module(&mut self, name: &str) -> StoreResult<()> {
        self.conn
            .execute("DELETE FROM graft_modules WHERE name = ?1", [name])
            .map_err(backend)?;
        Ok(())
    }

    fn save_job(
        &mut self,
        job: &JobRecord,
        changes: &[crate::changelog::CollectionChanges],
    ) -> StoreResult<()> {
        self.conn
            .execute(
                "INSERT INTO graft_jobs (job_id, started_at, finished_at, commit_mode, plan) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (job_id) DO UPDATE SET finished_at = ?3, plan = ?5",
                params![job.job_id, job.started_at, job.finished_at, job.commit, job.plan.to_string()],
            )
            .map_err(backend)?;
        for c in changes {
            let schema =
                serde_json::to_string(&c.schema).map_err(|e| StoreError::Backend(e.to_string()))?;
            let samples = serde_json::to_string(&c.samples)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let overlay = serde_json::to_string(&c.overlay)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            self.conn
                .execute(
                    "INSERT INTO graft_changes (job_id, module, collection, inserted, updated, deleted, schema, samples, overlay, digest)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![job.job_id, c.module, c.collection, c.inserted, c.updated, c.deleted, schema, samples, overlay, c.digest],
                )
                .map_err(backend)?;
        }
        Ok(())
    }

    fn jobs(&mut self) -> StoreResult<Vec<JobRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT job_id, started_at, finished_at, commit_mode, plan FROM graft_jobs ORDER BY started_at, job_id")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |row| {
                let plan: String = row.get(4)?;
                Ok(JobRecord {
                    job_id: row.get(0)?,
                    started_at: row.get(1)?,
                    finished_at: row.get(2)?,
                    commit: row.get(3)?,
                    plan: serde_json::from_str(&plan).unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn changes(&mut self, job_id: &str) -> StoreResult<Vec<crate::changelog::CollectionChanges>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT module, collection, inserted, updated, deleted, schema, samples, overlay, digest FROM graft_changes
                 WHERE job_id = ?1 ORDER BY module, collection",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([job_id], |row| {
                let schema: String = row.get(5)?;
                let samples: String = row.get(6)?;
                let overlay: String = row.get(7)?;
                Ok(crate::changelog::CollectionChanges {
                    module: row.get(0)?,
                    collection: row.get(1)?,
                    inserted: row.get(2)?,
                    updated: row.get(3)?,
                    deleted: row.get(4)?,
                    schema: serde_json::from_str(&schema).unwrap_or_default(),
                    samples: serde_json::from_str(&samples).unwrap_or_default(),
                    overlay: serde_json::from_str(&overlay).unwrap_or_default(),
                    digest: row.get(8)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn add_history(&mut self, e: &HistoryEntry) -> StoreResult<()> {
        self.conn
            .execute(
                "INSERT INTO graft_history (job_id, module_name, step, module_from, module_to, outcome, detail,
                    inserted, updated, deleted, duration_ms, plugin_sha256, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    e.job_id, e.module_name, e.step, e.module_from, e.module_to, e.outcome, e.detail,
                    e.inserted, e.updated, e.deleted, e.duration_ms, e.plugin_sha256, e.at
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn history(&mut self) -> StoreResult<Vec<HistoryEntry>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT job_id, module_name, step, module_from, module_to, outcome, detail,
                    inserted, updated, deleted, duration_ms, plugin_sha256, at
                 FROM graft_history ORDER BY seq",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(HistoryEntry {
                    job_id: row.get(0)?,
                    module_name: row.get(1)?,
                    step: row.get(2)?,
                    module_from: row.get(3)?,
                    module_to: row.get(4)?,
                    outcome: row.get(5)?,
                    detail: row.get(6)?,
                    inserted: row.get(7)?,
                    updated: row.get(8)?,
                    deleted: row.get(9)?,
                    duration_ms: row.get(10)?,
                    plugin_sha256: row.get(11)?,
                    at: row.get(12)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn get_base(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
    ) -> StoreResult<Option<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc FROM graft_base WHERE module = ?1 AND collection = ?2 AND record_id = ?3")
            .map_err(backend)?;
        stmt.query_row(params![module, collection, id], |row| row.get(0))
            .optional()
            .map_err(backend)
    }

    fn put_base(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
        release: &str,
        kind: &str,
    ) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO graft_base (module, collection, record_id, doc, sha256, release, kind)
                 VALUES (?1, ?2, ?3, ?4, ?7, ?5, ?6)
                 ON CONFLICT (module, collection, record_id) DO UPDATE SET doc = ?4, sha256 = ?7, release = ?5, kind = ?6",
            )
            .and_then(|mut stmt| {
                let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(doc.as_bytes()));
                stmt.execute(params![module, collection, id, doc, release, kind, sha256])
            })
            .map_err(backend)?;
        Ok(())
    }

    fn delete_base(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "DELETE FROM graft_base WHERE module = ?1 AND collection = ?2 AND record_id = ?3",
            )
            .and_then(|mut stmt| stmt.execute(params![module, collection, id]))
            .map_err(backend)?;
        Ok(())
    }

    fn base_records(
        &mut self,
        module: &str,
        collection: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT record_id, doc FROM graft_base WHERE module = ?1 AND collection = ?2 ORDER BY record_id",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![module, collection], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn base_collections(&mut self, module: &str) -> StoreResult<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT collection, kind FROM graft_base WHERE module = ?1 ORDER BY collection, kind",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([module], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn dump(&mut self) -> StoreResult<Dump> {
        let registered: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT module, collection FROM graft_collections ORDER BY module, collection",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        let mut collections: BTreeMap<String, BTreeMap<String, CollectionDump>> = BTreeMap::new();
        for (module, collection) in registered {
            let indexes = self.list_indexes(&module, &collection)?;
            let mut records = BTreeMap::new();
            let mut after: Option<String> = None;
            loop {
                let page = self.scan(&module, &collection, after.as_deref(), 10_000)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                for (id, doc) in page {
                    let value = serde_json::from_str(&doc)
                        .map_err(|e| StoreError::InvalidDocument(e.to_string()))?;
                    records.insert(id, value);
                }
            }
            collections
                .entry(module)
                .or_default()
                .insert(collection, CollectionDump { indexes, records });
        }
        let mut bases: BTreeMap<String, BTreeMap<String, BTreeMap<String, serde_json::Value>>> =
            BTreeMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT module, collection, record_id, doc FROM graft_base ORDER BY module, collection, record_id")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(backend)?;
            for row in rows {
                let (module, collection, id, doc) = row.map_err(backend)?;
                let value = serde_json::from_str(&doc)
                    .map_err(|e| StoreError::InvalidDocument(e.to_string()))?;
                bases
                    .entry(module)
                    .or_default()
                    .entry(collection)
                    .or_default()
                    .insert(id, value);
            }
        }
        Ok(Dump {
            collections,
            modules: self.modules()?,
            history: self.history()?,
            jobs: self.jobs()?,
            bases,
        })
    }
}
