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

/// A modules folder holding copies of the named packages of mod-users
/// built for contract 0.2 (the sample module's source, its other build).
pub fn contract_0_2_folder(packages: &[&str]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for name in packages {
        let source = graft_sample_modules::contract_0_2_packages_dir().join(name);
        assert!(source.is_dir(), "no 0.2 package {name} was built");
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

/// A vendor's source folder of a built package, as `graft package` takes
/// it: the descriptor and the data folders, without the plugin.
pub fn package_source(name: &str, into: &Path) -> PathBuf {
    let built = package_dir(name);
    std::fs::create_dir_all(into).unwrap();
    std::fs::copy(
        built.join(crate::package::DESCRIPTOR_FILE),
        into.join(crate::package::DESCRIPTOR_FILE),
    )
    .unwrap();
    for (folder, _) in crate::package::DATA_FOLDERS {
        if built.join(folder).is_dir() {
            copy_dir(&built.join(folder), &into.join(folder));
        }
    }
    into.to_path_buf()
}

/// A tar entry a hostile archive is made of: name, type, bytes, link target.
pub type RawEntry<'a> = (&'a str, tar::EntryType, &'a [u8], Option<&'a str>);

/// A gzipped tar written entry by entry, as a hostile vendor could: each
/// name goes into the header as it is, so `..` and absolute paths, which
/// the tar crate's own builder refuses, get through.
pub fn raw_archive(entries: &[RawEntry]) -> Vec<u8> {
    use std::io::Write;
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        let bytes = name.as_bytes();
        header.as_gnu_mut().unwrap().name[..bytes.len()].copy_from_slice(bytes);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// Plugins written in Python and JavaScript, built from the SDKs' sources
/// (`plugins/python`, `plugins/js`) with the pinned toolchains, which
/// `scripts/lang-toolchains.sh` installs on first use. Each build is kept in
/// `target/lang-plugins`, named by a hash of everything it is built from.
pub mod lang {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::{Mutex, OnceLock};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Lang {
        Python,
        Js,
    }

    impl Lang {
        pub const ALL: [Lang; 2] = [Lang::Python, Lang::Js];

        pub fn name(self) -> &'static str {
            match self {
                Lang::Python => "python",
                Lang::Js => "js",
            }
        }

        /// The SDK's folder: the SDK, its build script, its samples.
        pub fn sdk_dir(self) -> PathBuf {
            root().join("plugins").join(self.name())
        }
    }

    /// The checkout the tests run from.
    pub fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the runner is a folder of the workspace")
            .to_path_buf()
    }

    struct Toolchains {
        python: PathBuf,
        build_mjs: PathBuf,
    }

    fn toolchains() -> &'static Toolchains {
        static TOOLCHAINS: OnceLock<Toolchains> = OnceLock::new();
        TOOLCHAINS.get_or_init(|| {
            let script = root().join("scripts/lang-toolchains.sh");
            let output = Command::new(&script)
                .output()
                .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
            assert!(
                output.status.success(),
                "{} failed (it needs python3, node, npm and the PyPI and npm registries):\n{}",
                script.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            let text = String::from_utf8_lossy(&output.stdout);
            let value = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{key}=")))
                    .map(PathBuf::from)
                    .unwrap_or_else(|| panic!("{} printed no {key}=: {text}", script.display()))
            };
            Toolchains {
                python: value("python"),
                build_mjs: value("js"),
            }
        })
    }

    /// The Python that has componentize-py.
    pub fn python() -> PathBuf {
        toolchains().python.clone()
    }

    /// The installed componentize-js (`plugins/js/node_modules`).
    pub fn node_modules() -> PathBuf {
        let _installed = toolchains();
        Lang::Js.sdk_dir().join("node_modules")
    }

    /// The component of the plugin in `app` (a folder of the SDK's
    /// language), built against the contract in `wit/`; a JavaScript
    /// plugin embeds the data folders of `package` (see graft-sdk.js).
    pub fn build(lang: Lang, app: &Path, package: &Path) -> PathBuf {
        static BUILDING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        let wit = root().join("wit");
        let mut inputs = vec![app.to_path_buf(), lang.sdk_dir().join("graft_sdk.py")];
        inputs.extend([
            lang.sdk_dir().join("graft-sdk.js"),
            lang.sdk_dir().join("build.mjs"),
            lang.sdk_dir().join("build.py"),
            lang.sdk_dir().join("requirements.txt"),
            lang.sdk_dir().join("package-lock.json"),
            wit.clone(),
        ]);
        if lang == Lang::Js {
            inputs.push(package.to_path_buf());
        }
        let name = app.file_name().unwrap_or_default().to_string_lossy();
        let out = root().join("target/lang-plugins").join(format!(
            "{}-{name}-{:016x}.wasm",
            lang.name(),
            hash_of(&inputs)
        ));
        if out.is_file() {
            return out;
        }
        let partial = out.with_extension("partial.wasm");
        let tools = toolchains();
        let mut command = match lang {
            Lang::Python => {
                let mut c = Command::new(&tools.python);
                c.arg(lang.sdk_dir().join("build.py"));
                c
            }
            Lang::Js => {
                let mut c = Command::new("node");
                c.arg(&tools.build_mjs).arg("--package").arg(package);
                c
            }
        };
        command
            .arg("--app")
            .arg(app)
            .arg("--wit")
            .arg(&wit)
            .arg("--out")
            .arg(&partial);
        let output = command.output().expect("run the plugin build");
        assert!(
            output.status.success(),
            "building the {} plugin {} failed:\n{}{}",
            lang.name(),
            app.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(&partial, &out).unwrap();
        let _ = std::fs::remove_dir_all(partial.with_extension("wasm.build"));
        out
    }

    /// The language's port of mod-users 2.0.0 (`plugins/<lang>/mod-users`),
    /// built: the same steps and records as the Rust plugin.
    pub fn mod_users_plugin(lang: Lang) -> PathBuf {
        build(
            lang,
            &lang.sdk_dir().join("mod-users"),
            &super::package_dir("mod-users-2.0.0"),
        )
    }

    /// A hash of every file under the paths (missing paths count as empty),
    /// with their names, in a stable order.
    fn hash_of(paths: &[PathBuf]) -> u64 {
        let mut files = Vec::new();
        for path in paths {
            collect(path, &mut files);
        }
        files.sort();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for file in files {
            hasher.update(file.to_string_lossy().as_bytes());
            hasher.update(&std::fs::read(&file).unwrap_or_default());
        }
        hasher.digest()
    }

    fn collect(path: &Path, files: &mut Vec<PathBuf>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                let name = entry.file_name();
                if name != "__pycache__" && name != "node_modules" {
                    collect(&entry.path(), files);
                }
            }
        } else if path.is_file() {
            files.push(path.to_path_buf());
        }
    }
}
