//! `graft demo`: a real run on a fresh data directory, showing what Graft
//! does: three tenants get mod-users 1.0.0 with reference data and sample
//! users, all are upgraded to the breaking 2.0.0, and one is downgraded to
//! 1.1.0 by the 2.0.0 plugin's rollback.

use super::config::open_in;
use super::print::{print_json, table};
use super::progress::progress_bars;
use super::{Cli, EXIT_FAILED};
use anyhow::{anyhow, Context, Result};
use clap::Args;
use graft::{Graft, InstallOptions, ModuleId, TenantReport};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const TENANTS: [&str; 3] = ["diku", "east", "west"];

pub(super) fn run(cli: &Cli, args: &DemoArgs) -> Result<ExitCode> {
    let graft = &open_demo(cli)?;
    let (users, json) = (args.users, cli.json);
    let started = Instant::now();
    if !json {
        println!("graft demo in {}", graft.data_dir().display());
        println!("modules from {}\n", graft.modules_dir().display());
    }
    let tenants: Vec<String> = TENANTS.iter().map(|t| t.to_string()).collect();
    graft.create_tenants(&tenants)?;
    let id = |text: &str| ModuleId::parse(text).map_err(|e| anyhow!(e));
    let progress = (!json).then(progress_bars);
    let first_install = InstallOptions {
        load_reference: true,
        load_sample: true,
        parameters: vec![("sampleUsers".into(), users.to_string())],
        progress: progress.clone(),
        ..InstallOptions::default()
    };
    let plain = InstallOptions {
        progress,
        ..InstallOptions::default()
    };
    let mut jobs: Vec<(String, TenantReport)> = Vec::new();
    for tenant in TENANTS {
        jobs.push((
            format!("install 1.0.0 + reference + {users} users"),
            graft.install(tenant, &[id("mod-users-1.0.0")?], &first_install)?,
        ));
    }
    for tenant in TENANTS {
        jobs.push((
            "upgrade to 2.0.0".into(),
            graft.install(tenant, &[id("mod-users-2.0.0")?], &plain)?,
        ));
    }
    jobs.push((
        "downgrade to 1.1.0".into(),
        graft.install(TENANTS[2], &[id("mod-users-1.1.0")?], &plain)?,
    ));
    let ok = jobs.iter().all(|(_, report)| report.ok);

    if json {
        let reports: Vec<_> = jobs
            .iter()
            .map(|(what, report)| json!({ "what": what, "report": report }))
            .collect();
        print_json(&json!({ "data_dir": graft.data_dir(), "ok": ok, "jobs": reports }));
    } else {
        let mut rows = Vec::new();
        for (what, report) in &jobs {
            for module in &report.modules {
                let main = module
                    .steps
                    .iter()
                    .find(|s| s.step == "upgrade" || s.step == "rollback");
                let changed: u64 = module.steps.iter().map(|s| s.writes.total()).sum();
                let time: u64 = module.steps.iter().map(|s| s.usage.duration_ms).sum();
                rows.push(vec![
                    report.tenant.clone(),
                    what.clone(),
                    format!(
                        "{} -> {}",
                        module.from.as_deref().unwrap_or("(none)"),
                        module.to
                    ),
                    main.map(|s| s.outcome.clone())
                        .unwrap_or_else(|| "failed".into()),
                    module
                        .steps
                        .iter()
                        .map(|s| format!("{}:{}", s.step, s.outcome))
                        .collect::<Vec<_>>()
                        .join(" "),
                    changed.to_string(),
                    format!("{time} ms"),
                ]);
            }
        }
        table(
            &[
                "TENANT",
                "WHAT",
                "MODULE",
                "OUTCOME",
                "STEPS",
                "RECORDS CHANGED",
                "TIME",
            ],
            &rows,
        );
        println!();
        for tenant in TENANTS {
            let enabled: Vec<String> = graft
                .status(tenant)?
                .into_iter()
                .map(|m| m.module_id)
                .collect();
            let users = graft.data_count(tenant, "mod-users", "users")?;
            println!("{tenant}: {} enabled, {users} users", enabled.join(", "));
        }
        println!(
            "\ndone in {:.1} s; inspect with `graft --data-dir {} history --tenant diku`",
            started.elapsed().as_secs_f64(),
            graft.data_dir().display()
        );
        for (_, report) in &jobs {
            for module in &report.modules {
                if let Some(failure) = &module.failure {
                    eprintln!("error: {failure}");
                }
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

#[derive(Args)]
pub struct DemoArgs {
    /// Sample users per tenant.
    #[arg(long, default_value_t = 10_000)]
    pub users: u64,
}

/// The demo runs in a fresh sub-folder of the data directory, so running it
/// twice never meets the first run's tenants.
fn open_demo(cli: &Cli) -> Result<Graft> {
    open_in(cli, &fresh_demo_dir(&cli.data_dir)?)
}

/// `demo-<unix seconds>`, with `-2`, `-3`, ... when a run in the same second
/// already took that name. `create_dir` claims the name atomically, so two
/// demos started together never share a folder.
fn fresh_demo_dir(data_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("{}: cannot create the data directory", data_dir.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut n = 1u64;
    loop {
        let name = match n {
            1 => format!("demo-{stamp}"),
            n => format!("demo-{stamp}-{n}"),
        };
        let dir = data_dir.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{}: cannot create the demo directory", dir.display())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fresh_demo_dir;

    /// Demos started in the same second (a fast machine, or two at once)
    /// still get folders of their own.
    #[test]
    fn demos_in_the_same_second_get_their_own_folders() {
        let data = tempfile::TempDir::new().unwrap();
        let dirs: Vec<_> = (0..3)
            .map(|_| fresh_demo_dir(data.path()).unwrap())
            .collect();
        assert!(dirs
            .iter()
            .all(|d| d.is_dir() && d.parent() == Some(data.path())));
        assert_ne!(dirs[0], dirs[1]);
        assert_ne!(dirs[1], dirs[2]);
        assert_ne!(dirs[0], dirs[2]);
    }
}
