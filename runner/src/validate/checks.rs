//! The checks of one fixture's runs, each a `Check` with the fix where
//! one fails: inspect, upgrade, idempotent, simulation, deterministic,
//! overlay, rollback.

use super::*;

pub(super) fn module_report<'r>(
    report: &'r TenantReport,
    module: &str,
) -> Option<&'r ModuleReport> {
    report.modules.iter().find(|m| m.module == module)
}

pub(super) fn failure_text(report: &TenantReport) -> String {
    report
        .failure()
        .map(|f| f.to_string())
        .unwrap_or_else(|| "the job failed".into())
}

pub(super) fn check_inspect(report: Option<&ModuleReport>, release: &ModuleId) -> Check {
    let expected = format!("release {}", release.version.as_str());
    match report.and_then(|m| m.stored.as_deref()) {
        None => Check::new(
            "inspect",
            Status::Fail,
            report
                .and_then(|m| m.failure.as_ref())
                .map(|f| format!("inspect did not answer: {f}"))
                .unwrap_or_else(|| "inspect did not run".into()),
        ),
        Some(stored) if stored == expected => {
            Check::new("inspect", Status::Pass, format!("recognises {release}"))
        }
        Some(stored) => Check::new(
            "inspect",
            Status::Fail,
            format!("the fixture holds {release}, inspect says `{stored}`"),
        ),
    }
}

pub(super) fn check_upgrade(
    report: &TenantReport,
    module: Option<&ModuleReport>,
    from: &ModuleId,
    to: &ModuleId,
) -> Check {
    if !report.ok {
        return Check::new("upgrade", Status::Fail, failure_text(report));
    }
    let changed: u64 = report.changes().iter().map(|c| c.total()).sum();
    let outcome = module.and_then(|m| m.outcome_of("upgrade")).unwrap_or("-");
    let what = if from == to {
        format!("{to} again")
    } else {
        format!("{from} -> {to}")
    };
    Check::new(
        "upgrade",
        Status::Pass,
        format!("{what}: {outcome}, {changed} record changes"),
    )
}

pub(super) fn check_idempotent(again: &TenantReport, module: &str, target: &ModuleId) -> Check {
    if !again.ok {
        return Check::new(
            "idempotent",
            Status::Fail,
            format!("the second run failed: {}", failure_text(again)),
        );
    }
    let report = module_report(again, module);
    let expected = format!("release {}", target.version.as_str());
    let stored = report.and_then(|m| m.stored.as_deref()).unwrap_or("-");
    if stored != expected {
        return Check::new(
            "idempotent",
            Status::Fail,
            format!("after the upgrade, inspect says `{stored}`, not {expected}"),
        );
    }
    let changes: Vec<_> = again
        .changes()
        .into_iter()
        .filter(|c| c.total() > 0 || !c.schema.is_empty())
        .collect();
    let outcome = report.and_then(|m| m.outcome_of("upgrade")).unwrap_or("-");
    if changes.is_empty() && outcome == "unchanged" {
        return Check::new(
            "idempotent",
            Status::Pass,
            format!("inspect then says {expected}; the second run is unchanged"),
        );
    }
    let mut details: Vec<String> = Vec::new();
    let mut first_record = None;
    for c in &changes {
        details.push(format!(
            "module {}, collection {}: {} inserted, {} updated, {} deleted{}",
            c.module,
            c.collection,
            c.inserted,
            c.updated,
            c.deleted,
            if c.schema.is_empty() {
                String::new()
            } else {
                format!("; schema: {}", c.schema.join("; "))
            }
        ));
        if let Some(sample) = c.samples.first() {
            let mut one = compare::Differences::default();
            let before = sample.before.iter().map(|v| (sample.id.clone(), v.clone()));
            let after = sample.after.iter().map(|v| (sample.id.clone(), v.clone()));
            compare::records(
                &c.collection,
                ("first run", &before.collect()),
                ("second run", &after.collect()),
                &mut one,
            );
            let lines = one.into_details();
            first_record = first_record.or(lines.first().cloned());
            details.extend(lines);
        }
    }
    let first = first_record
        .or(details.first().cloned())
        .unwrap_or_else(|| "no data changes".into());
    Check::new(
        "idempotent",
        Status::Fail,
        format!("the second run was `{outcome}` and changed data: {first}"),
    )
    .with_details(details)
}

pub(super) fn check_simulation(simulated: &TenantReport, real: &TenantReport) -> Check {
    let mut differences = compare::change_logs(
        ("the simulation", &simulated.changes()),
        ("the real run", &real.changes()),
    );
    let outcomes = |r: &TenantReport| -> Vec<(String, String)> {
        r.modules
            .iter()
            .flat_map(|m| m.steps.iter().map(|s| (s.step.clone(), s.outcome.clone())))
            .collect()
    };
    if simulated.ok != real.ok || outcomes(simulated) != outcomes(real) {
        differences.lines.insert(
            0,
            format!(
                "steps: the simulation {:?}, the real run {:?}",
                outcomes(simulated),
                outcomes(real)
            ),
        );
    }
    if differences.is_empty() {
        let changed: u64 = real.changes().iter().map(|c| c.total()).sum();
        return Check::new(
            "simulation",
            Status::Pass,
            format!("the simulation reported exactly the real run's {changed} record changes"),
        );
    }
    Check::failed(
        "simulation",
        "the simulation differs from the real run".into(),
        differences,
    )
}

pub(super) fn check_deterministic(
    first: &TenantReport,
    second: &TenantReport,
    after_first: &Dump,
    after_second: &Dump,
    module: &str,
) -> Check {
    if !second.ok {
        return Check::new(
            "deterministic",
            Status::Fail,
            format!(
                "the same upgrade failed on a second copy: {}",
                failure_text(second)
            ),
        );
    }
    let mut differences = compare::collections(
        ("copy 1", after_first.collections.get(module)),
        ("copy 2", after_second.collections.get(module)),
    );
    let empty = std::collections::BTreeMap::new();
    let (bases_1, bases_2) = (
        after_first.bases.get(module).unwrap_or(&empty),
        after_second.bases.get(module).unwrap_or(&empty),
    );
    for collection in bases_1.keys().chain(bases_2.keys()) {
        let none = std::collections::BTreeMap::new();
        compare::records(
            &format!("{collection} (vendor base)"),
            ("copy 1", bases_1.get(collection).unwrap_or(&none)),
            ("copy 2", bases_2.get(collection).unwrap_or(&none)),
            &mut differences,
        );
    }
    if differences.is_empty() {
        let logs =
            compare::change_logs(("copy 1", &first.changes()), ("copy 2", &second.changes()));
        differences = logs;
    }
    if differences.is_empty() {
        return Check::new(
            "deterministic",
            Status::Pass,
            "two copies upgraded to identical data",
        );
    }
    Check::failed(
        "deterministic",
        "two copies of the fixture upgraded to different data".into(),
        differences,
    )
}

pub(super) fn check_overlay(
    edits: &[crate::overlay::TenantChange],
    before: &Dump,
    after: &Dump,
    module: &str,
) -> Check {
    if edits.is_empty() {
        return Check::new(
            "overlay",
            Status::Skip,
            "the fixture has no tenant edits of reference data to keep",
        );
    }
    let empty = std::collections::BTreeMap::new();
    let lost = compare::lost_edits(
        edits,
        before.collections.get(module).unwrap_or(&empty),
        after.collections.get(module),
    );
    if lost.is_empty() {
        return Check::new(
            "overlay",
            Status::Pass,
            format!("all {} tenant changes to reference data kept", edits.len()),
        );
    }
    Check::failed("overlay", "a tenant edit was lost".into(), lost)
}

pub(super) fn check_rollback(
    report: &TenantReport,
    before: &Dump,
    after: &Dump,
    module: &str,
    release: &ModuleId,
) -> Check {
    if !report.ok {
        return Check::new(
            "rollback",
            Status::Fail,
            format!(
                "the downgrade to {release} failed: {}",
                failure_text(report)
            ),
        );
    }
    let differences = compare::collections(
        ("the fixture", before.collections.get(module)),
        ("after the rollback", after.collections.get(module)),
    );
    if differences.is_empty() {
        let records: usize = before
            .collections
            .get(module)
            .map(|c| c.values().map(|d| d.records.len()).sum())
            .unwrap_or(0);
        return Check::new(
            "rollback",
            Status::Pass,
            format!("the downgrade to {release} gave back the fixture's {records} records exactly"),
        );
    }
    Check::failed(
        "rollback",
        format!("the downgrade to {release} did not give back the fixture"),
        differences,
    )
}
