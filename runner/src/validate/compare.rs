//! Comparisons behind the checks, each answering with lines that name the
//! collection, the record and the field that differ.

use crate::changelog::CollectionChanges;
use crate::overlay::{field_changes, FieldChange, TenantChange};
use crate::storage::CollectionDump;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Differences listed in a check's details; the rest are counted.
pub const MAX_DETAILS: usize = 20;

/// Collect difference lines, keeping the first `MAX_DETAILS` and counting the rest.
#[derive(Default)]
pub struct Differences {
    pub lines: Vec<String>,
    pub more: usize,
}

impl Differences {
    fn push(&mut self, line: String) {
        if self.lines.len() < MAX_DETAILS {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The line for a check's message: the first that names a record, or
    /// else the first.
    pub fn headline(&self) -> String {
        self.lines
            .iter()
            .find(|l| l.contains(", record "))
            .or(self.lines.first())
            .cloned()
            .unwrap_or_default()
    }

    /// The lines, with a last one counting those left out.
    pub fn into_details(self) -> Vec<String> {
        let mut lines = self.lines;
        if self.more > 0 {
            lines.push(format!("... and {} more differences", self.more));
        }
        lines
    }
}

fn show(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".into(),
        Some(value) => {
            let text = value.to_string();
            if text.chars().count() > 80 {
                format!("{}...", text.chars().take(77).collect::<String>())
            } else {
                text
            }
        }
    }
}

fn fields(a: &Value, b: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    field_changes("", Some(a), Some(b), &mut out);
    out
}

/// A module's collections, record by record: `(left name, left)` is what
/// was expected, `(right name, right)` what was found.
pub fn collections(
    (left_name, left): (&str, Option<&BTreeMap<String, CollectionDump>>),
    (right_name, right): (&str, Option<&BTreeMap<String, CollectionDump>>),
) -> Differences {
    let empty = BTreeMap::new();
    let (left, right) = (left.unwrap_or(&empty), right.unwrap_or(&empty));
    let mut out = Differences::default();
    let names: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    for name in names {
        let (l, r) = match (left.get(name), right.get(name)) {
            (Some(l), Some(r)) => (l, r),
            (Some(l), None) => {
                out.push(format!(
                    "collection {name} ({} records): in {left_name}, missing in {right_name}",
                    l.records.len()
                ));
                continue;
            }
            (None, Some(r)) => {
                out.push(format!(
                    "collection {name} ({} records): in {right_name}, not in {left_name}",
                    r.records.len()
                ));
                continue;
            }
            (None, None) => continue,
        };
        if l.indexes != r.indexes {
            let list = |d: &CollectionDump| {
                d.indexes
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(format!(
                "collection {name}: indexes differ: {left_name} [{}], {right_name} [{}]",
                list(l),
                list(r)
            ));
        }
        records(
            name,
            (left_name, &l.records),
            (right_name, &r.records),
            &mut out,
        );
    }
    out
}

/// Records of one collection (documents or vendor bases).
pub fn records(
    collection: &str,
    (left_name, left): (&str, &BTreeMap<String, Value>),
    (right_name, right): (&str, &BTreeMap<String, Value>),
    out: &mut Differences,
) {
    let ids: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    for id in ids {
        match (left.get(id), right.get(id)) {
            (Some(l), Some(r)) if l != r => {
                for change in fields(l, r).iter().take(3) {
                    out.push(format!(
                        "collection {collection}, record {id}, field {}: {left_name} {}, {right_name} {}",
                        field_name(&change.field),
                        show(change.vendor.as_ref()),
                        show(change.tenant.as_ref())
                    ));
                }
            }
            (Some(_), None) => out.push(format!(
                "collection {collection}, record {id}: in {left_name}, missing in {right_name}"
            )),
            (None, Some(_)) => out.push(format!(
                "collection {collection}, record {id}: in {right_name}, not in {left_name}"
            )),
            _ => {}
        }
    }
}

fn field_name(path: &str) -> String {
    if path.is_empty() {
        "(the whole document)".into()
    } else {
        path.to_string()
    }
}

/// Two change logs of the same job (a simulation and the real run, or runs
/// on two copies), collection by collection.
pub fn change_logs(
    (left_name, left): (&str, &[&CollectionChanges]),
    (right_name, right): (&str, &[&CollectionChanges]),
) -> Differences {
    let mut out = Differences::default();
    let key = |c: &&CollectionChanges| (c.module.clone(), c.collection.clone());
    let l: BTreeMap<_, _> = left.iter().map(|c| (key(c), *c)).collect();
    let r: BTreeMap<_, _> = right.iter().map(|c| (key(c), *c)).collect();
    let keys: BTreeSet<&(String, String)> = l.keys().chain(r.keys()).collect();
    for k @ (module, collection) in keys {
        let counts = |c: &CollectionChanges| {
            format!(
                "{} inserted, {} updated, {} deleted",
                c.inserted, c.updated, c.deleted
            )
        };
        let (a, b) = match (l.get(k), r.get(k)) {
            (Some(a), Some(b)) => (*a, *b),
            (Some(a), None) => {
                out.push(format!(
                    "module {module}, collection {collection}: {left_name} changed it ({}), {right_name} did not",
                    counts(a)
                ));
                continue;
            }
            (None, Some(b)) => {
                out.push(format!(
                    "module {module}, collection {collection}: {right_name} changed it ({}), {left_name} did not",
                    counts(b)
                ));
                continue;
            }
            (None, None) => continue,
        };
        if a == b {
            continue;
        }
        let at = format!("module {module}, collection {collection}");
        if (a.inserted, a.updated, a.deleted) != (b.inserted, b.updated, b.deleted) {
            out.push(format!(
                "{at}: {left_name} {}, {right_name} {}",
                counts(a),
                counts(b)
            ));
        }
        if a.schema != b.schema {
            out.push(format!(
                "{at}: schema changes differ: {left_name} {:?}, {right_name} {:?}",
                a.schema, b.schema
            ));
        }
        let mut sample_differs = false;
        for (x, y) in a.samples.iter().zip(&b.samples) {
            if x == y {
                continue;
            }
            sample_differs = true;
            if x.id != y.id || x.op != y.op {
                out.push(format!(
                    "{at}: {left_name} {:?} record {}, {right_name} {:?} record {} at the same point",
                    x.op, x.id, y.op, y.id
                ));
            } else {
                let (xa, ya) = (
                    x.after.clone().unwrap_or(Value::Null),
                    y.after.clone().unwrap_or(Value::Null),
                );
                for change in fields(&xa, &ya).iter().take(3) {
                    out.push(format!(
                        "{at}, record {}, field {}: {left_name} wrote {}, {right_name} wrote {}",
                        x.id,
                        field_name(&change.field),
                        show(change.vendor.as_ref()),
                        show(change.tenant.as_ref())
                    ));
                }
            }
            break;
        }
        if !sample_differs && a.samples.len() != b.samples.len() {
            // One run wrote records the other did not (the shorter log ran out).
            let n = a.samples.len().min(b.samples.len());
            let (who, other, extra) = if a.samples.len() > n {
                (left_name, right_name, &a.samples[n])
            } else {
                (right_name, left_name, &b.samples[n])
            };
            out.push(format!(
                "{at}, record {}: {who} made a {:?} that {other} did not",
                extra.id, extra.op
            ));
            sample_differs = true;
        }
        if !sample_differs && a.digest != b.digest {
            out.push(format!(
                "{at}: the first {} record changes agree, a later one differs (change digests {} and {})",
                a.samples.len(),
                a.digest,
                b.digest
            ));
        }
        if a.overlay != b.overlay {
            out.push(format!(
                "{at}: the reference data loads report differently ({left_name} {:?}, {right_name} {:?})",
                a.overlay.iter().map(|o| o.counts).collect::<Vec<_>>(),
                b.overlay.iter().map(|o| o.counts).collect::<Vec<_>>()
            ));
        }
    }
    out
}

/// Every tenant edit of the fixture (found against the vendor's bases) that
/// `after` no longer has.
pub fn lost_edits(
    edits: &[TenantChange],
    before: &BTreeMap<String, CollectionDump>,
    after: Option<&BTreeMap<String, CollectionDump>>,
) -> Differences {
    let mut out = Differences::default();
    let empty = BTreeMap::new();
    let after = after.unwrap_or(&empty);
    for edit in edits {
        let (collection, id) = (&edit.collection, &edit.record_id);
        let was = before.get(collection).and_then(|c| c.records.get(id));
        let now = after.get(collection).and_then(|c| c.records.get(id));
        match (edit.what.as_str(), was, now) {
            ("deleted", _, Some(_)) => out.push(format!(
                "collection {collection}, record {id}: the tenant deleted it, the upgrade brought it back"
            )),
            ("deleted", _, None) => {}
            (what, Some(_), None) => out.push(format!(
                "collection {collection}, record {id}: {what} by the tenant, gone after the upgrade"
            )),
            ("added", Some(was), Some(now)) if was != now => {
                for change in fields(was, now).iter().take(3) {
                    out.push(format!(
                        "collection {collection}, record {id} (the tenant's own), field {}: was {}, now {}",
                        field_name(&change.field),
                        show(change.vendor.as_ref()),
                        show(change.tenant.as_ref())
                    ));
                }
            }
            ("edited", Some(was), Some(now)) => {
                // An edit is lost when a field the upgrade changed overlaps
                // a field the tenant changed.
                let changed = fields(was, now);
                for edited in &edit.fields {
                    let overlapping = changed
                        .iter()
                        .find(|c| overlaps(&c.field, &edited.field));
                    if let Some(change) = overlapping {
                        out.push(format!(
                            "collection {collection}, record {id}, field {}: the tenant's value {}, after the upgrade {} (the vendor's was {})",
                            field_name(&edited.field),
                            show(edited.tenant.as_ref()),
                            show(change.tenant.as_ref()),
                            show(edited.vendor.as_ref())
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether two dotted field paths name the same value or one inside the other.
fn overlaps(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        outer.is_empty()
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    a == b || inside(a, b) || inside(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collection(records: &[(&str, Value)]) -> BTreeMap<String, CollectionDump> {
        let mut map = BTreeMap::new();
        map.insert(
            "groups".to_string(),
            CollectionDump {
                indexes: Vec::new(),
                records: records
                    .iter()
                    .map(|(id, doc)| (id.to_string(), doc.clone()))
                    .collect(),
            },
        );
        map
    }

    #[test]
    fn names_the_record_and_field_that_differ() {
        let a = collection(&[
            ("1", json!({"group": "staff", "desc": "x"})),
            ("2", json!({})),
        ]);
        let b = collection(&[("1", json!({"group": "staff", "desc": "y"}))]);
        let lines = collections(("fixture", Some(&a)), ("after rollback", Some(&b))).into_details();
        assert_eq!(
            lines,
            vec![
                "collection groups, record 1, field desc: fixture \"x\", after rollback \"y\"",
                "collection groups, record 2: in fixture, missing in after rollback",
            ]
        );
    }

    #[test]
    fn an_edit_is_lost_only_where_the_fields_overlap() {
        let before = collection(&[("1", json!({"group": "ours", "desc": "d", "n": {"a": 1}}))]);
        let edit = TenantChange {
            collection: "groups".into(),
            record_id: "1".into(),
            what: "edited".into(),
            fields: vec![FieldChange {
                field: "group".into(),
                vendor: Some(json!("vendor")),
                tenant: Some(json!("ours")),
            }],
        };
        let kept = collection(&[("1", json!({"group": "ours", "desc": "new", "n": {"a": 2}}))]);
        assert!(lost_edits(std::slice::from_ref(&edit), &before, Some(&kept)).is_empty());
        let lost = collection(&[("1", json!({"group": "vendor", "desc": "d", "n": {"a": 1}}))]);
        let lines = lost_edits(&[edit], &before, Some(&lost)).into_details();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("record 1, field group"), "{lines:?}");
        assert!(overlaps("n", "n.a") && overlaps("n.a", "n") && !overlaps("n", "name"));
    }
}
