//! The SQL a SQLite store runs on modules' collections: tables, indexes,
//! inserts, filtered scans, set-based updates and conditions in SQLite's
//! dialect, and the contract's errors made of SQLite's.

use super::rows::Columns;
use super::*;
use rusqlite::{params, ErrorCode, OptionalExtension};

impl TableLookup for SqliteStore {
    type Table = String;

    fn find_table(&mut self, module: &str, collection: &str) -> StoreResult<Option<String>> {
        let conn = &self.conn;
        self.tables.find(module, collection, || {
            conn.query_row(
                "SELECT table_name FROM graft_collections WHERE module = ?1 AND collection = ?2",
                params![module, collection],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)
        })
    }
}

impl SqliteStore {
    /// Create the index itself (not its `graft_indexes` row); returns its
    /// SQL name.
    pub(super) fn create_index_sql(
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
    pub(super) fn insert_new(
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
    pub(super) fn write_error(
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

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
        return StoreError::Backend("interrupted: the plugin call ran past its deadline".into());
    }
    StoreError::Backend(e.to_string())
}

/// Table and index names derived from what modules call them.
pub(super) fn sql_ident(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
        .collect::<Vec<_>>()
        .join("__")
}

/// A collection's table. `doc` is always written through `jsonb(?)`, which
/// parses JSON text and fails on anything else, so the CHECK needs only to
/// look at the (binary) root's type.
pub(super) fn create_table_sql(table: &str) -> String {
    format!(
        "CREATE TABLE \"{table}\" (
            id TEXT PRIMARY KEY NOT NULL,
            doc BLOB NOT NULL CHECK (json_type(doc) = 'object')
        )"
    )
}

/// `personal.email` -> `$.personal.email` (the path was checked by `check_field`).
pub(super) fn json_path(field: &str) -> String {
    format!("$.{field}")
}

/// The index's expressions on `json_extract`.
pub(super) fn index_expression(spec: &IndexSpec) -> String {
    index_expressions(spec, |field| {
        format!("json_extract(doc, '{}')", json_path(field))
    })
}

impl SqliteStore {
    /// Every row of a query, each made into a value by `read`.
    pub(super) fn rows<T>(
        &mut self,
        sql: &str,
        params: impl rusqlite::Params,
        read: impl Fn(&rusqlite::Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(backend)?;
        let mut rows = stmt.query(params).map_err(backend)?;
        let mut values = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            values.push(read(row)?);
        }
        Ok(values)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, at: usize) -> StoreResult<String> {
        self.get(at).map_err(backend)
    }
    fn maybe_text(&self, at: usize) -> StoreResult<Option<String>> {
        self.get(at).map_err(backend)
    }
    fn count(&self, at: usize) -> StoreResult<u64> {
        self.get::<_, i64>(at)
            .map(|n| n.max(0) as u64)
            .map_err(backend)
    }
    fn flag(&self, at: usize) -> StoreResult<bool> {
        self.get(at).map_err(backend)
    }
}

impl SqliteStore {
    /// A filtered page's statement and its parameters.
    pub(super) fn scan_sql(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<(String, Vec<String>)> {
        let table = self.table(module, collection)?;
        let (filter, mut values) = where_sql(&Dialect, conditions, 1)?;
        // Not `?1 IS NULL OR id > ?1`: that form cannot use the primary
        // key, and every page would scan and sort the table.
        let after_id = match after {
            Some(after) => {
                values.push(after.to_string());
                format!("id > ?{}", values.len())
            }
            None => "1=1".to_string(),
        };
        let sql = format!(
            "SELECT id, json(doc) FROM \"{table}\" WHERE {after_id} AND {filter} ORDER BY id LIMIT {limit}"
        );
        Ok((sql, values))
    }

    /// How SQLite runs a filtered scan (`EXPLAIN QUERY PLAN`), for tests
    /// that an index serves a condition.
    #[cfg(test)]
    pub(crate) fn query_plan(
        &mut self,
        module: &str,
        collection: &str,
        conditions: &[Condition],
    ) -> String {
        let (sql, values) = self
            .scan_sql(module, collection, conditions, None, 10)
            .unwrap();
        let mut stmt = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(&values), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }
}

/// SQLite's JSONB functions on `$.a.b` paths.
pub(super) struct Dialect;

impl UpdateDialect for Dialect {
    fn path(&self, field: &str) -> String {
        json_path(field)
    }
    fn set_default(&self, table: &str, path: &str) -> String {
        format!("UPDATE {table} SET doc = jsonb_set(doc, '{path}', json(?1)) WHERE json_type(doc, '{path}') IS NULL")
    }
    fn set(&self, table: &str, path: &str) -> String {
        format!(
            "UPDATE {table} SET doc = jsonb_set(doc, '{path}', json(?1))
             WHERE doc IS NOT jsonb_set(doc, '{path}', json(?1))"
        )
    }
    fn remove(&self, table: &str, path: &str) -> String {
        format!("UPDATE {table} SET doc = jsonb_remove(doc, '{path}') WHERE json_type(doc, '{path}') IS NOT NULL")
    }
    fn rename(&self, table: &str, from: &str, to: &str) -> String {
        format!(
            "UPDATE {table} SET doc = jsonb_remove(jsonb_set(doc, '{to}', doc -> '{from}'), '{from}')
             WHERE json_type(doc, '{from}') IS NOT NULL"
        )
    }
    fn copy(&self, table: &str, from: &str, to: &str) -> String {
        format!(
            "UPDATE {table} SET doc = jsonb_set(doc, '{to}', doc -> '{from}')
             WHERE json_type(doc, '{from}') IS NOT NULL
               AND doc IS NOT jsonb_set(doc, '{to}', doc -> '{from}')"
        )
    }
}

/// SQLite's tests on `json_extract`, the expression its indexes are made of.
impl FilterDialect for Dialect {
    fn param(&self, n: usize) -> String {
        format!("?{n}")
    }
    fn is_type(&self, field: &str, ty: JsonType) -> String {
        let name = match ty {
            JsonType::String => "'text'",
            JsonType::Number => "'integer', 'real'",
            JsonType::True => "'true'",
            JsonType::False => "'false'",
            JsonType::Null => "'null'",
        };
        format!("json_type(doc, '{}') IN ({name})", json_path(field))
    }
    fn string_in(&self, field: &str, params: &[String]) -> String {
        // `json_extract` gives an object or array as JSON text, which must
        // not equal a string that reads the same.
        format!(
            "json_extract(doc, '{}') IN ({}) AND {}",
            json_path(field),
            params.join(", "),
            self.is_type(field, JsonType::String)
        )
    }
    fn number_in(&self, field: &str, params: &[String]) -> String {
        // `true` is 1 to `json_extract`: the type keeps it from equalling 1.
        let numbers: Vec<String> = params
            .iter()
            .map(|p| format!("CAST({p} AS NUMERIC)"))
            .collect();
        format!(
            "json_extract(doc, '{}') IN ({}) AND {}",
            json_path(field),
            numbers.join(", "),
            self.is_type(field, JsonType::Number)
        )
    }
    fn present(&self, field: &str) -> String {
        format!("json_type(doc, '{}') IS NOT NULL", json_path(field))
    }
}
