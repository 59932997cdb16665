//! Conditions on records' fields (`Condition`) as a SQL `WHERE` clause:
//! which test each condition and value is, checked and written once; each
//! backend gives only its dialect. A condition on a string is written on
//! the expression an index on that field is made of, so the index serves
//! it.

use super::checks::check_field;
use super::{Condition, StoreError, StoreResult};
use serde_json::Value;

/// Conditions one call may combine.
pub const MAX_CONDITIONS: usize = 16;
/// Values one `one-of` may list.
pub const MAX_ONE_OF: usize = 1000;

/// The JSON type a test is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JsonType {
    String,
    Number,
    True,
    False,
    Null,
}

/// A backend's SQL for the tests of a field. Fields were checked by
/// `check_field` (no quotes in them).
pub(super) trait FilterDialect {
    /// The placeholder of the statement's `n`th parameter (from 1).
    fn param(&self, n: usize) -> String;
    /// The field holds a value of this type.
    fn is_type(&self, field: &str, ty: JsonType) -> String;
    /// The field, a string, equals one of the text parameters: written on
    /// the expression the backend indexes the field by.
    fn string_in(&self, field: &str, params: &[String]) -> String;
    /// The field, a number, equals one of the parameters (JSON numbers as
    /// text).
    fn number_in(&self, field: &str, params: &[String]) -> String;
    /// The field is present (any value, `null` included).
    fn present(&self, field: &str) -> String;
}

/// The conditions as one SQL condition (`1=1` for none), whose parameters
/// are numbered from `first_param`, and those parameters' values, in order.
pub(super) fn where_sql(
    dialect: &impl FilterDialect,
    conditions: &[Condition],
    first_param: usize,
) -> StoreResult<(String, Vec<String>)> {
    if conditions.len() > MAX_CONDITIONS {
        return Err(StoreError::InvalidName(format!(
            "{} conditions are more than the {MAX_CONDITIONS} one call may combine",
            conditions.len()
        )));
    }
    let mut params = Vec::new();
    let mut terms = Vec::new();
    for condition in conditions {
        let term = match condition {
            Condition::Equals { field, value } => {
                check_field(field)?;
                one_of(
                    dialect,
                    field,
                    std::slice::from_ref(value),
                    first_param,
                    &mut params,
                )?
            }
            Condition::OneOf { field, values } => {
                check_field(field)?;
                if values.len() > MAX_ONE_OF {
                    return Err(StoreError::InvalidName(format!(
                        "one-of on {field}: {} values are more than the {MAX_ONE_OF} allowed",
                        values.len()
                    )));
                }
                one_of(dialect, field, values, first_param, &mut params)?
            }
            Condition::Exists { field } => {
                check_field(field)?;
                dialect.present(field)
            }
            Condition::Missing { field } => {
                check_field(field)?;
                format!("NOT ({})", dialect.present(field))
            }
        };
        terms.push(format!("({term})"));
    }
    if terms.is_empty() {
        return Ok(("1=1".to_string(), params));
    }
    Ok((terms.join(" AND "), params))
}

/// The field holds one of `values` (JSON texts): the strings in one test,
/// the numbers in another, each literal by its type. No value matches
/// nothing.
fn one_of(
    dialect: &impl FilterDialect,
    field: &str,
    values: &[String],
    first_param: usize,
    params: &mut Vec<String>,
) -> StoreResult<String> {
    let mut strings = Vec::new();
    let mut numbers = Vec::new();
    let mut literals = Vec::new();
    for text in values {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            StoreError::InvalidDocument(format!(
                "condition on {field}: {:?} is not a JSON value: {e}",
                crate::text::truncate(text, 100)
            ))
        })?;
        match value {
            Value::String(s) => strings.push(s),
            Value::Number(n) => numbers.push(n.to_string()),
            Value::Bool(true) => literals.push(JsonType::True),
            Value::Bool(false) => literals.push(JsonType::False),
            Value::Null => literals.push(JsonType::Null),
            Value::Array(_) | Value::Object(_) => {
                return Err(StoreError::InvalidDocument(format!(
                    "condition on {field}: {} is an object or array; conditions compare \
                     strings, numbers, true, false and null",
                    crate::text::truncate(text, 100)
                )))
            }
        }
    }
    let mut placeholders = |values: Vec<String>| -> Vec<String> {
        values
            .into_iter()
            .map(|value| {
                params.push(value);
                dialect.param(first_param + params.len() - 1)
            })
            .collect()
    };
    let mut tests = Vec::new();
    if !strings.is_empty() {
        tests.push(dialect.string_in(field, &placeholders(strings)));
    }
    if !numbers.is_empty() {
        tests.push(dialect.number_in(field, &placeholders(numbers)));
    }
    tests.extend(literals.into_iter().map(|ty| dialect.is_type(field, ty)));
    Ok(match tests.len() {
        0 => "1=0".to_string(),
        1 => tests.pop().unwrap(),
        _ => tests
            .iter()
            .map(|t| format!("({t})"))
            .collect::<Vec<_>>()
            .join(" OR "),
    })
}
