//! Set-based updates (`FieldChange`) as SQL: which statement each change
//! is, and which take the JSON value, written once; each backend gives
//! only its dialect (its JSON functions and paths).

use super::FieldChange;

/// A backend's SQL for each kind of set-based update of `table`. Paths are
/// made by `path` from fields `check_field` accepted (no quotes in them);
/// the JSON value, where there is one, is the statement's first parameter.
/// Each statement ends in a `WHERE` clause, to which a filter's
/// conditions are added (`AND`), their parameters numbered after the value's.
pub(super) trait UpdateDialect {
    fn path(&self, field: &str) -> String;
    fn set_default(&self, table: &str, path: &str) -> String;
    fn set(&self, table: &str, path: &str) -> String;
    fn remove(&self, table: &str, path: &str) -> String;
    fn rename(&self, table: &str, from: &str, to: &str) -> String;
    fn copy(&self, table: &str, from: &str, to: &str) -> String;
}

/// The statement of a change, and the JSON value it takes, if any.
pub(super) fn update_sql<'c>(
    dialect: &impl UpdateDialect,
    table: &str,
    change: &'c FieldChange,
) -> (String, Option<&'c String>) {
    match change {
        FieldChange::SetDefault { field, value } => (
            dialect.set_default(table, &dialect.path(field)),
            Some(value),
        ),
        FieldChange::Set { field, value } => {
            (dialect.set(table, &dialect.path(field)), Some(value))
        }
        FieldChange::Remove { field } => (dialect.remove(table, &dialect.path(field)), None),
        FieldChange::Rename { from, to } => (
            dialect.rename(table, &dialect.path(from), &dialect.path(to)),
            None,
        ),
        FieldChange::Copy { from, to } => (
            dialect.copy(table, &dialect.path(from), &dialect.path(to)),
            None,
        ),
    }
}
