//! Where a command's runner comes from: the global options, the config
//! file (`--config`), and the environment.

use super::Cli;
use anyhow::{anyhow, Result};
use graft::package::Fill;
use graft::storage::Database;
use graft::Graft;
use std::path::{Path, PathBuf};

/// `--config`: defaults for options not given otherwise.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database: Option<String>,
    modules: Option<PathBuf>,
}

fn config(cli: &Cli) -> Result<Config> {
    let Some(path) = &cli.config else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read the config file: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start].lines().count().max(1))
            .unwrap_or(1);
        anyhow!("{}: line {line}: {}", path.display(), e.message())
    })
}

/// The modules folder, found at run time (nothing of the build machine is
/// compiled in): `--modules` or `GRAFT_MODULES`, the config file's
/// `modules`, a `modules` folder beside the data directory, or else the
/// sample packages the binary carries, in the data directory (written when
/// a command first reads a package: `sample_modules`).
fn modules_dir(cli: &Cli, config: &Config) -> (PathBuf, Option<Fill>) {
    if let Some(dir) = cli.modules.clone().or(config.modules.clone()) {
        return (dir, None);
    }
    let beside = cli
        .data_dir
        .parent()
        .unwrap_or(Path::new(""))
        .join("modules");
    if beside.is_dir() {
        return (beside, None);
    }
    // Named by content, so that another graft binary writes its own.
    let hash = xxhash_rust::xxh3::xxh3_64(graft_sample_modules::SAMPLE_PACKAGES);
    let dir = cli.data_dir.join(format!("sample-modules-{hash:016x}"));
    (dir, Some(sample_modules))
}

/// Write the binary's sample packages into `dir`: into a temporary folder
/// beside it, then renamed, so that a concurrent or interrupted run never
/// leaves half a folder.
fn sample_modules(dir: &Path) -> Result<()> {
    let cannot = |e: std::io::Error| {
        anyhow!(
            "{}: cannot write the sample packages: {e} (or name a modules folder with --modules)",
            dir.display()
        )
    };
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(cannot)?;
    let partial = tempfile::Builder::new()
        .prefix(".sample-modules-")
        .tempdir_in(parent)
        .map_err(cannot)?;
    graft_sample_modules::unpack(graft_sample_modules::SAMPLE_PACKAGES, partial.path())
        .map_err(cannot)?;
    match std::fs::rename(partial.path(), dir) {
        Ok(()) => Ok(()),
        // Another run wrote them first: theirs are the same.
        Err(_) if dir.is_dir() => Ok(()),
        Err(e) => Err(cannot(e)),
    }
}

/// A runner on `data_dir` with the modules folder the options name.
fn runner(cli: &Cli, config: &Config, data_dir: &Path) -> Result<Graft> {
    let (modules, fill) = modules_dir(cli, config);
    let graft = Graft::open(
        data_dir,
        &modules,
        cli.limits.limits()?,
        cli.limits.stack_kb << 10,
    )?;
    Ok(match fill {
        Some(fill) => graft.with_modules_fill(fill),
        None => graft,
    })
}

pub(super) fn open(cli: &Cli) -> Result<Graft> {
    let config = config(cli)?;
    let graft = runner(cli, &config, &cli.data_dir)?;
    match cli.database.clone().or(config.database) {
        Some(url) => Ok(graft.with_database(Database::parse_url(&url)?)),
        None => Ok(graft),
    }
}

/// A runner on another data directory, with the command's other options.
pub(super) fn open_in(cli: &Cli, data_dir: &Path) -> Result<Graft> {
    runner(cli, &config(cli)?, data_dir)
}
