//! Loading vendor data so that an upgrade never loses what a tenant did.
//!
//! For every system and reference record it loads, the runner keeps the
//! vendor's copy as the record's *base* (per tenant, with the release it came
//! from). A tenant's edit or deletion is found by comparing the stored
//! record with that base; no hook on tenant edits is needed.
//!
//! Reference data, three ways (base, tenant, vendor), field by field:
//! - a record the tenant never touched takes the vendor's new version;
//! - a field the vendor changed and the tenant did not is applied, keeping
//!   the tenant's changes to other fields;
//! - a field both changed to different values keeps the tenant's value and is
//!   reported as a conflict with both values;
//! - a record the tenant deleted stays deleted, reported;
//! - a record the vendor dropped is removed if the tenant never touched it,
//!   kept and reported if the tenant edited it (see [`finish`]);
//! - a new vendor record that collides on a unique index with a record of
//!   the tenant's is not loaded, reported, and the load goes on.
//!
//! System data: the vendor always wins; a tenant change is reverted and
//! reported. Sample data: inserted where absent, never overwritten.

use crate::storage::WriteCounts;
use crate::storage::{StoreError, TenantStore, WriteEffect};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod diff;

pub(crate) use diff::field_changes;
pub use diff::{diff, FieldChange, TenantChange};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    System,
    Reference,
    Sample,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::System => "system",
            Kind::Reference => "reference",
            Kind::Sample => "sample",
        }
    }
}

/// What loads did to one collection, in counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayCounts {
    /// New records inserted.
    pub inserted: u64,
    /// Vendor changes applied to records the tenant never touched.
    pub applied: u64,
    /// Vendor changes merged into records the tenant edited.
    pub merged: u64,
    /// Records the tenant edited, kept as they are (nothing of the vendor's to merge).
    pub kept: u64,
    /// Records with at least one field both changed: the tenant's value stays.
    pub conflicts: u64,
    /// Records the tenant deleted, not re-created.
    pub deletions_kept: u64,
    /// Records the vendor dropped and the tenant never touched: removed.
    pub removed: u64,
    /// Records the vendor dropped but the tenant edited: kept.
    pub dropped_kept: u64,
    /// Tenant changes to system data, reverted to the vendor's copy.
    pub reverted: u64,
    /// Vendor records not loaded: a collision on a unique index, or not a record.
    pub skipped: u64,
    /// Records already equal to the vendor's copy.
    pub unchanged: u64,
}

/// One record the operator should hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayNote {
    pub record_id: String,
    /// `conflict`, `merged`, `deletion-kept`, `removed`, `dropped-kept`,
    /// `reverted` or `skipped`.
    pub what: String,
    pub detail: String,
    /// For conflicts: each field both changed, with the three values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldConflict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldConflict {
    pub field: String,
    pub base: Option<Value>,
    pub tenant: Option<Value>,
    pub vendor: Option<Value>,
}

/// Everything loads did to one collection in one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionOverlay {
    pub collection: String,
    pub kind: Kind,
    pub counts: OverlayCounts,
    /// The first notes (at most [`NOTES`]); the counts are complete.
    pub notes: Vec<OverlayNote>,
    /// Ids the vendor shipped in this step, to find what it dropped.
    #[serde(skip)]
    pub seen: BTreeSet<String>,
}

/// Notes kept per collection and step.
pub const NOTES: usize = 1000;

impl CollectionOverlay {
    pub fn new(collection: &str, kind: Kind) -> Self {
        CollectionOverlay {
            collection: collection.to_string(),
            kind,
            counts: OverlayCounts::default(),
            notes: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    fn note(&mut self, record_id: &str, what: &str, detail: String, fields: Vec<FieldConflict>) {
        if self.notes.len() < NOTES {
            self.notes.push(OverlayNote {
                record_id: record_id.to_string(),
                what: what.to_string(),
                detail,
                fields,
            });
        }
    }
}

/// Load records of one kind into a module's collection, as release
/// `release` of the module ships them. Returns the writes made; counts and
/// notes go to `overlay`.
pub fn load(
    db: &mut dyn TenantStore,
    module: &str,
    release: &str,
    overlay: &mut CollectionOverlay,
    records: &[(String, String)],
) -> Result<WriteCounts, StoreError> {
    let mut writes = WriteCounts::default();
    let collection = overlay.collection.clone();
    for (id, doc) in records {
        overlay.seen.insert(id.clone());
        let vendor: Value = match serde_json::from_str(doc) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                overlay.counts.skipped += 1;
                overlay.note(
                    id,
                    "skipped",
                    "not loaded: not a JSON object".into(),
                    Vec::new(),
                );
                continue;
            }
        };
        // The base is read once, and written only when the vendor's copy
        // changed: reloading a release rewrites nothing.
        let base_text = match overlay.kind {
            Kind::Sample => None,
            Kind::System | Kind::Reference => db.get_base(module, &collection, id)?,
        };
        let base = parse(base_text.clone());
        let result = match overlay.kind {
            Kind::Sample => load_sample(db, module, &collection, id, doc, overlay),
            Kind::System => load_system(db, module, &collection, id, doc, base, &vendor, overlay),
            Kind::Reference => load_reference(db, module, &collection, id, base, &vendor, overlay),
        };
        match result {
            Ok(written) => {
                writes.add(written);
                let base_changed = base_text.as_deref() != Some(doc.as_str());
                if overlay.kind != Kind::Sample && base_changed {
                    db.put_base(module, &collection, id, doc, release, overlay.kind.name())?;
                }
            }
            Err(StoreError::UniqueViolation { index, .. }) => {
                overlay.counts.skipped += 1;
                overlay.note(
                    id,
                    "skipped",
                    format!(
                        "not loaded: collides on unique index {index} with a record the tenant has"
                    ),
                    Vec::new(),
                );
            }
            Err(StoreError::InvalidDocument(why)) | Err(StoreError::InvalidName(why)) => {
                overlay.counts.skipped += 1;
                overlay.note(id, "skipped", format!("not loaded: {why}"), Vec::new());
            }
            Err(other) => return Err(other),
        }
    }
    Ok(writes)
}

fn load_sample(
    db: &mut dyn TenantStore,
    module: &str,
    collection: &str,
    id: &str,
    doc: &str,
    overlay: &mut CollectionOverlay,
) -> Result<WriteCounts, StoreError> {
    if db.insert_if_absent(module, collection, id, doc)? {
        overlay.counts.inserted += 1;
        return Ok(WriteCounts {
            inserted: 1,
            ..WriteCounts::default()
        });
    }
    overlay.counts.unchanged += 1;
    Ok(WriteCounts::default())
}

#[allow(clippy::too_many_arguments)]
fn load_system(
    db: &mut dyn TenantStore,
    module: &str,
    collection: &str,
    id: &str,
    doc: &str,
    base: Option<Value>,
    vendor: &Value,
    overlay: &mut CollectionOverlay,
) -> Result<WriteCounts, StoreError> {
    let current = parse(db.get(module, collection, id)?);
    let effect = db.put(module, collection, id, doc)?;
    let tenant_changed = matches!((&base, &current), (Some(b), Some(c)) if b != c);
    match effect {
        WriteEffect::Inserted => overlay.counts.inserted += 1,
        WriteEffect::Unchanged => overlay.counts.unchanged += 1,
        WriteEffect::Replaced if tenant_changed && current.as_ref() != Some(vendor) => {
            overlay.counts.reverted += 1;
            overlay.note(
                id,
                "reverted",
                "system data: the tenant's change was replaced by the vendor's copy".into(),
                Vec::new(),
            );
        }
        WriteEffect::Replaced => overlay.counts.applied += 1,
    }
    Ok(count(effect))
}

fn load_reference(
    db: &mut dyn TenantStore,
    module: &str,
    collection: &str,
    id: &str,
    base: Option<Value>,
    vendor: &Value,
    overlay: &mut CollectionOverlay,
) -> Result<WriteCounts, StoreError> {
    let current = parse(db.get(module, collection, id)?);
    match (base, current) {
        (Some(_), None) => {
            overlay.counts.deletions_kept += 1;
            overlay.note(
                id,
                "deletion-kept",
                "the tenant deleted this record: not re-created".into(),
                Vec::new(),
            );
            Ok(WriteCounts::default())
        }
        (None, None) => {
            let inserted = db.insert_if_absent(module, collection, id, &vendor.to_string())?;
            overlay.counts.inserted += u64::from(inserted);
            Ok(WriteCounts {
                inserted: u64::from(inserted),
                ..WriteCounts::default()
            })
        }
        // Present but never loaded by the runner: whatever it is, it is the
        // tenant's now; from here on the vendor's copy is its base.
        (None, Some(current)) => {
            if &current == vendor {
                overlay.counts.unchanged += 1;
            } else {
                overlay.counts.kept += 1;
            }
            Ok(WriteCounts::default())
        }
        (Some(base), Some(current)) => {
            if &current == vendor {
                overlay.counts.unchanged += 1;
                return Ok(WriteCounts::default());
            }
            if current == base {
                let effect = db.put(module, collection, id, &vendor.to_string())?;
                overlay.counts.applied += 1;
                return Ok(count(effect));
            }
            let mut conflicts = Vec::new();
            let merged = merge(&base, &current, vendor, &mut conflicts);
            if !conflicts.is_empty() {
                overlay.counts.conflicts += 1;
                let fields: Vec<&str> = conflicts.iter().map(|c| c.field.as_str()).collect();
                overlay.note(
                    id,
                    "conflict",
                    format!("the tenant's values kept for {}", fields.join(", ")),
                    conflicts,
                );
            }
            if merged == current {
                overlay.counts.kept += 1;
                return Ok(WriteCounts::default());
            }
            let effect = db.put(module, collection, id, &merged.to_string())?;
            overlay.counts.merged += 1;
            overlay.note(
                id,
                "merged",
                "the vendor's changes merged with the tenant's".into(),
                Vec::new(),
            );
            Ok(count(effect))
        }
    }
}

/// After a load step: the step shipped the release's whole set of its
/// kind, so vendor records it did not ship were dropped, including whole
/// collections the release no longer has data for. Reports on collections
/// that were not loaded but lost records are added to `overlays`.
pub fn finish_step(
    db: &mut dyn TenantStore,
    module: &str,
    overlays: &mut Vec<CollectionOverlay>,
) -> Result<WriteCounts, StoreError> {
    let mut writes = WriteCounts::default();
    for overlay in overlays.iter_mut() {
        writes.add(finish(db, module, overlay)?);
    }
    // Only kinds the step loaded something of: a step that loads nothing
    // says nothing about what the vendor dropped.
    let loaded: Vec<Kind> = [Kind::System, Kind::Reference]
        .into_iter()
        .filter(|kind| {
            overlays
                .iter()
                .any(|o| o.kind == *kind && !o.seen.is_empty())
        })
        .collect();
    for (collection, kind) in db.base_collections(module)? {
        let Some(kind) = loaded.iter().find(|k| k.name() == kind) else {
            continue;
        };
        if overlays
            .iter()
            .any(|o| o.collection == collection && o.kind == *kind)
        {
            continue;
        }
        let mut overlay = CollectionOverlay::new(&collection, *kind);
        writes.add(finish(db, module, &mut overlay)?);
        overlays.push(overlay);
    }
    Ok(writes)
}

/// After a step's loads: records whose base the vendor no longer ships are
/// removed where the tenant never touched them, kept where it did.
fn finish(
    db: &mut dyn TenantStore,
    module: &str,
    overlay: &mut CollectionOverlay,
) -> Result<WriteCounts, StoreError> {
    let mut writes = WriteCounts::default();
    if overlay.kind == Kind::Sample {
        return Ok(writes);
    }
    let collection = overlay.collection.clone();
    for (id, base) in db.base_records(module, &collection)? {
        if overlay.seen.contains(&id) {
            continue;
        }
        let base = parse(Some(base));
        let current = parse(db.get(module, &collection, &id)?);
        match current {
            None => {}
            Some(current) if Some(&current) == base.as_ref() || overlay.kind == Kind::System => {
                db.delete(module, &collection, &id)?;
                writes.deleted += 1;
                overlay.counts.removed += 1;
                overlay.note(
                    &id,
                    "removed",
                    "the vendor dropped this record and the tenant never changed it".into(),
                    Vec::new(),
                );
            }
            Some(_) => {
                overlay.counts.dropped_kept += 1;
                overlay.note(
                    &id,
                    "dropped-kept",
                    "the vendor dropped this record; the tenant edited it, so it stays".into(),
                    Vec::new(),
                );
            }
        }
        db.delete_base(module, &collection, &id)?;
    }
    Ok(writes)
}

/// Three-way merge of JSON documents, field by field (objects recursively;
/// any other value as a whole). Both sides changing one field to different
/// values keeps the tenant's value and records a conflict.
pub fn merge(
    base: &Value,
    tenant: &Value,
    vendor: &Value,
    conflicts: &mut Vec<FieldConflict>,
) -> Value {
    merge_at("", Some(base), Some(tenant), Some(vendor), conflicts).unwrap_or(Value::Null)
}

fn merge_at(
    path: &str,
    base: Option<&Value>,
    tenant: Option<&Value>,
    vendor: Option<&Value>,
    conflicts: &mut Vec<FieldConflict>,
) -> Option<Value> {
    if tenant == base || tenant == vendor {
        return vendor.cloned();
    }
    if vendor == base {
        return tenant.cloned();
    }
    if let (Some(Value::Object(b)), Some(Value::Object(t)), Some(Value::Object(v))) =
        (base, tenant, vendor)
    {
        let keys: BTreeSet<&String> = b.keys().chain(t.keys()).chain(v.keys()).collect();
        let mut merged = Map::new();
        for key in keys {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if let Some(value) = merge_at(&field, b.get(key), t.get(key), v.get(key), conflicts) {
                merged.insert(key.clone(), value);
            }
        }
        return Some(Value::Object(merged));
    }
    conflicts.push(FieldConflict {
        field: if path.is_empty() {
            "(record)".into()
        } else {
            path.to_string()
        },
        base: base.cloned(),
        tenant: tenant.cloned(),
        vendor: vendor.cloned(),
    });
    tenant.cloned()
}

fn parse(doc: Option<String>) -> Option<Value> {
    doc.and_then(|doc| serde_json::from_str(&doc).ok())
}

fn count(effect: WriteEffect) -> WriteCounts {
    match effect {
        WriteEffect::Inserted => WriteCounts {
            inserted: 1,
            ..WriteCounts::default()
        },
        WriteEffect::Replaced => WriteCounts {
            updated: 1,
            ..WriteCounts::default()
        },
        WriteEffect::Unchanged => WriteCounts::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_field_by_field() {
        let base = json!({"id": "1", "name": "Book", "code": "b", "source": "folio"});
        let tenant = json!({"id": "1", "name": "Our book", "code": "b", "source": "folio"});
        let vendor = json!({"id": "1", "name": "Book", "code": "bk", "source": "rdacontent"});
        let mut conflicts = Vec::new();
        let merged = merge(&base, &tenant, &vendor, &mut conflicts);
        assert_eq!(
            merged,
            json!({"id": "1", "name": "Our book", "code": "bk", "source": "rdacontent"})
        );
        assert!(conflicts.is_empty());
    }

    #[test]
    fn a_field_both_changed_keeps_the_tenants_value() {
        let base = json!({"name": "a", "nested": {"x": 1, "y": 1}});
        let tenant = json!({"name": "tenant", "nested": {"x": 2, "y": 1}});
        let vendor = json!({"name": "vendor", "nested": {"x": 1, "y": 3}, "added": true});
        let mut conflicts = Vec::new();
        let merged = merge(&base, &tenant, &vendor, &mut conflicts);
        assert_eq!(
            merged,
            json!({"name": "tenant", "nested": {"x": 2, "y": 3}, "added": true})
        );
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].field, "name");
        assert_eq!(conflicts[0].vendor, Some(json!("vendor")));
    }

    #[test]
    fn removed_fields_merge_too() {
        let base = json!({"a": 1, "b": 2});
        let tenant = json!({"a": 1, "b": 2, "c": 3});
        let vendor = json!({"a": 1});
        let mut conflicts = Vec::new();
        assert_eq!(
            merge(&base, &tenant, &vendor, &mut conflicts),
            json!({"a": 1, "c": 3})
        );
        assert!(conflicts.is_empty());
    }
}
