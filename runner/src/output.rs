//! What the commands print: aligned tables for people, JSON for machines.

use anyhow::Result;
use graft::changelog::CollectionChanges;
use graft::fanout::{TenantOutcome, TenantSummary};
use graft::install::{CommitMode, TenantReport};
use graft::Graft;
use serde::Serialize;
use serde_json::json;

/// The longest error line graft prints (`--json` has the whole text).
const MAX_ERROR_CHARS: usize = 2000;

/// An error on one line: its chain of causes joined, no backtrace, control
/// characters escaped and cut to `MAX_ERROR_CHARS` (a message may carry a
/// plugin's or a package's text).
pub fn one_line(error: &anyhow::Error) -> String {
    graft::text::for_terminal(&format!("{error:#}"), MAX_ERROR_CHARS)
}

/// Text a plugin or package controls, for the terminal: control characters
/// escaped so it cannot forge lines or send escape sequences.
pub fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    graft::text::escape_controls(text)
}

pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot write JSON: {e}"),
    }
}

/// The widest a table cell gets; longer text is cut with `…` (`--json`
/// has it whole).
const MAX_CELL_CHARS: usize = 120;

/// Print rows as columns padded to their widest cell. Every cell is
/// escaped and cut to `MAX_CELL_CHARS`, whatever a plugin or package put
/// in it.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| graft::text::for_terminal(cell, MAX_CELL_CHARS))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
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
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Tenants created or deleted (`what`).
pub fn created_tenants(tenants: &[String], what: &str, json: bool) {
    if json {
        print_json(&json!({ what: tenants }));
    } else {
        for tenant in tenants {
            println!("{what} tenant {tenant}");
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

/// A job's tenants, printed as each finishes, so that nothing of a tenant is
/// held once it is printed. With `--json`, one JSON document streamed:
/// `{"tenants": [report, ...], "ok": ..., "not_run": [...], "summary":
/// [...]}`; for people, each tenant's report, then a table.
pub struct Outcomes {
    json: bool,
    /// Whether a tenant was printed yet (for the JSON array's commas); the
    /// lock also keeps two tenants' output apart.
    printed: std::sync::Mutex<bool>,
}

impl Outcomes {
    pub fn start(json: bool) -> Self {
        if json {
            print!("{{\"tenants\": [");
            flush();
        }
        Outcomes {
            json,
            printed: std::sync::Mutex::new(false),
        }
    }

    /// Print one tenant's outcome (from any worker thread) and let it go.
    pub fn tenant(&self, outcome: TenantOutcome) {
        let mut printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
        if self.json {
            let value = match &outcome.result {
                Ok(report) => serde_json::to_value(report).unwrap_or_default(),
                Err(e) => json!({ "tenant": outcome.tenant, "ok": false, "error": one_line(e) }),
            };
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            print!("{}{text}", if *printed { ",\n" } else { "\n" });
            flush();
        } else {
            match &outcome.result {
                Ok(report) => tenant_report(report),
                Err(e) => eprintln!("error: {}", one_line(e)),
            }
        }
        *printed = true;
    }

    /// End the output: the tenants not run, and the table or summary.
    pub fn finish(self, summaries: &[TenantSummary], tenants: &[String]) {
        let skipped: Vec<&String> = tenants
            .iter()
            .filter(|t| !summaries.iter().any(|s| &s.tenant == *t))
            .collect();
        if self.json {
            let ok = summaries.iter().all(|s| s.ok) && skipped.is_empty();
            println!(
                "\n],\n\"ok\": {ok},\n\"not_run\": {},\n\"summary\": {}\n}}",
                json!(skipped),
                serde_json::to_string(summaries).unwrap_or_default()
            );
            return;
        }
        if summaries.len() > 1 || !skipped.is_empty() {
            println!();
            let rows: Vec<Vec<String>> = summaries
                .iter()
                .map(|s| match &s.error {
                    None => vec![
                        s.tenant.clone(),
                        if s.ok { "ok".into() } else { "FAILED".into() },
                        s.modules.to_string(),
                        s.records_changed.to_string(),
                    ],
                    Some(_) => vec![s.tenant.clone(), "ERROR".into(), "-".into(), "-".into()],
                })
                .collect();
            table(&["TENANT", "RESULT", "MODULES", "RECORDS CHANGED"], &rows);
            if !skipped.is_empty() {
                let names: Vec<&str> = skipped.iter().map(|t| t.as_str()).collect();
                eprintln!("not run, because the canary failed: {}", names.join(", "));
            }
        }
    }
}

fn flush() {
    use std::io::Write;
    std::io::stdout().flush().ok();
}

fn tenant_report(report: &TenantReport) {
    let what = if report.simulated {
        "simulation, nothing written"
    } else {
        "commit: "
    };
    let commit = if report.simulated {
        String::new()
    } else {
        serde_json::to_value(report.commit)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    };
    println!(
        "tenant {} (job {}, {what}{commit})",
        report.tenant, report.job_id
    );
    let plan: Vec<Vec<String>> = report
        .plan
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.from.clone().unwrap_or_default(),
                name_of(&e.action),
                name_of(&e.stage),
                e.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["PLAN", "FROM", "ACTION", "STAGE", "MESSAGE"], &plan);
    println!();
    let mut rows = Vec::new();
    for module in &report.modules {
        let status = name_of(&module.status);
        let action = name_of(&module.action);
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
                status.clone(),
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
                status,
            ]);
        }
    }
    if !rows.is_empty() {
        table(
            &[
                "MODULE", "ACTION", "STEP", "OUTCOME", "INSERTED", "UPDATED", "DELETED",
                "WARNINGS", "TIME", "STATUS",
            ],
            &rows,
        );
    }
    for module in &report.modules {
        if let Some(discrepancy) = &module.discrepancy {
            println!("note: {}: {}", module.to, safe(discrepancy));
        }
        for step in &module.steps {
            for warning in step.log.warnings.iter().take(20) {
                println!(
                    "warning: {} {}: {} {}: {}",
                    module.to,
                    step.step,
                    warning.collection,
                    safe(&warning.record_id),
                    safe(&warning.message)
                );
            }
            for collection in &step.overlay {
                let c = &collection.counts;
                let counts = [
                    (c.inserted, "inserted"),
                    (c.applied, "vendor changes applied"),
                    (c.merged, "merged"),
                    (c.kept, "tenant edits kept"),
                    (c.conflicts, "conflicts"),
                    (c.deletions_kept, "tenant deletions kept"),
                    (c.removed, "removed"),
                    (c.dropped_kept, "dropped by the vendor but kept"),
                    (c.reverted, "reverted"),
                    (c.skipped, "skipped"),
                    (c.unchanged, "unchanged"),
                ];
                let said: Vec<String> = counts
                    .iter()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, what)| format!("{n} {what}"))
                    .collect();
                // A collection where nothing happened but `unchanged` is not news.
                let only_unchanged = said.len() == 1 && c.unchanged > 0;
                if !said.is_empty() && !only_unchanged {
                    println!(
                        "overlay: {} {} {}: {}",
                        module.to,
                        step.step,
                        collection.collection,
                        said.join(", ")
                    );
                }
                for note in collection
                    .notes
                    .iter()
                    .filter(|n| n.what != "merged")
                    .take(20)
                {
                    println!(
                        "  {} {}: {}",
                        note.what,
                        safe(&note.record_id),
                        safe(&note.detail)
                    );
                    for field in &note.fields {
                        let show = |v: &Option<serde_json::Value>| show_value(v, "(none)");
                        println!(
                            "    {}: vendor was {}, now {}; the tenant's {} stays",
                            safe(&field.field),
                            show(&field.base),
                            show(&field.vendor),
                            show(&field.tenant)
                        );
                    }
                }
            }
            if step.warnings > 20 {
                println!(
                    "warning: {} {}: {} warnings in all (see --json)",
                    module.to, step.step, step.warnings
                );
            }
            if step.log.dropped_lines > 0 {
                println!(
                    "note: {} {}: {} log lines ({} bytes) over the log limit were dropped",
                    module.to, step.step, step.log.dropped_lines, step.log.dropped_bytes
                );
            }
        }
    }
    if report.simulated && report.ok {
        println!("\nwould change:");
        changes_table(&report.changes());
    }
    if let Some(failure) = report.failure() {
        eprintln!(
            "error: {}",
            graft::text::for_terminal(&failure.to_string(), MAX_ERROR_CHARS)
        );
        // The plugin's own frames; the runtime's panic and abort machinery is
        // in the JSON report for whoever needs it.
        let runtime = [
            "std::",
            "core::",
            "alloc::",
            "__rustc",
            "rust_begin_unwind",
            "rust_panic",
            "abort",
        ];
        let own = failure
            .failure
            .backtrace
            .iter()
            .filter(|f| !runtime.iter().any(|r| f.starts_with(r)));
        for frame in own.take(12) {
            eprintln!("       at {}", safe(frame));
        }
        let what = if report.simulated {
            "nothing was written (simulation)".to_string()
        } else if report.commit == CommitMode::Atomic {
            "the tenant's data and metadata are as they were before the job".to_string()
        } else {
            format!(
                "the tenant's data and metadata are as they were before {}",
                failure.module
            )
        };
        eprintln!("       {what}");
    }
    for warning in &report.warnings {
        eprintln!(
            "warning: {}",
            graft::text::for_terminal(warning, MAX_ERROR_CHARS)
        );
    }
}

/// The serde name of a value (`per-module`, `not-managed`).
fn name_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn changes_table(changes: &[&CollectionChanges]) {
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            vec![
                c.module.clone(),
                c.collection.clone(),
                c.inserted.to_string(),
                c.updated.to_string(),
                c.deleted.to_string(),
                c.schema.join("; "),
            ]
        })
        .collect();
    table(
        &[
            "MODULE",
            "COLLECTION",
            "INSERTED",
            "UPDATED",
            "DELETED",
            "SCHEMA",
        ],
        &rows,
    );
}

/// `graft changes`: every job's changes, or one job's in detail.
pub fn changes(graft: &Graft, tenant: &str, job: Option<&str>, json: bool) -> Result<()> {
    let mut db = graft.tenants.open(tenant)?;
    let jobs = db.jobs()?;
    let selected: Vec<_> = match job {
        Some(id) => {
            let found: Vec<_> = jobs.into_iter().filter(|j| j.job_id == id).collect();
            if found.is_empty() {
                anyhow::bail!(
                    "tenant {tenant} has no job {id} (see `graft history --tenant {tenant}`)"
                );
            }
            found
        }
        None => jobs,
    };
    let mut all = Vec::new();
    for record in &selected {
        all.push((
            record,
            graft::changelog::job_changes(&mut *db, &record.job_id)?,
        ));
    }
    if json {
        let list: Vec<_> = all
            .iter()
            .map(|(job, changes)| json!({ "job": job, "changes": changes }))
            .collect();
        print_json(&json!({ "tenant": tenant, "jobs": list }));
        return Ok(());
    }
    for (record, changes) in &all {
        println!(
            "job {} ({} to {}, commit {})",
            record.job_id, record.started_at, record.finished_at, record.commit
        );
        changes_table(&changes.iter().collect::<Vec<_>>());
        if job.is_some() {
            for c in changes {
                for sample in &c.samples {
                    let show = |v: &Option<serde_json::Value>| show_value(v, "-");
                    println!(
                        "  {} {} {} {}: {} -> {}",
                        c.module,
                        c.collection,
                        name_of(&sample.op),
                        safe(&sample.id),
                        show(&sample.before),
                        show(&sample.after)
                    );
                }
                let shown = c.samples.len() as u64;
                if c.total() > shown {
                    println!(
                        "  {} {}: {} more record changes counted, not kept",
                        c.module,
                        c.collection,
                        c.total() - shown
                    );
                }
            }
        }
        println!();
    }
    Ok(())
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
            entry.at,
            entry.job_id,
            entry.module_to,
            entry.step,
            safe(&entry.failure.to_string())
        );
    }
    Ok(())
}

pub fn records(records: &[(String, serde_json::Value)], json: bool) {
    if json {
        let docs: Vec<&serde_json::Value> = records.iter().map(|(_, doc)| doc).collect();
        print_json(&docs);
        return;
    }
    for (id, doc) in records {
        println!("{}  {doc}", safe(id));
    }
}

pub fn edit(report: &graft::data::EditReport, json: bool) {
    if json {
        print_json(report);
        return;
    }
    for change in &report.changes {
        println!(
            "job {}: {} {}: {} inserted, {} updated, {} deleted",
            report.job_id,
            change.module,
            change.collection,
            change.inserted,
            change.updated,
            change.deleted
        );
    }
}

pub fn reference_diff(
    tenant: &str,
    module: &str,
    changes: &[graft::overlay::TenantChange],
    json: bool,
) {
    if json {
        print_json(&json!({ "tenant": tenant, "module": module, "changes": changes }));
        return;
    }
    if changes.is_empty() {
        println!("tenant {tenant} has not changed {module}'s vendor data");
        return;
    }
    for change in changes {
        println!(
            "{} {} {}",
            change.what,
            change.collection,
            safe(&change.record_id)
        );
        let show = |v: &Option<serde_json::Value>| show_value(v, "(none)");
        for field in &change.fields {
            println!(
                "    {}: vendor {} -> tenant {}",
                safe(&field.field),
                show(&field.vendor),
                show(&field.tenant)
            );
        }
    }
}

/// A JSON value on one line, or `none` where there is none.
fn show_value(value: &Option<serde_json::Value>, none: &str) -> String {
    value
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| none.to_string())
}

pub fn fixture(fixture: &graft::fixture::Fixture, path: &std::path::Path, what: &str, json: bool) {
    let records: usize = fixture
        .collections
        .values()
        .flat_map(|c| c.values())
        .map(|c| c.records.len())
        .sum();
    let modules: Vec<&str> = fixture
        .modules
        .iter()
        .map(|m| m.module_id.as_str())
        .collect();
    if json {
        print_json(&json!({
            "fixture": path,
            "tenant": fixture.tenant,
            "capturedAt": fixture.captured_at,
            "modules": modules,
            "records": records,
        }));
    } else {
        println!(
            "{}: {what}: tenant {} with {} ({records} records)",
            path.display(),
            safe(&fixture.tenant),
            safe(&modules.join(", "))
        );
    }
}

pub fn validation(validation: &graft::validate::Validation, json: bool) {
    use graft::validate::Status;
    if json {
        print_json(validation);
        return;
    }
    let name = |status: Status| match status {
        Status::Pass => "pass",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Skip => "skip",
    };
    println!(
        "{} ({})",
        validation.module.as_deref().unwrap_or("package"),
        validation.package.display()
    );
    let rows: Vec<Vec<String>> = validation
        .all_checks()
        .map(|(fixture, check)| {
            vec![
                fixture
                    .map(|f| {
                        f.fixture
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    })
                    .unwrap_or_else(|| "(package)".into()),
                check.check.to_string(),
                name(check.status).to_string(),
                check.message.clone(),
            ]
        })
        .collect();
    table(&["FIXTURE", "CHECK", "RESULT", "DETAIL"], &rows);
    for skipped in &validation.not_applicable {
        println!(
            "not applicable: {}: {}",
            skipped.fixture.display(),
            safe(&skipped.reason)
        );
    }
    for (fixture, check) in validation.all_checks() {
        if check.details.is_empty() || !matches!(check.status, Status::Fail | Status::Warn) {
            continue;
        }
        let at = fixture
            .map(|f| f.fixture.display().to_string())
            .unwrap_or_else(|| "package".into());
        println!("\n{} {} ({at}):", name(check.status), check.check);
        for line in &check.details {
            println!("  {}", safe(line));
        }
    }
    println!(
        "\n{} passed, {} warnings, {} failed, {} skipped",
        validation.count(Status::Pass),
        validation.count(Status::Warn),
        validation.count(Status::Fail),
        validation.count(Status::Skip)
    );
}

pub fn adopted(report: &graft::adopt::AdoptReport, json: bool) {
    if json {
        print_json(report);
        return;
    }
    println!(
        "tenant {}: adopted {} from schema {}",
        report.tenant, report.module, report.schema
    );
    let rows: Vec<Vec<String>> = report
        .collections
        .iter()
        .map(|c| {
            vec![
                c.collection.clone(),
                c.table.clone(),
                c.records.to_string(),
                c.indexes
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                report
                    .bases
                    .get(&c.collection)
                    .map(u64::to_string)
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &["COLLECTION", "TABLE", "RECORDS", "INDEXES", "VENDOR BASES"],
        &rows,
    );
    for c in &report.collections {
        for definition in &c.unread_indexes {
            println!(
                "index left as is (graft cannot describe it): {}",
                safe(definition)
            );
        }
    }
    for (table, why) in &report.skipped {
        println!("table {} skipped: {}", safe(table), safe(why));
    }
}

pub fn enqueued(batch: &str, tenants: &[String], json: bool) {
    if json {
        print_json(&json!({ "batch": batch, "tenants": tenants }));
    } else {
        println!(
            "queued {} tenant jobs as {batch}: start `graft worker` processes to run them, `graft jobs` to follow",
            tenants.len()
        );
    }
}

pub fn batches(batches: &[graft::queue::BatchStatus], json: bool) {
    if json {
        print_json(&json!({ "batches": batches }));
        return;
    }
    let rows: Vec<Vec<String>> = batches
        .iter()
        .map(|b| {
            vec![
                b.batch.clone(),
                b.enqueued_at.clone(),
                b.queued.to_string(),
                b.running.to_string(),
                b.done.to_string(),
                b.failed.to_string(),
            ]
        })
        .collect();
    table(
        &["BATCH", "ENQUEUED", "QUEUED", "RUNNING", "DONE", "FAILED"],
        &rows,
    );
    for b in batches {
        for (tenant, worker, age, attempt) in &b.working {
            println!(
                "{}: tenant {tenant} on worker {worker} (heartbeat {age:.1} s ago, attempt {attempt})",
                b.batch
            );
        }
        for (tenant, why) in &b.failures {
            println!("{}: tenant {tenant} failed: {}", b.batch, safe(why));
        }
    }
}
