//! Graft runs module upgrades for multi-tenant, modular platforms such as
//! FOLIO: each module ships its upgrade logic as a sandboxed WebAssembly
//! component, and the runner installs, upgrades and downgrades modules tenant
//! by tenant, in transactions, with hard limits on every plugin.
//!
//! - [`package`]: module packages (ModuleDescriptor, plugin, data folders);
//! - [`host`]: the wasmtime host that runs plugins under limits;
//! - [`storage`]: tenant databases behind one trait (SQLite by default);
//! - [`overlay`]: loading vendor data without losing tenant edits;
//! - [`install`]: a tenant's install, upgrade or downgrade job.

pub mod adopt;
pub mod changelog;
pub mod data;
pub mod descriptor;
pub mod fanout;
pub mod fixture;
pub mod host;
pub mod install;
pub mod journal;
pub mod limits;
pub mod module_id;
pub mod overlay;
pub mod package;
pub mod plan;
pub mod queue;
pub mod storage;
pub mod text;
pub mod validate;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

#[cfg(test)]
mod layout_tests;

use anyhow::Result;
use std::path::{Path, PathBuf};

pub use install::{InstallOptions, TenantReport};
pub use limits::Limits;
pub use module_id::ModuleId;

/// Everything a runner works with: a data directory (tenant databases,
/// journal, plugin cache), a modules folder and the operator's limits.
pub struct Graft {
    pub data_dir: PathBuf,
    pub tenants: storage::Tenants,
    pub catalog: package::Catalog,
    pub host: host::Host,
    pub journal: journal::Journal,
    pub limits: Limits,
}

impl Graft {
    pub fn open(
        data_dir: &Path,
        modules_dir: &Path,
        limits: Limits,
        max_wasm_stack: usize,
    ) -> Result<Graft> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot create the data directory: {e}",
                data_dir.display()
            )
        })?;
        let host = host::Host::new(host::HostConfig {
            cache_dir: Some(data_dir.join("cache")),
            max_wasm_stack,
            count_fuel: false,
        })?;
        Ok(Graft {
            data_dir: data_dir.to_path_buf(),
            tenants: storage::Tenants::new(data_dir),
            catalog: package::Catalog::new(modules_dir),
            host,
            journal: journal::Journal::new(data_dir),
            limits,
        })
    }

    /// Keep tenants in `database` instead of the data directory's SQLite files.
    pub fn with_database(self, database: storage::Database) -> Graft {
        Graft {
            tenants: storage::Tenants::in_database(&self.data_dir, database),
            ..self
        }
    }

    /// Install, upgrade or downgrade modules for one tenant (see [`install`]).
    pub fn install(
        &self,
        tenant: &str,
        ids: &[ModuleId],
        options: &InstallOptions,
    ) -> Result<TenantReport> {
        self.run(tenant, &install::Job::enable(ids), options)
    }

    /// Plan and run a job for one tenant (see [`install`]).
    pub fn run(
        &self,
        tenant: &str,
        job: &install::Job,
        options: &InstallOptions,
    ) -> Result<TenantReport> {
        self.installer().run(tenant, job, options)
    }

    fn installer(&self) -> install::Installer<'_> {
        install::Installer {
            tenants: &self.tenants,
            catalog: &self.catalog,
            host: &self.host,
            journal: &self.journal,
            limits: &self.limits,
        }
    }
}
