//! The checks every backend makes before it writes, written once: names,
//! ids, field paths, documents (what the read path can read back) and
//! set-based changes; and the bounds they enforce.

use super::{FieldChange, IndexSpec, StoreError, StoreResult, TenantStore};

/// Before creating an index: `Some(false)` if one of that name and
/// definition exists (nothing to do), an error if one of that name differs,
/// `None` if there is none.
pub(crate) fn existing_index(
    db: &mut dyn TenantStore,
    module: &str,
    collection: &str,
    spec: &IndexSpec,
) -> StoreResult<Option<bool>> {
    check_name("index", &spec.name)?;
    check_index_fields(&spec.field)?;
    match db
        .list_indexes(module, collection)?
        .into_iter()
        .find(|i| i.name == spec.name)
    {
        None => Ok(None),
        Some(existing) if &existing == spec => Ok(Some(false)),
        Some(_) => Err(StoreError::InvalidName(format!(
            "index {} of {collection} exists with another definition: drop it first",
            spec.name
        ))),
    }
}

/// The largest document a record may have. A page of a scan holds at
/// least one whole record, so this also bounds what one read costs.
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// The most bytes of ids and documents one page of a scan holds: the caller
/// (and, for a plugin's scan, the host) holds a page whole.
pub const MAX_SCAN_PAGE_BYTES: usize = 64 << 20;

/// A scan page from rows in id order: at most `MAX_SCAN_PAGE_BYTES`, and at
/// least one record whatever its size. A page may so be shorter than asked
/// for; the end of a collection is an empty page.
pub(crate) fn page_by_bytes<E>(
    rows: impl Iterator<Item = Result<(String, String), E>>,
    error: impl Fn(E) -> StoreError,
) -> StoreResult<Vec<(String, String)>> {
    let mut page = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let (id, doc) = row.map_err(&error)?;
        bytes += id.len() + doc.len();
        if bytes > MAX_SCAN_PAGE_BYTES && !page.is_empty() {
            break;
        }
        page.push((id, doc));
    }
    Ok(page)
}

/// A record's document must be one JSON object, strictly RFC 8259 (SQLite's
/// own parser would also take JSON5, which PostgreSQL refuses: a plugin
/// tested on one backend must not fail on the other), and readable by
/// every reader of the runner: what is checked here is exactly what the
/// read path (`serde_json`) accepts, so a record that was written can
/// always be listed, dumped and captured again. That refuses lone UTF-16
/// surrogates, numbers out of a double's range (`1e999`) and nesting
/// deeper than 128. The error names the record and where the text goes
/// wrong.
pub(crate) fn check_document(id: &str, doc: &str) -> StoreResult<()> {
    if doc.len() > MAX_DOCUMENT_BYTES {
        return Err(StoreError::InvalidDocument(format!(
            "record {}: the document has {} bytes, more than the {} MiB a record may have",
            crate::text::truncate(id, 255),
            doc.len(),
            MAX_DOCUMENT_BYTES >> 20
        )));
    }
    if let Err(e) = json_check::readable(doc) {
        return Err(StoreError::InvalidDocument(format!(
            "record {}: the document is not JSON graft can read back: {e}",
            crate::text::truncate(id, 255)
        )));
    }
    if !doc.trim_start().starts_with('{') {
        return Err(StoreError::InvalidDocument(format!(
            "record {}: the document is not a JSON object",
            crate::text::truncate(id, 255)
        )));
    }
    Ok(())
}

/// The value of a set-based change must be JSON the read path accepts
/// (see `check_document`).
pub(crate) fn check_json_value(value: &str) -> StoreResult<()> {
    if value.len() > MAX_DOCUMENT_BYTES {
        return Err(StoreError::InvalidDocument(format!(
            "a value of {} bytes, more than the {} MiB a record may have",
            value.len(),
            MAX_DOCUMENT_BYTES >> 20
        )));
    }
    json_check::readable(value).map_err(|e| {
        StoreError::InvalidDocument(format!(
            "value {:?} is not JSON graft can read back: {e}",
            crate::text::truncate(value, 200)
        ))
    })
}

/// Checks a set-based change before any backend sees it: its fields, a
/// rename that goes somewhere else (not onto itself, not into itself,
/// which would delete the field), and its value.
pub(crate) fn check_change(change: &FieldChange) -> StoreResult<()> {
    match change {
        FieldChange::SetDefault { field, value } | FieldChange::Set { field, value } => {
            check_field(field)?;
            check_json_value(value)
        }
        FieldChange::Remove { field } => check_field(field),
        FieldChange::Rename { from, to } | FieldChange::Copy { from, to } => {
            check_field(from)?;
            check_field(to)?;
            // Onto itself or into itself, a moved field would be deleted;
            // onto a field that holds it, whatever of its value shares a
            // name with it would be. A copy is held to the same, since it
            // would nest a value inside itself.
            if from == to
                || to.starts_with(&format!("{from}."))
                || from.starts_with(&format!("{to}."))
            {
                let verb = match change {
                    FieldChange::Copy { .. } => "copy",
                    _ => "rename",
                };
                return Err(StoreError::InvalidName(format!(
                    "{verb} {from} to {to}: a field cannot go onto itself or into itself, \
                     nor onto a field that holds it"
                )));
            }
            Ok(())
        }
    }
}

/// A JSON check that allocates nothing: serde_json's own parser, with its
/// own limits, visiting every value and discarding it.
mod json_check {
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Readable;

    impl<'de> Deserialize<'de> for Readable {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ReadableVisitor)
        }
    }

    struct ReadableVisitor;

    impl<'de> Visitor<'de> for ReadableVisitor {
        type Value = Readable;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_str<E>(self, _: &str) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_unit<E>(self) -> Result<Readable, E> {
            Ok(Readable)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Readable, A::Error> {
            while seq.next_element::<Readable>()?.is_some() {}
            Ok(Readable)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Readable, A::Error> {
            while map.next_entry::<Readable, Readable>()?.is_some() {}
            Ok(Readable)
        }
    }

    pub fn readable(text: &str) -> Result<(), serde_json::Error> {
        serde_json::from_str::<Readable>(text).map(|_| ())
    }
}

/// An index's expressions, one per field (several for a compound index),
/// each the backend's `extract` of the field, in `lower(...)` when
/// case-insensitive.
pub(crate) fn index_expressions(spec: &IndexSpec, extract: impl Fn(&str) -> String) -> String {
    spec.field
        .split(',')
        .map(|field| {
            if spec.case_insensitive {
                format!("lower({})", extract(field))
            } else {
                extract(field)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The longest key of a module's state.
pub const MAX_STATE_KEY_BYTES: usize = 128;
/// The largest value of a module's state.
pub const MAX_STATE_VALUE_BYTES: usize = 64 << 10;
/// The keys one module's state may hold.
pub const MAX_STATE_KEYS: usize = 256;

/// A key of a module's state: 1 to 128 letters, digits, `.`, `_`, `-`, `:`.
pub fn check_state_key(key: &str) -> StoreResult<()> {
    let ok = !key.is_empty()
        && key.len() <= MAX_STATE_KEY_BYTES
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(format!(
            "module state key {:?}: use 1 to {MAX_STATE_KEY_BYTES} letters, digits, '.', '_', \
             '-' or ':'",
            crate::text::truncate(key, 200)
        )))
    }
}

/// A value of a module's state: text of at most 64 KiB.
pub fn check_state_value(key: &str, value: &str) -> StoreResult<()> {
    if value.len() > MAX_STATE_VALUE_BYTES {
        return Err(StoreError::InvalidDocument(format!(
            "module state {key}: a value of {} bytes is more than the {} KiB allowed",
            value.len(),
            MAX_STATE_VALUE_BYTES >> 10
        )));
    }
    Ok(())
}

/// Record ids: 1 to 255 characters.
pub(crate) fn check_id(id: &str) -> StoreResult<()> {
    if id.is_empty() || id.len() > 255 {
        return Err(StoreError::InvalidName(format!(
            "record id {:?}: use 1 to 255 characters",
            crate::text::truncate(id, 200)
        )));
    }
    Ok(())
}

/// Checks a collection or index name: what a plugin passes is used in
/// table names, so only plain names are allowed.
pub fn check_name(kind: &str, name: &str) -> StoreResult<()> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(format!(
            "{kind} name {:?}: use 1 to 63 letters, digits, '-' or '_', starting with a letter",
            crate::text::truncate(name, 200)
        )))
    }
}

/// Checks an index field: a dotted path, or several joined by commas for
/// a compound index (`code,statisticalCodeTypeId`).
pub fn check_index_fields(fields: &str) -> StoreResult<()> {
    fields.split(',').try_for_each(check_field)
}

/// A field path's bounds: the backends walk paths in their own (recursive)
/// code on the runner's stack, so a guest's path of 100,000 parts must
/// never reach them.
pub const MAX_FIELD_DEPTH: usize = 32;
pub const MAX_FIELD_BYTES: usize = 1024;

/// Checks a dotted field path such as `personal.email`.
pub fn check_field(field: &str) -> StoreResult<()> {
    let ok = !field.is_empty()
        && field.len() <= MAX_FIELD_BYTES
        && field.split('.').count() <= MAX_FIELD_DEPTH
        && field.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(format!(
            "field path {:?}: use names of letters, digits and '_' joined by '.', at most \
             {MAX_FIELD_DEPTH} names and {MAX_FIELD_BYTES} characters",
            crate::text::truncate(field, 200)
        )))
    }
}
