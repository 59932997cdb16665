//! Fixtures: a tenant's database captured as one JSON file, to validate a
//! module's plugin against (see `validate`) or to set up a test tenant.
//!
//! A fixture holds what a plugin and the overlay can see: the enabled
//! modules with their descriptors, every collection with its indexes and
//! records, each module's own state (contract 0.2's `module-state`), and
//! the vendor's base copies of system and reference records.
//! Jobs, history and the change log are the tenant's past, not its state,
//! and are left out. The format is plain JSON so that fixtures can be
//! reviewed in a pull request and diffed between releases.

use crate::storage::{CollectionDump, EnabledModule, TenantStore};
use anyhow::{anyhow, bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// The format this runner writes and reads.
pub const FORMAT: &str = "graft-fixture/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    pub format: String,
    /// When it was captured (RFC 3339). `graft validate` runs plugins with
    /// their wall clock fixed at this time.
    pub captured_at: String,
    pub tenant: String,
    pub modules: Vec<FixtureModule>,
    /// module -> collection -> indexes and records.
    pub collections: BTreeMap<String, BTreeMap<String, CollectionDump>>,
    /// module -> collection -> the vendor's copies the overlay merges against.
    #[serde(default)]
    pub bases: BTreeMap<String, BTreeMap<String, FixtureBases>>,
    /// module -> key -> value: each module's own state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureModule {
    pub name: String,
    pub module_id: String,
    pub enabled: bool,
    /// The ModuleDescriptor the module was installed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureBases {
    /// `system` or `reference`.
    pub kind: String,
    pub records: BTreeMap<String, Value>,
}

impl Fixture {
    /// Capture a tenant's database; `module`: only that module's data.
    pub fn capture(db: &mut dyn TenantStore, module: Option<&str>) -> Result<Fixture> {
        let tenant = db.tenant().to_string();
        let fail = |e: crate::storage::StoreError| anyhow!("tenant {tenant}: {e}");
        let dump = db.dump().map_err(fail)?;
        let wanted = |name: &str| module.is_none_or(|m| m == name);
        let modules: Vec<FixtureModule> = db
            .modules()
            .map_err(fail)?
            .into_iter()
            .filter(|m| wanted(&m.name))
            .map(|m| FixtureModule {
                descriptor: m
                    .descriptor
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok()),
                name: m.name,
                module_id: m.module_id,
                enabled: m.enabled,
            })
            .collect();
        if let Some(module) = module {
            if modules.is_empty() {
                bail!(
                    "tenant {tenant} has no module {module}: see `graft status --tenant {tenant}`"
                );
            }
        }
        let mut bases: BTreeMap<String, BTreeMap<String, FixtureBases>> = BTreeMap::new();
        for (name, collections) in dump.bases.into_iter().filter(|(m, _)| wanted(m)) {
            let kinds: BTreeMap<String, String> = db
                .base_collections(&name)
                .map_err(fail)?
                .into_iter()
                .collect();
            for (collection, records) in collections {
                let kind = kinds
                    .get(&collection)
                    .cloned()
                    .unwrap_or_else(|| "reference".into());
                bases
                    .entry(name.clone())
                    .or_default()
                    .insert(collection, FixtureBases { kind, records });
            }
        }
        Ok(Fixture {
            format: FORMAT.to_string(),
            captured_at: crate::storage::now(),
            tenant,
            modules,
            collections: dump
                .collections
                .into_iter()
                .filter(|(m, _)| wanted(m))
                .collect(),
            bases,
            state: dump.state.into_iter().filter(|(m, _)| wanted(m)).collect(),
        })
    }

    /// Read a fixture file; errors name the file and what is wrong.
    pub fn read(path: &Path) -> Result<Fixture> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the fixture", path.display()))?;
        let fixture: Fixture = serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "{}: not a Graft fixture: {e}; capture one with `graft fixture capture`",
                path.display()
            )
        })?;
        if fixture.format != FORMAT {
            bail!(
                "{}: fixture format {:?}, this runner reads {FORMAT:?}: capture it again with this graft",
                path.display(),
                fixture.format
            );
        }
        fixture
            .clock()
            .with_context(|| format!("{}: field capturedAt", path.display()))?;
        // Each module's id must name it, and data belongs to a listed module.
        for (n, module) in fixture.modules.iter().enumerate() {
            let id = crate::ModuleId::parse(&module.module_id)
                .map_err(|e| anyhow!("{}: modules[{n}].moduleId: {e}", path.display()))?;
            if id.name != module.name {
                bail!(
                    "{}: modules[{n}]: name {:?} but module id {}: a fixture's module name is \
                     its id's name",
                    path.display(),
                    crate::text::truncate(&module.name, 100),
                    id
                );
            }
        }
        let listed = |name: &String| fixture.modules.iter().any(|m| &m.name == name);
        if let Some(stray) = fixture
            .collections
            .keys()
            .chain(fixture.bases.keys())
            .chain(fixture.state.keys())
            .find(|name| !listed(name))
        {
            bail!(
                "{}: data of module {:?}, which the fixture's modules do not list",
                path.display(),
                crate::text::truncate(stray, 100)
            );
        }
        Ok(fixture)
    }

    /// Write the fixture as pretty JSON, atomically (a temporary file renamed).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("{}: cannot write the fixture", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .and_then(|()| std::io::Write::write_all(&mut file, b"\n"))
            .with_context(|| format!("{}: cannot write the fixture", path.display()))?;
        // A temporary file is private (0600); a fixture is for sharing.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).ok();
        }
        file.persist(path)
            .with_context(|| format!("{}: cannot write the fixture", path.display()))?;
        Ok(())
    }

    /// The release of `module` the fixture holds, if it has the module enabled.
    pub fn release_of(&self, module: &str) -> Option<crate::ModuleId> {
        self.modules
            .iter()
            .find(|m| m.name == module && m.enabled)
            .and_then(|m| crate::ModuleId::parse(&m.module_id).ok())
    }

    /// The capture time, as the clock plugins read when validating.
    pub fn clock(&self) -> Result<SystemTime> {
        humantime::parse_rfc3339_weak(&self.captured_at)
            .map_err(|e| anyhow!("{:?} is not an RFC 3339 time: {e}", self.captured_at))
    }

    /// Write the fixture into an empty tenant database, in one transaction:
    /// on any error nothing is written.
    pub fn restore(&self, db: &mut dyn TenantStore) -> Result<()> {
        if !db.modules().map_err(|e| anyhow!("{e}"))?.is_empty() {
            bail!(
                "tenant {} already has modules: restore a fixture into a new tenant",
                db.tenant()
            );
        }
        db.begin().map_err(|e| anyhow!("{e}"))?;
        let restored = self.restore_into(db);
        match restored {
            Ok(()) => db.commit().map_err(|e| anyhow!("{e}")),
            Err(e) => {
                db.rollback().ok();
                Err(e)
            }
        }
    }

    /// Write the fixture into an empty tenant database inside the caller's
    /// transaction (see `Tenants::create_with`).
    pub fn restore_into(&self, db: &mut dyn TenantStore) -> Result<()> {
        for (module, collections) in &self.collections {
            for (collection, dump) in collections {
                let at = |e| anyhow!("module {module}, collection {collection}: {e}");
                db.create_collection(module, collection).map_err(at)?;
                for index in &dump.indexes {
                    db.create_index(module, collection, index).map_err(at)?;
                }
                for (id, doc) in &dump.records {
                    db.put(module, collection, id, &doc.to_string())
                        .map_err(|e| {
                            anyhow!("module {module}, collection {collection}, record {id}: {e}")
                        })?;
                }
            }
        }
        for (module, collections) in &self.bases {
            let release = self
                .modules
                .iter()
                .find(|m| &m.name == module)
                .and_then(|m| crate::ModuleId::parse(&m.module_id).ok())
                .map(|id| id.version.to_string())
                .unwrap_or_default();
            for (collection, bases) in collections {
                if !matches!(bases.kind.as_str(), "system" | "reference") {
                    bail!(
                        "bases of module {module}, collection {collection}: kind {:?}, expected system or reference",
                        bases.kind
                    );
                }
                for (id, doc) in &bases.records {
                    db.put_base(
                        module,
                        collection,
                        id,
                        &doc.to_string(),
                        &release,
                        &bases.kind,
                    )
                    .map_err(|e| {
                        anyhow!(
                            "base of module {module}, collection {collection}, record {id}: {e}"
                        )
                    })?;
                }
            }
        }
        for (module, entries) in &self.state {
            for (key, value) in entries {
                db.set_state(module, key, Some(value))
                    .map_err(|e| anyhow!("state of module {module}, key {key}: {e}"))?;
            }
        }
        for module in &self.modules {
            crate::ModuleId::parse(&module.module_id)
                .map_err(|e| anyhow!("module {}: moduleId: {e}", module.name))?;
            db.set_module(&EnabledModule {
                name: module.name.clone(),
                module_id: module.module_id.clone(),
                enabled: module.enabled,
                updated_at: self.captured_at.clone(),
                descriptor: module.descriptor.as_ref().map(Value::to_string),
            })
            .map_err(|e| anyhow!("module {}: {e}", module.name))?;
        }
        Ok(())
    }
}
