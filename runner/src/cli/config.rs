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

fn modules_dir(cli: &Cli, config: &Config) -> PathBuf {
    cli.modules
        .clone()
        .or(config.modules.clone())
        .unwrap_or_else(|| graft_sample_modules::sample_modules_dir().to_path_buf())
}

pub(super) fn open(cli: &Cli) -> Result<Graft> {
    let config = config(cli)?;
    let graft = Graft::open(
        &cli.data_dir,
        &modules_dir(cli, &config),
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
        &modules_dir(cli, &config(cli)?),
        cli.limits.limits()?,
        cli.limits.stack_kb << 10,
    )
}
