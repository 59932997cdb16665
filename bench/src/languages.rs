//! B7: what a plugin's language costs. The same upgrade, mod-users 1.1.0 ->
//! 2.0.0 of the same users, through the Rust plugin (the baseline) and its
//! Python and JavaScript ports (`plugins/python/mod-users`,
//! `plugins/js/mod-users`, which leave exactly the Rust plugin's records),
//! each in a package of its own beside the same 1.1.0; and each plugin's
//! start-up, as B3 measures it: first compile, cached load, a call's
//! instantiation.

use super::{copy_tenant, median, plugin_upgrade, remove_copy, seed_users, time, warm};
use super::{Bench, Row, Setup, Sizes};
use anyhow::Result;
use graft::test_support::lang::{self, Lang};
use graft::{Graft, Limits};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A plugin under test: its language's name and the 2.0.0 component.
struct Plugin {
    name: &'static str,
    wasm: PathBuf,
    modules: PathBuf,
}

/// The modules folder of a language: the Rust 1.1.0 and a 2.0.0 package
/// with the language's plugin.
fn modules_for(setup: &Setup, name: &str, wasm: &Path) -> Result<PathBuf> {
    let modules = setup.dir.path().join(format!("modules-{name}"));
    for release in ["mod-users-1.1.0", "mod-users-2.0.0"] {
        graft_sample_modules::copy_dir(&setup.modules.join(release), &modules.join(release))?;
    }
    std::fs::copy(wasm, modules.join("mod-users-2.0.0/plugin.wasm"))?;
    Ok(modules)
}

fn plugins(setup: &Setup) -> Result<Vec<Plugin>> {
    let rust = setup.modules.join("mod-users-2.0.0/plugin.wasm");
    let mut plugins = vec![Plugin {
        name: "Rust",
        modules: modules_for(setup, "rust", &rust)?,
        wasm: rust,
    }];
    for (language, name) in [(Lang::Python, "Python"), (Lang::Js, "JavaScript")] {
        let wasm = lang::mod_users_plugin(language);
        plugins.push(Plugin {
            name,
            modules: modules_for(setup, language.name(), &wasm)?,
            wasm,
        });
    }
    Ok(plugins)
}

/// First compile, cached load and a call's instantiation of one plugin.
fn start_up(setup: &Setup, plugin: &Plugin, runs: usize) -> Result<[Duration; 3]> {
    let package = graft::package::Package::load(&plugin.modules.join("mod-users-2.0.0"))?;
    let cache = setup.dir.path().join(format!("b7-cache-{}", plugin.name));
    let host = |cache: &Path| {
        graft::host::Host::new(graft::host::HostConfig {
            cache_dir: Some(cache.to_path_buf()),
            max_wasm_stack: 1 << 20,
            count_fuel: false,
        })
    };
    let (mut compile, mut cached, mut instance) = (Vec::new(), Vec::new(), Vec::new());
    let limits = Limits::default();
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&cache);
        let (elapsed, loaded) = time(|| host(&cache)?.load(&package, &limits));
        loaded?;
        compile.push(elapsed);
        let fresh = host(&cache)?;
        let (elapsed, loaded) = time(|| fresh.load(&package, &limits));
        let loaded = loaded?;
        cached.push(elapsed);
        let calls = 20;
        let (elapsed, done) = time(|| -> Result<()> {
            for _ in 0..calls {
                fresh.instantiate(&loaded, &limits)?;
            }
            Ok(())
        });
        done?;
        instance.push(elapsed / calls);
    }
    Ok([median(compile), median(cached), median(instance)])
}

/// B7 on `users` users (`sizes.users / 20`: 50,000 at full size).
pub fn b7(setup: &Setup, sizes: &Sizes) -> Result<Bench> {
    let users = (sizes.users / 20).max(100);
    let seed = seed_users(setup, "b7-seed", users)?;
    let plugins = plugins(setup)?;
    // Every language's leg in turn, the order rotated each run, so that
    // none always follows another's writes.
    let mut upgrades: Vec<Vec<Duration>> = vec![Vec::new(); plugins.len()];
    for run in 0..sizes.runs {
        for k in 0..plugins.len() {
            let i = (run + k) % plugins.len();
            let plugin = &plugins[i];
            let data = setup.dir.path().join(format!("b7-{}-{run}", plugin.name));
            let graft = Graft::open(&data, &plugin.modules, Limits::default(), 1 << 20)?;
            copy_tenant(&seed, &graft, "diku")?;
            warm(&graft)?;
            let (elapsed, done) = time(|| plugin_upgrade(&graft, "diku", false));
            anyhow::ensure!(
                done? == users,
                "the {} plugin's upgrade missed users",
                plugin.name
            );
            remove_copy(graft)?;
            upgrades[i].push(elapsed);
        }
    }
    let upgrades: Vec<Duration> = upgrades.into_iter().map(median).collect();
    let mut starts = Vec::new();
    for plugin in &plugins {
        starts.push(start_up(setup, plugin, sizes.runs)?);
    }
    let mut rows = Vec::new();
    for (plugin, upgrade) in plugins.iter().zip(&upgrades) {
        rows.push(Row {
            label: format!("{}: upgrade of {users} users", plugin.name),
            median: *upgrade,
            baseline: Some(upgrades[0]),
            units: Some((users, "records")),
        });
    }
    let labels = [
        "first compile and link",
        "cached load and link",
        "per call: instantiate",
    ];
    for (what, label) in labels.iter().enumerate() {
        for (plugin, start) in plugins.iter().zip(&starts) {
            rows.push(Row {
                label: format!("{}: {label}", plugin.name),
                median: start[what],
                baseline: Some(starts[0][what]),
                units: None,
            });
        }
    }
    let sizes_note = plugins
        .iter()
        .map(|p| {
            let bytes = std::fs::metadata(&p.wasm).map(|m| m.len()).unwrap_or(0);
            format!("{} {:.1} MB", p.name, bytes as f64 / 1e6)
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Bench {
        id: "B7",
        what: format!(
            "the same upgrade (mod-users 1.1.0 -> 2.0.0, {users} users) through the Rust, Python and JavaScript plugins"
        ),
        rows,
        target: "none: the cost of each language, against Rust in the same run".into(),
        met: None,
        notes: vec![format!("components: {sizes_note}")],
    })
}
