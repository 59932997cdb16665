//! Module packages: a folder with an Okapi `ModuleDescriptor.json`, the
//! migration component `plugin.wasm`, optional `system-data/`,
//! `reference-data/` and `sample-data/` folders, and an optional
//! `graft.json` with the module's own limits.

use crate::descriptor::ModuleDescriptor;
use crate::limits::LimitOverrides;
use crate::module_id::ModuleId;
use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DESCRIPTOR_FILE: &str = "ModuleDescriptor.json";
pub const SETTINGS_FILE: &str = "graft.json";
const DEFAULT_PLUGIN_FILE: &str = "plugin.wasm";

/// The data folders a package may have, and where the plugin sees them.
pub const DATA_FOLDERS: [(&str, &str); 3] = [
    ("system-data", "/system-data"),
    ("reference-data", "/reference-data"),
    ("sample-data", "/sample-data"),
];

#[derive(Debug, Clone)]
pub struct Package {
    pub dir: PathBuf,
    pub id: ModuleId,
    pub descriptor: ModuleDescriptor,
    pub plugin: PathBuf,
    pub limits: LimitOverrides,
}

/// `graft.json`: what the runner needs beyond the Okapi descriptor.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    /// The component file, relative to the package (default `plugin.wasm`).
    plugin: Option<String>,
    #[serde(default)]
    limits: LimitOverrides,
}

impl Package {
    /// Read a package folder; the error names the file and field at fault.
    pub fn load(dir: &Path) -> Result<Package> {
        let descriptor_path = dir.join(DESCRIPTOR_FILE);
        let text = std::fs::read_to_string(&descriptor_path).with_context(|| {
            format!(
                "{}: cannot read the ModuleDescriptor",
                descriptor_path.display()
            )
        })?;
        let (descriptor, id) = ModuleDescriptor::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: invalid ModuleDescriptor: {e}",
                descriptor_path.display()
            )
        })?;
        let settings_path = dir.join(SETTINGS_FILE);
        let settings: Settings = if settings_path.exists() {
            let text = std::fs::read_to_string(&settings_path)
                .with_context(|| format!("{}: cannot read", settings_path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", settings_path.display()))?
        } else {
            Settings::default()
        };
        let plugin = dir.join(settings.plugin.as_deref().unwrap_or(DEFAULT_PLUGIN_FILE));
        if !plugin.is_file() {
            bail!(
                "{}: the plugin of {id} is missing: build the module's migration component (wasm32-wasip2) \
                 and put it there",
                plugin.display()
            );
        }
        Ok(Package {
            dir: dir.to_path_buf(),
            id,
            descriptor,
            plugin,
            limits: settings.limits,
        })
    }

    /// The data folders this package has: (host path, guest path).
    pub fn data_folders(&self) -> Vec<(PathBuf, &'static str)> {
        DATA_FOLDERS
            .iter()
            .map(|(folder, guest)| (self.dir.join(folder), *guest))
            .filter(|(path, _)| path.is_dir())
            .collect()
    }

    /// A plugin must say it is the module and release its descriptor names.
    pub fn check_description(&self, module_name: &str, release: &str) -> Result<()> {
        let id = &self.id;
        if module_name != id.name || release != id.version.as_str() {
            bail!(
                "{}: the plugin describes itself as {module_name} {release} but the ModuleDescriptor \
                 is {id}: package the plugin built for {id}, or fix the descriptor",
                self.plugin.display()
            );
        }
        Ok(())
    }

    pub fn has_data(&self, folder: &str) -> bool {
        self.dir.join(folder).is_dir()
    }
}

/// The packages in a modules folder (one sub-folder each).
pub struct Catalog {
    pub dir: PathBuf,
}

/// A folder of the catalog that is not a usable package, and why.
#[derive(Debug)]
pub struct BadPackage {
    pub dir: PathBuf,
    pub error: anyhow::Error,
}

impl Catalog {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Catalog { dir: dir.into() }
    }

    /// Every package, sorted by name and version, and the folders that are
    /// not usable packages.
    pub fn scan(&self) -> Result<(Vec<Package>, Vec<BadPackage>)> {
        let entries = std::fs::read_dir(&self.dir).with_context(|| {
            format!(
                "{}: cannot read the modules folder (--modules)",
                self.dir.display()
            )
        })?;
        let mut packages = Vec::new();
        let mut bad = Vec::new();
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            match Package::load(&dir) {
                Ok(package) => packages.push(package),
                Err(error) => bad.push(BadPackage { dir, error }),
            }
        }
        packages.sort_by(|a, b| {
            a.id.name
                .cmp(&b.id.name)
                .then(a.id.version.cmp(&b.id.version))
        });
        Ok((packages, bad))
    }

    /// The package of exactly this module id.
    pub fn find(&self, id: &ModuleId) -> Result<Package> {
        let (packages, broken) = self.scan()?;
        match packages.iter().position(|p| &p.id == id) {
            Some(position) => Ok(packages.into_iter().nth(position).expect("found above")),
            None => Err(self.missing(&id.to_string(), &packages, &broken)),
        }
    }

    /// Why there is no usable package for `id` (with or without version):
    /// its broken package's own error if it has one, else what there is.
    pub fn missing(&self, id: &str, packages: &[Package], broken: &[BadPackage]) -> anyhow::Error {
        if let Some(bad) = self.broken(id, broken) {
            return anyhow::anyhow!("{:#}", bad.error);
        }
        let name = ModuleId::parse(id)
            .map(|id| id.name)
            .unwrap_or_else(|_| id.to_string());
        let known: Vec<String> = packages
            .iter()
            .filter(|p| p.id.name == name)
            .map(|p| p.id.to_string())
            .collect();
        if known.is_empty() {
            anyhow::anyhow!(
                "unknown module {id}: no package of {name} in {} (see `graft modules list`)",
                self.dir.display()
            )
        } else {
            anyhow::anyhow!(
                "unknown module {id}: {name} has packages {}",
                known.join(", ")
            )
        }
    }

    /// The broken package folder of `id`, if there is one: a better answer
    /// than "unknown" or "not managed".
    pub fn broken<'b>(&self, id: &str, broken: &'b [BadPackage]) -> Option<&'b BadPackage> {
        broken
            .iter()
            .find(|b| b.dir.file_name().is_some_and(|n| n == id))
    }
}
