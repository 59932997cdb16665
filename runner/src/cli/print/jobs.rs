//! Jobs as they run and after: each tenant's report as it finishes (or a
//! JSON document streamed), the changes of jobs, the queue's batches.

use super::{name_of, one_line, print_json, safe, show_value, table, MAX_ERROR_CHARS};
use graft::changelog::CollectionChanges;
use graft::fanout::{TenantOutcome, TenantSummary};
use graft::install::{CommitMode, TenantReport};
use graft::reads::JobChanges;
use serde_json::json;

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
pub fn changes(tenant: &str, jobs: &[JobChanges], detailed: bool, json: bool) {
    if json {
        print_json(&json!({ "tenant": tenant, "jobs": jobs }));
        return;
    }
    for JobChanges {
        job: record,
        changes,
    } in jobs
    {
        println!(
            "job {} ({} to {}, commit {})",
            record.job_id, record.started_at, record.finished_at, record.commit
        );
        changes_table(&changes.iter().collect::<Vec<_>>());
        if detailed {
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
