//! `graft adopt`: take over a module's schema in an existing FOLIO database
//! (PostgreSQL), so that later upgrades run on it.
//!
//! Every table of `<tenant>_<module>` with FOLIO's `id` and `jsonb` columns
//! becomes a collection (named after the table, `_` -> `-`, unless mapped),
//! with the indexes graft can read. The package of the module's release
//! says what the vendor shipped: its system and reference records become
//! the overlay's bases where that data was loaded, so a tenant's edits are
//! found against them and kept by the next upgrade. All in one transaction,
//! under the tenant's lock.

use crate::package::Package;
use crate::storage::postgres::AdoptedTable;
use crate::storage::Database;
use crate::storage::{now, EnabledModule, HistoryEntry, PostgresStore, TenantStore};
use crate::{Graft, ModuleId};
use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct AdoptReport {
    pub tenant: String,
    pub module: String,
    pub schema: String,
    pub collections: Vec<AdoptedTable>,
    /// Vendor records recorded as bases, by collection.
    pub bases: BTreeMap<String, u64>,
    /// Tables left alone, and why.
    pub skipped: Vec<(String, String)>,
}

impl Graft {
    /// Adopt `id`'s schema for `tenant`; `names` maps tables to collection
    /// names where they differ from the table name with `_` -> `-`.
    pub fn adopt(
        &self,
        tenant: &str,
        id: &ModuleId,
        names: &BTreeMap<String, String>,
    ) -> Result<AdoptReport> {
        let Database::Postgres(url) = self.tenants.database() else {
            bail!("adopt takes over a PostgreSQL schema: give --database postgres://...");
        };
        let package = self.catalog.find(id)?;
        crate::storage::check_tenant_id(tenant)?;
        if !self.tenants.list()?.iter().any(|t| t == tenant) {
            self.tenants.create(tenant)?;
        }
        let _lock = self.tenants.lock(tenant)?;
        let mut db = PostgresStore::open(url, tenant)?;
        if db
            .modules()
            .map_err(|e| anyhow!("{e}"))?
            .iter()
            .any(|m| m.name == id.name)
        {
            bail!(
                "tenant {tenant} has {} registered already: see `graft status --tenant {tenant}`",
                id.name
            );
        }
        let (schema, tables) = db.schema_tables(&id.name).map_err(|e| anyhow!("{e}"))?;
        if tables.is_empty() {
            bail!(
                "no schema {schema} with tables in the database: adopt needs the module's data in FOLIO's layout"
            );
        }
        db.begin().map_err(|e| anyhow!("{e}"))?;
        let adopted = adopt_in(&mut db, tenant, &package, &schema, &tables, names);
        match adopted {
            Ok(report) => {
                db.commit().map_err(|e| anyhow!("{e}"))?;
                Ok(report)
            }
            Err(e) => {
                db.rollback().ok();
                Err(e)
            }
        }
    }
}

fn adopt_in(
    db: &mut PostgresStore,
    tenant: &str,
    package: &Package,
    schema: &str,
    tables: &[(String, bool)],
    names: &BTreeMap<String, String>,
) -> Result<AdoptReport> {
    let id = &package.id;
    let module = id.name.as_str();
    let mut report = AdoptReport {
        tenant: tenant.to_string(),
        module: id.to_string(),
        schema: schema.to_string(),
        collections: Vec::new(),
        bases: BTreeMap::new(),
        skipped: Vec::new(),
    };
    for (table, layout) in tables {
        if !layout {
            report.skipped.push((
                table.clone(),
                "no `id` (uuid or text) and `jsonb` columns".into(),
            ));
            continue;
        }
        let collection = names
            .get(table)
            .cloned()
            .unwrap_or_else(|| table.replace('_', "-"));
        let adopted = db
            .adopt_table(module, &collection, table)
            .map_err(|e| anyhow!("table {schema}.{table}: {e}"))?;
        report.collections.push(adopted);
    }
    let release = id.version.as_str();
    for (folder, kind) in [("system-data", "system"), ("reference-data", "reference")] {
        let dir = package.dir.join(folder);
        if !dir.is_dir() {
            continue;
        }
        for collection in sorted_dirs(&dir)? {
            let name = collection
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !report.collections.iter().any(|c| c.collection == name) {
                continue;
            }
            let records = vendor_records(&collection)?;
            // The data was loaded if any of the vendor's records is there;
            // then an absent one is one the tenant deleted.
            let mut loaded = false;
            for (record_id, _) in &records {
                if db
                    .get(module, &name, record_id)
                    .map_err(|e| anyhow!("{e}"))?
                    .is_some()
                {
                    loaded = true;
                    break;
                }
            }
            if !loaded {
                continue;
            }
            for (record_id, doc) in &records {
                db.put_base(module, &name, record_id, doc, release, kind)
                    .map_err(|e| anyhow!("base {name}/{record_id}: {e}"))?;
            }
            report.bases.insert(name, records.len() as u64);
        }
    }
    let records: u64 = report.collections.iter().map(|c| c.records).sum();
    let store = |e: crate::storage::StoreError| anyhow!("{e}");
    db.add_history(&HistoryEntry {
        job_id: crate::install::job_id(),
        module_name: module.to_string(),
        step: "adopt".into(),
        module_from: None,
        module_to: id.to_string(),
        outcome: "adopted".into(),
        detail: Some(format!(
            "schema {schema}: {} collections, {records} records, {} vendor bases",
            report.collections.len(),
            report.bases.values().sum::<u64>()
        )),
        inserted: 0,
        updated: 0,
        deleted: 0,
        duration_ms: 0,
        plugin_sha256: String::new(),
        at: now(),
    })
    .map_err(store)?;
    db.set_module(&EnabledModule {
        name: module.to_string(),
        module_id: id.to_string(),
        enabled: true,
        updated_at: now(),
        descriptor: serde_json::to_string(&package.descriptor).ok(),
    })
    .map_err(store)?;
    Ok(report)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The records of a data folder: JSON objects with a string `id`; other
/// files are not records (the plugin warns about them when it loads).
fn vendor_records(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut records = Vec::new();
    for file in crate::package::data_files(dir)? {
        let bytes = crate::package::read_at_most(&file, crate::package::MAX_DATA_FILE_BYTES)?;
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if let Some(id) = doc.get("id").and_then(|id| id.as_str()) {
            records.push((id.to_string(), doc.to_string()));
        }
    }
    Ok(records)
}
