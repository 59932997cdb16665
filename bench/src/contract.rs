//! B9: contract 0.2. B1's upgrade (mod-users 1.1.0 -> 2.0.0) through the
//! same plugin source built for 0.2 (its batches written behind the next
//! page's transformation), against one SQL `UPDATE` that performs the same
//! restructuring with SQLite's own JSON functions, and beside the 0.1
//! build; and what a call through the 0.1 adapter costs against a native
//! 0.2 call.

use super::*;
use graft::host::{CallSetup, Host, HostConfig};
use graft::package::Package;

/// The SQL baseline: the index on the moved field dropped, every user
/// restructured by one statement (`personal` -> `name` with `lastName` ->
/// `family` and `firstName` -> `given`, `personal.email` ->
/// `contact.email`, `patronGroup` -> `groupId`: what `users::to_2_0_0`
/// does to the bench's users, which all have a group and an email), the
/// new index made, in one transaction. Graft's index metadata is not kept
/// up to date: only the work on the data is measured.
pub fn sql_upgrade(path: &Path) -> Result<u64> {
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    let table: String = tx.query_row(
        "SELECT table_name FROM graft_collections WHERE module = 'mod-users' AND collection = 'users'",
        [],
        |row| row.get(0),
    )?;
    let index: String = tx.query_row(
        "SELECT sql_name FROM graft_indexes WHERE module = 'mod-users' AND collection = 'users' AND name = 'users-email'",
        [],
        |row| row.get(0),
    )?;
    tx.execute_batch(&format!("DROP INDEX \"{index}\""))?;
    let changed = tx.execute(
        &format!(
            "UPDATE \"{table}\" SET doc = jsonb_remove(
                jsonb_set(doc,
                    '$.groupId', doc -> '$.patronGroup',
                    '$.contact', jsonb_object('email', doc -> '$.personal.email'),
                    '$.name', jsonb_remove(
                        jsonb_set(doc -> '$.personal',
                            '$.family', doc -> '$.personal.lastName',
                            '$.given', doc -> '$.personal.firstName'),
                        '$.lastName', '$.firstName', '$.email')),
                '$.personal', '$.patronGroup')"
        ),
        [],
    )?;
    tx.execute_batch(&format!(
        "CREATE INDEX \"{table}_contact_email\" ON \"{table}\" (json_extract(doc, '$.contact.email'))"
    ))?;
    tx.commit()?;
    Ok(changed as u64)
}

/// A runner whose modules are mod-users 1.1.0 (0.1) and the 0.2 build of
/// mod-users 2.0.0.
fn graft_0_2(setup: &Setup, data: &str) -> Result<Graft> {
    let modules = setup.dir.path().join("modules-0.2");
    if !modules.exists() {
        graft_sample_modules::copy_dir(
            &setup.modules.join("mod-users-1.1.0"),
            &modules.join("mod-users-1.1.0"),
        )?;
        graft_sample_modules::copy_dir(
            &graft_sample_modules::contract_0_2_packages_dir().join("mod-users-2.0.0"),
            &modules.join("mod-users-2.0.0"),
        )?;
    }
    Graft::open(
        &setup.dir.path().join(data),
        &modules,
        Limits::default(),
        1 << 20,
    )
}

/// The records of `ids` in a tenant's users, to compare two legs' results.
fn users_of(path: &Path, tenant: &str, ids: &[String]) -> Result<Vec<Value>> {
    let mut db = SqliteStore::open(path, tenant)?;
    ids.iter()
        .map(|id| {
            let doc = db
                .get("mod-users", "users", id)?
                .ok_or_else(|| anyhow!("no user {id}"))?;
            Ok(serde_json::from_str(&doc)?)
        })
        .collect()
}

/// B9's upgrade legs: SQL, the 0.2 build, the 0.1 build (B1's plugin leg).
pub fn b9(setup: &Setup, sizes: &Sizes) -> Result<Bench> {
    let seed = users_seed(setup, sizes.users)?;
    let sample: Vec<String> = (0..sizes.users)
        .step_by((sizes.users / 50).max(1) as usize)
        .map(|n| user(n)["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut checked = false;
    let (mut sql, mut new, mut old) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..sizes.runs {
        // Each leg on a fresh copy; the order turns every run.
        let mut legs: Vec<&str> = vec!["sql", "0.2", "0.1"];
        legs.rotate_left(run % 3);
        let mut results = Vec::new();
        for leg in legs {
            let data = format!("b9-{leg}-{run}");
            let graft = match leg {
                "0.2" => {
                    let graft = graft_0_2(setup, &data)?;
                    copy_tenant(&seed, &graft, "diku")?;
                    graft
                }
                _ => tenant_copy(setup, &seed, &data, "diku")?,
            };
            warm(&graft)?;
            let path = graft.tenants().path("diku");
            let (elapsed, done) = match leg {
                "sql" => time(|| sql_upgrade(&path)),
                _ => time(|| plugin_upgrade(&graft, "diku", false)),
            };
            anyhow::ensure!(done? == sizes.users, "B9 {leg}: users missed");
            if !checked {
                results.push((leg, users_of(&path, "diku", &sample)?));
            }
            match leg {
                "sql" => sql.push(elapsed),
                "0.2" => new.push(elapsed),
                _ => old.push(elapsed),
            }
            remove_copy(graft)?;
        }
        // The three legs leave the same users.
        if !checked {
            let first = &results[0].1;
            for (leg, users) in &results[1..] {
                anyhow::ensure!(
                    users == first,
                    "B9: the {leg} leg left other users than {}",
                    results[0].0
                );
            }
            checked = true;
        }
    }
    let (sql, new, old) = (median(sql), median(new), median(old));
    let ratio = new.as_secs_f64() / sql.as_secs_f64();
    let adapter = adapter_cost(setup, sizes)?;
    let adapter_ratio = adapter.0.as_secs_f64() / adapter.1.as_secs_f64();
    Ok(Bench {
        id: "B9",
        what: format!(
            "contract 0.2: upgrade {} users mod-users 1.1.0 -> 2.0.0 (B1's data) through the 0.2 build of the plugin, against one SQL UPDATE",
            sizes.users
        ),
        rows: vec![
            Row {
                label: "one SQL UPDATE with SQLite's JSON functions, index dropped and made (baseline)".into(),
                median: sql,
                baseline: Some(sql),
                units: Some((sizes.users, "records")),
            },
            Row {
                label: "through the plugin built for 0.2 (writes behind)".into(),
                median: new,
                baseline: Some(sql),
                units: Some((sizes.users, "records")),
            },
            Row {
                label: "through the plugin built for 0.1 (B1's plugin leg)".into(),
                median: old,
                baseline: Some(sql),
                units: Some((sizes.users, "records")),
            },
            Row {
                label: "per call, native 0.2: instantiate and `inspect` (baseline)".into(),
                median: adapter.1,
                baseline: Some(adapter.1),
                units: None,
            },
            Row {
                label: "per call, 0.1 through the adapter: instantiate and `inspect`".into(),
                median: adapter.0,
                baseline: Some(adapter.1),
                units: None,
            },
        ],
        target: "0.2 plugin <= 2.0x the SQL UPDATE; a 0.1 call <= 1.05x a 0.2 call".into(),
        met: Some(ratio <= 2.0 && adapter_ratio <= 1.05),
        notes: vec![format!(
            "the three legs left the same users (checked on {} of them)",
            sample.len()
        )],
    })
}

/// Per call: a fresh instance and `inspect` (which lists the collections
/// and the indexes of users: host calls through the adapter for 0.1), for
/// the two builds of mod-users 2.0.0 on one small tenant of its own (a
/// copy of B1's million users would have the disk writing back a
/// gigabyte while calls are timed). Returns (0.1, 0.2).
fn adapter_cost(setup: &Setup, sizes: &Sizes) -> Result<(Duration, Duration)> {
    let seed = seed_users(setup, "b9-calls-seed", 100)?;
    let graft = tenant_copy(setup, &seed, "b9-calls", "diku")?;
    let host = Host::new(HostConfig::default())?;
    let limits = Limits::default();
    let old = Package::load(&setup.modules.join("mod-users-2.0.0"))?;
    let new =
        Package::load(&graft_sample_modules::contract_0_2_packages_dir().join("mod-users-2.0.0"))?;
    let plugins = [host.load(&old, &limits)?, host.load(&new, &limits)?];
    let mut db = Some(graft.tenants().open("diku")?);
    let calls = 300;
    let (mut old_runs, mut new_runs) = (Vec::new(), Vec::new());
    for run in 0..sizes.runs.max(3) * 2 {
        // Alternating which build goes first.
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let started = Instant::now();
            for _ in 0..calls {
                let setup = CallSetup {
                    store: db.take(),
                    readable: Vec::new(),
                    limits: limits.clone(),
                    progress: None,
                    determinism: None,
                };
                let outcome = host.call(&plugins[which], setup, |instance, store| {
                    instance.inspect(store).map(Ok)
                });
                let stored = outcome.result.map_err(|f| anyhow!("inspect: {f}"))?;
                anyhow::ensure!(
                    matches!(stored, graft::host::wit::StoredState::Release(ref r) if r == "1.1.0"),
                    "inspect found {stored:?}"
                );
                db = outcome.store;
            }
            let per_call = started.elapsed() / calls;
            if which == 0 {
                old_runs.push(per_call);
            } else {
                new_runs.push(per_call);
            }
        }
    }
    drop(db);
    remove_copy(graft)?;
    Ok((median(old_runs), median(new_runs)))
}
