//! The runner's own tables in PostgreSQL (schema `graft`, keyed by tenant),
//! made once per database and process when a connection is first opened.

use ::postgres as pg;
use pg::{Client, NoTls};

pub(super) const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS graft;
CREATE TABLE IF NOT EXISTS graft.tenants (
    tenant text PRIMARY KEY,
    created_at text NOT NULL
);
CREATE TABLE IF NOT EXISTS graft.modules (
    tenant text NOT NULL,
    name text NOT NULL,
    module_id text NOT NULL,
    enabled boolean NOT NULL,
    updated_at text NOT NULL,
    descriptor text,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS graft.base (
    tenant text NOT NULL,
    module text NOT NULL,
    collection text NOT NULL,
    record_id text NOT NULL,
    doc text NOT NULL,
    sha256 text NOT NULL,
    release text NOT NULL,
    kind text NOT NULL,
    PRIMARY KEY (tenant, module, collection, record_id)
);
CREATE TABLE IF NOT EXISTS graft.jobs (
    tenant text NOT NULL,
    job_id text NOT NULL,
    started_at text NOT NULL,
    finished_at text NOT NULL,
    commit_mode text NOT NULL,
    plan jsonb NOT NULL,
    PRIMARY KEY (tenant, job_id)
);
CREATE TABLE IF NOT EXISTS graft.changes (
    tenant text NOT NULL,
    job_id text NOT NULL,
    module text NOT NULL,
    collection text NOT NULL,
    inserted bigint NOT NULL,
    updated bigint NOT NULL,
    deleted bigint NOT NULL,
    schema text NOT NULL,
    samples text NOT NULL,
    overlay text NOT NULL,
    digest text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, job_id, module, collection)
);
CREATE TABLE IF NOT EXISTS graft.history (
    seq bigserial PRIMARY KEY,
    tenant text NOT NULL,
    job_id text NOT NULL,
    module_name text NOT NULL,
    step text NOT NULL,
    module_from text,
    module_to text NOT NULL,
    outcome text NOT NULL,
    detail text,
    inserted bigint NOT NULL,
    updated bigint NOT NULL,
    deleted bigint NOT NULL,
    duration_ms bigint NOT NULL,
    plugin_sha256 text NOT NULL,
    at text NOT NULL
);
CREATE INDEX IF NOT EXISTS history_tenant ON graft.history (tenant, seq);
CREATE TABLE IF NOT EXISTS graft.collections (
    tenant text NOT NULL,
    module text NOT NULL,
    collection text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    PRIMARY KEY (tenant, module, collection),
    UNIQUE (schema_name, table_name)
);
CREATE TABLE IF NOT EXISTS graft.indexes (
    tenant text NOT NULL,
    module text NOT NULL,
    collection text NOT NULL,
    name text NOT NULL,
    field text NOT NULL,
    is_unique boolean NOT NULL,
    case_insensitive boolean NOT NULL,
    sql_name text NOT NULL,
    PRIMARY KEY (tenant, module, collection, name)
);
";
/// Connect and make sure the `graft` schema exists (checked once per
/// database and process: a runner opens a connection per tenant job).
pub fn connect(url: &str) -> anyhow::Result<Client> {
    static READY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut client = Client::connect(url, NoTls)
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {}: {e}", redact(url)))?;
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if !ready.iter().any(|u| u == url) {
        // Two runners starting at once must not race on CREATE ... IF NOT EXISTS.
        client.batch_execute("SELECT pg_advisory_lock(7234001)")?;
        let created = client.batch_execute(SCHEMA);
        client.batch_execute("SELECT pg_advisory_unlock(7234001)")?;
        created.map_err(|e| anyhow::anyhow!("cannot create the graft schema: {e}"))?;
        ready.push(url.to_string());
    }
    Ok(client)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
