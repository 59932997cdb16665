//! Module packages: a folder with an Okapi `ModuleDescriptor.json`, the
//! migration component `plugin.wasm`, optional `system-data/`,
//! `reference-data/` and `sample-data/` folders, and an optional
//! `graft.json` with the module's own limits.

pub mod archive;

use crate::descriptor::ModuleDescriptor;
use crate::limits::LimitOverrides;
use crate::module_id::ModuleId;
use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DESCRIPTOR_FILE: &str = "ModuleDescriptor.json";
pub const SETTINGS_FILE: &str = "graft.json";
pub const DEFAULT_PLUGIN_FILE: &str = "plugin.wasm";

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

/// The largest files a package may have: a hostile package must not make
/// the runner read gigabytes (sparse files count at their length). FOLIO's
/// largest real ModuleDescriptors are a few hundred KiB; a Python plugin is
/// about 20 MB.
pub const MAX_DESCRIPTOR_BYTES: u64 = 4 << 20;
pub const MAX_SETTINGS_BYTES: u64 = 64 << 10;
pub const MAX_PLUGIN_BYTES: u64 = 256 << 20;
/// One record file of a data folder, where the runner itself reads it
/// (`graft validate`, `graft adopt`); the plugin's own reads are bounded by
/// its memory limit.
pub const MAX_DATA_FILE_BYTES: u64 = 16 << 20;

impl Package {
    /// Read a package folder; the error names the file and field at fault.
    /// Nothing of the package may lead outside its folder: a file or data
    /// folder that is a symbolic link, or a plugin path that is absolute or
    /// climbs out with `..`, is refused (`confinement`).
    pub fn load(dir: &Path) -> Result<Package> {
        let root = dir
            .canonicalize()
            .with_context(|| format!("{}: cannot open the package folder", dir.display()))?;
        let descriptor_path = dir.join(DESCRIPTOR_FILE);
        let text = read_package_file(&root, &descriptor_path, MAX_DESCRIPTOR_BYTES).with_context(
            || {
                format!(
                    "{}: cannot read the ModuleDescriptor",
                    descriptor_path.display()
                )
            },
        )?;
        let (descriptor, id) = ModuleDescriptor::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: invalid ModuleDescriptor: {e}",
                descriptor_path.display()
            )
        })?;
        let settings_path = dir.join(SETTINGS_FILE);
        let settings: Settings = if std::fs::symlink_metadata(&settings_path).is_ok() {
            let text = read_package_file(&root, &settings_path, MAX_SETTINGS_BYTES)
                .with_context(|| format!("{}: cannot read", settings_path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", settings_path.display()))?
        } else {
            Settings::default()
        };
        let plugin_name = settings.plugin.as_deref().unwrap_or(DEFAULT_PLUGIN_FILE);
        let relative = Path::new(plugin_name);
        if !relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            bail!(
                "{}: confinement: \"plugin\" is {plugin_name:?}, which leads outside the package: \
                 name a file inside the package folder, e.g. \"plugin.wasm\"",
                settings_path.display()
            );
        }
        let plugin = dir.join(relative);
        if std::fs::symlink_metadata(&plugin).is_err() {
            bail!(
                "{}: the plugin of {id} is missing: build the module's migration component (wasm32-wasip2) \
                 and put it there",
                plugin.display()
            );
        }
        check_inside(&root, &plugin, MAX_PLUGIN_BYTES, false)?;
        for (folder, _) in DATA_FOLDERS {
            let path = dir.join(folder);
            if std::fs::symlink_metadata(&path).is_ok() {
                check_inside(&root, &path, 0, true)?;
            }
        }
        Ok(Package {
            dir: dir.to_path_buf(),
            id,
            descriptor,
            plugin,
            limits: settings.limits,
        })
    }

    /// The data folders this package has: (host path, guest path). Each was
    /// checked by `load` to be a real folder inside the package.
    pub fn data_folders(&self) -> Vec<(PathBuf, &'static str)> {
        DATA_FOLDERS
            .iter()
            .map(|(folder, guest)| (self.dir.join(folder), *guest))
            .filter(|(path, _)| is_real_dir(path))
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
        is_real_dir(&self.dir.join(folder))
    }
}

fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// A file or folder of the package must be itself (not a symbolic link),
/// of the expected kind, inside the package's real folder, and a file no
/// larger than `max_bytes`.
fn check_inside(root: &Path, path: &Path, max_bytes: u64, folder: bool) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if meta.file_type().is_symlink() {
        bail!(
            "{}: confinement: a symbolic link; a package may not point outside itself: \
             copy the {} into the package",
            path.display(),
            if folder { "folder" } else { "file" }
        );
    }
    let real = path
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve", path.display()))?;
    if !real.starts_with(root) {
        bail!(
            "{}: confinement: resolves to {}, outside the package folder {}",
            path.display(),
            real.display(),
            root.display()
        );
    }
    match (folder, meta.is_dir(), meta.is_file()) {
        (true, true, _) => Ok(()),
        (true, false, _) => bail!("{}: not a folder", path.display()),
        (false, _, true) if meta.len() > max_bytes => bail!(
            "{}: {} bytes, more than the {} MiB a package file of this kind may have: \
             this is not a file graft can use",
            path.display(),
            meta.len(),
            max_bytes >> 20
        ),
        (false, _, true) => Ok(()),
        (false, _, false) => bail!("{}: not a regular file", path.display()),
    }
}

/// Read a text file of the package after `check_inside`, never more than
/// `max_bytes` (the file may grow between the check and the read).
fn read_package_file(root: &Path, path: &Path, max_bytes: u64) -> Result<String> {
    check_inside(root, path, max_bytes, false)?;
    let bytes = read_at_most(path, max_bytes)?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))
}

/// A file's bytes, refused past `max_bytes` without reading more than that.
pub fn read_at_most(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        bail!(
            "{}: more than {} MiB: this is not a file graft can use",
            path.display(),
            max_bytes >> 20
        );
    }
    Ok(bytes)
}

/// The `*.json` files under a package's data folder, in path order, never
/// following a symbolic link (a link is reported, not read), each read
/// with `read_at_most(MAX_DATA_FILE_BYTES)` by the caller.
pub fn data_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("{}: cannot read", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("{}: cannot read", dir.display()))?;
            let kind = entry
                .file_type()
                .with_context(|| format!("{}: cannot read", entry.path().display()))?;
            let path = entry.path();
            if kind.is_symlink() {
                bail!(
                    "{}: confinement: a symbolic link in a data folder; copy the file instead",
                    path.display()
                );
            } else if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The packages in a modules folder: one sub-folder each, or one
/// `<module-id>.tar.gz` archive each (see `archive`).
pub struct Catalog {
    pub dir: PathBuf,
    /// Writes the folder's packages the first time it is read, if it does
    /// not exist (the sample packages a binary carries).
    fill: Option<Fill>,
    /// Where archives are unpacked (the data directory's `packages`).
    unpack_dir: Option<PathBuf>,
}

/// Writes a modules folder's packages into the folder it is given.
pub type Fill = fn(&Path) -> Result<()>;

/// A folder of the catalog that is not a usable package, and why.
#[derive(Debug)]
pub struct BadPackage {
    pub dir: PathBuf,
    pub error: anyhow::Error,
}

impl Catalog {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Catalog {
            dir: dir.into(),
            fill: None,
            unpack_dir: None,
        }
    }

    /// A catalog that reads package archives too, unpacking each once into
    /// a folder of `dir` named by its sha256.
    pub fn unpacking_into(self, dir: impl Into<PathBuf>) -> Self {
        Catalog {
            unpack_dir: Some(dir.into()),
            ..self
        }
    }

    /// A catalog whose folder `fill` writes when it is first read and
    /// missing: commands that read no package never write it.
    pub fn filled_by(self, fill: Fill) -> Self {
        Catalog {
            fill: Some(fill),
            ..self
        }
    }

    /// Every package, sorted by name and version, and the folders that are
    /// not usable packages.
    pub fn scan(&self) -> Result<(Vec<Package>, Vec<BadPackage>)> {
        if let Some(fill) = self.fill {
            if !self.dir.is_dir() {
                fill(&self.dir)?;
            }
        }
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
            .filter(|p| p.is_dir() || archive::is_archive(p))
            .collect();
        // `graft package` writes a package both ways side by side: the
        // folder stands for the archive beside it.
        let folders: std::collections::BTreeSet<PathBuf> =
            dirs.iter().filter(|p| p.is_dir()).cloned().collect();
        dirs.retain(|p| {
            p.is_dir()
                || archive::archive_stem(p)
                    .is_none_or(|stem| !folders.contains(&self.dir.join(stem)))
        });
        dirs.sort();
        for dir in dirs {
            match self.load(&dir) {
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

    /// A package folder, or an archive unpacked, whose top folder must be
    /// named as the archive is.
    fn load(&self, path: &Path) -> Result<Package> {
        if path.is_dir() {
            return Package::load(path);
        }
        let Some(into) = &self.unpack_dir else {
            bail!(
                "{}: a package archive, which this command does not unpack: unpack it into a folder",
                path.display()
            );
        };
        let dir = archive::unpacked(path, into)?;
        let package =
            Package::load(&dir).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
        let stem = archive::archive_stem(path).unwrap_or_default();
        if stem != package.id.to_string() {
            bail!(
                "{}: the archive holds {}: name the file {}.tar.gz",
                path.display(),
                package.id,
                package.id
            );
        }
        Ok(package)
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
        broken.iter().find(|b| {
            b.dir.file_name().is_some_and(|n| n == id) || archive::archive_stem(&b.dir) == Some(id)
        })
    }
}
