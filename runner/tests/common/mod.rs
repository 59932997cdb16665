//! Running the `graft` binary from the command-line tests, on SQLite or,
//! when `GRAFT_TEST_POSTGRES` names a server, on a PostgreSQL database of
//! each data directory's own.

#![allow(dead_code)]

use graft::storage::TenantStore;
use graft::tenants::{Database, Tenants};
use std::path::Path;
use std::process::{Command, Output};

/// The database the tests use for a data directory, made on first use:
/// `None` for SQLite.
pub fn database_for(data: &Path) -> Option<String> {
    let server = std::env::var("GRAFT_TEST_POSTGRES").ok()?;
    let name = format!(
        "graft_cli_{}",
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            data.to_string_lossy().as_bytes()
        ))[..16]
    );
    let mut client = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap()
        .is_some();
    if !exists {
        // Two tests never share a data directory, so no race here.
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
    }
    let (base, _) = server.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// A graft command, on a data directory (and its database), with nothing
/// taken from the environment.
pub fn command(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_graft"));
    command
        .arg("--data-dir")
        .arg(data)
        .env_remove("GRAFT_MODULES")
        .env_remove("GRAFT_DATA_DIR")
        .env_remove("GRAFT_CONFIG");
    match database_for(data) {
        Some(url) => command.env("GRAFT_DATABASE", url),
        None => command.env_remove("GRAFT_DATABASE"),
    };
    command
}

/// Run graft on a data directory.
pub fn graft(data: &Path, args: &[&str]) -> Output {
    command(data).args(args).output().unwrap()
}

/// A tenant's store, opened in-process as graft would open it.
pub fn open_tenant(data: &Path, tenant: &str) -> Box<dyn TenantStore> {
    let tenants = match database_for(data) {
        Some(url) => Tenants::in_database(data, Database::Postgres(url)),
        None => Tenants::new(data),
    };
    tenants.open(tenant).unwrap()
}

/// The JSON graft printed on stdout.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
