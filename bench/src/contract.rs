//! B9: contract 0.2. B1's upgrade (mod-users 1.1.0 -> 2.0.0) through the
//! same plugin source built for 0.2 (its batches written behind the next
//! page's transformation), against one SQL `UPDATE` that performs the same
//! restructuring with SQLite's own JSON functions, and beside the 0.1
//! build; and what a call through the 0.1 adapter costs against a native
//! 0.2 call.

use super::*;
use graft::host::{CallSetup, Host, HostConfig};
use graft::package::Package;
use graft::test_support::ScratchDatabase;

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
fn users_of(graft: &Graft, tenant: &str, ids: &[String]) -> Result<Vec<Value>> {
    let mut db = graft.tenants().open(tenant)?;
    ids.iter()
        .map(|id| {
            let doc = db
                .get("mod-users", "users", id)?
                .ok_or_else(|| anyhow!("no user {id}"))?;
            Ok(serde_json::from_str(&doc)?)
        })
        .collect()
}

/// One leg's runner, on a copy of the seeded tenant: a SQLite file in the
/// runner's data directory, or a scratch PostgreSQL database.
struct LegCopy {
    graft: Graft,
    database: Option<ScratchDatabase>,
}

impl LegCopy {
    fn remove(self) -> Result<()> {
        remove_copy(self.graft)?;
        // After the runner, whose pool holds connections to it.
        drop(self.database);
        Ok(())
    }
}

/// The medians of `runs` runs of the three legs, the SQL baseline
/// (`sql`), the 0.2 build and the 0.1 build, each on a fresh copy
/// (`copy(leg, run)`), the order turning every run; the legs of the first
/// run are checked to leave the same users. Returns (SQL, 0.2, 0.1) and
/// how many users were compared.
fn three_legs(
    runs: usize,
    users: u64,
    copy: impl Fn(&str, usize) -> Result<LegCopy>,
    sql: impl Fn(&LegCopy) -> Result<u64>,
) -> Result<([Duration; 3], usize)> {
    let sample: Vec<String> = (0..users)
        .step_by((users / 50).max(1) as usize)
        .map(|n| user(n)["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let legs = ["sql", "0.2", "0.1"];
    let mut times: [Vec<Duration>; 3] = Default::default();
    for run in 0..runs {
        let mut results: Vec<(&str, Vec<Value>)> = Vec::new();
        for turn in 0..legs.len() {
            let which = (turn + run) % legs.len();
            let leg = legs[which];
            let copy = copy(leg, run)?;
            warm(&copy.graft)?;
            let (elapsed, done) = match leg {
                "sql" => time(|| sql(&copy)),
                _ => time(|| plugin_upgrade(&copy.graft, "diku", false)),
            };
            anyhow::ensure!(done? == users, "B9 {leg}: users missed");
            if run == 0 {
                results.push((leg, users_of(&copy.graft, "diku", &sample)?));
            }
            times[which].push(elapsed);
            copy.remove()?;
        }
        for (leg, left) in results.iter().skip(1) {
            anyhow::ensure!(
                *left == results[0].1,
                "B9: the {leg} leg left other users than {}",
                results[0].0
            );
        }
    }
    let [sql, new, old] = times.map(median);
    Ok(([sql, new, old], sample.len()))
}

/// The upgrade rows of B9 and B9-PG: the baseline, the two builds.
fn upgrade_rows(baseline: &str, [sql, new, old]: [Duration; 3], users: u64) -> Vec<Row> {
    let row = |label: &str, median| Row {
        label: label.into(),
        median,
        baseline: Some(sql),
        units: Some((users, "records")),
    };
    vec![
        row(baseline, sql),
        row("through the plugin built for 0.2 (writes behind)", new),
        row("through the plugin built for 0.1 (B1's plugin leg)", old),
    ]
}

/// B9's upgrade legs on SQLite: SQL, the 0.2 build, the 0.1 build (B1's
/// plugin leg); the peak memory of the 0.2 leg in a process of its own
/// (`rss`, where the caller can: the bench binary); and the per-call cost
/// of the 0.1 adapter.
pub fn b9(setup: &Setup, sizes: &Sizes, rss: &dyn Fn(&Path) -> Option<u64>) -> Result<Bench> {
    let seed = users_seed(setup, sizes.users)?;
    let copy = |leg: &str, run: usize| -> Result<LegCopy> {
        let data = format!("b9-{leg}-{run}");
        let graft = match leg {
            "0.2" => graft_0_2(setup, &data)?,
            _ => setup.graft(&data)?,
        };
        copy_tenant(&seed, &graft, "diku")?;
        Ok(LegCopy {
            graft,
            database: None,
        })
    };
    let sql = |copy: &LegCopy| sql_upgrade(&copy.graft.tenants().path("diku"));
    let (times, compared) = three_legs(sizes.runs, sizes.users, copy, sql)?;
    let ratio = times[1].as_secs_f64() / times[0].as_secs_f64();
    let [old, new] = adapter_cost(setup, sizes)?;
    let adapter_ratio = old.call.as_secs_f64() / new.call.as_secs_f64();
    let mut notes = vec![format!(
        "the three legs left the same users (checked on {compared} of them)"
    )];
    let rss_ok = match rss(&seed) {
        Some(bytes) => {
            notes.push(format!(
                "peak RSS of a process running only the 0.2 plugin's upgrade: {} MB",
                bytes >> 20
            ));
            bytes <= 200 << 20
        }
        None => true,
    };
    let beyond = |build: &PerCall| build.call.saturating_sub(build.instantiate);
    notes.push(format!(
        "per call beyond instantiation (`inspect` and its host calls): 0.1 through the adapter {} us, native 0.2 {} us",
        beyond(&old).as_micros(),
        beyond(&new).as_micros()
    ));
    let mut rows = upgrade_rows(
        "one SQL UPDATE with SQLite's JSON functions, index dropped and made (baseline)",
        times,
        sizes.users,
    );
    let call_row = |label: &str, median| Row {
        label: label.into(),
        median,
        baseline: Some(new.call),
        units: None,
    };
    rows.extend([
        call_row(
            "per call, native 0.2: instantiate and `inspect` (baseline)",
            new.call,
        ),
        call_row(
            "per call, 0.1 through the adapter: instantiate and `inspect`",
            old.call,
        ),
        call_row("of which instantiation, 0.2 build", new.instantiate),
        call_row("of which instantiation, 0.1 build", old.instantiate),
    ]);
    Ok(Bench {
        id: "B9",
        what: format!(
            "contract 0.2: upgrade {} users mod-users 1.1.0 -> 2.0.0 (B1's data) through the 0.2 build of the plugin, against one SQL UPDATE",
            sizes.users
        ),
        rows,
        target: "0.2 plugin <= 2.0x the SQL UPDATE; peak RSS <= 200 MB; a 0.1 call <= 1.05x a 0.2 call".into(),
        met: Some(ratio <= 2.0 && rss_ok && adapter_ratio <= 1.05),
        notes,
    })
}

/// B9's 0.2 leg alone on a copy of `seed`, for the bench binary to run in
/// a fresh process: the process's peak RSS in bytes.
pub fn b9_rss_leg(seed: &Path) -> Result<u64> {
    let setup = Setup::new()?;
    let graft = graft_0_2(&setup, "rss")?;
    copy_tenant(seed, &graft, "diku")?;
    warm(&graft)?;
    plugin_upgrade(&graft, "diku", false)?;
    peak_rss().ok_or_else(|| anyhow!("cannot read the peak RSS"))
}

/// The SQL baseline on PostgreSQL: [`sql_upgrade`]'s restructuring with
/// PostgreSQL's jsonb operators, in the database at `url`.
pub fn pg_sql_upgrade(url: &str) -> Result<u64> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let mut tx = client.transaction()?;
    let row = tx.query_one(
        "SELECT schema_name, table_name FROM graft.collections
         WHERE tenant = 'diku' AND module = 'mod-users' AND collection = 'users'",
        &[],
    )?;
    let table = format!(
        "\"{}\".\"{}\"",
        row.get::<_, String>(0),
        row.get::<_, String>(1)
    );
    let index: String = tx
        .query_one(
            "SELECT sql_name FROM graft.indexes
             WHERE tenant = 'diku' AND module = 'mod-users' AND collection = 'users' AND name = 'users-email'",
            &[],
        )?
        .get(0);
    let schema: String = row.get(0);
    tx.batch_execute(&format!("DROP INDEX \"{schema}\".\"{index}\""))?;
    let changed = tx.execute(
        &format!(
            "UPDATE {table} SET jsonb = (jsonb - 'personal' - 'patronGroup') || jsonb_build_object(
                'groupId', jsonb -> 'patronGroup',
                'contact', jsonb_build_object('email', jsonb #> '{{personal,email}}'),
                'name', ((jsonb -> 'personal') - 'lastName' - 'firstName' - 'email')
                    || jsonb_build_object(
                        'family', jsonb #> '{{personal,lastName}}',
                        'given', jsonb #> '{{personal,firstName}}'))"
        ),
        &[],
    )?;
    tx.batch_execute(&format!(
        "CREATE INDEX \"users_contact_email\" ON {table} ((jsonb -> 'contact' ->> 'email'))"
    ))?;
    tx.commit()?;
    Ok(changed)
}

/// B9 on PostgreSQL (`--postgres URL`): the three upgrade legs on copies
/// of one seeded database of `users` users.
pub fn b9_pg(setup: &Setup, server: &str, users: u64, runs: usize) -> Result<Bench> {
    let seed = pg_users_seed(setup, server, "pg-b9-seed", users)?;
    let copy = |leg: &str, run: usize| -> Result<LegCopy> {
        let data = format!("pg-b9-{leg}-{run}");
        let graft = match leg {
            "0.2" => graft_0_2(setup, &data)?,
            _ => setup.graft(&data)?,
        };
        let database = ScratchDatabase::copy_of(&seed)?;
        Ok(LegCopy {
            graft: in_db(graft, &database),
            database: Some(database),
        })
    };
    let sql = |copy: &LegCopy| {
        let url = &copy.database.as_ref().expect("a PostgreSQL copy").url;
        pg_sql_upgrade(url)
    };
    let (times, compared) = three_legs(runs, users, copy, sql)?;
    let ratio = times[1].as_secs_f64() / times[0].as_secs_f64();
    Ok(Bench {
        id: "B9-PG",
        what: format!("B9 on PostgreSQL: upgrade {users} users mod-users 1.1.0 -> 2.0.0 through the 0.2 build, against one SQL UPDATE"),
        rows: upgrade_rows(
            "one SQL UPDATE with PostgreSQL's jsonb operators, index dropped and made (baseline)",
            times,
            users,
        ),
        target: "reported (the issue's hand measurement: UPDATE ~18 s, plugin ~35 s at 200,000 users)".into(),
        met: None,
        notes: vec![
            format!("the three legs left the same users (checked on {compared} of them)"),
            format!("0.2 plugin / SQL UPDATE: {ratio:.2}x"),
        ],
    })
}

/// Per call, for each build of mod-users 2.0.0 (0.1, then 0.2): a fresh
/// instance alone, and a fresh instance and `inspect` (which lists the
/// collections and the indexes of users: host calls through the adapter
/// for 0.1); on one small tenant of its own (a copy of B1's million users
/// would have the disk writing back a gigabyte while calls are timed).
/// Instantiation is timed apart because the two builds are two different
/// components: what a call costs beyond it is the adapter's part.
fn adapter_cost(setup: &Setup, sizes: &Sizes) -> Result<[PerCall; 2]> {
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
    let mut runs: [(Vec<Duration>, Vec<Duration>); 2] = Default::default();
    for run in 0..sizes.runs.max(3) * 2 {
        // Alternating which build goes first.
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let started = Instant::now();
            for _ in 0..calls {
                host.instantiate(&plugins[which], &limits)?;
            }
            runs[which].0.push(started.elapsed() / calls);
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
            runs[which].1.push(started.elapsed() / calls);
        }
    }
    drop(db);
    remove_copy(graft)?;
    Ok(runs.map(|(instantiate, call)| PerCall {
        instantiate: median(instantiate),
        call: median(call),
    }))
}

/// The medians of one build's calls.
struct PerCall {
    /// A fresh instance alone.
    instantiate: Duration,
    /// A fresh instance and `inspect`.
    call: Duration,
}
