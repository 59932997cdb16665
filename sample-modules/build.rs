//! Builds the plugins of the sample modules and of the test packages for
//! wasm32-wasip2 and assembles each module package (descriptor, data folders,
//! `plugin.wasm`) under OUT_DIR, so that a fresh clone needs no manual step.
//!
//! A package source folder holds a `plugin-source.json`, `{"crate": ...,
//! "features": [...], "env": {...}}`, naming the crate of the plugins
//! workspace (`plugins/`), the features that build its plugin, and
//! compile-time environment variables (optional), and `"package"`, a folder
//! of the repository with more of the package's files (optional). A hostile
//! test package may instead name `{"wat": "tests/wat/NAME.wat"}`: a plugin
//! written by hand in WebAssembly text (what no Rust guest can be made to
//! do, such as several memories), put into `tests/wat/plugin.wat.in`, then
//! encoded as a component of the `plugin` world. The guests are built
//! by a nested cargo with its own target directory, so it never waits on the
//! lock of the build that runs this script.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    // The Rust plugins' sources, not `plugins/target`: the SDK's own tests
    // build there, and watching it would rerun this script (and relink the
    // runner) after every such test run. The Python and JavaScript SDKs are
    // not built here (their toolchains install node_modules beside them).
    for entry in sorted_entries(&root.join("plugins")) {
        if entry
            .file_name()
            .is_some_and(|name| !["target", "js", "python"].iter().any(|n| name == *n))
        {
            println!("cargo:rerun-if-changed={}", entry.display());
        }
    }
    for watched in [
        "wit",
        "sample-modules/packages",
        "tests/packages",
        "tests/validate-packages",
        "tests/contract-0.2-packages",
        "tests/wat",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // A different target dir than the outer build's: no lock contention, and
    // the guests' own incremental cache survives rebuilds of the host.
    let wasm_target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-plugins");

    ensure_wasm_target();
    let sets = [
        (
            root.join("sample-modules/packages"),
            out_dir.join("sample-modules"),
        ),
        (root.join("tests/packages"), out_dir.join("test-packages")),
        (
            root.join("tests/validate-packages"),
            out_dir.join("validate-packages"),
        ),
        (
            root.join("tests/contract-0.2-packages"),
            out_dir.join("contract-0.2-packages"),
        ),
    ];
    let mut built: BTreeMap<PluginSource, PathBuf> = BTreeMap::new();
    for (source_set, out_set) in sets {
        if out_set.exists() {
            fs::remove_dir_all(&out_set).unwrap();
        }
        for package in sorted_dirs(&source_set) {
            let source = read_plugin_source(&package);
            let wasm = built
                .entry(source.clone())
                .or_insert_with(|| match &source.wat {
                    Some(wat) => build_wat(&root, &wasm_target_dir, &package, wat),
                    None => build_plugin(&root, &wasm_target_dir, &source),
                })
                .clone();
            let dest = out_set.join(package.file_name().unwrap());
            copy_package(&package, &dest);
            // A package whose files live with its plugin's source (the
            // plugin template) names that folder.
            if let Some(files) = package_files(&package) {
                copy_package(&root.join(files), &dest);
            }
            fs::copy(&wasm, dest.join("plugin.wasm")).unwrap();
        }
    }
    pack(
        &out_dir.join("sample-modules"),
        &out_dir.join("sample-modules.pack.gz"),
    );
}

/// Every file of the sample packages in one gzip stream, for the binary
/// to carry (`graft_sample_modules::unpack` reads it): for each file, its
/// path's length (u32 LE), the path ('/'-separated, relative), its size
/// (u64 LE) and its bytes, after the magic `GRAFTPK1`.
fn pack(dir: &Path, to: &Path) {
    fn files(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
        for entry in sorted_entries(dir) {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.is_dir() {
                files(&entry, &path, out);
            } else {
                out.push((path, entry));
            }
        }
    }
    let mut list = Vec::new();
    files(dir, "", &mut list);
    let file = fs::File::create(to).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    gz.write_all(b"GRAFTPK1").unwrap();
    for (path, file) in list {
        let bytes = fs::read(&file).unwrap();
        gz.write_all(&(path.len() as u32).to_le_bytes()).unwrap();
        gz.write_all(path.as_bytes()).unwrap();
        gz.write_all(&(bytes.len() as u64).to_le_bytes()).unwrap();
        gz.write_all(&bytes).unwrap();
    }
    gz.finish().unwrap();
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

fn ensure_wasm_target() {
    let has_target = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .and_then(|o| {
            o.status
                .success()
                .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .is_some_and(|dir| Path::new(&dir).exists());
    if has_target {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed to build the sample plugins)");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        panic!("the {TARGET} target is missing and `rustup target add {TARGET}` failed: install it and build again");
    }
}

/// What builds a package's plugin.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PluginSource {
    krate: String,
    features: Vec<String>,
    env: BTreeMap<String, String>,
    /// A hand-written plugin: the `.wat` file, and the package it is for.
    wat: Option<(String, PathBuf)>,
}

/// `"package"` of `plugin-source.json`: a folder, relative to the
/// repository, with more of the package's files.
fn package_files(package: &Path) -> Option<String> {
    let path = package.join("plugin-source.json");
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).ok()?).ok()?;
    json["package"].as_str().map(String::from)
}

fn read_plugin_source(package: &Path) -> PluginSource {
    let path = package.join("plugin-source.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Some(wat) = json["wat"].as_str() {
        return PluginSource {
            krate: String::new(),
            features: Vec::new(),
            env: BTreeMap::new(),
            wat: Some((wat.to_string(), package.to_path_buf())),
        };
    }
    let krate = json["crate"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no \"crate\"", path.display()));
    let features = json["features"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let env = json["env"]
        .as_object()
        .map(|env| {
            env.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    PluginSource {
        krate: krate.to_string(),
        features,
        env,
        wat: None,
    }
}

/// Encode a hand-written plugin: the package's `.wat` (its declarations and
/// its `upgrade`) put into the template, the contract's `plugin` world
/// embedded, then a component made of the core module.
fn build_wat(root: &Path, target_dir: &Path, package: &Path, wat: &(String, PathBuf)) -> PathBuf {
    let file = &wat.0;
    let read = |path: &Path| {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let template = read(&root.join("tests/wat/plugin.wat.in"));
    let hostile = read(&root.join(file));
    let section = |marker: &str| -> String {
        hostile
            .split(marker)
            .nth(1)
            .map(|rest| rest.split(";; @").next().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let descriptor: serde_json::Value =
        serde_json::from_str(&read(&package.join("ModuleDescriptor.json"))).unwrap();
    let name = descriptor["name"].as_str().expect("descriptor has a name");
    let text = template
        .replace(";; @DECLARATIONS@", &section(";; @DECLARATIONS@"))
        .replace(";; @UPGRADE@", &section(";; @UPGRADE@"))
        .replace("@MODULE_NAME_LEN@", &name.len().to_string())
        .replace("@MODULE_NAME@", name);
    let mut module = wat::parse_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut resolve = wit_parser::Resolve::default();
    let (contract, _) = resolve
        .push_dir(root.join("wit"))
        .unwrap_or_else(|e| panic!("wit/: {e:#}"));
    let world = resolve
        .select_world(&[contract], Some("plugin"))
        .unwrap_or_else(|e| panic!("wit/: {e:#}"));
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap_or_else(|e| panic!("{file}: {e:#}"));
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("{file}: {e:#}"));
    let stem = Path::new(file).file_stem().unwrap().to_string_lossy();
    let keep = target_dir
        .join("graft-built")
        .join(format!("wat-{stem}-{name}.wasm"));
    fs::create_dir_all(keep.parent().unwrap()).unwrap();
    fs::write(&keep, component).unwrap();
    keep
}

fn build_plugin(root: &Path, target_dir: &Path, source: &PluginSource) -> PathBuf {
    let PluginSource {
        krate,
        features,
        env,
        wat: _,
    } = source;
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root.join("plugins"))
        .args(["build", "--release", "--target", TARGET, "-p", krate])
        .arg("--target-dir")
        .arg(target_dir)
        .envs(env);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    // The outer build's flags are for the host, not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    for (var, _) in env::vars() {
        if var.starts_with("CARGO_PROFILE_")
            || var.starts_with("CARGO_FEATURE_")
            || var.starts_with("CARGO_CFG_")
        {
            cmd.env_remove(var);
        }
    }
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    assert!(
        status.success(),
        "building plugin {krate} (features {features:?}) failed"
    );
    // Each build overwrites the same file name: copy it out at once.
    let artifact = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", krate.replace('-', "_")));
    let mut name = format!("{krate}-{}", features.join("+"));
    for value in env.values() {
        name.push('-');
        name.push_str(value);
    }
    let keep = target_dir.join("graft-built").join(format!("{name}.wasm"));
    fs::create_dir_all(keep.parent().unwrap()).unwrap();
    fs::copy(&artifact, &keep).unwrap_or_else(|e| panic!("{}: {e}", artifact.display()));
    keep
}

fn copy_package(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "plugin-source.json" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_package(&path, &to.join(&name));
        } else {
            fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}
