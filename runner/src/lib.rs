//! Graft runs module upgrades for multi-tenant, modular platforms such as
//! FOLIO: each module ships its upgrade logic as a sandboxed WebAssembly
//! component, and the runner installs, upgrades and downgrades modules tenant
//! by tenant, in transactions, with hard limits on every plugin.
//!
//! The module map, bottom layer first; each module uses only those above it
//! in this list (`layout_tests` checks that no two modules use each other):
//!
//! - `text`: cutting and escaping text that came from a plugin or package;
//! - `limits`: the limits of a plugin call, and the bounds on what it returns;
//! - `module_id`: Okapi's module ids (`mod-users-1.2.3`), versions and interface versions, ordered as Okapi orders them;
//! - `descriptor`: the ModuleDescriptor, parsed with errors naming the field;
//! - `package`: a module package on disk (descriptor, plugin, data folders), confined to its folder;
//! - `package::archive`: a package as a `.tar.gz` with its sha256, unpacked once and read as hostile;
//! - `plan`: the install plan, Okapi's way, on descriptors only;
//! - `plan::order`: the order of a plan: dependents' disables first, providers before users;
//! - `plan::resolve`: Okapi's dependency resolution: the request read, then one repair at a time;
//! - `storage`: tenant databases behind one trait;
//! - `storage::checks`: names, ids, field paths and documents checked before any write;
//! - `storage::dump`: a tenant's whole database as one value, read through the trait;
//! - `storage::filters`: conditions on records' fields as SQL, each backend giving its dialect;
//! - `storage::rows`: the runner's metadata rows, read alike from both backends;
//! - `storage::tables`: each store's map of collections to tables, looked up once;
//! - `storage::updates`: set-based updates as SQL, each backend giving its dialect;
//! - `storage::tenants`: which backend a tenant lives in: create, open, remove, list, lock;
//! - `storage::sqlite`: the embedded default, one SQLite file per tenant;
//! - `storage::sqlite::files`: the tenants' files and their OS locks;
//! - `storage::sqlite::schema`: the runner's tables, whole-or-nothing creation, table names;
//! - `storage::sqlite::sql`: SQL on collections, and SQLite's errors as the contract's;
//! - `storage::postgres`: PostgreSQL in FOLIO's layout (a schema per tenant and module);
//! - `storage::postgres::adopt`: registering the tables a FOLIO module made;
//! - `storage::postgres::pool`: connections kept for the next job;
//! - `storage::postgres::schema`: the `graft` schema and connecting;
//! - `storage::postgres::sql`: identifiers, JSON paths, upserts, PostgreSQL's errors;
//! - `storage::postgres::tables`: a module's tables, and writes that keep the transaction usable;
//! - `storage::postgres::tenants`: tenants registered in `graft.tenants`, advisory locks;
//! - `overlay`: loading vendor data without losing tenant edits;
//! - `overlay::diff`: what a tenant changed of the vendor's data;
//! - `changelog`: every change of a job, counted, sampled and digested;
//! - `changelog::saved`: the change log as storage keeps it;
//! - `host`: the wasmtime host that runs plugins under limits;
//! - `host::behind`: write-behind: a batch written on its own thread while the plugin goes on;
//! - `host::cache`: the compiled-plugin cache's checked entries;
//! - `host::clock`: the monotonic clock that cuts waits at the deadline;
//! - `host::component`: a plugin file checked before it runs;
//! - `host::contract`: the contract versions plugins are built for; 0.1 plugins adapted onto the 0.2 host;
//! - `host::determinism`: one wall clock and seeded randomness per job;
//! - `host::failure`: why a call failed, told apart and bounded;
//! - `host::imports`: the host side of the contract's imports: storage, module state, required modules, overlay, log;
//! - `host::pipe`: the bounded stdout and stderr of a plugin;
//! - `host::stack`: the native stack and open files plugin calls need;
//! - `host::state`: what a call's store holds: storage, log, limits, handles;
//! - `scaffold`: `graft new`: a plugin project in Rust, Python or JavaScript that validates as written;
//! - `journal`: failed attempts, kept outside the tenant database;
//! - `install`: a tenant's install, upgrade or downgrade job;
//! - `install::job`: what to run on a tenant, and how;
//! - `install::prepare`: the plan and every module checked before anything is written;
//! - `install::steps`: one module's steps with its plugin;
//! - `install::disable`: disabling or purging a module;
//! - `install::report`: what a job did, tenant by tenant and module by module;
//! - `fanout`: many tenants: a canary first, then in parallel;
//! - `queue`: tenant jobs in PostgreSQL, taken by workers;
//! - `edits`: an operator's reads and writes of a tenant's records;
//! - `fixture`: a tenant's data as a file, captured and restored;
//! - `reads`: tenants, packages, status, history and changes, as values;
//! - `adopt`: taking over a FOLIO module's schema;
//! - `validate`: a vendor's package checked against fixtures;
//! - `validate::runs`: one fixture's restored copies and jobs;
//! - `validate::checks`: the checks of those runs;
//! - `validate::compare`: record-by-record comparisons of dumps and change logs;
//! - `validate::junit`: the report as JUnit XML;
//! - `assemble`: `graft package`: a package assembled from its parts, checked, written as folder and archive;
//! - `test_support`: scratch databases and runners for tests and benchmarks (feature `test-support`).

pub mod adopt;
pub mod assemble;
pub mod changelog;
pub mod descriptor;
pub mod edits;
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
pub mod reads;
pub mod scaffold;
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

/// The data directory's folder of unpacked package archives.
const UNPACK_FOLDER: &str = "packages";

/// Everything a runner works with: a data directory (tenant databases,
/// journal, plugin cache), a modules folder and the operator's limits.
/// What a command does is a method of this, here or in the module that
/// does it (`install`, `reads`, `edits`, `fixture`, `validate`, `queue`,
/// `adopt`).
pub struct Graft {
    data_dir: PathBuf,
    tenants: storage::Tenants,
    catalog: package::Catalog,
    host: host::Host,
    journal: journal::Journal,
    limits: Limits,
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
            catalog: package::Catalog::new(modules_dir)
                .unpacking_into(data_dir.join(UNPACK_FOLDER)),
            host,
            journal: journal::Journal::new(data_dir),
            limits,
        })
    }

    /// A modules folder that `fill` writes the first time a package is read
    /// and the folder is missing (see `package::Catalog::filled_by`).
    pub fn with_modules_fill(self, fill: package::Fill) -> Graft {
        Graft {
            catalog: self.catalog.filled_by(fill),
            ..self
        }
    }

    /// Where package archives are unpacked, each once, by content.
    pub fn unpack_dir(&self) -> PathBuf {
        self.data_dir.join(UNPACK_FOLDER)
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

    /// Count every call's instructions (for reports that give them), with
    /// or without a fuel limit.
    pub fn count_fuel(&mut self) {
        self.host.count_fuel();
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn modules_dir(&self) -> &Path {
        &self.catalog.dir
    }

    /// The tenants' databases, for callers that work on storage directly
    /// (tests, benchmarks, tools).
    pub fn tenants(&self) -> &storage::Tenants {
        &self.tenants
    }

    pub fn catalog(&self) -> &package::Catalog {
        &self.catalog
    }

    pub fn host(&self) -> &host::Host {
        &self.host
    }

    pub fn journal(&self) -> &journal::Journal {
        &self.journal
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
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
