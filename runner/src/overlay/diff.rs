//! What a tenant changed in a module's system and reference data, against
//! the vendor's copies (`graft reference diff`).

use super::*;

/// What a tenant changed against the vendor's base, field by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantChange {
    pub collection: String,
    pub record_id: String,
    /// `edited`, `deleted` or `added`.
    pub what: String,
    /// For edits: each field with the vendor's and the tenant's value.
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub vendor: Option<Value>,
    pub tenant: Option<Value>,
}

/// Every change a tenant made to a module's system and reference data.
pub fn diff(db: &mut dyn TenantStore, module: &str) -> Result<Vec<TenantChange>, StoreError> {
    let mut changes = Vec::new();
    for (collection, _) in db.base_collections(module)? {
        let bases: std::collections::BTreeMap<String, String> =
            db.base_records(module, &collection)?.into_iter().collect();
        for (id, base) in &bases {
            let base = parse(Some(base.clone()));
            match parse(db.get(module, &collection, id)?) {
                None => changes.push(TenantChange {
                    collection: collection.clone(),
                    record_id: id.clone(),
                    what: "deleted".into(),
                    fields: Vec::new(),
                }),
                Some(current) if Some(&current) != base.as_ref() => {
                    let mut fields = Vec::new();
                    field_changes("", base.as_ref(), Some(&current), &mut fields);
                    changes.push(TenantChange {
                        collection: collection.clone(),
                        record_id: id.clone(),
                        what: "edited".into(),
                        fields,
                    });
                }
                Some(_) => {}
            }
        }
        let mut after: Option<String> = None;
        loop {
            let page = db.scan(module, &collection, after.as_deref(), 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (id, _) in page.into_iter().filter(|(id, _)| !bases.contains_key(id)) {
                changes.push(TenantChange {
                    collection: collection.clone(),
                    record_id: id,
                    what: "added".into(),
                    fields: Vec::new(),
                });
            }
        }
    }
    Ok(changes)
}

pub(crate) fn field_changes(
    path: &str,
    vendor: Option<&Value>,
    tenant: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    if vendor == tenant {
        return;
    }
    if let (Some(Value::Object(v)), Some(Value::Object(t))) = (vendor, tenant) {
        let keys: BTreeSet<&String> = v.keys().chain(t.keys()).collect();
        for key in keys {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            field_changes(&field, v.get(key), t.get(key), out);
        }
        return;
    }
    out.push(FieldChange {
        field: path.to_string(),
        vendor: vendor.cloned(),
        tenant: tenant.cloned(),
    });
}
