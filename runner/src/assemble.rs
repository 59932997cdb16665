//! `graft package`: a module package assembled from its parts, a source
//! folder (the ModuleDescriptor, an optional `graft.json`, the data
//! folders) and a built component, then checked as `graft validate` checks a
//! package before any fixture (descriptor, component and contract,
//! `describe` against the descriptor, data files), and written as a folder
//! and as a `.tar.gz` with its sha256 (see `archive`).
//!
//! Nothing is left half-written: the package is assembled in a temporary
//! folder beside the output and takes the place of an older one only when
//! every check passed.

use crate::package::{DATA_FOLDERS, DEFAULT_PLUGIN_FILE, DESCRIPTOR_FILE, SETTINGS_FILE};
use crate::validate::Validation;
use anyhow::{anyhow, bail, Context as _, Result};
use std::path::{Path, PathBuf};

/// What `graft package` made.
#[derive(Debug, serde::Serialize)]
pub struct Assembled {
    /// The checks of the assembled package; nothing is written unless all pass.
    pub validation: Validation,
    /// What was written: only when every check passed.
    #[serde(flatten)]
    pub written: Option<Written>,
}

/// A package as `graft package` wrote it.
#[derive(Debug, serde::Serialize)]
pub struct Written {
    /// The package folder, `<out>/<module-id>`.
    pub folder: PathBuf,
    /// `<out>/<module-id>.tar.gz`, and its sha256.
    pub archive: PathBuf,
    pub sha256: String,
}

/// The parts of a package.
pub struct Parts<'a> {
    /// A folder with `ModuleDescriptor.json`, and optionally `graft.json`
    /// and the data folders.
    pub source: &'a Path,
    /// The built component; default: the one the source folder has (the
    /// file `graft.json` names, or `plugin.wasm`).
    pub plugin: Option<&'a Path>,
    /// Where the package folder and archive are written.
    pub out: &'a Path,
}

impl crate::Graft {
    /// Assemble, check and write a package (see the module's comment).
    pub fn assemble(&mut self, parts: &Parts) -> Result<Assembled> {
        let descriptor = parts.source.join(DESCRIPTOR_FILE);
        if !descriptor.is_file() {
            bail!(
                "{}: no {DESCRIPTOR_FILE}: give the folder with the module's descriptor \
                 (and its data folders)",
                parts.source.display()
            );
        }
        let plugin_name = plugin_file_name(parts.source)?;
        let plugin = match parts.plugin {
            Some(plugin) => plugin.to_path_buf(),
            None => parts.source.join(&plugin_name),
        };
        if !plugin.is_file() {
            bail!(
                "{}: no such component: build the plugin first, or name it with --plugin",
                plugin.display()
            );
        }
        std::fs::create_dir_all(parts.out)
            .with_context(|| format!("{}: cannot make the folder", parts.out.display()))?;
        let staging = tempfile::Builder::new()
            .prefix(".assembling-")
            .tempdir_in(parts.out)
            .with_context(|| format!("{}: cannot make a folder in it", parts.out.display()))?;
        let dir = staging.path();
        copy_file(&descriptor, &dir.join(DESCRIPTOR_FILE))?;
        let settings = parts.source.join(SETTINGS_FILE);
        if settings.exists() {
            copy_file(&settings, &dir.join(SETTINGS_FILE))?;
        }
        copy_file(&plugin, &dir.join(&plugin_name))?;
        for (folder, _) in DATA_FOLDERS {
            let from = parts.source.join(folder);
            if std::fs::symlink_metadata(&from).is_ok() {
                copy_tree(&from, &dir.join(folder))?;
            }
        }
        let mut validation = self.check_package(dir);
        validation.package = parts.source.to_path_buf();
        // The checks name the staging folder; say where the package goes.
        let shown = match &validation.module {
            Some(id) => parts.out.join(id),
            None => parts.source.to_path_buf(),
        };
        let staged = dir.display().to_string();
        for check in &mut validation.checks {
            check.message = check.message.replace(&staged, &shown.display().to_string());
            for line in &mut check.details {
                *line = line.replace(&staged, &shown.display().to_string());
            }
        }
        let Some(id) = validation.module.clone().filter(|_| validation.ok) else {
            return Ok(Assembled {
                validation,
                written: None,
            });
        };
        let folder = parts.out.join(&id);
        if folder.exists() {
            std::fs::remove_dir_all(&folder)
                .with_context(|| format!("{}: cannot replace", folder.display()))?;
        }
        std::fs::rename(dir, &folder)
            .with_context(|| format!("{}: cannot write", folder.display()))?;
        let archive = parts
            .out
            .join(format!("{id}{}", crate::package::archive::ARCHIVE_SUFFIX));
        let sha256 = crate::package::archive::pack(&folder, &id, &archive)?;
        validation.package = folder.clone();
        Ok(Assembled {
            validation,
            written: Some(Written {
                folder,
                archive,
                sha256,
            }),
        })
    }
}

/// The component's file name in the package: what the source's
/// `graft.json` names, or `plugin.wasm`.
fn plugin_file_name(source: &Path) -> Result<String> {
    let settings = source.join(SETTINGS_FILE);
    if !settings.exists() {
        return Ok(DEFAULT_PLUGIN_FILE.into());
    }
    let bytes = crate::package::read_at_most(&settings, crate::package::MAX_SETTINGS_BYTES)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{}: not JSON: {e}", settings.display()))?;
    match value.get("plugin") {
        None => Ok(DEFAULT_PLUGIN_FILE.into()),
        Some(serde_json::Value::String(name)) => Ok(name.clone()),
        Some(other) => bail!(
            "{}: \"plugin\" is {other}, not a file name: write e.g. \"plugin.wasm\"",
            settings.display()
        ),
    }
}

/// Copy one regular file; a link or anything else is refused, so a package
/// never carries what its source folder only pointed at.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from)
        .with_context(|| format!("{}: cannot read", from.display()))?;
    if !meta.is_file() {
        bail!(
            "{}: confinement: not a regular file (a link?): a package holds only its own files; \
             copy the file there",
            from.display()
        );
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot make the folder", parent.display()))?;
    }
    std::fs::copy(from, to).with_context(|| format!("{}: cannot copy", from.display()))?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from)
        .with_context(|| format!("{}: cannot read", from.display()))?;
    if !meta.is_dir() {
        return copy_file(from, to);
    }
    std::fs::create_dir_all(to).with_context(|| format!("{}: cannot write", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("{}: cannot read", from.display()))?
    {
        let entry = entry.with_context(|| format!("{}: cannot read", from.display()))?;
        copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}
