//! `cargo run --release -p graft-bench`: runs B1-B9 and writes
//! docs/benchmarks.md; `--help` for the rest.

use anyhow::Result;
use clap::Parser;
use graft_bench::{b1_b6, b2, b3, b4, b5, peak_rss, plugin_upgrade, report, warm, Setup, Sizes};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Graft's benchmarks B1-B9, each against a baseline measured in the same
/// run (see docs/benchmarks.md for what each one measures and its target).
///
/// With no options: every benchmark at full size, medians of 3 runs, the
/// results written to docs/benchmarks.md (about 12 minutes on 2 cores).
/// Anything else (--quick, --only, a size) prints and leaves docs alone.
///
/// Examples:
///   graft-bench --quick                     a tenth of the sizes, ~2 minutes
///   graft-bench --only B1 --users 200000    one benchmark, for profiling
///   graft-bench --postgres postgres://u@host/db   adds B1-PG, B4-PG and B9-PG
#[derive(Parser)]
#[command(verbatim_doc_comment)]
struct Args {
    /// A tenth of the sizes; printed, docs/benchmarks.md untouched.
    #[arg(long)]
    quick: bool,
    /// Run only these, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "IDS",
          value_parser = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B1-PG", "B4-PG", "B9-PG"])]
    only: Vec<String>,
    /// Users in B1, B2, B6 and B9 (B1-PG and B9-PG: a fifth).
    #[arg(long, value_name = "N")]
    users: Option<u64>,
    /// Tenants in B4 (B4-PG: a fifth).
    #[arg(long, value_name = "N")]
    tenants: Option<usize>,
    /// Runs of each measurement; the median is reported.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    runs: Option<u64>,
    /// A PostgreSQL server to run B1-PG, B4-PG and B9-PG on, each in a scratch
    /// database of its own (dropped after).
    #[arg(
        long,
        env = "GRAFT_TEST_POSTGRES",
        value_name = "URL",
        hide_env_values = true
    )]
    postgres: Option<String>,
    /// Write a tenant seeded with N users to PATH (for profiling one leg of B1).
    #[arg(long, num_args = 2, value_names = ["N", "PATH"])]
    b1_seed: Vec<String>,
    /// Run B1's native leg on a copy of the seeded tenant at PATH and print
    /// its wall, CPU and JSON time.
    #[arg(long, value_name = "PATH")]
    b1_native: Option<PathBuf>,
    /// Run B1's plugin leg on a copy of PATH and print the peak RSS in bytes
    /// (B1 runs this in a process of its own to measure memory).
    #[arg(long, value_name = "PATH", hide = true)]
    b1_rss: Option<PathBuf>,
    /// Run B9's 0.2 plugin leg on a copy of PATH and print the peak RSS in
    /// bytes (B9 runs this in a process of its own to measure memory).
    #[arg(long, value_name = "PATH", hide = true)]
    b9_rss: Option<PathBuf>,
    /// Run one leg of B8 (TENANTS, `stream` or `keep`) and print the peak
    /// RSS in bytes (B8 runs each leg in a process of its own).
    #[arg(long, num_args = 2, value_names = ["TENANTS", "MODE"], hide = true)]
    b8_rss: Vec<String>,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if let Some(seed) = &args.b1_rss {
        let setup = Setup::new()?;
        let graft = setup.graft("rss")?;
        graft_bench::copy_tenant(seed, &graft, "diku")?;
        warm(&graft)?;
        plugin_upgrade(&graft, "diku", false)?;
        println!("{}", peak_rss().unwrap_or(0));
        return Ok(());
    }
    if let Some(seed) = &args.b9_rss {
        println!("{}", graft_bench::b9_rss_leg(seed)?);
        return Ok(());
    }
    if let [count, mode] = args.b8_rss.as_slice() {
        let count: usize = count.parse()?;
        let peak = graft_bench::b8_leg(&Setup::new()?, count, mode == "stream")?;
        println!("{peak}");
        return Ok(());
    }
    if let [count, path] = args.b1_seed.as_slice() {
        let count: u64 = count
            .parse()
            .map_err(|_| anyhow::anyhow!("--b1-seed {count:?}: the number of users comes first"))?;
        let setup = Setup::new()?;
        std::fs::copy(graft_bench::users_seed(&setup, count)?, path)?;
        return Ok(());
    }
    if let Some(seed) = &args.b1_native {
        let copy = tempfile::NamedTempFile::new()?;
        std::fs::copy(seed, copy.path())
            .map_err(|e| anyhow::anyhow!("--b1-native {}: {e}", seed.display()))?;
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
    if args.postgres.is_none() && args.only.iter().any(|id| id.ends_with("-PG")) {
        anyhow::bail!(
            "--only {}: the -PG benchmarks need --postgres URL",
            args.only.join(",")
        );
    }
    let mut sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(n) = args.users {
        sizes.users = n;
    }
    if let Some(n) = args.tenants {
        sizes.tenants = n;
    }
    if let Some(n) = args.runs {
        sizes.runs = n as usize;
    }
    let partial = args.quick
        || !args.only.is_empty()
        || args.users.is_some()
        || args.tenants.is_some()
        || args.runs.is_some();
    let wanted = |id: &str| args.only.is_empty() || args.only.iter().any(|w| w == id);
    let command = if args.quick {
        "cargo run --release -p graft-bench -- --quick"
    } else {
        "cargo run --release -p graft-bench"
    };
    let setup = Setup::new()?;
    let me = std::env::current_exe()?;
    // A leg run alone in a fresh process of this binary: its peak RSS.
    let rss_of = |flag: &'static str| {
        let me = me.clone();
        move |seed: &Path| -> Option<u64> {
            let output = Command::new(&me).arg(flag).arg(seed).output().ok()?;
            String::from_utf8_lossy(&output.stdout).trim().parse().ok()
        }
    };
    let rss = rss_of("--b1-rss");
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
    if wanted("B7") {
        eprintln!("B7: {} users", (sizes.users / 20).max(100));
        benches.push(graft_bench::b7(&setup, &sizes)?);
    }
    if wanted("B8") {
        eprintln!("B8: {} tenants", sizes.tenants);
        let leg = |tenants: usize, stream: bool| -> Option<u64> {
            let mode = if stream { "stream" } else { "keep" };
            let output = Command::new(&me)
                .args(["--b8-rss", &tenants.to_string(), mode])
                .output()
                .ok()?;
            String::from_utf8_lossy(&output.stdout).trim().parse().ok()
        };
        benches.push(graft_bench::b8(&sizes, &leg)?);
    }
    if wanted("B9") {
        eprintln!("B9: {} users", sizes.users);
        benches.push(graft_bench::b9(&setup, &sizes, &rss_of("--b9-rss"))?);
    }
    // B1, B4 and B9 again on PostgreSQL, when given a server: smaller, since
    // each write is a round trip.
    if let Some(server) = &args.postgres {
        let (users, tenants) = (sizes.users / 5, sizes.tenants / 5);
        if wanted("B1-PG") {
            eprintln!("B1-PG: {users} users");
            benches.push(graft_bench::b1_pg(&setup, server, users, sizes.runs)?);
        }
        if wanted("B4-PG") {
            eprintln!("B4-PG: {tenants} tenants");
            benches.push(graft_bench::b4_pg(&setup, server, tenants, sizes.runs)?);
        }
        if wanted("B9-PG") {
            eprintln!("B9-PG: {users} users");
            benches.push(graft_bench::b9_pg(&setup, server, users, sizes.runs)?);
        }
    }
    let text = report(&benches, command, &sizes);
    print!("{text}");
    // Only a full run replaces the results in docs/.
    if partial {
        return Ok(());
    }
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
