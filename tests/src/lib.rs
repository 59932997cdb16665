//! Support for the integration tests: runners on throw-away data
//! directories, module folders assembled from the built packages, dumps.

use graft::install::{ModuleStatus, TenantReport};
use graft::storage::postgres::ScratchDatabase;
use graft::storage::Dump;
use graft::tenants::Database;
use graft::{Graft, InstallOptions, Limits, ModuleId};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A runner on a fresh data directory, seeing the given modules folder.
/// Its tenants are SQLite files, or, when `GRAFT_TEST_POSTGRES` names a
/// PostgreSQL server, live in a database of their own on it: the same tests
/// run on both backends.
pub struct TestRunner {
    pub graft: Graft,
    _data: TempDir,
    _database: Option<ScratchDatabase>,
}

/// The PostgreSQL server the tests run on, if any.
pub fn postgres_server() -> Option<String> {
    std::env::var("GRAFT_TEST_POSTGRES").ok()
}

impl TestRunner {
    /// A runner with the sample modules.
    pub fn with_sample_modules() -> TestRunner {
        Self::new(graft_sample_modules::sample_modules_dir())
    }

    pub fn new(modules: &Path) -> TestRunner {
        Self::with_limits(modules, Limits::default())
    }

    pub fn with_limits(modules: &Path, limits: Limits) -> TestRunner {
        let data = TempDir::new().unwrap();
        let graft = Graft::open(data.path(), modules, limits, 1 << 20).unwrap();
        let database = postgres_server().map(|server| ScratchDatabase::create(&server).unwrap());
        let graft = match &database {
            Some(database) => graft.with_database(Database::Postgres(database.url.clone())),
            None => graft,
        };
        TestRunner {
            graft,
            _data: data,
            _database: database,
        }
    }

    /// A second runner on the same data directory and database (as a
    /// later `graft` process would be).
    pub fn reopen(&self, modules: &Path) -> Graft {
        let graft = Graft::open(
            &self.graft.data_dir,
            modules,
            self.graft.limits.clone(),
            1 << 20,
        )
        .unwrap();
        graft.with_database(self.graft.tenants.database().clone())
    }

    pub fn tenant(&self, tenant: &str) {
        self.graft.tenants.create(tenant).unwrap();
    }

    /// Install and expect every module to commit.
    pub fn install_ok(&self, tenant: &str, ids: &[&str], options: &InstallOptions) -> TenantReport {
        let report = self.install(tenant, ids, options).unwrap();
        for module in &report.modules {
            assert_eq!(
                module.status,
                ModuleStatus::Committed,
                "{}: {:?}",
                module.to,
                module.failure
            );
        }
        report
    }

    pub fn install(
        &self,
        tenant: &str,
        ids: &[&str],
        options: &InstallOptions,
    ) -> anyhow::Result<TenantReport> {
        let ids: Vec<ModuleId> = ids.iter().map(|id| ModuleId::parse(id).unwrap()).collect();
        self.graft.install(tenant, &ids, options)
    }

    /// Everything the tenant's database holds.
    pub fn dump(&self, tenant: &str) -> Dump {
        self.graft.tenants.open(tenant).unwrap().dump().unwrap()
    }

    /// A hash of everything the tenant's storage holds: of the database
    /// file with SQLite (so not a byte was written), of a full dump (data
    /// and metadata) with PostgreSQL.
    pub fn state_hash(&self, tenant: &str) -> String {
        use sha2::{Digest, Sha256};
        let bytes = match self.graft.tenants.database() {
            Database::Sqlite(_) => std::fs::read(self.graft.tenants.path(tenant)).unwrap(),
            Database::Postgres(_) => serde_json::to_vec(&self.dump(tenant)).unwrap(),
        };
        format!("{:x}", Sha256::digest(bytes))
    }

    /// The records and indexes of a tenant's collections, without metadata.
    pub fn data(&self, tenant: &str) -> serde_json::Value {
        serde_json::to_value(self.dump(tenant).collections).unwrap()
    }
}

/// Options that load reference data and `users` sample users.
pub fn with_data(users: u64) -> InstallOptions {
    InstallOptions {
        load_reference: true,
        load_sample: true,
        parameters: vec![("sampleUsers".into(), users.to_string())],
        ..InstallOptions::default()
    }
}

/// A modules folder holding copies of the named sample and test packages.
pub fn modules_folder(packages: &[&str]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for name in packages {
        let source = package_dir(name);
        copy_dir(&source, &dir.path().join(name));
    }
    dir
}

/// Where the build put a package, sample or test.
pub fn package_dir(name: &str) -> PathBuf {
    for set in [
        graft_sample_modules::sample_modules_dir(),
        graft_sample_modules::test_packages_dir(),
        graft_sample_modules::validate_packages_dir(),
    ] {
        let dir = set.join(name);
        if dir.is_dir() {
            return dir;
        }
    }
    panic!("no package {name} was built");
}

pub fn copy_dir(from: &Path, to: &Path) {
    graft_sample_modules::copy_dir(from, to).unwrap();
}
