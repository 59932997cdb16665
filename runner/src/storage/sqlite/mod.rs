//! The embedded default backend: one SQLite database file per tenant.
//!
//! Long file: SQLite's one `TenantStore` impl, which Rust keeps in one
//! block; the SQL it builds lives in the sibling files.
//!
//! A collection is a table `(id TEXT PRIMARY KEY, doc BLOB)` whose `doc` is
//! SQLite's binary JSON (JSONB, SQLite 3.45+) and must be an object (a CHECK
//! constraint, so even the runner cannot store anything else); indexes are
//! expression indexes on `json_extract`. Documents are parsed once, when
//! written (`jsonb(?)`); the CHECK and every index read the binary form
//! without parsing text again, and reads render text (`json(doc)`).
//! The runner's metadata lives in `graft_*` tables of the same file, so it
//! commits and rolls back with the data it describes.

mod files;
mod schema;
mod sql;

pub use files::{FileLock, SqliteFiles};

use super::rows::{
    self, signed, Columns, CHANGE_COLUMNS, HISTORY_COLUMNS, JOB_COLUMNS, MODULE_COLUMNS,
};
use super::*;
use rusqlite::{params, Connection, OptionalExtension};
use sql::{backend, create_table_sql, sql_ident, Dialect};

pub struct SqliteStore {
    conn: Connection,
    tenant: String,
    /// (module, collection) -> table; cleared on rollback, since a rolled
    /// back transaction may have created or dropped tables.
    tables: Tables<String>,
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
        self.tables.insert(module, collection, table);
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
        self.tables.remove(module, collection);
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

    fn scan_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let (sql, values) = self.scan_sql(module, collection, conditions, after, limit)?;
        let mut stmt = self.conn.prepare_cached(&sql).map_err(backend)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(&values), |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(backend)?;
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
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM \"{table}\" WHERE {filter}"),
                rusqlite::params_from_iter(&values),
                |row| row.get(0),
            )
            .map_err(backend)
    }

    fn update_where(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        change: &FieldChange,
    ) -> StoreResult<u64> {
        check_change(change)?;
        let table = self.table(module, collection)?;
        let (sql, value) = update_sql(&Dialect, &format!("\"{table}\""), change);
        // The change's value, if any, is the first parameter; the filter's follow.
        let (filter, filter_values) = where_sql(&Dialect, conditions, 1 + value.iter().count())?;
        let sql = match conditions.is_empty() {
            true => sql,
            false => format!("{sql} AND {filter}"),
        };
        let values = value.into_iter().chain(&filter_values);
        let changed = self
            .conn
            .execute(&sql, rusqlite::params_from_iter(values))
            .map_err(|e| self.write_error(e, module, collection, "(set-based update)"))?;
        Ok(changed as u64)
    }

    fn get_state(&mut self, module: &str, key: &str) -> StoreResult<Option<String>> {
        check_state_key(key)?;
        self.conn
            .query_row(
                "SELECT value FROM graft_module_state WHERE module = ?1 AND key = ?2",
                params![module, key],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)
    }

    fn set_state(&mut self, module: &str, key: &str, value: Option<&str>) -> StoreResult<bool> {
        let existed = self.get_state(module, key)?.is_some();
        if let Some(value) = value {
            check_state_value(key, value)?;
        }
        match value {
            Some(value) => self.conn.execute(
                "INSERT INTO graft_module_state (module, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (module, key) DO UPDATE SET value = ?3",
                params![module, key, value],
            ),
            None => self.conn.execute(
                "DELETE FROM graft_module_state WHERE module = ?1 AND key = ?2",
                params![module, key],
            ),
        }
        .map_err(backend)?;
        Ok(existed)
    }

    fn state_entries(&mut self, module: Option<&str>) -> StoreResult<Vec<StateEntry>> {
        self.rows(
            "SELECT module, key, value FROM graft_module_state
             WHERE ?1 IS NULL OR module = ?1 ORDER BY module, key",
            [module],
            |row| {
                Ok(StateEntry {
                    module: row.text(0)?,
                    key: row.text(1)?,
                    value: row.text(2)?,
                })
            },
        )
    }

    fn modules(&mut self) -> StoreResult<Vec<EnabledModule>> {
        let sql = format!("SELECT {MODULE_COLUMNS} FROM graft_modules ORDER BY name");
        self.rows(&sql, [], |row| rows::module(row))
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
            .execute_batch("SAVEPOINT graft_remove")
            .map_err(backend)?;
        let removed = self
            .conn
            .execute("DELETE FROM graft_modules WHERE name = ?1", [name])
            .and_then(|_| {
                self.conn
                    .execute("DELETE FROM graft_module_state WHERE module = ?1", [name])
            });
        let end = match removed {
            Ok(_) => "RELEASE graft_remove",
            Err(_) => "ROLLBACK TO graft_remove; RELEASE graft_remove",
        };
        self.conn.execute_batch(end).map_err(backend)?;
        removed.map(|_| ()).map_err(backend)
    }

    fn save_job(&mut self, job: &JobRecord, changes: &[ChangeRecord]) -> StoreResult<()> {
        self.conn
            .execute(
                "INSERT INTO graft_jobs (job_id, started_at, finished_at, commit_mode, plan) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (job_id) DO UPDATE SET finished_at = ?3, plan = ?5",
                params![job.job_id, job.started_at, job.finished_at, job.commit, job.plan.to_string()],
            )
            .map_err(backend)?;
        for c in changes {
            self.conn
                .execute(
                    &format!(
                        "INSERT INTO graft_changes (job_id, {CHANGE_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        job.job_id,
                        c.module,
                        c.collection,
                        signed(c.inserted),
                        signed(c.updated),
                        signed(c.deleted),
                        c.schema,
                        c.samples,
                        c.overlay,
                        c.digest
                    ],
                )
                .map_err(backend)?;
        }
        Ok(())
    }

    fn jobs(&mut self) -> StoreResult<Vec<JobRecord>> {
        let sql = format!("SELECT {JOB_COLUMNS}, plan FROM graft_jobs ORDER BY started_at, job_id");
        self.rows(&sql, [], |row| rows::job(row))
    }

    fn changes(&mut self, job_id: &str) -> StoreResult<Vec<ChangeRecord>> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM graft_changes WHERE job_id = ?1 ORDER BY module, collection"
        );
        self.rows(&sql, [job_id], |row| rows::change(row))
    }

    fn add_history(&mut self, e: &HistoryEntry) -> StoreResult<()> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO graft_history ({HISTORY_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params![
                    e.job_id,
                    e.module_name,
                    e.step,
                    e.module_from,
                    e.module_to,
                    e.outcome,
                    e.detail,
                    signed(e.inserted),
                    signed(e.updated),
                    signed(e.deleted),
                    signed(e.duration_ms),
                    e.plugin_sha256,
                    e.at
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn history(&mut self) -> StoreResult<Vec<HistoryEntry>> {
        let sql = format!("SELECT {HISTORY_COLUMNS} FROM graft_history ORDER BY seq");
        self.rows(&sql, [], |row| rows::history(row))
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
                stmt.execute(params![module, collection, id, doc, release, kind, rows::base_sha256(doc)])
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

    fn all_collections(&mut self) -> StoreResult<Vec<(String, String)>> {
        self.rows(
            "SELECT module, collection FROM graft_collections ORDER BY module, collection",
            [],
            |row| Ok((row.text(0)?, row.text(1)?)),
        )
    }

    fn all_base_collections(&mut self) -> StoreResult<Vec<(String, String)>> {
        self.rows(
            "SELECT DISTINCT module, collection FROM graft_base ORDER BY module, collection",
            [],
            |row| Ok((row.text(0)?, row.text(1)?)),
        )
    }
}
