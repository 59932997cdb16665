//! Where a command's runner comes from: the global options, the config
//! file (`--config`), and the environment.

use super::Cli;
use anyhow::{anyhow, Result};
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
/// sample packages the binary carries, written out once into the data
/// directory.
fn modules_dir(cli: &Cli, config: &Config) -> Result<PathBuf> {
    if let Some(dir) = cli.modules.clone().or(config.modules.clone()) {
        return Ok(dir);
    }
    let beside = cli
        .data_dir
        .parent()
        .unwrap_or(Path::new(""))
        .join("modules");
    if beside.is_dir() {
        return Ok(beside);
    }
    sample_modules(&cli.data_dir)
}

/// The binary's sample packages, in `<data-dir>/sample-modules-<hash>`:
/// written on first use (into a temporary folder, then renamed, so that a
/// concurrent or interrupted run never leaves half a folder), and named by
/// their content, so that another graft binary writes its own.
fn sample_modules(data_dir: &Path) -> Result<PathBuf> {
    let packed = graft_sample_modules::SAMPLE_PACKAGES;
    let hash = xxhash_rust::xxh3::xxh3_64(packed);
    let dir = data_dir.join(format!("sample-modules-{hash:016x}"));
    if dir.is_dir() {
        return Ok(dir);
    }
    let cannot = |e: std::io::Error| {
        anyhow!(
            "{}: cannot write the sample packages: {e} (or name a modules folder with --modules)",
            dir.display()
        )
    };
    std::fs::create_dir_all(data_dir).map_err(cannot)?;
    let partial = tempfile::Builder::new()
        .prefix(".sample-modules-")
        .tempdir_in(data_dir)
        .map_err(cannot)?;
    graft_sample_modules::unpack(packed, partial.path()).map_err(cannot)?;
    match std::fs::rename(partial.path(), &dir) {
        Ok(()) => {}
        // Another run wrote them first: theirs are the same.
        Err(_) if dir.is_dir() => {}
        Err(e) => return Err(cannot(e)),
    }
    Ok(dir)
}

pub(super) fn open(cli: &Cli) -> Result<Graft> {
    let config = config(cli)?;
    let graft = Graft::open(
        &cli.data_dir,
        &modules_dir(cli, &config)?,
        cli.limits.limits()?,
        cli.limits.stack_kb << 10,
    )?;
    match cli.database.clone().or(config.database) {
        Some(url) => Ok(graft.with_database(Database::parse_url(&url)?)),
        None => Ok(graft),
    }
}

/// A runner on another data directory, with the command's other options.
pub(super) fn open_in(cli: &Cli, data_dir: &Path) -> Result<Graft> {
    Graft::open(
        data_dir,
        &modules_dir(cli, &config(cli)?)?,
        cli.limits.limits()?,
        cli.limits.stack_kb << 10,
    )
}
