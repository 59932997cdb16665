//! The production backend: PostgreSQL, in FOLIO's own layout.
//!
//! - A module's data lives in the schema `<tenant>_<module>` (with `-`
//!   turned into `_`, e.g. `diku_mod_users`), a table per collection named
//!   after it (`material-types` -> `material_types`) with FOLIO's two
//!   columns: `id` and `jsonb`. The id column is `uuid` while every id is a
//!   UUID (FOLIO's ids are); the first record with another id turns it into
//!   `text`, inside the same transaction.
//! - Indexes are expression indexes on `jsonb->>'field'`, on
//!   `lower(jsonb->>'field')` where case-insensitive, as FOLIO modules
//!   declare them.
//! - The runner's metadata lives in the schema `graft`, keyed by tenant.
//! - PostgreSQL has transactional DDL, so a module's whole install, schema
//!   changes included, is one transaction. A failed write must not abort
//!   that transaction (a plugin may catch a unique violation and go on, as
//!   the overlay does), so writes inside a transaction run under a
//!   savepoint.

use super::pool::{Connection, TIMEOUT_UNKNOWN};
use super::*;
use ::postgres as pg;
use pg::error::SqlState;
use pg::{Client, NoTls};
use std::collections::HashMap;
use std::ops::DerefMut;

const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS graft;
CREATE TABLE IF NOT EXISTS graft.tenants (
    tenant text PRIMARY KEY,
    created_at text NOT NULL
);
CREATE TABLE IF NOT EXISTS graft.modules (
    tenant text NOT NULL,
    name text NOT NULL,
    module_id text NOT NULL,
    enabled boolean NOT NULL,
    updated_at text NOT NULL,
    descriptor text,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS graft.base (
    tenant text NOT NULL,
    module text NOT NULL,
    collection text NOT NULL,
    record_id text NOT NULL,
    doc text NOT NULL,
    sha256 text NOT NULL,
    release text NOT NULL,
    kind text NOT NULL,
    PRIMARY KEY (tenant, module, collection, record_id)
);
CREATE TABLE IF NOT EXISTS graft.jobs (
    tenant text NOT NULL,
    job_id text NOT NULL,
    started_at text NOT NULL,
    finished_at text NOT NULL,
    commit_mode text NOT NULL,
    plan jsonb NOT NULL,
    PRIMARY KEY (tenant, job_id)
);
CREATE TABLE IF NOT EXISTS graft.changes (
    tenant text NOT NULL,
    job_id text NOT NULL,
    module text NOT NULL,
    collection text NOT NULL,
    inserted bigint NOT NULL,
    updated bigint NOT NULL,
    deleted bigint NOT NULL,
    schema text NOT NULL,
    samples text NOT NULL,
    overlay text NOT NULL,
    digest text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, job_id, module, collection)
);
CREATE TABLE IF NOT EXISTS graft.history (
    seq bigserial PRIMARY KEY,
    tenant text NOT NULL,
    job_id text NOT NULL,
    module_name text NOT NULL,
    step text NOT NULL,
    module_from text,
    module_to text NOT NULL,
    outcome text NOT NULL,
    detail text,
    inserted bigint NOT NULL,
    updated bigint NOT NULL,
    deleted bigint NOT NULL,
    duration_ms bigint NOT NULL,
    plugin_sha256 text NOT NULL,
    at text NOT NULL
);
CREATE INDEX IF NOT EXISTS history_tenant ON graft.history (tenant, seq);
CREATE TABLE IF NOT EXISTS graft.collections (
    tenant text NOT NULL,
    module text NOT NULL,
    collection text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    PRIMARY KEY (tenant, module, collection),
    UNIQUE (schema_name, table_name)
);
CREATE TABLE IF NOT EXISTS graft.indexes (
    tenant text NOT NULL,
    module text NOT NULL,
    collection text NOT NULL,
    name text NOT NULL,
    field text NOT NULL,
    is_unique boolean NOT NULL,
    case_insensitive boolean NOT NULL,
    sql_name text NOT NULL,
    PRIMARY KEY (tenant, module, collection, name)
);
-- The tenant job queue of `graft worker` (see `queue`).
CREATE TABLE IF NOT EXISTS graft.queue (
    seq bigserial PRIMARY KEY,
    batch text NOT NULL,
    tenant text NOT NULL,
    job jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    worker text,
    heartbeat timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    job_id text,
    result jsonb
);
CREATE INDEX IF NOT EXISTS queue_state ON graft.queue (state, seq);
";

/// PostgreSQL's limit on identifiers, in bytes.
const MAX_IDENT: usize = 63;

/// A collection's table, as the statements need it.
#[derive(Debug, Clone)]
struct Table {
    schema: String,
    name: String,
    /// `id` is of type uuid (else text).
    uuid_ids: bool,
}

impl Table {
    fn qualified(&self) -> String {
        format!("\"{}\".\"{}\"", self.schema, self.name)
    }

    /// How a text parameter becomes the id column's type.
    fn id_param(&self, n: u32) -> String {
        if self.uuid_ids {
            format!("${n}::text::uuid")
        } else {
            format!("${n}::text")
        }
    }
}

pub struct PostgresStore {
    /// A connection of the process's pool, with the statements prepared on
    /// it (by their text: a statement prepared once costs one round trip
    /// less on every call after; forgotten on rollback, which may drop the
    /// tables they read).
    client: Connection,
    tenant: String,
    /// (module, collection) -> table; cleared on rollback.
    tables: HashMap<(String, String), Table>,
}

/// Connect and make sure the `graft` schema exists (checked once per
/// database and process: a runner opens a connection per tenant job).
pub fn connect(url: &str) -> anyhow::Result<Client> {
    static READY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut client = Client::connect(url, NoTls)
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {}: {e}", redact(url)))?;
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if !ready.iter().any(|u| u == url) {
        // Two runners starting at once must not race on CREATE ... IF NOT EXISTS.
        client.batch_execute("SELECT pg_advisory_lock(7234001)")?;
        let created = client.batch_execute(SCHEMA);
        client.batch_execute("SELECT pg_advisory_unlock(7234001)")?;
        created.map_err(|e| anyhow::anyhow!("cannot create the graft schema: {e}"))?;
        ready.push(url.to_string());
    }
    Ok(client)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A database of its own for a test or a benchmark, made on the server
/// `server_url` points at and dropped when this is dropped.
pub struct ScratchDatabase {
    server_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl ScratchDatabase {
    pub fn create(server_url: &str) -> anyhow::Result<ScratchDatabase> {
        Self::make(server_url, None)
    }

    /// A copy of another scratch database (PostgreSQL copies its files:
    /// fast, and nobody may be connected to the original meanwhile).
    pub fn copy_of(template: &ScratchDatabase) -> anyhow::Result<ScratchDatabase> {
        super::pool::close_idle(&template.url);
        Self::make(&template.server_url, Some(&template.name))
    }

    fn make(server_url: &str, template: Option<&str>) -> anyhow::Result<ScratchDatabase> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "graft_scratch_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let mut client = Client::connect(server_url, NoTls).map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact(server_url)
            )
        })?;
        let template = template
            .map(|t| format!(" TEMPLATE \"{t}\""))
            .unwrap_or_default();
        client.batch_execute(&format!("CREATE DATABASE \"{name}\"{template}"))?;
        // Replace the database part of the URL (the path after the host).
        let url = match server_url.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, query) = match rest.find('/') {
                    Some(slash) => {
                        let path = &rest[slash..];
                        (
                            &rest[..slash],
                            path.find('?').map(|q| &path[q..]).unwrap_or(""),
                        )
                    }
                    None => (rest, ""),
                };
                format!("{scheme}://{authority}/{name}{query}")
            }
            None => anyhow::bail!("{}: not a postgres:// URL", redact(server_url)),
        };
        Ok(ScratchDatabase {
            server_url: server_url.to_string(),
            name,
            url,
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        super::pool::close_idle(&self.url);
        if let Ok(mut client) = Client::connect(&self.server_url, NoTls) {
            client
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .ok();
        }
    }
}

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

    fn with(client: Connection, tenant: &str) -> Self {
        PostgresStore {
            client,
            tenant: tenant.to_string(),
            tables: HashMap::new(),
        }
    }

    /// The FOLIO schema of a module of this tenant, `<tenant>_<module>`, if
    /// no other tenant's or module's collections are in it: two pairs may
    /// map to one schema (`diku_mod` + `users` and `diku` + `mod-users`, or
    /// `mod-Users` and `mod-users`), and a FOLIO module or tool reading the
    /// schema must never find another's data there.
    fn module_schema(&mut self, module: &str) -> StoreResult<String> {
        let schema = ident(&format!("{}_{module}", self.tenant));
        let owner = self
            .client
            .query_opt(
                "SELECT tenant, module FROM graft.collections
                 WHERE schema_name = $1 AND (tenant <> $2 OR module <> $3) LIMIT 1",
                &[&schema, &self.tenant, &module],
            )
            .map_err(backend)?;
        if let Some(owner) = owner {
            let (tenant, other): (String, String) = (owner.get(0), owner.get(1));
            return Err(StoreError::InvalidName(format!(
                "schema {schema} of tenant {} module {module} holds tenant {tenant} module {other} \
                 already: two tenants or modules may not share a FOLIO schema; rename one of them",
                self.tenant
            )));
        }
        Ok(schema)
    }

    fn table(&mut self, module: &str, collection: &str) -> StoreResult<Table> {
        self.find_table(module, collection)?
            .ok_or_else(|| StoreError::NoSuchCollection(collection.to_string()))
    }

    fn find_table(&mut self, module: &str, collection: &str) -> StoreResult<Option<Table>> {
        let key = (module.to_string(), collection.to_string());
        if let Some(table) = self.tables.get(&key) {
            return Ok(Some(table.clone()));
        }
        let row = self
            .client
            .query_opt(
                // pg_catalog, not information_schema: its views read every
                // table of the database, and a database holds many tenants.
                "SELECT c.schema_name, c.table_name, a.atttypid = 'uuid'::regtype
                 FROM graft.collections c
                 JOIN pg_attribute a
                   ON a.attrelid = format('%I.%I', c.schema_name, c.table_name)::regclass
                  AND a.attname = 'id'
                 WHERE c.tenant = $1 AND c.module = $2 AND c.collection = $3",
                &[&self.tenant, &module, &collection],
            )
            .map_err(backend)?;
        let table = row.map(|row| Table {
            schema: row.get(0),
            name: row.get(1),
            uuid_ids: row.get(2),
        });
        if let Some(table) = &table {
            self.tables.insert(key, table.clone());
        }
        Ok(table)
    }

    /// The session's `statement_timeout` as the server has it, in whole
    /// seconds (rounded).
    #[cfg(test)]
    pub(crate) fn statement_timeout_secs(&mut self) -> i64 {
        self.client
            .query_one(
                "SELECT (setting::bigint + 500) / 1000 FROM pg_settings WHERE name = 'statement_timeout'",
                &[],
            )
            .unwrap()
            .get(0)
    }

    fn statement(&mut self, sql: &str) -> Result<pg::Statement, pg::Error> {
        self.client.statement(sql)
    }

    /// Run a write so that its failure leaves the transaction usable: a
    /// savepoint is kept open behind the last successful write, moved on
    /// after each (one round trip), and rolled back to on a failure.
    fn guarded<T>(
        &mut self,
        write: impl FnOnce(&mut Client) -> Result<T, pg::Error>,
    ) -> Result<T, pg::Error> {
        if !self.client.in_transaction {
            return write(&mut self.client);
        }
        const MOVE: &str = "RELEASE SAVEPOINT graft_write; SAVEPOINT graft_write";
        if self.client.unsaved {
            // What ran since the savepoint (a table made, its id column
            // turned to text, metadata) stays whatever this write does.
            self.client.deref_mut().batch_execute(MOVE)?;
            self.client.unsaved = false;
        }
        match write(&mut self.client) {
            Ok(value) => {
                self.client.deref_mut().batch_execute(MOVE)?;
                Ok(value)
            }
            Err(e) => {
                self.client
                    .batch_execute("ROLLBACK TO SAVEPOINT graft_write")
                    .ok();
                // Undoes a `SET statement_timeout` made since the savepoint.
                self.client.timeout_ms = TIMEOUT_UNKNOWN;
                Err(e)
            }
        }
    }

    /// A record whose id is no UUID arrives in a uuid-keyed table: the
    /// column becomes text (transactional, like everything else).
    fn accept_id(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<Table> {
        check_id(id)?;
        let table = self.table(module, collection)?;
        if !table.uuid_ids || is_uuid(id) {
            return Ok(table);
        }
        self.client
            .batch_execute(&format!(
                "ALTER TABLE {} ALTER COLUMN id TYPE text",
                table.qualified()
            ))
            .map_err(backend)?;
        let table = Table {
            uuid_ids: false,
            ..table
        };
        self.tables
            .insert((module.into(), collection.into()), table.clone());
        Ok(table)
    }

    /// Map a failed write to the contract's error, naming the index by the
    /// name the module gave it.
    fn write_error(
        &mut self,
        e: pg::Error,
        module: &str,
        collection: &str,
        id: &str,
    ) -> StoreError {
        if let Some(db) = e.as_db_error() {
            if *db.code() == SqlState::UNIQUE_VIOLATION {
                let sql_name = db.constraint().unwrap_or_default().to_string();
                let index = self
                    .client
                    .query_opt(
                        "SELECT name FROM graft.indexes WHERE tenant = $1 AND module = $2 AND sql_name = $3",
                        &[&self.tenant, &module, &sql_name],
                    )
                    .ok()
                    .flatten()
                    .map(|row| row.get::<_, String>(0))
                    .unwrap_or(sql_name);
                return StoreError::UniqueViolation {
                    collection: collection.to_string(),
                    index,
                    record_id: id.to_string(),
                };
            }
            if *db.code() == SqlState::CHECK_VIOLATION {
                return StoreError::InvalidDocument(format!(
                    "record {id}: the document is not a JSON object"
                ));
            }
            if *db.code() == SqlState::INVALID_TEXT_REPRESENTATION {
                return StoreError::InvalidDocument(format!("record {id}: {}", db.message()));
            }
        }
        backend(e)
    }

    /// A batch record by record, all or nothing (under one savepoint).
    fn put_one_by_one(
        &mut self,
        table: &Table,
        module: &str,
        collection: &str,
        records: &[(String, String)],
    ) -> StoreResult<Vec<WriteEffect>> {
        let statement = self.statement(&upsert_sql(table)).map_err(backend)?;
        let mut at = 0;
        let written = self.guarded(|client| {
            let mut effects = Vec::with_capacity(records.len());
            for (i, (id, doc)) in records.iter().enumerate() {
                at = i;
                let rows = client.query(&statement, &[id, doc])?;
                effects.push(upsert_effect(rows.first().map(|row| row.get(0))));
            }
            Ok(effects)
        });
        written.map_err(|e| self.write_error(e, module, collection, &records[at].0))
    }

    fn insert(&mut self, table: &Table, id: &str, doc: &str) -> Result<bool, pg::Error> {
        let sql = format!(
            "INSERT INTO {} (id, jsonb) VALUES ({}, $2::text::jsonb) ON CONFLICT (id) DO NOTHING",
            table.qualified(),
            table.id_param(1)
        );
        let statement = self.statement(&sql)?;
        self.guarded(|client| client.execute(&statement, &[&id, &doc]))
            .map(|n| n == 1)
    }
}

/// An existing table registered as a collection by `adopt_table`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdoptedTable {
    pub collection: String,
    pub table: String,
    pub records: u64,
    /// Indexes graft can read (on `jsonb->>'field'` paths, `lower(...)`).
    pub indexes: Vec<IndexSpec>,
    /// Index definitions it cannot (other functions, such as FOLIO's
    /// `f_unaccent`): they stay in the database, unknown to plugins.
    pub unread_indexes: Vec<String>,
}

impl PostgresStore {
    /// The tables of a module's schema (`<tenant>_<module>`), each with
    /// whether it has FOLIO's `id` (uuid or text) and `jsonb` columns.
    pub fn schema_tables(&mut self, module: &str) -> StoreResult<(String, Vec<(String, bool)>)> {
        let schema = self.module_schema(module)?;
        let rows = self
            .client
            .query(
                "SELECT t.table_name::text,
                        bool_or(c.column_name = 'id' AND c.data_type IN ('uuid', 'text'))
                        AND bool_or(c.column_name = 'jsonb' AND c.data_type = 'jsonb')
                 FROM information_schema.tables t
                 JOIN information_schema.columns c
                   ON c.table_schema = t.table_schema AND c.table_name = t.table_name
                 WHERE t.table_schema = $1 AND t.table_type = 'BASE TABLE'
                 GROUP BY t.table_name ORDER BY t.table_name",
                &[&schema],
            )
            .map_err(backend)?;
        Ok((
            schema,
            rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
        ))
    }

    /// Register an existing table of the module's schema as a collection,
    /// with the indexes on it that graft can read.
    pub fn adopt_table(
        &mut self,
        module: &str,
        collection: &str,
        table: &str,
    ) -> StoreResult<AdoptedTable> {
        check_name("collection", collection)?;
        if self.find_table(module, collection)?.is_some() {
            return Err(StoreError::InvalidName(format!(
                "collection {collection} of {module} is registered already"
            )));
        }
        let schema = self.module_schema(module)?;
        self.client
            .execute(
                "INSERT INTO graft.collections (tenant, module, collection, schema_name, table_name)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&self.tenant, &module, &collection, &schema, &table],
            )
            .map_err(backend)?;
        let definitions: Vec<(String, String)> = self
            .client
            .query(
                "SELECT indexname::text, indexdef FROM pg_indexes
                 WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname",
                &[&schema, &table],
            )
            .map_err(backend)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let mut indexes = Vec::new();
        let mut unread_indexes = Vec::new();
        for (name, definition) in definitions {
            if definition.ends_with("(id)") {
                continue; // the primary key
            }
            match read_index(&name, &definition) {
                Some(spec) => {
                    self.client
                        .execute(
                            "INSERT INTO graft.indexes (tenant, module, collection, name, field, is_unique, case_insensitive, sql_name)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $4)",
                            &[&self.tenant, &module, &collection, &spec.name, &spec.field, &spec.unique, &spec.case_insensitive],
                        )
                        .map_err(backend)?;
                    indexes.push(spec);
                }
                None => unread_indexes.push(definition),
            }
        }
        let records = self.count(module, collection)?;
        Ok(AdoptedTable {
            collection: collection.to_string(),
            table: table.to_string(),
            records,
            indexes,
            unread_indexes,
        })
    }
}

/// An index graft can use from its definition: btree expressions that are
/// only `jsonb` paths, each optionally in `lower(...)` (all or none).
fn read_index(name: &str, definition: &str) -> Option<IndexSpec> {
    let unique = definition.starts_with("CREATE UNIQUE INDEX");
    let start = definition.find("USING btree (")? + "USING btree (".len();
    let body = definition[start..].strip_suffix(')')?;
    let mut fields = Vec::new();
    let mut lowered = Vec::new();
    for part in split_top_level(body) {
        let part = part.trim();
        let (inner, lower) = match part.strip_prefix("lower(") {
            Some(rest) => (rest.strip_suffix(')')?, true),
            None => (part, false),
        };
        // Only parentheses, `jsonb`, arrows and quoted names may remain.
        let mut path = Vec::new();
        let mut rest = inner.replace(['(', ')'], "");
        rest = rest.trim().strip_prefix("jsonb")?.to_string();
        while !rest.trim().is_empty() {
            let trimmed = rest.trim_start();
            let after_arrow = trimmed
                .strip_prefix("->>")
                .or_else(|| trimmed.strip_prefix("->"))?
                .trim_start();
            let quoted = after_arrow.strip_prefix('\'')?;
            let end = quoted.find('\'')?;
            path.push(quoted[..end].to_string());
            rest = quoted[end + 1..].trim_start_matches("::text").to_string();
        }
        if path.is_empty() {
            return None;
        }
        fields.push(path.join("."));
        lowered.push(lower);
    }
    if fields.is_empty() || lowered.iter().any(|l| *l != lowered[0]) {
        return None;
    }
    Some(IndexSpec {
        name: name.to_string(),
        field: fields.join(","),
        unique,
        case_insensitive: lowered[0],
    })
}

/// Split on commas outside parentheses and quotes.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    let mut parts = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn backend(e: pg::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::QUERY_CANCELED {
            return StoreError::Backend(
                "interrupted: the plugin call ran past its deadline".into(),
            );
        }
        return StoreError::Backend(db.message().to_string());
    }
    StoreError::Backend(e.to_string())
}

/// Insert, or replace a different document, or do nothing (no row
/// returned). `xmax = 0` marks a fresh insert.
fn upsert_sql(table: &Table) -> String {
    format!(
        "INSERT INTO {} AS t (id, jsonb) VALUES ({}, $2::text::jsonb)
         ON CONFLICT (id) DO UPDATE SET jsonb = EXCLUDED.jsonb
         WHERE t.jsonb IS DISTINCT FROM EXCLUDED.jsonb
         RETURNING (xmax = 0)",
        table.qualified(),
        table.id_param(1)
    )
}

/// `upsert_sql` for a batch: ids in `$1` and documents in `$2` (text
/// arrays), inserted in order; returns each written record's position
/// (from 1) and whether it was inserted.
fn batch_sql(table: &Table) -> String {
    let id = if table.uuid_ids { "r.id::uuid" } else { "r.id" };
    format!(
        "WITH r AS (
             SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(id, doc, n)
         ), w AS (
             INSERT INTO {} AS t (id, jsonb) SELECT {id}, r.doc::jsonb FROM r ORDER BY r.n
             ON CONFLICT (id) DO UPDATE SET jsonb = EXCLUDED.jsonb
             WHERE t.jsonb IS DISTINCT FROM EXCLUDED.jsonb
             RETURNING t.id, (t.xmax = 0) AS inserted
         )
         SELECT r.n, w.inserted FROM w JOIN r ON w.id = {id}",
        table.qualified()
    )
}

/// What an upsert did, from the flag it returned (none: nothing).
fn upsert_effect(inserted: Option<bool>) -> WriteEffect {
    match inserted {
        None => WriteEffect::Unchanged,
        Some(true) => WriteEffect::Inserted,
        Some(false) => WriteEffect::Replaced,
    }
}

/// Errors of the data written (SQLSTATE classes 21, 22, 23), as opposed
/// to the server, the connection or a deadline.
fn is_about_a_record(e: &pg::Error) -> bool {
    e.code()
        .is_some_and(|code| matches!(&code.code()[..2], "21" | "22" | "23"))
}

fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A PostgreSQL identifier: `-` becomes `_`, and a name too long keeps its
/// start and gains a hash of the whole, so distinct names stay distinct.
fn ident(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if plain.len() <= MAX_IDENT {
        return plain;
    }
    let hash = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(name.as_bytes())[..4]);
    format!("{}_{hash}", &plain[..MAX_IDENT - 9])
}

/// `personal.email` -> `jsonb->'personal'->>'email'` (the path was checked
/// by `check_field`, so it holds no quote).
fn text_at(field: &str) -> String {
    let parts: Vec<&str> = field.split('.').collect();
    let mut expression = "jsonb".to_string();
    for (i, part) in parts.iter().enumerate() {
        let arrow = if i + 1 == parts.len() { "->>" } else { "->" };
        expression.push_str(&format!("{arrow}'{part}'"));
    }
    expression
}

/// `personal.email` -> `'{personal,email}'`, a path for `#>`, `jsonb_set`, `#-`.
fn path_array(field: &str) -> String {
    format!("'{{{}}}'", field.replace('.', ","))
}

/// The index's expressions on `jsonb` paths, as FOLIO declares them.
fn index_expression(spec: &IndexSpec) -> String {
    index_expressions(spec, |field| format!("({})", text_at(field)))
}

impl TenantStore for PostgresStore {
    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        // Every statement is bounded by what is left of the call. A `SET` is
        // a round trip, twice per plugin call, so it is sent only when the
        // timeout the session has would let a statement run more than a
        // second past the deadline, or cut one off at under 90% of it; and
        // a timeout is cleared after a call only when short (one of a few
        // minutes bounds nothing the runner does between calls).
        let current = self.client.timeout_ms;
        let millis = match deadline {
            Some(deadline) => {
                let left = deadline
                    .saturating_duration_since(std::time::Instant::now())
                    .as_millis()
                    .max(1) as u64;
                let fits = current != 0 && current <= left + 1000 && current >= left / 10 * 9;
                if fits && current != TIMEOUT_UNKNOWN {
                    return;
                }
                left
            }
            None if current == 0 || (current >= 60_000 && current != TIMEOUT_UNKNOWN) => return,
            None => 0,
        };
        let set = self
            .client
            .batch_execute(&format!("SET statement_timeout = {millis}"));
        self.client.timeout_ms = if set.is_ok() { millis } else { TIMEOUT_UNKNOWN };
    }

    fn begin(&mut self) -> StoreResult<()> {
        self.client
            .batch_execute("BEGIN; SAVEPOINT graft_write")
            .map_err(backend)?;
        self.client.in_transaction = true;
        Ok(())
    }

    fn commit(&mut self) -> StoreResult<()> {
        self.client.batch_execute("COMMIT").map_err(backend)?;
        self.client.in_transaction = false;
        Ok(())
    }

    fn rollback(&mut self) -> StoreResult<()> {
        self.tables.clear();
        self.client.forget_statements();
        if !self.client.in_transaction {
            return Ok(());
        }
        // Undoes a `SET statement_timeout` made inside the transaction.
        self.client.timeout_ms = TIMEOUT_UNKNOWN;
        self.client.batch_execute("ROLLBACK").map_err(backend)?;
        self.client.in_transaction = false;
        Ok(())
    }

    fn create_collection(&mut self, module: &str, collection: &str) -> StoreResult<bool> {
        check_name("collection", collection)?;
        if self.find_table(module, collection)?.is_some() {
            return Ok(false);
        }
        let schema = self.module_schema(module)?;
        // Two names may map to one identifier (`a-b`, `a_b`): number the later ones.
        let base = ident(collection);
        let mut name = base.clone();
        let mut n = 1;
        while self
            .client
            .query_opt(
                "SELECT 1 WHERE to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL",
                &[&schema, &name],
            )
            .map_err(backend)?
            .is_some()
        {
            n += 1;
            name = ident(&format!("{base}_{n}"));
        }
        let table = Table {
            schema: schema.clone(),
            name: name.clone(),
            uuid_ids: true,
        };
        self.client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
                 CREATE TABLE {} (
                     id uuid PRIMARY KEY,
                     jsonb jsonb NOT NULL CHECK (jsonb_typeof(jsonb) = 'object')
                 )",
                table.qualified()
            ))
            .map_err(backend)?;
        self.client
            .execute(
                "INSERT INTO graft.collections (tenant, module, collection, schema_name, table_name)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&self.tenant, &module, &collection, &schema, &name],
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
        self.client
            .batch_execute(&format!("DROP TABLE {}", table.qualified()))
            .map_err(backend)?;
        for metadata in ["indexes", "collections", "base"] {
            self.client
                .execute(
                    &format!(
                        "DELETE FROM graft.{metadata} WHERE tenant = $1 AND module = $2 AND collection = $3"
                    ),
                    &[&self.tenant, &module, &collection],
                )
                .map_err(backend)?;
        }
        self.tables
            .remove(&(module.to_string(), collection.to_string()));
        self.client.forget_statements();
        Ok(true)
    }

    fn list_collections(&mut self, module: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .client
            .query(
                "SELECT collection FROM graft.collections WHERE tenant = $1 AND module = $2 ORDER BY collection",
                &[&self.tenant, &module],
            )
            .map_err(backend)?
            .iter()
            .map(|row| row.get(0))
            .collect())
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
        let sql_name = ident(&format!("{}_{}_idx", table.name, spec.name));
        let unique = if spec.unique { "UNIQUE " } else { "" };
        let sql = format!(
            "CREATE {unique}INDEX \"{sql_name}\" ON {} ({})",
            table.qualified(),
            index_expression(spec)
        );
        let created = self.guarded(|client| client.batch_execute(&sql));
        if let Err(e) = created {
            if e.as_db_error().map(|db| db.code().clone()) == Some(SqlState::UNIQUE_VIOLATION) {
                return Err(StoreError::UniqueViolation {
                    collection: collection.to_string(),
                    index: spec.name.clone(),
                    record_id: String::new(),
                });
            }
            return Err(backend(e));
        }
        self.client
            .execute(
                "INSERT INTO graft.indexes (tenant, module, collection, name, field, is_unique, case_insensitive, sql_name)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&self.tenant, &module, &collection, &spec.name, &spec.field, &spec.unique, &spec.case_insensitive, &sql_name],
            )
            .map_err(backend)?;
        Ok(true)
    }

    fn drop_index(&mut self, module: &str, collection: &str, name: &str) -> StoreResult<bool> {
        let table = self.table(module, collection)?;
        let sql_name: Option<String> = self
            .client
            .query_opt(
                "SELECT sql_name FROM graft.indexes WHERE tenant = $1 AND module = $2 AND collection = $3 AND name = $4",
                &[&self.tenant, &module, &collection, &name],
            )
            .map_err(backend)?
            .map(|row| row.get(0));
        let Some(sql_name) = sql_name else {
            return Ok(false);
        };
        self.client
            .batch_execute(&format!("DROP INDEX \"{}\".\"{sql_name}\"", table.schema))
            .map_err(backend)?;
        self.client
            .execute(
                "DELETE FROM graft.indexes WHERE tenant = $1 AND module = $2 AND collection = $3 AND name = $4",
                &[&self.tenant, &module, &collection, &name],
            )
            .map_err(backend)?;
        Ok(true)
    }

    fn list_indexes(&mut self, module: &str, collection: &str) -> StoreResult<Vec<IndexSpec>> {
        self.table(module, collection)?;
        Ok(self
            .client
            .query(
                "SELECT name, field, is_unique, case_insensitive FROM graft.indexes
                 WHERE tenant = $1 AND module = $2 AND collection = $3 ORDER BY name",
                &[&self.tenant, &module, &collection],
            )
            .map_err(backend)?
            .iter()
            .map(|row| IndexSpec {
                name: row.get(0),
                field: row.get(1),
                unique: row.get(2),
                case_insensitive: row.get(3),
            })
            .collect())
    }

    fn get(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<Option<String>> {
        let table = self.table(module, collection)?;
        if table.uuid_ids && !is_uuid(id) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT jsonb::text FROM {} WHERE id = {}",
            table.qualified(),
            table.id_param(1)
        );
        Ok(self
            .client
            .query_opt(&sql, &[&id])
            .map_err(backend)?
            .map(|row| row.get(0)))
    }

    fn put(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<WriteEffect> {
        check_document(id, doc)?;
        let table = self.accept_id(module, collection, id)?;
        let statement = self
            .statement(&upsert_sql(&table))
            .map_err(|e| self.write_error(e, module, collection, id))?;
        let rows = self
            .guarded(|client| client.query(&statement, &[&id, &doc]))
            .map_err(|e| self.write_error(e, module, collection, id))?;
        Ok(upsert_effect(rows.first().map(|row| row.get(0))))
    }

    fn put_batch(
        &mut self,
        module: &str,
        collection: &str,
        records: &[(String, String)],
    ) -> StoreResult<Vec<WriteEffect>> {
        if !self.client.in_transaction {
            // All or nothing takes a transaction.
            self.begin()?;
            let written = self.put_batch(module, collection, records);
            match written {
                Ok(_) => self.commit()?,
                Err(_) => self.rollback()?,
            }
            return written;
        }
        // Ids are checked before anything is written; an id that is no
        // UUID turns the column into text first, as `put` would.
        let mut table = self.table(module, collection)?;
        // Documents too, with the check SQLite's backend makes: what one
        // backend takes, the other does, and every reader can read back.
        for (id, doc) in records {
            check_id(id)?;
            check_document(id, doc)?;
        }
        for (id, _) in records {
            if table.uuid_ids && !is_uuid(id) {
                table = self.accept_id(module, collection, id)?;
            }
        }
        // One statement (one round trip, one savepoint) for the batch:
        // two round trips and a subtransaction per record made B1-PG 1.7x
        // (200,000 users) to 3.4x (20,000) slower.
        let (ids, docs): (Vec<&str>, Vec<&str>) = records
            .iter()
            .map(|(id, doc)| (id.as_str(), doc.as_str()))
            .unzip();
        let statement = self
            .statement(&batch_sql(&table))
            .map_err(|e| self.write_error(e, module, collection, "(batch)"))?;
        match self.guarded(|client| client.query(&statement, &[&ids, &docs])) {
            Ok(rows) => {
                let mut effects = vec![WriteEffect::Unchanged; records.len()];
                for row in rows {
                    let n: i64 = row.get(0);
                    effects[n as usize - 1] = upsert_effect(Some(row.get(1)));
                }
                Ok(effects)
            }
            // Some record the statement could not take (a document that is
            // no JSON object, a unique violation, the same id twice):
            // record by record, which names the one at fault, or writes
            // them all when only the single statement objected (an id
            // twice is two writes in order).
            Err(e) if is_about_a_record(&e) => {
                self.put_one_by_one(&table, module, collection, records)
            }
            Err(e) => Err(self.write_error(e, module, collection, "(batch)")),
        }
    }

    fn insert_if_absent(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> StoreResult<bool> {
        check_document(id, doc)?;
        let table = self.accept_id(module, collection, id)?;
        self.insert(&table, id, doc)
            .map_err(|e| self.write_error(e, module, collection, id))
    }

    fn delete(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<bool> {
        let table = self.table(module, collection)?;
        if table.uuid_ids && !is_uuid(id) {
            return Ok(false);
        }
        let sql = format!(
            "DELETE FROM {} WHERE id = {}",
            table.qualified(),
            table.id_param(1)
        );
        Ok(self.client.execute(&sql, &[&id]).map_err(backend)? == 1)
    }

    fn scan(
        &mut self,
        module: &str,
        collection: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let table = self.table(module, collection)?;
        let limit = i64::from(limit);
        // uuid order is the order of the ids' lower-case text: pages agree
        // with SQLite's. Rows are read as they come, so a page cut by its
        // size never holds the rest.
        let rows = match after {
            Some(after) => {
                let after_id = if table.uuid_ids && is_uuid(after) {
                    "id > $1::text::uuid"
                } else {
                    "id::text > $1"
                };
                let sql = format!(
                    "SELECT id::text, jsonb::text FROM {} WHERE {after_id} ORDER BY id LIMIT $2",
                    table.qualified()
                );
                let params: [&(dyn pg::types::ToSql + Sync); 2] = [&after, &limit];
                self.client.query_raw(&sql, params)
            }
            None => {
                let sql = format!(
                    "SELECT id::text, jsonb::text FROM {} ORDER BY id LIMIT $1",
                    table.qualified()
                );
                let params: [&(dyn pg::types::ToSql + Sync); 1] = [&limit];
                self.client.query_raw(&sql, params)
            }
        }
        .map_err(backend)?;
        use pg::fallible_iterator::FallibleIterator as _;
        let rows = rows
            .iterator()
            .map(|row| row.and_then(|row| Ok((row.try_get(0)?, row.try_get(1)?))));
        page_by_bytes(rows, backend)
    }

    fn count(&mut self, module: &str, collection: &str) -> StoreResult<u64> {
        let table = self.table(module, collection)?;
        let count: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM {}", table.qualified()), &[])
            .map_err(backend)?
            .get(0);
        Ok(count as u64)
    }

    fn update_all(
        &mut self,
        module: &str,
        collection: &str,
        change: &FieldChange,
    ) -> StoreResult<u64> {
        check_change(change)?;
        let table = self.table(module, collection)?.qualified();
        let (sql, value) = match change {
            FieldChange::SetDefault { field, value } => {
                let path = path_array(field);
                (
                    format!("UPDATE {table} SET jsonb = jsonb_set(jsonb, {path}, $1::text::jsonb, true) WHERE jsonb #> {path} IS NULL"),
                    Some(value),
                )
            }
            FieldChange::Set { field, value } => {
                let path = path_array(field);
                (
                    format!("UPDATE {table} SET jsonb = jsonb_set(jsonb, {path}, $1::text::jsonb, true)
                             WHERE jsonb IS DISTINCT FROM jsonb_set(jsonb, {path}, $1::text::jsonb, true)"),
                    Some(value),
                )
            }
            FieldChange::Remove { field } => {
                let path = path_array(field);
                (
                    format!("UPDATE {table} SET jsonb = jsonb #- {path} WHERE jsonb #> {path} IS NOT NULL"),
                    None,
                )
            }
            FieldChange::Rename { from, to } => {
                let (from, to) = (path_array(from), path_array(to));
                (
                    format!("UPDATE {table} SET jsonb = jsonb_set(jsonb #- {from}, {to}, jsonb #> {from}, true)
                             WHERE jsonb #> {from} IS NOT NULL"),
                    None,
                )
            }
        };
        let changed = self
            .guarded(|client| match value {
                Some(value) => client.execute(&sql, &[value]),
                None => client.execute(&sql, &[]),
            })
            .map_err(|e| self.write_error(e, module, collection, "(set-based update)"))?;
        Ok(changed)
    }

    fn modules(&mut self) -> StoreResult<Vec<EnabledModule>> {
        Ok(self
            .client
            .query(
                "SELECT name, module_id, enabled, updated_at, descriptor FROM graft.modules
                 WHERE tenant = $1 ORDER BY name",
                &[&self.tenant],
            )
            .map_err(backend)?
            .iter()
            .map(|row| EnabledModule {
                name: row.get(0),
                module_id: row.get(1),
                enabled: row.get(2),
                updated_at: row.get(3),
                descriptor: row.get(4),
            })
            .collect())
    }

    fn set_module(&mut self, m: &EnabledModule) -> StoreResult<()> {
        self.client
            .execute(
                "INSERT INTO graft.modules (tenant, name, module_id, enabled, updated_at, descriptor)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant, name) DO UPDATE SET module_id = $3, enabled = $4, updated_at = $5, descriptor = $6",
                &[&self.tenant, &m.name, &m.module_id, &m.enabled, &m.updated_at, &m.descriptor],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn remove_module(&mut self, name: &str) -> StoreResult<()> {
        self.client
            .execute(
                "DELETE FROM graft.modules WHERE tenant = $1 AND name = $2",
                &[&self.tenant, &name],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn add_history(&mut self, e: &HistoryEntry) -> StoreResult<()> {
        let counts = [
            e.inserted as i64,
            e.updated as i64,
            e.deleted as i64,
            e.duration_ms as i64,
        ];
        self.client
            .execute(
                "INSERT INTO graft.history (tenant, job_id, module_name, step, module_from, module_to, outcome, detail,
                    inserted, updated, deleted, duration_ms, plugin_sha256, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    &self.tenant, &e.job_id, &e.module_name, &e.step, &e.module_from, &e.module_to, &e.outcome,
                    &e.detail, &counts[0], &counts[1], &counts[2], &counts[3], &e.plugin_sha256, &e.at,
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn history(&mut self) -> StoreResult<Vec<HistoryEntry>> {
        Ok(self
            .client
            .query(
                "SELECT job_id, module_name, step, module_from, module_to, outcome, detail,
                    inserted, updated, deleted, duration_ms, plugin_sha256, at
                 FROM graft.history WHERE tenant = $1 ORDER BY seq",
                &[&self.tenant],
            )
            .map_err(backend)?
            .iter()
            .map(|row| HistoryEntry {
                job_id: row.get(0),
                module_name: row.get(1),
                step: row.get(2),
                module_from: row.get(3),
                module_to: row.get(4),
                outcome: row.get(5),
                detail: row.get(6),
                inserted: row.get::<_, i64>(7) as u64,
                updated: row.get::<_, i64>(8) as u64,
                deleted: row.get::<_, i64>(9) as u64,
                duration_ms: row.get::<_, i64>(10) as u64,
                plugin_sha256: row.get(11),
                at: row.get(12),
            })
            .collect())
    }

    fn save_job(
        &mut self,
        job: &JobRecord,
        changes: &[crate::changelog::CollectionChanges],
    ) -> StoreResult<()> {
        let plan = job.plan.to_string();
        self.client
            .execute(
                "INSERT INTO graft.jobs (tenant, job_id, started_at, finished_at, commit_mode, plan)
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)
                 ON CONFLICT (tenant, job_id) DO UPDATE SET finished_at = $4, plan = $6::text::jsonb",
                &[&self.tenant, &job.job_id, &job.started_at, &job.finished_at, &job.commit, &plan],
            )
            .map_err(backend)?;
        for c in changes {
            let text = |value: Result<String, serde_json::Error>| {
                value.map_err(|e| StoreError::Backend(e.to_string()))
            };
            let schema = text(serde_json::to_string(&c.schema))?;
            let samples = text(serde_json::to_string(&c.samples))?;
            let overlay = text(serde_json::to_string(&c.overlay))?;
            let counts = [c.inserted as i64, c.updated as i64, c.deleted as i64];
            self.client
                .execute(
                    "INSERT INTO graft.changes (tenant, job_id, module, collection, inserted, updated, deleted, schema, samples, overlay, digest)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    &[
                        &self.tenant, &job.job_id, &c.module, &c.collection, &counts[0], &counts[1], &counts[2],
                        &schema, &samples, &overlay, &c.digest,
                    ],
                )
                .map_err(backend)?;
        }
        Ok(())
    }

    fn jobs(&mut self) -> StoreResult<Vec<JobRecord>> {
        Ok(self
            .client
            .query(
                "SELECT job_id, started_at, finished_at, commit_mode, plan::text FROM graft.jobs
                 WHERE tenant = $1 ORDER BY started_at, job_id",
                &[&self.tenant],
            )
            .map_err(backend)?
            .iter()
            .map(|row| JobRecord {
                job_id: row.get(0),
                started_at: row.get(1),
                finished_at: row.get(2),
                commit: row.get(3),
                plan: serde_json::from_str(row.get(4)).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }

    fn changes(&mut self, job_id: &str) -> StoreResult<Vec<crate::changelog::CollectionChanges>> {
        Ok(self
            .client
            .query(
                "SELECT module, collection, inserted, updated, deleted, schema, samples, overlay, digest
                 FROM graft.changes WHERE tenant = $1 AND job_id = $2 ORDER BY module, collection",
                &[&self.tenant, &job_id],
            )
            .map_err(backend)?
            .iter()
            .map(|row| crate::changelog::CollectionChanges {
                module: row.get(0),
                collection: row.get(1),
                inserted: row.get::<_, i64>(2) as u64,
                updated: row.get::<_, i64>(3) as u64,
                deleted: row.get::<_, i64>(4) as u64,
                schema: serde_json::from_str(row.get(5)).unwrap_or_default(),
                samples: serde_json::from_str(row.get(6)).unwrap_or_default(),
                overlay: serde_json::from_str(row.get(7)).unwrap_or_default(),
                digest: row.get(8),
            })
            .collect())
    }

    fn get_base(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(self
            .client
            .query_opt(
                "SELECT doc FROM graft.base WHERE tenant = $1 AND module = $2 AND collection = $3 AND record_id = $4",
                &[&self.tenant, &module, &collection, &id],
            )
            .map_err(backend)?
            .map(|row| row.get(0)))
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
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(doc.as_bytes()));
        self.client
            .execute(
                "INSERT INTO graft.base (tenant, module, collection, record_id, doc, sha256, release, kind)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tenant, module, collection, record_id)
                 DO UPDATE SET doc = $5, sha256 = $6, release = $7, kind = $8",
                &[&self.tenant, &module, &collection, &id, &doc, &sha256, &release, &kind],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn delete_base(&mut self, module: &str, collection: &str, id: &str) -> StoreResult<()> {
        self.client
            .execute(
                "DELETE FROM graft.base WHERE tenant = $1 AND module = $2 AND collection = $3 AND record_id = $4",
                &[&self.tenant, &module, &collection, &id],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn base_records(
        &mut self,
        module: &str,
        collection: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .client
            .query(
                "SELECT record_id, doc FROM graft.base WHERE tenant = $1 AND module = $2 AND collection = $3
                 ORDER BY record_id",
                &[&self.tenant, &module, &collection],
            )
            .map_err(backend)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }

    fn base_collections(&mut self, module: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .client
            .query(
                "SELECT DISTINCT collection, kind FROM graft.base WHERE tenant = $1 AND module = $2
                 ORDER BY collection, kind",
                &[&self.tenant, &module],
            )
            .map_err(backend)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }

    fn dump(&mut self) -> StoreResult<Dump> {
        let registered: Vec<(String, String)> = self
            .client
            .query(
                "SELECT module, collection FROM graft.collections WHERE tenant = $1 ORDER BY module, collection",
                &[&self.tenant],
            )
            .map_err(backend)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let mut collections: BTreeMap<String, BTreeMap<String, CollectionDump>> = BTreeMap::new();
        for (module, collection) in registered {
            let indexes = self.list_indexes(&module, &collection)?;
            let table = self.table(&module, &collection)?;
            let mut records = BTreeMap::new();
            for row in self
                .client
                .query(
                    &format!("SELECT id::text, jsonb::text FROM {}", table.qualified()),
                    &[],
                )
                .map_err(backend)?
            {
                let doc: &str = row.get(1);
                let value = serde_json::from_str(doc)
                    .map_err(|e| StoreError::InvalidDocument(e.to_string()))?;
                records.insert(row.get(0), value);
            }
            collections
                .entry(module)
                .or_default()
                .insert(collection, CollectionDump { indexes, records });
        }
        let mut bases: BTreeMap<String, BTreeMap<String, BTreeMap<String, serde_json::Value>>> =
            BTreeMap::new();
        for row in self
            .client
            .query(
                "SELECT module, collection, record_id, doc FROM graft.base WHERE tenant = $1
                 ORDER BY module, collection, record_id",
                &[&self.tenant],
            )
            .map_err(backend)?
        {
            let doc: &str = row.get(3);
            let value = serde_json::from_str(doc)
                .map_err(|e| StoreError::InvalidDocument(e.to_string()))?;
            bases
                .entry(row.get(0))
                .or_default()
                .entry(row.get(1))
                .or_default()
                .insert(row.get(2), value);
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

#[cfg(test)]
mod tests {
    use super::read_index;

    #[test]
    fn reads_folio_style_index_definitions() {
        let spec = read_index(
            "material_type_name_idx",
            "CREATE UNIQUE INDEX material_type_name_idx ON diku_mod_inventory_storage.material_type USING btree (lower((jsonb ->> 'name'::text)))",
        )
        .unwrap();
        assert_eq!(spec.field, "name");
        assert!(spec.unique && spec.case_insensitive);
        let spec = read_index(
            "users_email",
            "CREATE INDEX users_email ON diku_mod_users.users USING btree (((jsonb -> 'personal'::text) ->> 'email'::text))",
        )
        .unwrap();
        assert_eq!(spec.field, "personal.email");
        assert!(!spec.unique && !spec.case_insensitive);
        let spec = read_index(
            "codes",
            "CREATE UNIQUE INDEX codes ON s.t USING btree (((jsonb ->> 'code'::text)), ((jsonb ->> 'typeId'::text)))",
        )
        .unwrap();
        assert_eq!(spec.field, "code,typeId");
        // FOLIO's accent folding is not an index graft can describe.
        assert!(read_index(
            "x",
            "CREATE INDEX x ON s.t USING btree (lower(f_unaccent((jsonb ->> 'name'::text))))"
        )
        .is_none());
        assert!(read_index("g", "CREATE INDEX g ON s.t USING gin (jsonb)").is_none());
    }
}
