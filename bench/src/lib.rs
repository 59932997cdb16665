//! Graft's benchmarks. Each measures one thing against a baseline measured
//! in the same run, as medians over several runs, and says whether it meets
//! its target. `main.rs` runs them at full size and writes
//! `docs/benchmarks.md`; `tests/smoke.rs` runs them tiny, without timing
//! assertions, so they keep working.

use anyhow::{anyhow, Result};
use graft::install::Job;
use graft::storage::{FieldChange, SqliteStore, TenantStore};
use graft::{Graft, InstallOptions, Limits, ModuleId};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The same per-record transform the mod-users 2.0.0 plugin runs, compiled
/// natively for the baseline of B1.
#[path = "../../plugins/mod-users/src/users.rs"]
#[allow(dead_code)]
mod users;

mod contract;
mod languages;
pub use contract::{b9, b9_pg, b9_rss_leg};
pub use languages::b7;

/// How big each benchmark is.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub users: u64,
    pub tenants: usize,
    pub synthetic: usize,
    pub runs: usize,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            users: 1_000_000,
            tenants: 1000,
            synthetic: 100_000,
            runs: 3,
        }
    }
    pub fn quick() -> Sizes {
        Sizes {
            users: 100_000,
            tenants: 100,
            synthetic: 20_000,
            runs: 3,
        }
    }
    pub fn smoke() -> Sizes {
        Sizes {
            users: 500,
            tenants: 3,
            synthetic: 300,
            runs: 1,
        }
    }
}

/// One benchmark's result.
#[derive(Debug, Clone)]
pub struct Bench {
    pub id: &'static str,
    pub what: String,
    pub rows: Vec<Row>,
    pub target: String,
    pub met: Option<bool>,
    pub notes: Vec<String>,
}

/// One measured line: a median, and the baseline it is compared with.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub median: Duration,
    pub baseline: Option<Duration>,
    /// Records (or tenants) per run, for a rate.
    pub units: Option<(u64, &'static str)>,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        self.baseline
            .map(|b| self.median.as_secs_f64() / b.as_secs_f64())
    }
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// How long `f` takes. The OS's dirty pages are written out first: a leg
/// that follows a 1 GB copy or another leg's writes would otherwise pay for
/// their write-back (B2's second leg, on 1M records, came out 1.45x the
/// first without it; the rest of that gap went when the legs took turns).
fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    // Best effort: without `sync` the figures are only noisier.
    let _ = std::process::Command::new("sync").status();
    let started = Instant::now();
    let value = f();
    (started.elapsed(), value)
}

/// A runner on its own data directory, seeing the sample modules and the
/// test packages it needs.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub modules: PathBuf,
    /// The tenant seeded with users, made once and copied by B1, B2 and B6.
    users_seed: std::sync::OnceLock<(u64, PathBuf)>,
}

impl Setup {
    pub fn new() -> Result<Setup> {
        let dir = tempfile::TempDir::new()?;
        let modules = dir.path().join("modules");
        for (set, names) in [
            (
                graft_sample_modules::sample_modules_dir(),
                vec![
                    "mod-users-1.1.0",
                    "mod-users-2.0.0",
                    "mod-inventory-storage-27.0.0",
                    "mod-inventory-storage-30.0.5",
                ],
            ),
            (
                graft_sample_modules::test_packages_dir(),
                vec!["mod-users-bl-7.7.3"],
            ),
        ] {
            for name in names {
                graft_sample_modules::copy_dir(&set.join(name), &modules.join(name))?;
            }
        }
        Ok(Setup {
            dir,
            modules,
            users_seed: std::sync::OnceLock::new(),
        })
    }

    pub fn graft(&self, data: &str) -> Result<Graft> {
        Graft::open(
            &self.dir.path().join(data),
            &self.modules,
            Limits::default(),
            1 << 20,
        )
    }
}

fn id(text: &str) -> ModuleId {
    ModuleId::parse(text).expect("a valid module id")
}

/// A user of about 1 KB in the 1.1.0 shape.
fn user(n: u64) -> Value {
    json!({
        "id": format!("{:08x}-0000-4000-8000-{n:012x}", 0x5a3b1e01_u32),
        "username": format!("user{n}"),
        "barcode": format!("{:012}", n),
        "active": !n.is_multiple_of(10),
        "type": "patron",
        "patronGroup": "3684a786-6671-4268-8ed0-9db82ebca60b",
        "personal": {
            "lastName": format!("Lastname{n}"),
            "firstName": "Firstname",
            "middleName": "M",
            "email": format!("user{n}@example.org"),
            "phone": "+1 555 0100",
            "mobilePhone": "+1 555 0101",
            "preferredContactTypeId": "002",
            "addresses": [{
                "countryId": "US", "addressLine1": format!("{n} Main Street"), "addressLine2": "Apartment 4",
                "city": "Springfield", "region": "IL", "postalCode": "62701",
                "addressTypeId": "93d3d88d-499b-45d0-9bc7-ac73c3a19880", "primaryAddress": true
            }]
        },
        "enrollmentDate": "2020-09-01T00:00:00.000Z",
        "expirationDate": "2030-09-01T00:00:00.000Z",
        "departments": ["a6a4a3e4-2b3b-4f3f-9e3b-1c2d3e4f5a6b"],
        "proxyFor": [],
        "customFields": {"note": "x".repeat(300)},
        "metadata": {
            "createdDate": "2020-09-01T00:00:00.000Z", "createdByUserId": "f5c2a6f3-3c1b-4e0b-9a1d-2b3c4d5e6f70",
            "updatedDate": "2024-01-01T00:00:00.000Z", "updatedByUserId": "f5c2a6f3-3c1b-4e0b-9a1d-2b3c4d5e6f70"
        }
    })
}

/// A tenant database at mod-users 1.1.0 with `count` users of ~1 KB, made
/// once per setup.
pub fn users_seed(setup: &Setup, count: u64) -> Result<PathBuf> {
    if let Some((seeded, path)) = setup.users_seed.get() {
        anyhow::ensure!(
            *seeded == count,
            "the users seed has {seeded} users, not {count}"
        );
        return Ok(path.clone());
    }
    let path = seed_users(setup, "b1-seed", count)?;
    Ok(setup.users_seed.get_or_init(|| (count, path)).1.clone())
}

/// A tenant database at mod-users 1.1.0 with `count` users, in the data
/// directory `data` of the setup.
fn seed_users(setup: &Setup, data: &str, count: u64) -> Result<PathBuf> {
    let graft = setup.graft(data)?;
    users_tenant(&graft, "seed", count)?;
    Ok(graft.tenants().path("seed"))
}

/// Make tenant `tenant` of `graft`, enable mod-users 1.1.0 for it, and add
/// `count` users.
fn users_tenant(graft: &Graft, tenant: &str, count: u64) -> Result<()> {
    graft.tenants().create(tenant)?;
    let report = graft.install(tenant, &[id("mod-users-1.1.0")], &InstallOptions::default())?;
    anyhow::ensure!(
        report.ok,
        "cannot install mod-users-1.1.0: {:?}",
        report.failure()
    );
    add_users(&mut *graft.tenants().open(tenant)?, count)
}

/// Insert `count` users of ~1 KB into mod-users' collection, in one transaction.
fn add_users(db: &mut dyn TenantStore, count: u64) -> Result<()> {
    db.begin()?;
    for n in 0..count {
        let doc = user(n);
        db.insert_if_absent(
            "mod-users",
            "users",
            doc["id"].as_str().unwrap_or_default(),
            &doc.to_string(),
        )?;
    }
    db.commit()?;
    Ok(())
}

/// A copy of a seeded tenant as tenant `name` of a fresh data directory.
fn tenant_copy(setup: &Setup, seed: &Path, data: &str, name: &str) -> Result<Graft> {
    let graft = setup.graft(data)?;
    copy_tenant(seed, &graft, name)?;
    Ok(graft)
}

/// Copy a tenant's SQLite file as tenant `name` of `graft`: the copy's
/// tenant row names it (graft opens only a tenant's own database).
pub fn copy_tenant(seed: &Path, graft: &Graft, name: &str) -> Result<()> {
    std::fs::create_dir_all(graft.data_dir().join("tenants"))?;
    let path = graft.tenants().path(name);
    std::fs::copy(seed, &path)?;
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute(
        "UPDATE graft_tenant SET value = ?1 WHERE key = 'tenant'",
        [name],
    )?;
    Ok(())
}

/// Remove a copy made by [`tenant_copy`] once its leg is measured, so the
/// next leg does not share the disk and page cache with its gigabytes.
fn remove_copy(graft: Graft) -> Result<()> {
    let data_dir = graft.data_dir().to_path_buf();
    drop(graft);
    std::fs::remove_dir_all(data_dir)?;
    Ok(())
}

/// `runs` runs of two legs that take turns going first: on 1 GB files the
/// leg that ran second came out up to 1.2x slower, whichever it was.
fn take_turns<A, B>(
    runs: usize,
    mut a: impl FnMut(usize) -> Result<A>,
    mut b: impl FnMut(usize) -> Result<B>,
) -> Result<(Vec<A>, Vec<B>)> {
    let (mut a_runs, mut b_runs) = (Vec::new(), Vec::new());
    for run in 0..runs {
        if run % 2 == 0 {
            a_runs.push(a(run)?);
            b_runs.push(b(run)?);
        } else {
            b_runs.push(b(run)?);
            a_runs.push(a(run)?);
        }
    }
    Ok((a_runs, b_runs))
}

/// What the native leg of B1 did.
pub struct NativeRun {
    pub records: u64,
    /// The part spent parsing, transforming and serializing documents: what
    /// the leg would take with storage that cost nothing.
    pub json: Duration,
}

/// The native baseline of B1: the same transform, the same storage calls.
pub fn native_upgrade(path: &Path) -> Result<NativeRun> {
    native_upgrade_in(&mut SqliteStore::open(path, "native")?)
}

/// The native transform on any backend's store.
pub fn native_upgrade_in(db: &mut dyn TenantStore) -> Result<NativeRun> {
    db.begin()?;
    // In the plugin's order: the index on the moved field goes first.
    db.drop_index("mod-users", "users", "users-email")?;
    let mut after: Option<String> = None;
    let (mut done, mut json) = (0, Duration::ZERO);
    loop {
        let page = db.scan("mod-users", "users", after.as_deref(), 2000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let mut batch = Vec::with_capacity(page.len());
        for (id, doc) in page {
            let started = Instant::now();
            let user: Value = serde_json::from_str(&doc)?;
            let user = users::to_2_0_0(user).map_err(|e| anyhow!("{id}: {e}"))?;
            let doc = serde_json::to_string(&user)?;
            json += started.elapsed();
            batch.push((id, doc));
        }
        // One batch per page, as the plugin's writer does.
        done += db.put_batch("mod-users", "users", &batch)?.len() as u64;
    }
    let spec = graft::storage::IndexSpec {
        name: "users-contact-email".into(),
        field: "contact.email".into(),
        unique: false,
        case_insensitive: false,
    };
    db.create_index("mod-users", "users", &spec)?;
    db.commit()?;
    Ok(NativeRun {
        records: done,
        json,
    })
}

/// The plugin leg of B1 (or B6 when simulating): mod-users 1.1.0 -> 2.0.0.
pub fn plugin_upgrade(graft: &Graft, tenant: &str, simulate: bool) -> Result<u64> {
    let options = InstallOptions {
        simulate,
        ..InstallOptions::default()
    };
    let report = graft.run(tenant, &Job::enable(&[id("mod-users-2.0.0")]), &options)?;
    anyhow::ensure!(report.ok, "the upgrade failed: {:?}", report.failure());
    Ok(report
        .changes()
        .iter()
        .filter(|c| c.collection == "users")
        .map(|c| c.updated)
        .sum())
}

/// Compile the plugins before timing: compilation is B3's business.
pub fn warm(graft: &Graft) -> Result<()> {
    for name in ["mod-users-1.1.0", "mod-users-2.0.0"] {
        let package = graft.catalog().find(&id(name))?;
        graft
            .host()
            .load(&package, &graft.limits().for_module(&package.limits))?;
    }
    Ok(())
}

/// Peak resident memory of this process so far, in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// B1 and B6: a 1.1.0 -> 2.0.0 upgrade of `sizes.users` users through the
/// plugin, against the native transform; and simulated against real.
/// `plugin_rss` runs the plugin leg in a fresh process and returns its peak
/// memory, where the caller can (the bench binary); `None` otherwise.
pub fn b1_b6(
    setup: &Setup,
    sizes: &Sizes,
    plugin_rss: &dyn Fn(&Path) -> Option<u64>,
) -> Result<(Bench, Bench)> {
    let seed = users_seed(setup, sizes.users)?;
    let native_leg = |run: usize| -> Result<(Duration, Duration)> {
        let graft = tenant_copy(setup, &seed, &format!("b1-native-{run}"), "native")?;
        let (elapsed, done) = time(|| native_upgrade(&graft.tenants().path("native")));
        let done = done?;
        anyhow::ensure!(
            done.records == sizes.users,
            "the native upgrade missed users"
        );
        remove_copy(graft)?;
        Ok((elapsed, done.json))
    };
    // The simulation, then the real upgrade, on one copy.
    let plugin_leg = |run: usize| -> Result<(Duration, Duration)> {
        let graft = tenant_copy(setup, &seed, &format!("b1-plugin-{run}"), "diku")?;
        warm(&graft)?;
        let (simulated, done) = time(|| plugin_upgrade(&graft, "diku", true));
        done?;
        let (real, done) = time(|| plugin_upgrade(&graft, "diku", false));
        // The set-based 1.0 -> 1.1 step does not run: storage is at 1.1.0.
        anyhow::ensure!(done? == sizes.users, "the plugin upgrade missed users");
        remove_copy(graft)?;
        Ok((real, simulated))
    };
    let (native_runs, plugin_runs) = take_turns(sizes.runs, native_leg, plugin_leg)?;
    let (native, json): (Vec<_>, Vec<_>) = native_runs.into_iter().unzip();
    let (plugin, simulated): (Vec<_>, Vec<_>) = plugin_runs.into_iter().unzip();
    let rss = plugin_rss(&seed);
    let (native, plugin, simulated) = (median(native), median(plugin), median(simulated));
    let json = median(json);
    let ratio = plugin.as_secs_f64() / native.as_secs_f64();
    let rate = sizes.users as f64 / plugin.as_secs_f64();
    let mut notes = vec![format!(
        "plugin: {rate:.0} records/s; native: {:.0} records/s",
        sizes.users as f64 / native.as_secs_f64()
    )];
    let rss_ok = match rss {
        Some(bytes) => {
            notes.push(format!(
                "peak RSS of a process running only the plugin upgrade: {} MB",
                bytes >> 20
            ));
            bytes <= 200 << 20
        }
        None => true,
    };
    let b1 = Bench {
        id: "B1",
        what: format!(
            "upgrade {} users (~1 KB of JSON each) mod-users 1.1.0 -> 2.0.0 through the plugin",
            sizes.users
        ),
        rows: vec![
            Row {
                label: "of which JSON: serde_json parse, transform, serialize (no storage)".into(),
                median: json,
                baseline: Some(native),
                units: Some((sizes.users, "records")),
            },
            Row {
                label: "native Rust transform, same SQLite calls (baseline)".into(),
                median: native,
                baseline: Some(native),
                units: Some((sizes.users, "records")),
            },
            Row {
                label: "through the plugin (wasm, host calls, change log)".into(),
                median: plugin,
                baseline: Some(native),
                units: Some((sizes.users, "records")),
            },
        ],
        target: "plugin <= 1.3x native; >= 100,000 records/s; peak RSS <= 200 MB".into(),
        met: Some(ratio <= 1.3 && rate >= 100_000.0 && rss_ok),
        notes,
    };
    let sim_ratio = simulated.as_secs_f64() / plugin.as_secs_f64();
    let b6 = Bench {
        id: "B6",
        what: format!(
            "simulated upgrade vs the real one (B1 data, {} users)",
            sizes.users
        ),
        rows: vec![
            Row {
                label: "real upgrade (baseline)".into(),
                median: plugin,
                baseline: Some(plugin),
                units: Some((sizes.users, "records")),
            },
            Row {
                label: "simulated upgrade (rolled back)".into(),
                median: simulated,
                baseline: Some(plugin),
                units: Some((sizes.users, "records")),
            },
        ],
        target: "<= 1.1x".into(),
        met: Some(sim_ratio <= 1.1),
        notes: Vec::new(),
    };
    Ok((b1, b6))
}

/// B2: a set-based change through the host's primitive against the same
/// single SQL UPDATE.
pub fn b2(setup: &Setup, sizes: &Sizes) -> Result<Bench> {
    let seed = users_seed(setup, sizes.users)?;
    let raw_leg = |run: usize| -> Result<Duration> {
        let graft = tenant_copy(setup, &seed, &format!("b2-raw-{run}"), "raw")?;
        let conn = rusqlite::Connection::open(graft.tenants().path("raw"))?;
        let (elapsed, changed) = time(|| {
            conn.execute(
                "UPDATE \"mod_users__users\" SET doc = jsonb_set(doc, '$.status', json(?1)) WHERE json_type(doc, '$.status') IS NULL",
                ["\"active\""],
            )
        });
        anyhow::ensure!(changed? as u64 == sizes.users);
        drop(conn);
        remove_copy(graft)?;
        Ok(elapsed)
    };
    let host_leg = |run: usize| -> Result<Duration> {
        let graft = tenant_copy(setup, &seed, &format!("b2-host-{run}"), "host")?;
        let mut db = SqliteStore::open(&graft.tenants().path("host"), "host")?;
        let change = FieldChange::SetDefault {
            field: "status".into(),
            value: "\"active\"".into(),
        };
        let (elapsed, changed) = time(|| db.update_where("mod-users", "users", &[], &change));
        anyhow::ensure!(changed? == sizes.users);
        drop(db);
        remove_copy(graft)?;
        Ok(elapsed)
    };
    let (raw, primitive) = take_turns(sizes.runs, raw_leg, host_leg)?;
    let (raw, primitive) = (median(raw), median(primitive));
    Ok(Bench {
        id: "B2",
        what: format!(
            "set a default on {} users through the host's update primitive",
            sizes.users
        ),
        rows: vec![
            Row {
                label: "the same single SQL UPDATE (baseline)".into(),
                median: raw,
                baseline: Some(raw),
                units: Some((sizes.users, "records")),
            },
            Row {
                label: "update-all (set-default)".into(),
                median: primitive,
                baseline: Some(raw),
                units: Some((sizes.users, "records")),
            },
        ],
        target: "<= 1.1x".into(),
        met: Some(primitive.as_secs_f64() / raw.as_secs_f64() <= 1.1),
        notes: Vec::new(),
    })
}

/// B3: plugin start-up: first compile, cached load, and a fresh instance
/// per call.
pub fn b3(setup: &Setup, sizes: &Sizes) -> Result<Bench> {
    let package = graft::package::Package::load(&setup.modules.join("mod-users-2.0.0"))?;
    let cache = setup.dir.path().join("b3-cache");
    let (mut compile, mut cached, mut instance, mut described) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..sizes.runs {
        let _ = std::fs::remove_dir_all(&cache);
        let host = graft::host::Host::new(graft::host::HostConfig {
            cache_dir: Some(cache.clone()),
            max_wasm_stack: 1 << 20,
            count_fuel: false,
        })?;
        let (elapsed, plugin) = time(|| host.load(&package, &Limits::default()));
        plugin?;
        compile.push(elapsed);
        // A new host (a new process, in effect) finds the compiled code on disk.
        let host = graft::host::Host::new(graft::host::HostConfig {
            cache_dir: Some(cache.clone()),
            max_wasm_stack: 1 << 20,
            count_fuel: false,
        })?;
        let (elapsed, plugin) = time(|| host.load(&package, &Limits::default()));
        let plugin = plugin?;
        cached.push(elapsed);
        let calls = 200;
        let limits = Limits::default();
        let (elapsed, _) = time(|| {
            for _ in 0..calls {
                host.instantiate(&plugin, &limits).expect("instantiate");
            }
        });
        instance.push(elapsed / calls);
        let (elapsed, _) = time(|| {
            for _ in 0..calls {
                host.describe(&plugin, &limits).expect("describe");
            }
        });
        described.push(elapsed / calls);
        let _ = run;
    }
    let (compile, cached, instance, described) = (
        median(compile),
        median(cached),
        median(instance),
        median(described),
    );
    Ok(Bench {
        id: "B3",
        what: "plugin start-up (mod-users 2.0.0, a ~340 KB component)".into(),
        rows: vec![
            Row { label: "first compile (cranelift) and link".into(), median: compile, baseline: None, units: None },
            Row { label: "cached load (deserialize from disk) and link".into(), median: cached, baseline: None, units: None },
            Row { label: "per call: fresh store, WASI context (data folders opened) and instantiate".into(), median: instance, baseline: None, units: None },
            Row { label: "per call, as above, plus one call (`describe`)".into(), median: described, baseline: None, units: None },
        ],
        target: "cached load <= 5 ms, instantiate <= 50 us".into(),
        met: Some(cached <= Duration::from_millis(5) && instance <= Duration::from_micros(50)),
        notes: vec!["instantiation is measured with what every call needs around it (a store and a WASI context), so instantiation alone is less".into()],
    })
}

/// B4: many tenants, three modules each, everything already up to date.
pub fn b4(setup: &Setup, sizes: &Sizes) -> Result<Bench> {
    let graft = setup.graft("b4")?;
    let tenants = fan_out_tenants(&graft, sizes.tenants)?;
    let mut runs = Vec::new();
    for _ in 0..sizes.runs {
        let fanout = graft::fanout::Fanout {
            tenants: tenants.clone(),
            canary: None,
            parallel: 2,
            on_done: None,
        };
        let (elapsed, outcomes) =
            time(|| graft.run_many(&Job::UpgradeAll, &InstallOptions::default(), &fanout));
        anyhow::ensure!(outcomes.iter().all(|o| o.ok()), "a tenant failed");
        runs.push(elapsed);
    }
    let whole = median(runs);
    // What the corruption check before each job costs, inside that run:
    // the same `quick_check` on every tenant, on one thread (the run had
    // two), against the whole run.
    let mut checks = Vec::new();
    for _ in 0..sizes.runs {
        let (elapsed, checked) = time(|| -> Result<()> {
            for tenant in &tenants {
                SqliteStore::open(&graft.tenants().path(tenant), tenant)?.quick_check()?;
            }
            Ok(())
        });
        checked?;
        checks.push(elapsed);
    }
    let scaled = whole.as_secs_f64() * 1000.0 / sizes.tenants as f64;
    Ok(Bench {
        id: "B4",
        what: format!(
            "{} tenants x 3 modules, everything up to date (`upgrade --all-tenants --parallel 2`)",
            sizes.tenants
        ),
        rows: vec![
            Row {
                label: "whole run".into(),
                median: whole,
                baseline: None,
                units: Some((sizes.tenants as u64, "tenants")),
            },
            Row {
                label: "of which: open + quick_check of every tenant, one thread (vs whole run)"
                    .into(),
                median: median(checks),
                baseline: Some(whole),
                units: Some((sizes.tenants as u64, "tenants")),
            },
        ],
        target: "1,000 tenants <= 10 s".into(),
        met: Some(scaled <= 10.0),
        notes: vec![format!("per 1,000 tenants: {scaled:.1} s")],
    })
}

/// The tenants of B4 and B8: `count` copies of one tenant with three
/// modules installed.
fn fan_out_tenants(graft: &Graft, count: usize) -> Result<Vec<String>> {
    graft.tenants().create("seed")?;
    let modules = [
        id("mod-users-2.0.0"),
        id("mod-users-bl-7.7.3"),
        id("mod-inventory-storage-30.0.5"),
    ];
    let report = graft.install("seed", &modules, &InstallOptions::default())?;
    anyhow::ensure!(
        report.ok,
        "cannot install the three modules: {:?}",
        report.failure()
    );
    let seed = graft.tenants().path("seed");
    let tenants: Vec<String> = (0..count).map(|n| format!("t{n:04}")).collect();
    for tenant in &tenants {
        copy_tenant(&seed, graft, tenant)?;
    }
    Ok(tenants)
}

/// One leg of B8, in a process of its own (`--b8-rss`): `upgrade
/// --all-tenants --json` on `count` tenants, the reports written as the
/// command writes them, either each as its tenant finishes
/// (`run_streaming`, what `graft` does) or all at the end (`run_many`, what
/// it did before). Returns the process's peak RSS in bytes.
pub fn b8_leg(setup: &Setup, count: usize, stream: bool) -> Result<u64> {
    use std::io::Write;
    let graft = setup.graft("b8")?;
    let tenants = fan_out_tenants(&graft, count)?;
    let fanout = graft::fanout::Fanout {
        tenants,
        canary: None,
        parallel: 2,
        on_done: None,
    };
    let options = InstallOptions::default();
    let mut sink = std::io::sink();
    let ok = if stream {
        let each = |outcome: graft::fanout::TenantOutcome| {
            if let Ok(report) = &outcome.result {
                let text = serde_json::to_string_pretty(report).unwrap_or_default();
                std::io::sink().write_all(text.as_bytes()).ok();
            }
        };
        let summaries = graft.run_streaming(&Job::UpgradeAll, &options, &fanout, &each);
        summaries.iter().all(|s| s.ok)
    } else {
        let outcomes = graft.run_many(&Job::UpgradeAll, &options, &fanout);
        let reports: Vec<&graft::TenantReport> = outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().ok())
            .collect();
        sink.write_all(serde_json::to_string_pretty(&reports)?.as_bytes())?;
        outcomes.iter().all(|o| o.ok())
    };
    anyhow::ensure!(ok, "a tenant failed");
    peak_rss().ok_or_else(|| anyhow::anyhow!("cannot read the peak RSS"))
}

/// B8: the peak memory of `upgrade --all-tenants --json` at a tenth of B4's
/// tenants and at all of them, streamed (each report written as its tenant
/// finishes, then dropped) against every report kept to the end, each leg
/// in a fresh process (`rss(tenants, stream)`).
pub fn b8(sizes: &Sizes, rss: &dyn Fn(usize, bool) -> Option<u64>) -> Result<Bench> {
    let (small, large) = ((sizes.tenants / 10).max(1), sizes.tenants);
    let mib = |bytes: Option<u64>| bytes.map(|b| b as f64 / (1 << 20) as f64);
    let measure = |count, stream| mib(rss(count, stream));
    let streamed = (measure(small, true), measure(large, true));
    let kept = (measure(small, false), measure(large, false));
    let show = |v: Option<f64>| v.map_or("not measured".into(), |v| format!("{v:.0} MiB"));
    let growth = match streamed {
        (Some(a), Some(b)) => Some(b / a),
        _ => None,
    };
    let mut notes = vec![
        format!(
            "streamed (as `graft` does now): {} at {small} tenants, {} at {large}",
            show(streamed.0),
            show(streamed.1)
        ),
        format!(
            "every report kept to the end (before): {} at {small} tenants, {} at {large}",
            show(kept.0),
            show(kept.1)
        ),
    ];
    if let Some(growth) = growth {
        notes.push(format!(
            "streamed peak at {large} tenants / at {small}: {growth:.2}x"
        ));
    }
    Ok(Bench {
        id: "B8",
        what: format!(
            "peak RSS of `upgrade --all-tenants --json`, {small} and {large} tenants x 3 modules"
        ),
        rows: Vec::new(),
        target: format!("streamed peak RSS flat within 10% from {small} to {large} tenants"),
        met: growth.map(|g| g <= 1.10),
        notes,
    })
}

/// B5: the reference overlay on real data (mod-inventory-storage 27.0.0 ->
/// 30.0.5) and on synthetic records, against plain inserts.
pub fn b5(setup: &Setup, sizes: &Sizes) -> Result<Bench> {
    let records: Vec<(String, String)> = (0..sizes.synthetic)
        .map(|n| {
            let id = format!("00000000-0000-4000-8000-{n:012}");
            let doc = json!({"id": id, "name": format!("Type {n}"), "code": format!("t{n}"), "source": "folio"});
            (id, doc.to_string())
        })
        .collect();
    let changed: Vec<(String, String)> = records
        .iter()
        .enumerate()
        .map(|(n, (id, doc))| {
            let mut doc: Value = serde_json::from_str(doc).expect("json");
            if n % 10 == 0 {
                doc["source"] = json!("rdacontent");
            }
            (id.clone(), doc.to_string())
        })
        .collect();
    let (mut plain, mut merge, mut real) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..sizes.runs {
        let path = setup.dir.path().join(format!("b5-{run}.sqlite"));
        let mut db = SqliteStore::create(&path, "b5")?;
        db.create_collection("m", "plain")?;
        db.create_collection("m", "types")?;
        let (elapsed, inserted) = time(|| -> Result<()> {
            db.begin()?;
            for (id, doc) in &records {
                db.put("m", "plain", id, doc)?;
            }
            Ok(db.commit()?)
        });
        inserted?;
        plain.push(elapsed);
        db.begin()?;
        let mut first =
            graft::overlay::CollectionOverlay::new("types", graft::overlay::Kind::Reference);
        graft::overlay::load(&mut db, "m", "1", &mut first, &records)?;
        db.commit()?;
        let (elapsed, merged) = time(|| -> Result<()> {
            db.begin()?;
            let mut overlay =
                graft::overlay::CollectionOverlay::new("types", graft::overlay::Kind::Reference);
            graft::overlay::load(&mut db, "m", "2", &mut overlay, &changed)?;
            Ok(db.commit()?)
        });
        merged?;
        merge.push(elapsed);

        let graft = setup.graft(&format!("b5-real-{run}"))?;
        graft.tenants().create("diku")?;
        let reference = InstallOptions {
            load_reference: true,
            ..InstallOptions::default()
        };
        graft.install("diku", &[id("mod-inventory-storage-27.0.0")], &reference)?;
        let (elapsed, report) =
            time(|| graft.install("diku", &[id("mod-inventory-storage-30.0.5")], &reference));
        anyhow::ensure!(report?.ok, "the real upgrade failed");
        real.push(elapsed);
    }
    let (plain, merge, real) = (median(plain), median(merge), median(real));
    let per_100k = merge.as_secs_f64() * 100_000.0 / sizes.synthetic as f64;
    Ok(Bench {
        id: "B5",
        what: "reference-data overlay".into(),
        rows: vec![
            Row { label: format!("insert {} records, no merge (baseline)", sizes.synthetic), median: plain, baseline: Some(plain), units: Some((sizes.synthetic as u64, "records")) },
            Row { label: format!("three-way merge of {} records (1 in 10 changed)", sizes.synthetic), median: merge, baseline: Some(plain), units: Some((sizes.synthetic as u64, "records")) },
            Row { label: "mod-inventory-storage 27.0.0 -> 30.0.5 with reference data, one tenant (whole job)".into(), median: real, baseline: None, units: None },
        ],
        target: "100,000 records <= 2 s".into(),
        met: Some(per_100k <= 2.0),
        notes: vec![format!("per 100,000 records: {per_100k:.2} s")],
    })
}

/// Markdown for `docs/benchmarks.md`.
pub fn report(benches: &[Bench], command: &str, sizes: &Sizes) -> String {
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut text = format!(
        "# Benchmarks\n\nMeasured by `{command}` on {machine}, {cores} cores, SQLite (the embedded default); \
         medians of {} runs. Each figure is compared with a baseline measured in the same run.\n\n",
        sizes.runs
    );
    for bench in benches {
        let verdict = match bench.met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "-",
        };
        text += &format!(
            "## {}: {}\n\nTarget: {} ({verdict}).\n\n",
            bench.id, bench.what, bench.target
        );
        if !bench.rows.is_empty() {
            text += "| what | median | rate | vs baseline |\n| --- | --- | --- | --- |\n";
        }
        for row in &bench.rows {
            let rate = row
                .units
                .map(|(n, unit)| format!("{:.0} {unit}/s", n as f64 / row.median.as_secs_f64()))
                .unwrap_or_default();
            let ratio = row
                .ratio()
                .map(|r| format!("{r:.2}x"))
                .unwrap_or_else(|| "-".into());
            text += &format!(
                "| {} | {} | {rate} | {ratio} |\n",
                row.label,
                show(row.median)
            );
        }
        for note in &bench.notes {
            text += &format!("\n- {note}");
        }
        text += "\n\n";
    }
    text
}

fn show(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} us", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// A runner whose tenants live in the database `db` made on the server.
fn in_db(graft: Graft, db: &graft::test_support::ScratchDatabase) -> Graft {
    graft.with_database(graft::storage::Database::Postgres(db.url.clone()))
}

/// A scratch database on `server` whose tenant diku is at mod-users 1.1.0
/// with `users` users (B1-PG's and B9-PG's seed, copied for each leg).
fn pg_users_seed(
    setup: &Setup,
    server: &str,
    data: &str,
    users: u64,
) -> Result<graft::test_support::ScratchDatabase> {
    let seed = graft::test_support::ScratchDatabase::create(server)?;
    users_tenant(&in_db(setup.graft(data)?, &seed), "diku", users)?;
    Ok(seed)
}

/// B1 on PostgreSQL, on a server the bench may create databases on
/// (`--postgres URL`): `users` users, native and plugin on copies of one
/// seeded database.
pub fn b1_pg(setup: &Setup, server: &str, users: u64, runs: usize) -> Result<Bench> {
    use graft::test_support::ScratchDatabase;
    // Seed once, then copy the database for each leg of each run.
    let seed = pg_users_seed(setup, server, "pg-b1-seed", users)?;
    let (mut native, mut plugin) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let copy = ScratchDatabase::copy_of(&seed)?;
        let graft = in_db(setup.graft(&format!("pg-b1-native-{run}"))?, &copy);
        let mut db = graft.tenants().open("diku")?;
        let (elapsed, done) = time(|| native_upgrade_in(&mut *db));
        anyhow::ensure!(done?.records == users, "the native upgrade missed users");
        native.push(elapsed);
        drop(db);

        let copy = ScratchDatabase::copy_of(&seed)?;
        let graft = in_db(setup.graft(&format!("pg-b1-plugin-{run}"))?, &copy);
        warm(&graft)?;
        let (elapsed, done) = time(|| plugin_upgrade(&graft, "diku", false));
        anyhow::ensure!(done? == users, "the plugin upgrade missed users");
        plugin.push(elapsed);
    }
    drop(seed);
    let (native, plugin) = (median(native), median(plugin));
    Ok(Bench {
        id: "B1-PG",
        what: format!("B1 on PostgreSQL: upgrade {users} users, mod-users 1.1.0 -> 2.0.0"),
        rows: vec![
            Row {
                label: "native transform, same storage calls".into(),
                median: native,
                baseline: None,
                units: Some((users, "records")),
            },
            Row {
                label: "through the plugin".into(),
                median: plugin,
                baseline: Some(native),
                units: Some((users, "records")),
            },
        ],
        target: "plugin <= 1.3x native".into(),
        met: Some(plugin.as_secs_f64() <= 1.3 * native.as_secs_f64()),
        notes: vec![format!(
            "plugin: {:.0} records/s; native: {:.0} records/s",
            users as f64 / plugin.as_secs_f64(),
            users as f64 / native.as_secs_f64()
        )],
    })
}

/// B4 on PostgreSQL: `tenants` tenants with three modules each, all up to
/// date, in one database.
pub fn b4_pg(setup: &Setup, server: &str, tenants: usize, runs: usize) -> Result<Bench> {
    use graft::test_support::ScratchDatabase;
    let db = ScratchDatabase::create(server)?;
    let graft = in_db(setup.graft("pg-b4")?, &db);
    let names: Vec<String> = (0..tenants).map(|n| format!("t{n:04}")).collect();
    let modules = [
        id("mod-users-2.0.0"),
        id("mod-users-bl-7.7.3"),
        id("mod-inventory-storage-30.0.5"),
    ];
    for tenant in &names {
        graft.tenants().create(tenant)?;
    }
    let fanout = graft::fanout::Fanout {
        tenants: names.clone(),
        canary: None,
        parallel: 2,
        on_done: None,
    };
    let installed = graft.run_many(&Job::enable(&modules), &InstallOptions::default(), &fanout);
    anyhow::ensure!(
        installed.iter().all(|o| o.ok()),
        "a tenant's install failed"
    );
    let mut whole = Vec::new();
    for _ in 0..runs {
        let (elapsed, outcomes) =
            time(|| graft.run_many(&Job::UpgradeAll, &InstallOptions::default(), &fanout));
        anyhow::ensure!(outcomes.iter().all(|o| o.ok()), "a tenant failed");
        whole.push(elapsed);
    }
    let whole = median(whole);
    let scaled = whole.as_secs_f64() * 1000.0 / tenants as f64;
    Ok(Bench {
        id: "B4-PG",
        what: format!("B4 on PostgreSQL: {tenants} tenants x 3 modules in one database, everything up to date (`--parallel 2`)"),
        rows: vec![Row { label: "whole run".into(), median: whole, baseline: None, units: Some((tenants as u64, "tenants")) }],
        target: "1,000 tenants <= 10 s".into(),
        met: Some(scaled <= 10.0),
        notes: vec![format!("per 1,000 tenants: {scaled:.1} s")],
    })
}
