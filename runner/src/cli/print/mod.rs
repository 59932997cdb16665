//! What the commands print: aligned tables for people, JSON for machines.
//! Everything here renders a value the library returned; plugin and
//! package text is escaped on the way out (see `graft::text`).

mod jobs;
mod vendor;

pub use jobs::{batches, changes, enqueued, Outcomes};
pub use vendor::{adopted, assembled, fixture, reference_diff, validation};

use graft::edits::EditReport;
use graft::package::{BadPackage, Package};
use graft::reads::History;
use graft::storage::EnabledModule;
use serde::Serialize;
use serde_json::json;
use std::path::Path;

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
pub fn tenants_done(tenants: &[String], what: &str, json: bool) {
    if json {
        print_json(&json!({ what: tenants }));
    } else {
        for tenant in tenants {
            println!("{what} tenant {tenant}");
        }
    }
}

pub fn tenants(tenants: &[String], data_dir: &Path, json: bool) {
    if json {
        print_json(&json!({ "tenants": tenants }));
    } else if tenants.is_empty() {
        println!(
            "no tenants in {} (create one with `graft tenant create NAME`)",
            data_dir.display()
        );
    } else {
        for tenant in tenants {
            println!("{tenant}");
        }
    }
}

/// Packages, each with the contract version its plugin was built for.
pub fn modules(modules_dir: &Path, packages: &[(Package, String)], bad: &[BadPackage], json: bool) {
    if json {
        let packages: Vec<_> = packages
            .iter()
            .map(|(p, contract)| {
                json!({
                    "id": p.id.to_string(),
                    "dir": p.dir,
                    "contract": contract,
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
        print_json(&json!({ "modules_dir": modules_dir, "packages": packages, "unusable": bad }));
        return;
    }
    println!("modules in {}", modules_dir.display());
    let rows: Vec<Vec<String>> = packages
        .iter()
        .map(|(p, contract)| {
            let provides: Vec<String> = p
                .descriptor
                .provides
                .iter()
                .map(|i| format!("{} {}", i.id, i.version))
                .collect();
            vec![p.id.to_string(), contract.clone(), provides.join(", ")]
        })
        .collect();
    table(&["MODULE", "CONTRACT", "PROVIDES"], &rows);
    for b in bad {
        println!("unusable: {}: {}", b.dir.display(), one_line(&b.error));
    }
}

/// The serde name of a value (`per-module`, `not-managed`).
fn name_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A JSON value on one line, or `none` where there is none.
fn show_value(value: &Option<serde_json::Value>, none: &str) -> String {
    value
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| none.to_string())
}

pub fn status(tenant: &str, modules: &[EnabledModule], json: bool) {
    if json {
        print_json(&json!({ "tenant": tenant, "modules": modules }));
        return;
    }
    if modules.is_empty() {
        println!("tenant {tenant} has no modules");
        return;
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
}

pub fn history(history: &History, json: bool) {
    if json {
        print_json(history);
        return;
    }
    let History { steps, failed, .. } = history;
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

pub fn edit(report: &EditReport, json: bool) {
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
