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
CREATE TABLE IF NOT EXISTS graft.module_state (
    tenant text NOT NULL,
    module text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (tenant, module, key)
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
    let mut client = Client::connect(url, NoTls)
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {}: {e}", redact(url)))?;
    make_once(&mut client, url, 7234001, SCHEMA, "the graft schema")?;
    Ok(client)
}

/// Run `sql` (`CREATE ... IF NOT EXISTS` statements) once per database and
/// process, under the advisory lock `key`: two runners starting at once
/// must not race on them. `what` names what they make, for the error.
pub(crate) fn make_once(
    client: &mut Client,
    url: &str,
    key: i64,
    sql: &str,
    what: &str,
) -> anyhow::Result<()> {
    static READY: std::sync::Mutex<Vec<(String, i64)>> = std::sync::Mutex::new(Vec::new());
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if ready.iter().any(|(u, k)| u == url && *k == key) {
        return Ok(());
    }
    client.execute("SELECT pg_advisory_lock($1)", &[&key])?;
    let created = client.batch_execute(sql);
    client.execute("SELECT pg_advisory_unlock($1)", &[&key])?;
    created.map_err(|e| anyhow::anyhow!("cannot create {what}: {e}"))?;
    ready.push((url.to_string(), key));
    Ok(())
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
