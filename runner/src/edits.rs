//! Operators' (and tests') direct access to a tenant's records: list, get,
//! put and delete, through the same storage and constraint checks as
//! plugins, each write a job of its own in the change log.

use crate::changelog::{self, CollectionChanges, RecordingStore};
use crate::overlay::{self, TenantChange};
use crate::storage::{now, JobRecord, TenantStore};
use crate::Graft;
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

/// A write to one record.
#[derive(Debug, Clone)]
pub enum Edit {
    Put { id: String, doc: Value },
    Delete { id: String },
}

/// What a write did: the job that recorded it and its changes.
#[derive(Debug, serde::Serialize)]
pub struct EditReport {
    pub job_id: String,
    pub changes: Vec<CollectionChanges>,
}

impl Graft {
    /// Every record of a collection, in id order.
    pub fn data_list(
        &self,
        tenant: &str,
        module: &str,
        collection: &str,
    ) -> Result<Vec<(String, Value)>> {
        let mut db = self.tenants.open(tenant)?;
        let mut records = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = db
                .scan(module, collection, after.as_deref(), 1000)
                .map_err(|e| anyhow!("tenant {tenant}, module {module}: {e}"))?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (id, doc) in page {
                records.push((id, serde_json::from_str(&doc)?));
            }
        }
        Ok(records)
    }

    /// How many records a collection has.
    pub fn data_count(&self, tenant: &str, module: &str, collection: &str) -> Result<u64> {
        let mut db = self.tenants.open(tenant)?;
        db.count(module, collection)
            .map_err(|e| anyhow!("tenant {tenant}, module {module}: {e}"))
    }

    pub fn data_get(
        &self,
        tenant: &str,
        module: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<Value>> {
        let mut db = self.tenants.open(tenant)?;
        let doc = db
            .get(module, collection, id)
            .map_err(|e| anyhow!("tenant {tenant}, module {module}: {e}"))?;
        Ok(doc.map(|doc| serde_json::from_str(&doc)).transpose()?)
    }

    /// Write one record as the tenant would, in a job of its own.
    pub fn data_edit(
        &self,
        tenant: &str,
        module: &str,
        collection: &str,
        edit: &Edit,
    ) -> Result<EditReport> {
        let _lock = self.tenants.lock(tenant)?;
        let mut db = RecordingStore::new(self.tenants.open_to_write(tenant)?);
        let started_at = now();
        let job_id = crate::install::job_id();
        db.begin()?;
        let done = match edit {
            Edit::Put { id, doc } => {
                if !doc.is_object() {
                    bail!("the record {id} must be a JSON object");
                }
                db.put(module, collection, id, &doc.to_string())
                    .map(|_| true)
            }
            Edit::Delete { id } => db.delete(module, collection, id),
        };
        let (action, id) = match edit {
            Edit::Put { id, .. } => ("put", id),
            Edit::Delete { id } => ("delete", id),
        };
        let done = match done {
            Ok(done) => done,
            Err(e) => {
                db.rollback().ok();
                bail!(
                    "tenant {tenant}, module {module}, collection {collection}, record {id}: {e}"
                );
            }
        };
        if !done {
            db.rollback().ok();
            bail!("tenant {tenant}, module {module}, collection {collection}: no record {id}");
        }
        let changes = db.take_changes();
        let job = JobRecord {
            job_id: job_id.clone(),
            started_at,
            finished_at: now(),
            commit: "data".into(),
            plan: json!([{ "data": action, "module": module, "collection": collection, "id": id }]),
        };
        if let Err(e) = changelog::save_job(&mut db, &job, &changes).and_then(|()| db.commit()) {
            db.rollback().ok();
            bail!("tenant {tenant}: cannot commit: {e}");
        }
        Ok(EditReport { job_id, changes })
    }

    /// What the tenant changed in a module's system and reference data,
    /// against the vendor's copies.
    pub fn reference_diff(&self, tenant: &str, module: &str) -> Result<Vec<TenantChange>> {
        let mut db = self.tenants.open(tenant)?;
        let modules = db.modules().map_err(|e| anyhow!("tenant {tenant}: {e}"))?;
        if !modules.iter().any(|m| m.name == module) {
            let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
            bail!(
                "tenant {tenant} has no module {module} (it has: {}): name one of them, without \
                 its version",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
        overlay::diff(&mut *db, module)
            .map_err(|e| anyhow!("tenant {tenant}, module {module}: {e}"))
    }
}
