//! What the commands print: aligned tables for people, JSON for machines.

use anyhow::Result;
use graft::install::{ModuleStatus, TenantReport};
use graft::Graft;
use serde::Serialize;
use serde_json::json;

/// An error on one line: its chain of causes joined, no backtrace.
pub fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}

pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot write JSON: {e}"),
    }
}

/// Print rows as columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn created_tenants(tenants: &[String], json: bool) {
    if json {
        print_json(&json!({ "created": tenants }));
    } else {
        for tenant in tenants {
            println!("created tenant {tenant}");
        }
    }
}

pub fn tenants(graft: &Graft, json: bool) -> Result<()> {
    let tenants = graft.tenants.list()?;
    if json {
        print_json(&json!({ "tenants": tenants }));
    } else if tenants.is_empty() {
        println!(
            "no tenants in {} (create one with `graft tenant create NAME`)",
            graft.data_dir.display()
        );
    } else {
        for tenant in tenants {
            println!("{tenant}");
        }
    }
    Ok(())
}

pub fn modules(graft: &Graft, json: bool) -> Result<()> {
    let (packages, bad) = graft.catalog.scan()?;
    if json {
        let packages: Vec<_> = packages
            .iter()
            .map(|p| {
                json!({
                    "id": p.id.to_string(),
                    "dir": p.dir,
                    "provides": p.descriptor.provides.iter().map(|i| format!("{} {}", i.id, i.version)).collect::<Vec<_>>(),
                    "requires": p.descriptor.requires.iter().map(|i| format!("{} {}", i.id, i.version)).collect::<Vec<_>>(),
                    "limits": p.limits,
                })
            })
            .collect();
        let bad: Vec<_> = bad
            .iter()
            .map(|b| json!({ "dir": b.dir, "error": one_line(&b.error) }))
            .collect();
        print_json(
            &json!({ "modules_dir": graft.catalog.dir, "packages": packages, "unusable": bad }),
        );
        return Ok(());
    }
    println!("modules in {}", graft.catalog.dir.display());
    let rows: Vec<Vec<String>> = packages
        .iter()
        .map(|p| {
            let provides: Vec<String> = p
                .descriptor
                .provides
                .iter()
                .map(|i| format!("{} {}", i.id, i.version))
                .collect();
            vec![p.id.to_string(), provides.join(", ")]
        })
        .collect();
    table(&["MODULE", "PROVIDES"], &rows);
    for b in &bad {
        println!("unusable: {}: {}", b.dir.display(), one_line(&b.error));
    }
    Ok(())
}

pub fn tenant_report(report: &TenantReport, json: bool) {
    if json {
        print_json(report);
        return;
    }
    let mut rows = Vec::new();
    for module in &report.modules {
        let status = match module.status {
            ModuleStatus::Committed => "committed",
            ModuleStatus::RolledBack => "ROLLED BACK",
            ModuleStatus::NotRun => "not run",
        };
        let action = format!("{:?}", module.action).to_lowercase();
        for step in &module.steps {
            rows.push(vec![
                module.to.clone(),
                action.clone(),
                step.step.clone(),
                step.outcome.clone(),
                step.writes.inserted.to_string(),
                step.writes.updated.to_string(),
                step.writes.deleted.to_string(),
                step.warnings.to_string(),
                format!("{} ms", step.usage.duration_ms),
                status.to_string(),
            ]);
        }
        if module.steps.is_empty() {
            rows.push(vec![
                module.to.clone(),
                action,
                "-".into(),
                "-".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                status.into(),
            ]);
        }
    }
    println!("tenant {} (job {})", report.tenant, report.job_id);
    table(
        &[
            "MODULE", "ACTION", "STEP", "OUTCOME", "INSERTED", "UPDATED", "DELETED", "WARNINGS",
            "TIME", "STATUS",
        ],
        &rows,
    );
    for module in &report.modules {
        for step in &module.steps {
            for warning in step.log.warnings.iter().take(20) {
                println!(
                    "warning: {} {}: {} {}: {}",
                    module.to, step.step, warning.collection, warning.record_id, warning.message
                );
            }
            if step.log.dropped_lines > 0 {
                println!(
                    "note: {} {}: {} log lines ({} bytes) over the log limit were dropped",
                    module.to, step.step, step.log.dropped_lines, step.log.dropped_bytes
                );
            }
        }
        if let Some(failure) = &module.failure {
            eprintln!("error: {failure}");
            eprintln!(
                "       the tenant's data and metadata are as they were before {}",
                module.to
            );
        }
    }
}

pub fn status(graft: &Graft, tenant: &str, json: bool) -> Result<()> {
    let mut db = graft.tenants.open(tenant)?;
    let modules = db.modules()?;
    if json {
        print_json(&json!({ "tenant": tenant, "modules": modules }));
        return Ok(());
    }
    if modules.is_empty() {
        println!("tenant {tenant} has no modules");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = modules
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                m.module_id.clone(),
                if m.enabled { "enabled" } else { "disabled" }.into(),
                m.updated_at.clone(),
            ]
        })
        .collect();
    table(&["MODULE", "ID", "STATE", "SINCE"], &rows);
    Ok(())
}

pub fn history(graft: &Graft, tenant: &str, json: bool) -> Result<()> {
    let mut db = graft.tenants.open(tenant)?;
    let steps = db.history()?;
    let failed = graft.journal.for_tenant(tenant)?;
    if json {
        print_json(&json!({ "tenant": tenant, "steps": steps, "failed": failed }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|h| {
            vec![
                h.at.clone(),
                h.job_id.clone(),
                h.module_to.clone(),
                h.step.clone(),
                h.outcome.clone(),
                format!("+{} ~{} -{}", h.inserted, h.updated, h.deleted),
                format!("{} ms", h.duration_ms),
                h.plugin_sha256.chars().take(12).collect(),
            ]
        })
        .collect();
    table(
        &[
            "AT",
            "JOB",
            "MODULE",
            "STEP",
            "OUTCOME",
            "RECORDS",
            "TIME",
            "PLUGIN SHA256",
        ],
        &rows,
    );
    for entry in failed {
        println!(
            "failed and rolled back: {} {} {} step {}: {}",
            entry.at, entry.job_id, entry.module_to, entry.step, entry.failure
        );
    }
    Ok(())
}
