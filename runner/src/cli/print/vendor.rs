//! What vendors and data owners read: fixtures, validation reports, the
//! tenant's edits of reference data, adopted schemas.

use super::{print_json, safe, show_value, table};
use serde_json::json;

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

pub fn assembled(assembled: &graft::assemble::Assembled, json: bool) {
    if json {
        print_json(assembled);
        return;
    }
    validation(&assembled.validation, false);
    match &assembled.written {
        Some(written) => {
            println!("wrote {}", written.folder.display());
            println!(
                "wrote {} (sha256 {})",
                written.archive.display(),
                written.sha256
            );
        }
        None => println!("nothing written: fix what failed above and run graft package again"),
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
