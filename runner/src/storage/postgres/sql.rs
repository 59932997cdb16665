//! The SQL text a PostgreSQL store builds: identifiers, JSON paths, index
//! expressions, upserts, and the contract's errors made of PostgreSQL's.

use super::*;
use pg::error::SqlState;

/// PostgreSQL's limit on identifiers, in bytes.
const MAX_IDENT: usize = 63;

/// A collection's table, as the statements need it.
#[derive(Debug, Clone)]
pub(in crate::storage) struct Table {
    pub(super) schema: String,
    pub(super) name: String,
    /// `id` is of type uuid (else text).
    pub(super) uuid_ids: bool,
}

impl Table {
    pub(super) fn qualified(&self) -> String {
        format!("\"{}\".\"{}\"", self.schema, self.name)
    }

    /// How a text parameter becomes the id column's type.
    pub(super) fn id_param(&self, n: u32) -> String {
        if self.uuid_ids {
            format!("${n}::text::uuid")
        } else {
            format!("${n}::text")
        }
    }
}

pub(super) fn backend(e: pg::Error) -> StoreError {
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
pub(super) fn upsert_sql(table: &Table) -> String {
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
pub(super) fn batch_sql(table: &Table) -> String {
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

/// The condition that a record comes after the id in parameter `$n`: on
/// the uuid column itself where the id is a uuid (the primary key serves
/// it), on the id's text otherwise.
pub(super) fn after_sql(table: &Table, after: &str, n: usize) -> String {
    if table.uuid_ids && is_uuid(after) {
        format!("id > ${n}::text::uuid")
    } else {
        format!("id::text > ${n}")
    }
}

/// A page of `limit` records of `table` in id order, after the condition
/// `after_id` and for which `filter` holds. The order names the table's
/// own column (`t.id`): a bare `id` is the output column `id::text`, an
/// order no index serves, so every page sorted the whole table (0.9 s a
/// page at 200,000 users, where the primary key reads one in 30 ms).
pub(super) fn scan_sql(table: &Table, after_id: &str, filter: &str, limit: u32) -> String {
    format!(
        "SELECT t.id::text, t.jsonb::text FROM {} AS t WHERE {after_id} AND {filter} ORDER BY t.id LIMIT {limit}",
        table.qualified()
    )
}

/// What an upsert did, from the flag it returned (none: nothing).
pub(super) fn upsert_effect(inserted: Option<bool>) -> WriteEffect {
    match inserted {
        None => WriteEffect::Unchanged,
        Some(true) => WriteEffect::Inserted,
        Some(false) => WriteEffect::Replaced,
    }
}

/// Errors of the data written (SQLSTATE classes 21, 22, 23), as opposed
/// to the server, the connection or a deadline.
pub(super) fn is_about_a_record(e: &pg::Error) -> bool {
    e.code()
        .is_some_and(|code| matches!(&code.code()[..2], "21" | "22" | "23"))
}

pub(super) fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A PostgreSQL identifier: `-` becomes `_`, and a name too long keeps its
/// start and gains a hash of the whole, so distinct names stay distinct.
pub(super) fn ident(name: &str) -> String {
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
pub(super) fn text_at(field: &str) -> String {
    let parts: Vec<&str> = field.split('.').collect();
    let mut expression = "jsonb".to_string();
    for (i, part) in parts.iter().enumerate() {
        let arrow = if i + 1 == parts.len() { "->>" } else { "->" };
        expression.push_str(&format!("{arrow}'{part}'"));
    }
    expression
}

/// `personal.email` -> `'{personal,email}'`, a path for `#>`, `jsonb_set`, `#-`.
pub(super) fn path_array(field: &str) -> String {
    format!("'{{{}}}'", field.replace('.', ","))
}

/// Text values as a statement's parameters.
pub(super) fn text_params<'a>(
    values: impl IntoIterator<Item = &'a String>,
) -> Vec<&'a (dyn ::postgres::types::ToSql + Sync)> {
    values
        .into_iter()
        .map(|v| v as &(dyn ::postgres::types::ToSql + Sync))
        .collect()
}

/// The index's expressions on `jsonb` paths, as FOLIO declares them.
pub(super) fn index_expression(spec: &IndexSpec) -> String {
    index_expressions(spec, |field| format!("({})", text_at(field)))
}
