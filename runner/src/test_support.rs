//! What the tests and benchmarks share (behind the `test-support` feature;
//! always in the runner's own unit tests): scratch databases on every
//! backend, dropped when done; runners on throw-away data directories; the
//! database the command-line tests give each data directory; module folders
//! assembled from the built packages.
//!
//! Every test runs on SQLite, or, when `GRAFT_TEST_POSTGRES` names a
//! PostgreSQL server, on a database of its own on that server.

use crate::install::{ModuleStatus, TenantReport};
use crate::storage::postgres::{pool, redact};
use crate::storage::{Database, Dump, TenantStore, Tenants};
use crate::{Graft, InstallOptions, Limits, ModuleId};
use ::postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tempfile::TempDir;

/// The PostgreSQL server the tests run on, if any.
pub fn postgres_server() -> Option<String> {
    std::env::var("GRAFT_TEST_POSTGRES").ok()
}

/// A database of its own for a test or a benchmark, made on the server
/// `server_url` points at and dropped when this is dropped.
pub struct ScratchDatabase {
    server_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl ScratchDatabase {
    pub fn create(server_url: &str) -> anyhow::Result<ScratchDatabase> {
        Self::make(server_url, None)
    }

    /// A copy of another scratch database (PostgreSQL copies its files:
    /// fast, and nobody may be connected to the original meanwhile).
    pub fn copy_of(template: &ScratchDatabase) -> anyhow::Result<ScratchDatabase> {
        pool::close_idle(&template.url);
        Self::make(&template.server_url, Some(&template.name))
    }

    fn make(server_url: &str, template: Option<&str>) -> anyhow::Result<ScratchDatabase> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "graft_scratch_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let template = template
            .map(|t| format!(" TEMPLATE \"{t}\""))
            .unwrap_or_default();
        server(server_url)?.batch_execute(&format!("CREATE DATABASE \"{name}\"{template}"))?;
        Ok(ScratchDatabase {
            server_url: server_url.to_string(),
            url: database_url(server_url, &name)?,
            name,
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        pool::close_idle(&self.url);
        drop_database(&self.server_url, &self.name);
    }
}

fn server(server_url: &str) -> anyhow::Result<Client> {
    Client::connect(server_url, NoTls).map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to PostgreSQL at {}: {e}",
            redact(server_url)
        )
    })
}

fn drop_database(server_url: &str, name: &str) {
    if let Ok(mut client) = Client::connect(server_url, NoTls) {
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .ok();
    }
}

/// The server's URL with its database part (the path after the host)
/// replaced by `name`.
fn database_url(server_url: &str, name: &str) -> anyhow::Result<String> {
    let Some((scheme, rest)) = server_url.split_once("://") else {
        anyhow::bail!("{}: not a postgres:// URL", redact(server_url));
    };
    let (authority, query) = match rest.find('/') {
        Some(slash) => {
            let path = &rest[slash..];
            (
                &rest[..slash],
                path.find('?').map(|q| &path[q..]).unwrap_or(""),
            )
        }
        None => (rest, ""),
    };
    Ok(format!("{scheme}://{authority}/{name}{query}"))
}

/// The databases `database_for` made in this process: dropped when it exits.
static CLI_DATABASES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

extern "C" fn drop_cli_databases() {
    let made = std::mem::take(&mut *CLI_DATABASES.lock().unwrap_or_else(|e| e.into_inner()));
    for (server_url, name) in made {
        drop_database(&server_url, &name);
    }
}

/// The database the command-line tests use for a data directory, made on
/// first use (`None`: SQLite). A test names only its data directory, and a
/// `graft` process it runs connects by URL, so the database outlives any
/// value a test holds: each is dropped when the test process exits.
pub fn database_for(data: &Path) -> Option<String> {
    let server_url = postgres_server()?;
    let name = format!(
        "graft_cli_{}",
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            data.to_string_lossy().as_bytes()
        ))[..16]
    );
    let mut made = CLI_DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    if !made.iter().any(|(_, n)| *n == name) {
        let mut client = server(&server_url).unwrap();
        // A database of a killed earlier run of the same path goes first.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        if made.is_empty() {
            // SAFETY: registers a plain `extern "C" fn` run at exit.
            unsafe { libc::atexit(drop_cli_databases) };
        }
        made.push((server_url.clone(), name.clone()));
    }
    database_url(&server_url, &name).ok()
}

/// A tenant's store, opened in-process as the `graft` command would open it
/// on that data directory.
pub fn open_tenant(data: &Path, tenant: &str) -> Box<dyn TenantStore> {
    let tenants = match database_for(data) {
        Some(url) => Tenants::in_database(data, Database::Postgres(url)),
        None => Tenants::new(data),
    };
    tenants.open(tenant).unwrap()
}

/// A runner on a fresh data directory, seeing the given modules folder, on
/// SQLite or on a scratch database of its own (see the module's doc).
pub struct TestRunner {
    pub graft: Graft,
    _data: TempDir,
    _database: Option<ScratchDatabase>,
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
