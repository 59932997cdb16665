//! `cargo run --release -p graft-bench`: runs B1-B6 and writes
//! docs/benchmarks.md (about 12 minutes on 2 cores). `--quick` (a tenth of
//! the sizes, printed, docs untouched) takes about two; `--only B1,B3` and
//! `--users N`, `--tenants N`, `--runs N` are for profiling one of them.

use anyhow::Result;
use graft_bench::{b1_b6, b2, b3, b4, b5, peak_rss, plugin_upgrade, report, warm, Setup, Sizes};
use std::path::Path;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // The plugin leg of B1 alone, in a process of its own, to measure its memory.
    if let Some(seed) = args
        .iter()
        .position(|a| a == "--b1-rss")
        .and_then(|i| args.get(i + 1))
    {
        let setup = Setup::new()?;
        let graft = setup.graft("rss")?;
        std::fs::create_dir_all(graft.data_dir.join("tenants"))?;
        std::fs::copy(seed, graft.tenants.path("diku"))?;
        warm(&graft)?;
        plugin_upgrade(&graft, "diku", false)?;
        println!("{}", peak_rss().unwrap_or(0));
        return Ok(());
    }
    // For profiling one leg of B1 on its own: `--b1-seed N PATH` writes a
    // seeded tenant once, `--b1-native PATH` runs the native leg on a copy
    // (the plugin leg is `--b1-rss PATH`).
    if let Some(i) = args.iter().position(|a| a == "--b1-seed") {
        let (Some(count), Some(path)) = (
            args.get(i + 1).and_then(|n| n.parse().ok()),
            args.get(i + 2),
        ) else {
            anyhow::bail!("usage: --b1-seed USERS PATH");
        };
        let setup = Setup::new()?;
        std::fs::copy(graft_bench::users_seed(&setup, count)?, path)?;
        return Ok(());
    }
    if let Some(seed) = args
        .iter()
        .position(|a| a == "--b1-native")
        .and_then(|i| args.get(i + 1))
    {
        let copy = tempfile::NamedTempFile::new()?;
        std::fs::copy(seed, copy.path())?;
        let (started, cpu) = (std::time::Instant::now(), cpu_time());
        let done = graft_bench::native_upgrade(copy.path())?;
        println!(
            "{} users in {:.2?} ({:.2?} on the CPU, {:.2?} in JSON)",
            done.records,
            started.elapsed(),
            cpu_time().saturating_sub(cpu),
            done.json
        );
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let mut sizes = if quick { Sizes::quick() } else { Sizes::full() };
    // Overrides, for profiling one benchmark at a chosen size.
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(n) = value("--users") {
        sizes.users = n;
    }
    if let Some(n) = value("--tenants") {
        sizes.tenants = n as usize;
    }
    if let Some(n) = value("--runs") {
        sizes.runs = n as usize;
    }
    let only: Option<&str> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let wanted = |id: &str| only.is_none_or(|o| o.split(',').any(|w| w == id));
    let command = if quick {
        "cargo run --release -p graft-bench -- --quick"
    } else {
        "cargo run --release -p graft-bench"
    };
    let setup = Setup::new()?;
    let me = std::env::current_exe()?;
    let rss = |seed: &Path| -> Option<u64> {
        let output = Command::new(&me).arg("--b1-rss").arg(seed).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    let mut benches = Vec::new();
    let mut b6 = None;
    if wanted("B1") || wanted("B6") {
        eprintln!("B1/B6: {} users", sizes.users);
        let (b1, simulated) = b1_b6(&setup, &sizes, &rss)?;
        benches.push(b1);
        b6 = Some(simulated);
    }
    if wanted("B2") {
        eprintln!("B2");
        benches.push(b2(&setup, &sizes)?);
    }
    if wanted("B3") {
        eprintln!("B3");
        benches.push(b3(&setup, &sizes)?);
    }
    if wanted("B4") {
        eprintln!("B4: {} tenants", sizes.tenants);
        benches.push(b4(&setup, &sizes)?);
    }
    if wanted("B5") {
        eprintln!("B5");
        benches.push(b5(&setup, &sizes)?);
    }
    benches.extend(b6);
    // B1 and B4 again on PostgreSQL, when given a server (`--postgres URL`,
    // or GRAFT_TEST_POSTGRES): smaller, since each write is a round trip.
    let server = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::env::var("GRAFT_TEST_POSTGRES").ok());
    if let Some(server) = server {
        let (users, tenants) = (sizes.users / 5, sizes.tenants / 5);
        if wanted("B1-PG") {
            eprintln!("B1-PG: {users} users");
            benches.push(graft_bench::b1_pg(&setup, &server, users, sizes.runs)?);
        }
        if wanted("B4-PG") {
            eprintln!("B4-PG: {tenants} tenants");
            benches.push(graft_bench::b4_pg(&setup, &server, tenants, sizes.runs)?);
        }
    }
    // A partial or quick run prints; only the full run replaces the results in docs/.
    if only.is_some() || quick {
        print!("{}", report(&benches, command, &sizes));
        return Ok(());
    }
    let text = report(&benches, command, &sizes);
    print!("{text}");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks.md");
    let analysis = std::fs::read_to_string(&docs)
        .ok()
        .and_then(|old| old.find("\n## Analysis").map(|i| old[i..].to_string()))
        .unwrap_or_default();
    std::fs::write(&docs, text + &analysis)?;
    eprintln!("written to {}", docs.display());
    Ok(())
}

/// Time this process has spent on a CPU (from /proc/self/schedstat).
fn cpu_time() -> std::time::Duration {
    let nanos = std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    std::time::Duration::from_nanos(nanos)
}
