//! Finding a module's tables and writing to them: FOLIO schemas owned by
//! one tenant and module, the savepoint that keeps a transaction usable
//! after a failed write, and the contract's errors made of PostgreSQL's.

use super::pool::TIMEOUT_UNKNOWN;
use super::sql::{backend, ident, is_uuid, upsert_effect, upsert_sql, Table};
use super::*;
use pg::error::SqlState;
use pg::Client;
use std::ops::DerefMut;

impl PostgresStore {
    /// The FOLIO schema of a module of this tenant, `<tenant>_<module>`, if
    /// no other tenant's or module's collections are in it: two pairs may
    /// map to one schema (`diku_mod` + `users` and `diku` + `mod-users`, or
    /// `mod-Users` and `mod-users`), and a FOLIO module or tool reading the
    /// schema must never find another's data there.
    pub(super) fn module_schema(&mut self, module: &str) -> StoreResult<String> {
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

    pub(super) fn statement(&mut self, sql: &str) -> Result<pg::Statement, pg::Error> {
        self.client.statement(sql)
    }

    /// Run a write so that its failure leaves the transaction usable: a
    /// savepoint is kept open behind the last successful write, moved on
    /// after each (one round trip), and rolled back to on a failure.
    pub(super) fn guarded<T>(
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
    pub(super) fn accept_id(
        &mut self,
        module: &str,
        collection: &str,
        id: &str,
    ) -> StoreResult<Table> {
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
        self.tables.insert(module, collection, table.clone());
        Ok(table)
    }

    /// Map a failed write to the contract's error, naming the index by the
    /// name the module gave it.
    pub(super) fn write_error(
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
    pub(super) fn put_one_by_one(
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

    pub(super) fn insert(&mut self, table: &Table, id: &str, doc: &str) -> Result<bool, pg::Error> {
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

impl TableLookup for PostgresStore {
    type Table = Table;

    fn find_table(&mut self, module: &str, collection: &str) -> StoreResult<Option<Table>> {
        let (client, tenant) = (&mut self.client, &self.tenant);
        self.tables.find(module, collection, || {
            let row = client
                .query_opt(
                    // pg_catalog, not information_schema: its views read every
                    // table of the database, and a database holds many tenants.
                    "SELECT c.schema_name, c.table_name, a.atttypid = 'uuid'::regtype
                     FROM graft.collections c
                     JOIN pg_attribute a
                       ON a.attrelid = format('%I.%I', c.schema_name, c.table_name)::regclass
                      AND a.attname = 'id'
                     WHERE c.tenant = $1 AND c.module = $2 AND c.collection = $3",
                    &[tenant, &module, &collection],
                )
                .map_err(backend)?;
            Ok(row.map(|row| Table {
                schema: row.get(0),
                name: row.get(1),
                uuid_ids: row.get(2),
            }))
        })
    }
}
