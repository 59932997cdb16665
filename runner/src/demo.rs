//! `graft demo`: a real run on a fresh data directory, showing what Graft
//! does: three tenants get mod-users 1.0.0 with reference data and sample
//! users, all are upgraded to the breaking 2.0.0, and one is downgraded to
//! 1.1.0 by the 2.0.0 plugin's rollback.

use crate::cli::{progress_bars, EXIT_FAILED};
use crate::output::{print_json, table};
use anyhow::{anyhow, Result};
use graft::{Graft, InstallOptions, ModuleId, TenantReport};
use serde_json::json;
use std::process::ExitCode;
use std::time::Instant;

const TENANTS: [&str; 3] = ["diku", "east", "west"];

pub fn run(graft: &Graft, users: u64, json: bool) -> Result<ExitCode> {
    let started = Instant::now();
    if !json {
        println!("graft demo in {}", graft.data_dir.display());
        println!("modules from {}\n", graft.catalog.dir.display());
    }
    for tenant in TENANTS {
        graft.tenants.create(tenant)?;
    }
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
        print_json(&json!({ "data_dir": graft.data_dir, "ok": ok, "jobs": reports }));
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
            let mut db = graft.tenants.open(tenant)?;
            let enabled: Vec<String> = db.modules()?.into_iter().map(|m| m.module_id).collect();
            let users = db.count("mod-users", "users")?;
            println!("{tenant}: {} enabled, {users} users", enabled.join(", "));
        }
        println!(
            "\ndone in {:.1} s; inspect with `graft --data-dir {} history --tenant diku`",
            started.elapsed().as_secs_f64(),
            graft.data_dir.display()
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
