//! The production backend: PostgreSQL, in FOLIO's own layout.
//!
//! Long file: PostgreSQL's one `TenantStore` impl, which Rust keeps in one
//! block; everything it calls lives in the sibling files.
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

mod adopt;
pub(crate) mod pool;
mod schema;
mod sql;
mod tables;
mod tenants;

pub use adopt::AdoptedTable;
pub use schema::redact;
pub(crate) use schema::{connect, make_once};
pub use tenants::AdvisoryLock;

use super::rows::{
    self, signed, Columns, CHANGE_COLUMNS, HISTORY_COLUMNS, JOB_COLUMNS, MODULE_COLUMNS,
};
use super::*;
use ::postgres as pg;
use pg::error::SqlState;
use pool::Connection;
use pool::TIMEOUT_UNKNOWN;
use sql::{
    after_sql, backend, batch_sql, ident, index_expression, is_about_a_record, is_uuid, path_array,
    scan_sql, text_params, upsert_effect, upsert_sql, Table,
};

pub struct PostgresStore {
    /// A connection of the process's pool, with the statements prepared on
    /// it (by their text: a statement prepared once costs one round trip
    /// less on every call after; forgotten on rollback, which may drop the
    /// tables they read).
    client: Connection,
    tenant: String,
    /// (module, collection) -> table; cleared on rollback.
    tables: Tables<Table>,
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
        self.tables.insert(module, collection, table);
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
        self.tables.remove(module, collection);
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

    fn scan_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let table = self.table(module, collection)?;
        let (filter, values) = where_sql(&Dialect, conditions, 1)?;
        let mut params = text_params(&values);
        // uuid order is the order of the ids' lower-case text: pages agree
        // with SQLite's. Rows are read as they come, so a page cut by its
        // size never holds the rest.
        let after_id = match &after {
            Some(after) => {
                params.push(after);
                after_sql(&table, after, params.len())
            }
            None => "TRUE".to_string(),
        };
        let sql = scan_sql(&table, &after_id, &filter, limit);
        let rows = self.client.query_raw(&sql, params).map_err(backend)?;
        use pg::fallible_iterator::FallibleIterator as _;
        let rows = rows
            .iterator()
            .map(|row| row.and_then(|row| Ok((row.try_get(0)?, row.try_get(1)?))));
        page_by_bytes(rows, backend)
    }

    fn count_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
    ) -> StoreResult<u64> {
        let table = self.table(module, collection)?;
        let (filter, values) = where_sql(&Dialect, conditions, 1)?;
        let params = text_params(&values);
        let count: i64 = self
            .client
            .query_one(
                &format!("SELECT count(*) FROM {} WHERE {filter}", table.qualified()),
                &params,
            )
            .map_err(backend)?
            .get(0);
        Ok(count as u64)
    }

    fn update_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        change: &FieldChange,
    ) -> StoreResult<u64> {
        check_change(change)?;
        let table = self.table(module, collection)?.qualified();
        let (sql, value) = update_sql(&Dialect, &table, change);
        // The change's value, if any, is the first parameter; the filter's follow.
        let (filter, filter_values) = where_sql(&Dialect, conditions, 1 + value.iter().count())?;
        let sql = match conditions.is_empty() {
            true => sql,
            false => format!("{sql} AND {filter}"),
        };
        let params = text_params(value.into_iter().chain(&filter_values));
        self.guarded(|client| client.execute(&sql, &params))
            .map_err(|e| self.write_error(e, module, collection, "(set-based update)"))
    }

    fn get_state(&mut self, module: &str, key: &str) -> StoreResult<Option<String>> {
        check_state_key(key)?;
        Ok(self
            .client
            .query_opt(
                "SELECT value FROM graft.module_state WHERE tenant = $1 AND module = $2 AND key = $3",
                &[&self.tenant, &module, &key],
            )
            .map_err(backend)?
            .map(|row| row.get(0)))
    }

    fn set_state(&mut self, module: &str, key: &str, value: Option<&str>) -> StoreResult<bool> {
        let existed = self.get_state(module, key)?.is_some();
        if let Some(value) = value {
            check_state_value(key, value)?;
        }
        let tenant = self.tenant.clone();
        match value {
            Some(value) => self.client.execute(
                "INSERT INTO graft.module_state (tenant, module, key, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, module, key) DO UPDATE SET value = $4",
                &[&tenant, &module, &key, &value],
            ),
            None => self.client.execute(
                "DELETE FROM graft.module_state WHERE tenant = $1 AND module = $2 AND key = $3",
                &[&tenant, &module, &key],
            ),
        }
        .map_err(backend)?;
        Ok(existed)
    }

    fn state_entries(&mut self, module: Option<&str>) -> StoreResult<Vec<StateEntry>> {
        let rows = self
            .client
            .query(
                "SELECT module, key, value FROM graft.module_state
                 WHERE tenant = $1 AND ($2::text IS NULL OR module = $2) ORDER BY module, key",
                &[&self.tenant, &module],
            )
            .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|row| StateEntry {
                module: row.get(0),
                key: row.get(1),
                value: row.get(2),
            })
            .collect())
    }

    fn modules(&mut self) -> StoreResult<Vec<EnabledModule>> {
        let sql =
            format!("SELECT {MODULE_COLUMNS} FROM graft.modules WHERE tenant = $1 ORDER BY name");
        let tenant = self.tenant.clone();
        self.rows(&sql, &[&tenant], rows::module)
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
        let tenant = self.tenant.clone();
        self.guarded(|client| {
            client.execute(
                "DELETE FROM graft.modules WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )?;
            client.execute(
                "DELETE FROM graft.module_state WHERE tenant = $1 AND module = $2",
                &[&tenant, &name],
            )
        })
        .map_err(backend)?;
        Ok(())
    }

    fn add_history(&mut self, e: &HistoryEntry) -> StoreResult<()> {
        let counts = [e.inserted, e.updated, e.deleted, e.duration_ms].map(signed);
        self.client
            .execute(
                &format!(
                    "INSERT INTO graft.history (tenant, {HISTORY_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ),
                &[
                    &self.tenant,
                    &e.job_id,
                    &e.module_name,
                    &e.step,
                    &e.module_from,
                    &e.module_to,
                    &e.outcome,
                    &e.detail,
                    &counts[0],
                    &counts[1],
                    &counts[2],
                    &counts[3],
                    &e.plugin_sha256,
                    &e.at,
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn history(&mut self) -> StoreResult<Vec<HistoryEntry>> {
        let sql =
            format!("SELECT {HISTORY_COLUMNS} FROM graft.history WHERE tenant = $1 ORDER BY seq");
        let tenant = self.tenant.clone();
        self.rows(&sql, &[&tenant], rows::history)
    }

    fn save_job(&mut self, job: &JobRecord, changes: &[ChangeRecord]) -> StoreResult<()> {
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
            let counts = [c.inserted, c.updated, c.deleted].map(signed);
            self.client
                .execute(
                    &format!(
                        "INSERT INTO graft.changes (tenant, job_id, {CHANGE_COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                    ),
                    &[
                        &self.tenant,
                        &job.job_id,
                        &c.module,
                        &c.collection,
                        &counts[0],
                        &counts[1],
                        &counts[2],
                        &c.schema,
                        &c.samples,
                        &c.overlay,
                        &c.digest,
                    ],
                )
                .map_err(backend)?;
        }
        Ok(())
    }

    fn jobs(&mut self) -> StoreResult<Vec<JobRecord>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS}, plan::text FROM graft.jobs
             WHERE tenant = $1 ORDER BY started_at, job_id"
        );
        let tenant = self.tenant.clone();
        self.rows(&sql, &[&tenant], rows::job)
    }

    fn changes(&mut self, job_id: &str) -> StoreResult<Vec<ChangeRecord>> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM graft.changes
             WHERE tenant = $1 AND job_id = $2 ORDER BY module, collection"
        );
        let tenant = self.tenant.clone();
        self.rows(&sql, &[&tenant, &job_id], rows::change)
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
        let sha256 = rows::base_sha256(doc);
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

    fn all_collections(&mut self) -> StoreResult<Vec<(String, String)>> {
        let tenant = self.tenant.clone();
        self.rows(
            "SELECT module, collection FROM graft.collections WHERE tenant = $1
             ORDER BY module, collection",
            &[&tenant],
            |row| Ok((row.text(0)?, row.text(1)?)),
        )
    }

    fn all_base_collections(&mut self) -> StoreResult<Vec<(String, String)>> {
        let tenant = self.tenant.clone();
        self.rows(
            "SELECT DISTINCT module, collection FROM graft.base WHERE tenant = $1
             ORDER BY module, collection",
            &[&tenant],
            |row| Ok((row.text(0)?, row.text(1)?)),
        )
    }
}

impl PostgresStore {
    /// Every row of a query, each made into a value by `read`.
    fn rows<T>(
        &mut self,
        sql: &str,
        params: &[&(dyn pg::types::ToSql + Sync)],
        read: impl Fn(&pg::Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let rows = self.client.query(sql, params).map_err(backend)?;
        rows.iter().map(read).collect()
    }
}

impl Columns for pg::Row {
    fn text(&self, at: usize) -> StoreResult<String> {
        self.try_get(at).map_err(backend)
    }
    fn maybe_text(&self, at: usize) -> StoreResult<Option<String>> {
        self.try_get(at).map_err(backend)
    }
    fn count(&self, at: usize) -> StoreResult<u64> {
        self.try_get::<_, i64>(at)
            .map(|n| n.max(0) as u64)
            .map_err(backend)
    }
    fn flag(&self, at: usize) -> StoreResult<bool> {
        self.try_get(at).map_err(backend)
    }
}

impl PostgresStore {
    /// How PostgreSQL runs a filtered count (`EXPLAIN`), for tests that an
    /// index can serve a condition.
    #[cfg(test)]
    pub(crate) fn query_plan(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
    ) -> String {
        let table = self.table(module, collection).unwrap();
        let (filter, values) = where_sql(&Dialect, conditions, 1).unwrap();
        let sql = format!("SELECT count(*) FROM {} WHERE {filter}", table.qualified());
        self.plan(&sql, &text_params(&values))
    }

    /// How PostgreSQL runs the page of a scan after the record `after`
    /// (`EXPLAIN`), for tests that pages are read in the index's order.
    #[cfg(test)]
    pub(crate) fn scan_plan(&mut self, module: &str, collection: &str, after: &str) -> String {
        let table = self.table(module, collection).unwrap();
        let sql = scan_sql(&table, &after_sql(&table, after, 1), "TRUE", 100);
        self.plan(&sql, &[&after])
    }

    /// `EXPLAIN` with sequential scans turned off: on the few records of a
    /// test the planner would rightly prefer one; what is asked is whether
    /// an index can serve the statement.
    #[cfg(test)]
    fn plan(&mut self, sql: &str, params: &[&(dyn pg::types::ToSql + Sync)]) -> String {
        self.client
            .batch_execute("BEGIN; SET LOCAL enable_seqscan = off")
            .unwrap();
        let rows = self
            .client
            .query(&format!("EXPLAIN {sql}"), params)
            .unwrap();
        self.client.batch_execute("ROLLBACK").unwrap();
        let lines: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        lines.join("; ")
    }
}

/// PostgreSQL's jsonb operators on `'{a,b}'` paths.
struct Dialect;

impl UpdateDialect for Dialect {
    fn path(&self, field: &str) -> String {
        path_array(field)
    }
    fn set_default(&self, table: &str, path: &str) -> String {
        format!("UPDATE {table} SET jsonb = jsonb_set(jsonb, {path}, $1::text::jsonb, true) WHERE jsonb #> {path} IS NULL")
    }
    fn set(&self, table: &str, path: &str) -> String {
        format!(
            "UPDATE {table} SET jsonb = jsonb_set(jsonb, {path}, $1::text::jsonb, true)
             WHERE jsonb IS DISTINCT FROM jsonb_set(jsonb, {path}, $1::text::jsonb, true)"
        )
    }
    fn remove(&self, table: &str, path: &str) -> String {
        format!("UPDATE {table} SET jsonb = jsonb #- {path} WHERE jsonb #> {path} IS NOT NULL")
    }
    fn rename(&self, table: &str, from: &str, to: &str) -> String {
        format!(
            "UPDATE {table} SET jsonb = jsonb_set(jsonb #- {from}, {to}, jsonb #> {from}, true)
             WHERE jsonb #> {from} IS NOT NULL"
        )
    }
    fn copy(&self, table: &str, from: &str, to: &str) -> String {
        format!(
            "UPDATE {table} SET jsonb = jsonb_set(jsonb, {to}, jsonb #> {from}, true)
             WHERE jsonb #> {from} IS NOT NULL
               AND jsonb IS DISTINCT FROM jsonb_set(jsonb, {to}, jsonb #> {from}, true)"
        )
    }
}

/// PostgreSQL's tests: strings on `jsonb->>'field'`, the expression its
/// indexes are made of; the rest on jsonb values.
impl FilterDialect for Dialect {
    fn param(&self, n: usize) -> String {
        format!("${n}")
    }
    fn is_type(&self, field: &str, ty: JsonType) -> String {
        let at = format!("jsonb #> {}", path_array(field));
        match ty {
            JsonType::String => format!("jsonb_typeof({at}) = 'string'"),
            JsonType::Number => format!("jsonb_typeof({at}) = 'number'"),
            JsonType::True => format!("({at}) = 'true'::jsonb"),
            JsonType::False => format!("({at}) = 'false'::jsonb"),
            JsonType::Null => format!("jsonb_typeof({at}) = 'null'"),
        }
    }
    fn string_in(&self, field: &str, params: &[String]) -> String {
        let typed: Vec<String> = params.iter().map(|p| format!("{p}::text")).collect();
        format!(
            "({}) IN ({}) AND {}",
            sql::text_at(field),
            typed.join(", "),
            self.is_type(field, JsonType::String)
        )
    }
    fn number_in(&self, field: &str, params: &[String]) -> String {
        // jsonb compares numbers by value: 3 equals 3.0.
        let numbers: Vec<String> = params.iter().map(|p| format!("{p}::text::jsonb")).collect();
        format!(
            "(jsonb #> {}) IN ({}) AND {}",
            path_array(field),
            numbers.join(", "),
            self.is_type(field, JsonType::Number)
        )
    }
    fn present(&self, field: &str) -> String {
        format!("jsonb #> {} IS NOT NULL", path_array(field))
    }
}
