//! The SQL a SQLite store runs on modules' collections: tables, indexes,
//! inserts, and the contract's errors made of SQLite's.

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
