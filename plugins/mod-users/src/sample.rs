//! A deterministic generator of sample users: the same count gives the same
//! records on every run and every tenant, so runs can be compared.

use crate::{users, USERS};
use graft_plugin_sdk::{data, Context, DataKind, Error, Outcome, Result};
use serde_json::{json, Value};

/// How many users `--load-sample` creates unless the tenant parameter
/// `sampleUsers` says otherwise.
const DEFAULT_COUNT: u64 = 100;
const BATCH: u64 = 1000;

const LAST_NAMES: [&str; 8] = [
    "Smith",
    "Garcia",
    "Müller",
    "Okafor",
    "Nakamura",
    "Rossi",
    "Novak",
    "Lindqvist",
];
const FIRST_NAMES: [&str; 8] = [
    "Ada", "Bo", "Chen", "Dana", "Emil", "Farah", "Goran", "Hana",
];
/// The ids of the vendor's groups in reference-data/groups.
const GROUPS: [&str; 4] = [
    "3684a786-6671-4268-8ed0-9db82ebca60b",
    "503a81cd-6c26-400f-b620-14c08943697c",
    "ad0bc554-d5bc-463c-85d1-5562127ae91b",
    "bdc2b6d4-5ceb-4a12-ab46-249b9a68473e",
];

/// Load `sampleUsers` generated users where absent, in this release's shape.
pub fn load(ctx: &Context, release: &str) -> Result<Outcome> {
    let count = match ctx.param("sampleUsers") {
        None => DEFAULT_COUNT,
        Some(text) => text.parse().map_err(|_| {
            Error::unsupported(format!(
                "tenant parameter sampleUsers={text} is not a number"
            ))
        })?,
    };
    let mut report = data::LoadReport::default();
    let mut start = 0;
    while start < count {
        let end = (start + BATCH).min(count);
        let mut records = Vec::with_capacity((end - start) as usize);
        for n in start..end {
            let user = in_release_shape(user_1_0_0(n), release)?;
            records.push(
                graft_plugin_sdk::bindings::graft::migration::types::Record {
                    id: user["id"].as_str().unwrap_or_default().to_string(),
                    doc: user.to_string(),
                },
            );
        }
        let part = data::load(USERS, DataKind::Sample, &records)?;
        report.inserted += part.inserted;
        report.kept += part.kept + part.unchanged;
        graft_plugin_sdk::log::progress(end, count);
        start = end;
    }
    Ok(report.outcome())
}

/// User `n` as release 1.0.0 stores it.
pub fn user_1_0_0(n: u64) -> Value {
    let last = LAST_NAMES[(n % 8) as usize];
    let first = FIRST_NAMES[(n / 8 % 8) as usize];
    json!({
        "id": format!("{:08x}-0000-4000-8000-{:012x}", 0x5a3b1e00_u32, n),
        "username": format!("{}{}{n}", first.to_lowercase(), last.to_lowercase()),
        "barcode": format!("{:010}", 1_000_000 + n),
        "active": n % 10 != 0,
        "patronGroup": GROUPS[(n % 4) as usize],
        "personal": {
            "lastName": last,
            "firstName": first,
            "email": format!("user{n}@example.org"),
        }
    })
}

/// A 1.0.0 user brought to `release` by the same changes an upgrade makes.
fn in_release_shape(mut user: Value, release: &str) -> Result<Value> {
    if release != "1.0.0" {
        user["type"] = Value::from(users::DEFAULT_TYPE);
    }
    if release.starts_with("2.") {
        user = users::to_2_0_0(user).map_err(Error::failed)?;
    }
    if release == "2.1.0" {
        user = users::to_2_1_0(user).map_err(Error::failed)?;
    }
    Ok(user)
}
