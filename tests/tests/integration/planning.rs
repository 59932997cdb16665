//! Dependency resolution: a table of cases, each with the expected plan or
//! error, on synthetic ModuleDescriptors.

use graft::descriptor::ModuleDescriptor;
use graft::plan::{plan, Available, Enabled, PlanOptions, ReleaseFilter, Request, RequestAction};
use serde_json::{json, Value};

/// A descriptor: `provides` and `requires` as "interface version" strings.
fn module(id: &str, provides: &[&str], requires: &[&str]) -> Value {
    let interfaces = |list: &[&str]| -> Vec<Value> {
        list.iter()
            .map(|s| {
                let (iface, version) = s.split_once(' ').unwrap();
                json!({"id": iface, "version": version})
            })
            .collect()
    };
    json!({"id": id, "provides": interfaces(provides), "requires": interfaces(requires)})
}

fn with(mut descriptor: Value, field: &str, value: Value) -> Value {
    descriptor[field] = value;
    descriptor
}

fn available(descriptors: &[Value]) -> Vec<Available> {
    descriptors
        .iter()
        .map(|d| {
            let (descriptor, id) = ModuleDescriptor::parse(&d.to_string()).unwrap();
            Available { id, descriptor }
        })
        .collect()
}

fn enabled(catalog: &[Available], ids: &[&str]) -> Vec<Enabled> {
    ids.iter()
        .map(|id| {
            let found = catalog.iter().find(|a| a.id.to_string() == *id).unwrap();
            Enabled {
                id: found.id.clone(),
                descriptor: Some(found.descriptor.clone()),
            }
        })
        .collect()
}

fn requests(list: &[&str]) -> Vec<Request> {
    list.iter()
        .map(|r| match r.strip_prefix('-') {
            Some(id) => Request {
                id: id.to_string(),
                action: RequestAction::Disable,
            },
            None => Request {
                id: r.to_string(),
                action: RequestAction::Enable,
            },
        })
        .collect()
}

/// A plan as lines: "action id [from X] [stage] [: message]".
fn lines(
    catalog: &[Available],
    on: &[&str],
    asked: &[&str],
    options: &PlanOptions,
) -> Result<Vec<String>, String> {
    let plan = plan(catalog, &enabled(catalog, on), &requests(asked), options)?;
    Ok(plan
        .entries
        .iter()
        .map(|e| {
            let mut line = format!(
                "{} {}",
                serde_json::to_value(e.action).unwrap().as_str().unwrap(),
                e.id
            );
            if let Some(from) = &e.from {
                line += &format!(" from {from}");
            }
            let stage = serde_json::to_value(e.stage).unwrap();
            if stage != "pending" {
                line += &format!(" [{}]", stage.as_str().unwrap());
            }
            if let Some(message) = &e.message {
                line += &format!(": {message}");
            }
            line
        })
        .collect())
}

fn unmanaged() -> PlanOptions {
    PlanOptions {
        allow_unmanaged: true,
        ..PlanOptions::default()
    }
}

struct Case {
    name: &'static str,
    options: PlanOptions,
    catalog: Vec<Value>,
    enabled: &'static [&'static str],
    request: &'static [&'static str],
    expect: Result<&'static [&'static str], &'static str>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a module without requirements",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-a-1.0.0"]),
        },
        Case {
            name: "no version: the newest release, a pre-release too (Okapi's preRelease=true)",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.1.0", &["a 1.0"], &[]),
                module("mod-a-1.2.0", &["a 1.0"], &[]),
                module("mod-a-1.3.0-SNAPSHOT", &["a 1.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-a"],
            expect: Ok(&["enable mod-a-1.3.0-SNAPSHOT"]),
        },
        Case {
            name: "no version and only snapshots: the newest snapshot",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.3.0-SNAPSHOT.2", &["a 1.0"], &[]),
                module("mod-a-1.3.0-SNAPSHOT.10", &["a 1.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-a"],
            expect: Ok(&["enable mod-a-1.3.0-SNAPSHOT.10"]),
        },
        Case {
            name: "a required interface pulls its provider in, first",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]), module("mod-x-1.0.0", &["x 1.1"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-1.0.0: mod-a-1.0.0 requires interface x 1.0", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "a chain of requirements",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["b 1.0"]),
                module("mod-b-1.0.0", &["b 1.0"], &["c 2.0"]),
                module("mod-c-1.0.0", &["c 2.3"], &[]),
            ],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&[
                "enable mod-c-1.0.0: mod-b-1.0.0 requires interface c 2.0",
                "enable mod-b-1.0.0: mod-a-1.0.0 requires interface b 1.0",
                "enable mod-a-1.0.0",
            ]),
        },
        Case {
            name: "alternatives: the second one is provided",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0 2.0"]), module("mod-x-2.0.0", &["x 2.1"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-2.0.0: mod-a-1.0.0 requires interface x 1.0 2.0", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "a newer minor satisfies, a newer major does not",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.2"]),
                module("mod-x-1.0.0", &["x 1.1"], &[]),
                module("mod-x-2.0.0", &["x 2.5"], &[]),
            ],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Err("interface x required by module mod-a-1.0.0 not found"),
        },
        Case {
            name: "patch versions count",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.2.3"]),
                module("mod-x-1.0.0", &["x 1.2.1"], &[]),
                module("mod-x-1.0.1", &["x 1.2.5"], &[]),
            ],
            enabled: &["mod-x-1.0.0"],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-1.0.1 from mod-x-1.0.0: mod-a-1.0.0 needs interface x 1.2.3", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "an enabled provider too old is upgraded",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-2.0.0", &["a 2.0"], &["x 2.0"]),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
            ],
            enabled: &["mod-x-1.0.0"],
            request: &["mod-a-2.0.0"],
            expect: Ok(&["enable mod-x-2.0.0 from mod-x-1.0.0: mod-a-2.0.0 needs interface x 2.0", "enable mod-a-2.0.0"]),
        },
        Case {
            name: "an enabled provider too old with no fitting release",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-2.0.0", &["a 2.0"], &["x 2.0"]), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &["mod-x-1.0.0"],
            request: &["mod-a-2.0.0"],
            expect: Err("Incompatible version for module mod-a-2.0.0 interface x. Need 2.0. Have 1.0/mod-x-1.0.0"),
        },
        Case {
            name: "a requested provider release that does not fit",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-2.0.0", &["a 2.0"], &["x 2.0"]),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-x-1.0.0", "mod-a-2.0.0"],
            expect: Err("Incompatible version for module mod-a-2.0.0 interface x. Need 2.0. Have 1.0/mod-x-1.0.0"),
        },
        Case {
            name: "a missing interface",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["y 1.0"])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Err("interface y required by module mod-a-1.0.0 not found"),
        },
        Case {
            name: "an interface several products provide must be chosen",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]),
                module("mod-b-1.0.0", &["x 1.0"], &[]),
                module("mod-c-1.0.0", &["x 1.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Err("interface x required by module mod-a-1.0.0 is provided by multiple products: mod-b, mod-c"),
        },
        Case {
            name: "naming one of several providers settles it",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]),
                module("mod-b-1.0.0", &["x 1.0"], &[]),
                module("mod-c-1.0.0", &["x 1.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-c-1.0.0", "mod-a-1.0.0"],
            expect: Ok(&["enable mod-c-1.0.0", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "two modules providing one interface conflict",
            options: PlanOptions::default(),
            catalog: vec![module("mod-b-1.0.0", &["x 1.0"], &[]), module("mod-c-1.0.0", &["x 1.0"], &[])],
            enabled: &[],
            request: &["mod-b-1.0.0", "mod-c-1.0.0"],
            expect: Err("Multiple modules mod-b-1.0.0, mod-c-1.0.0 provide interface x"),
        },
        Case {
            name: "system and multiple interfaces do not conflict",
            options: PlanOptions::default(),
            catalog: vec![
                with(
                    module("mod-b-1.0.0", &[], &[]),
                    "provides",
                    json!([{"id": "_tenant", "version": "2.0"}, {"id": "x", "version": "1.0", "interfaceType": "multiple"}]),
                ),
                with(
                    module("mod-c-1.0.0", &[], &[]),
                    "provides",
                    json!([{"id": "_tenant", "version": "2.0"}, {"id": "x", "version": "1.0", "interfaceType": "multiple"}]),
                ),
            ],
            enabled: &[],
            request: &["mod-b-1.0.0", "mod-c-1.0.0"],
            expect: Ok(&["enable mod-b-1.0.0", "enable mod-c-1.0.0"]),
        },
        Case {
            name: "an interface of type multiple on one side does not conflict (Okapi counts proxy interfaces only)",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-b-1.0.0", &["_tenant 2.0", "x 1.0"], &[]),
                with(
                    module("mod-c-1.0.0", &["_tenant 2.0"], &[]),
                    "provides",
                    json!([{"id": "_tenant", "version": "2.0"}, {"id": "x", "version": "1.0", "interfaceType": "multiple"}]),
                ),
            ],
            enabled: &[],
            request: &["mod-b-1.0.0", "mod-c-1.0.0"],
            expect: Ok(&["enable mod-b-1.0.0", "enable mod-c-1.0.0"]),
        },
        Case {
            name: "an optional interface is not pulled in",
            options: PlanOptions::default(),
            catalog: vec![
                with(module("mod-a-1.0.0", &["a 1.0"], &[]), "optional", json!([{"id": "x", "version": "1.0"}])),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-a-1.0.0"]),
        },
        Case {
            name: "an optional interface present must be compatible",
            options: PlanOptions::default(),
            catalog: vec![
                with(module("mod-a-1.0.0", &["a 1.0"], &[]), "optional", json!([{"id": "x", "version": "2.0"}])),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
            ],
            enabled: &["mod-x-1.0.0"],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-2.0.0 from mod-x-1.0.0: mod-a-1.0.0 needs interface x 2.0", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "a module that replaces another disables it",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-old-1.0.0", &["x 1.0"], &[]),
                with(module("mod-new-1.0.0", &["x 1.1"], &[]), "replaces", json!(["mod-old"])),
            ],
            enabled: &["mod-old-1.0.0"],
            request: &["mod-new-1.0.0"],
            expect: Ok(&["disable mod-old-1.0.0: mod-new-1.0.0 provides interface x in its place", "enable mod-new-1.0.0"]),
        },
        Case {
            name: "disabling a module disables what requires it, first (Okapi's cascade)",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &["mod-x-1.0.0", "mod-a-1.0.0"],
            request: &["-mod-x-1.0.0"],
            expect: Ok(&["disable mod-a-1.0.0: requires interface x 1.0, which no enabled module provides", "disable mod-x-1.0.0"]),
        },
        Case {
            name: "disabling a module and what requires it",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &["mod-x-1.0.0", "mod-a-1.0.0"],
            request: &["-mod-a", "-mod-x"],
            expect: Ok(&["disable mod-a-1.0.0", "disable mod-x-1.0.0"]),
        },
        Case {
            name: "disables: dependents first, whatever the request's order",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["x 1.0"], &[]), module("mod-z-1.0.0", &["z 1.0"], &["x 1.0"])],
            enabled: &["mod-a-1.0.0", "mod-z-1.0.0"],
            request: &["-mod-a", "-mod-z"],
            expect: Ok(&["disable mod-z-1.0.0", "disable mod-a-1.0.0"]),
        },
        Case {
            name: "product swap: a new product taking an enabled module's interface disables it",
            options: PlanOptions::default(),
            catalog: vec![module("mod-ldp-1.0.0", &["ldp-query 1.0"], &[]), module("mod-reporting-1.0.0", &["ldp-query 1.1"], &[])],
            enabled: &["mod-ldp-1.0.0"],
            request: &["mod-reporting-1.0.0"],
            expect: Ok(&[
                "disable mod-ldp-1.0.0: mod-reporting-1.0.0 provides interface ldp-query in its place",
                "enable mod-reporting-1.0.0",
            ]),
        },
        Case {
            name: "product swap refused when the request keeps the old provider too",
            options: PlanOptions::default(),
            catalog: vec![module("mod-ldp-1.0.0", &["ldp-query 1.0"], &[]), module("mod-reporting-1.0.0", &["ldp-query 1.1"], &[])],
            enabled: &["mod-ldp-1.0.0"],
            request: &["mod-ldp-1.0.0", "mod-reporting-1.0.0"],
            expect: Err("Multiple modules mod-ldp-1.0.0, mod-reporting-1.0.0 provide interface ldp-query"),
        },
        Case {
            name: "a cycle of required interfaces is an error naming the modules",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["b 1.0"]), module("mod-b-1.0.0", &["b 1.0"], &["a 1.0"])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Err("modules mod-a-1.0.0 -> mod-b-1.0.0 -> mod-a-1.0.0 require interfaces of each other in a cycle: none can be enabled first"),
        },
        Case {
            name: "an optional interface's provider comes first",
            options: PlanOptions::default(),
            catalog: vec![with(module("mod-a-1.0.0", &["a 1.0"], &[]), "optional", json!([{"id": "x", "version": "1.0"}])), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0", "mod-x-1.0.0"],
            expect: Ok(&["enable mod-x-1.0.0", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "in a cycle, the optional edge gives way and the required one holds",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]),
                with(module("mod-x-1.0.0", &["x 1.0"], &[]), "optional", json!([{"id": "a", "version": "1.0"}])),
            ],
            enabled: &[],
            request: &["mod-x-1.0.0", "mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-1.0.0", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "an upgrade chain: the requirement moves its provider",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]),
                module("mod-a-2.0.0", &["a 2.0"], &["x 2.0"]),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
            ],
            enabled: &["mod-x-1.0.0", "mod-a-1.0.0"],
            request: &["mod-a"],
            expect: Ok(&["enable mod-x-2.0.0 from mod-x-1.0.0: mod-a-2.0.0 needs interface x 2.0", "enable mod-a-2.0.0 from mod-a-1.0.0"]),
        },
        Case {
            name: "a downgrade",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[]), module("mod-a-2.0.0", &["a 2.0"], &[])],
            enabled: &["mod-a-2.0.0"],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-a-1.0.0 from mod-a-2.0.0"]),
        },
        Case {
            name: "the enabled release again is up to date",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &["mod-a-1.0.0"],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["uptodate mod-a-1.0.0"]),
        },
        Case {
            name: "modules without a package are listed, not dropped (--allow-unmanaged)",
            options: unmanaged(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &[],
            request: &["folio_users-11.0.11", "mod-a-1.0.0", "mod-elsewhere-3.1.4"],
            expect: Ok(&[
                "enable mod-a-1.0.0",
                "enable folio_users-11.0.11 [not-managed]: not managed by Graft: no package registered",
                "enable mod-elsewhere-3.1.4 [not-managed]: not managed by Graft: no package registered",
            ]),
        },
        Case {
            name: "disabling what is not enabled does nothing (--allow-unmanaged)",
            options: unmanaged(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &[],
            request: &["-mod-a"],
            expect: Ok(&["disable mod-a [not-managed]: not enabled: nothing to do"]),
        },
        Case {
            name: "disabling what is not enabled is an error, as in Okapi",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &[],
            request: &["-mod-a"],
            expect: Err("Module mod-a not found"),
        },
        Case {
            name: "a module nothing knows is an error, as in Okapi",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0", "mod-b", "mod-c-2.0.0"],
            expect: Err("Module mod-b not found. Module mod-c-2.0.0 not found"),
        },
        Case {
            name: "--pre-release false: a name alone is its newest release",
            options: PlanOptions {
                releases: ReleaseFilter {
                    pre_release: Some(false),
                    npm_snapshot: None,
                },
                ..PlanOptions::default()
            },
            catalog: vec![
                module("mod-a-1.2.0", &["a 1.0"], &[]),
                module("mod-a-1.3.0-SNAPSHOT", &["a 1.0"], &[]),
                module("mod-a-1.3.1000001", &["a 1.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-a"],
            expect: Ok(&["enable mod-a-1.3.1000001"]),
        },
        Case {
            name: "--npm-snapshot only: only npm snapshots count, dependencies too",
            options: PlanOptions {
                releases: ReleaseFilter {
                    pre_release: None,
                    npm_snapshot: Some(true),
                },
                ..PlanOptions::default()
            },
            catalog: vec![
                module("folio_a-1.2.0", &["a 1.0"], &["x 1.0"]),
                module("folio_a-1.2.100001", &["a 1.0"], &["x 1.0"]),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
            ],
            enabled: &[],
            request: &["folio_a"],
            expect: Err("interface x required by module folio_a-1.2.100001 not found"),
        },
        Case {
            // Found by the property test: Okapi's sort would let the
            // disabled mod-x-2.0.0 satisfy mod-a, and enable mod-a first.
            name: "a provider being disabled provides nothing to modules being enabled",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-x-1.0.0", &["x 1.2"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.1"]),
            ],
            enabled: &["mod-x-2.0.0"],
            request: &["-mod-x", "mod-a-1.0.0"],
            expect: Ok(&[
                "disable mod-x-2.0.0",
                "enable mod-x-1.0.0: mod-a-1.0.0 requires interface x 1.1",
                "enable mod-a-1.0.0",
            ]),
        },
        Case {
            // As Okapi: the request disables mod-x, but mod-a, which it
            // names too, requires it: mod-x goes, after mod-b that requires
            // it, and comes back for mod-a.
            name: "disabling what a requested module requires: disabled, then enabled again",
            options: PlanOptions::default(),
            catalog: vec![
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]),
                module("mod-b-1.0.0", &["b 1.0"], &["x 1.0"]),
            ],
            enabled: &["mod-x-1.0.0", "mod-b-1.0.0"],
            request: &["mod-a-1.0.0", "-mod-x", "-mod-b"],
            expect: Ok(&[
                "disable mod-b-1.0.0",
                "disable mod-x-1.0.0",
                "enable mod-x-1.0.0: mod-a-1.0.0 requires interface x 1.0",
                "enable mod-a-1.0.0",
            ]),
        },
        Case {
            name: "--no-dep-check: the request as it is, in its order",
            options: PlanOptions {
                dep_check: false,
                ..PlanOptions::default()
            },
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-a-1.0.0"]),
        },
        Case {
            name: "disabling another release than the enabled one",
            options: PlanOptions::default(),
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[]), module("mod-a-2.0.0", &["a 2.0"], &[])],
            enabled: &["mod-a-2.0.0"],
            request: &["-mod-a-1.0.0"],
            expect: Err("Module mod-a-1.0.0 not found (the tenant has mod-a-2.0.0)"),
        },
    ]
}

#[test]
fn resolution_table() {
    let cases = cases();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for case in cases {
        let catalog = available(&case.catalog);
        let got = lines(&catalog, case.enabled, case.request, &case.options);
        let expected = case
            .expect
            .map(|l| l.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .map_err(String::from);
        if got != expected {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  got      {got:?}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random catalogs and requests: every plan that succeeds respects every
/// dependency, and planning the same request on its result changes nothing.
mod properties {
    use super::*;
    use graft::plan::{Plan, PlanAction};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// What a product's releases require and may use: per product, the
    /// (product, major, minor) of interfaces it requires, then may use.
    type Needs = Vec<(Vec<(usize, u32, u32)>, Vec<(usize, u32, u32)>)>;

    const PRODUCTS: usize = 5;

    fn needs() -> impl Strategy<Value = Needs> {
        let interface = || (0usize..PRODUCTS, 1u32..3, 0u32..2);
        prop::collection::vec(
            (
                prop::collection::vec(interface(), 0..3),
                prop::collection::vec(interface(), 0..2),
            ),
            PRODUCTS,
        )
    }

    /// Products p0..p4, each with releases 1.0.0 to 3.0.0; release v of
    /// p<n> provides interface i<n> at 1.v (3.0.0: 2.0, a new major),
    /// requires only interfaces of products before it (release 3.0.0 asks
    /// for one more minor), and may use any other product's.
    fn catalog(needs: &Needs) -> Vec<Available> {
        let mut descriptors = Vec::new();
        for (product, (requires, optional)) in needs.iter().enumerate() {
            for version in 1u32..=3 {
                let provided = if version == 3 {
                    "2.0".to_string()
                } else {
                    format!("1.{version}")
                };
                let reference = |(i, major, minor): &(usize, u32, u32)| {
                    let minor = if version == 3 { minor + 1 } else { *minor };
                    json!({"id": format!("i{i}"), "version": format!("{major}.{minor}")})
                };
                descriptors.push(json!({
                    "id": format!("mod-p{product}-{version}.0.0"),
                    "provides": [{"id": format!("i{product}"), "version": provided}],
                    "requires": requires.iter().filter(|(i, ..)| *i < product).map(reference).collect::<Vec<_>>(),
                    "optional": optional.iter().filter(|(i, ..)| *i != product).map(reference).collect::<Vec<_>>(),
                }));
            }
        }
        available(&descriptors)
    }

    /// The modules enabled after `plan` ran on `before`.
    fn apply(catalog: &[Available], before: &[Enabled], plan: &Plan) -> Vec<Enabled> {
        let mut on: BTreeMap<String, Enabled> = before
            .iter()
            .map(|m| (m.id.to_string(), m.clone()))
            .collect();
        for entry in &plan.entries {
            match entry.action {
                PlanAction::Disable => {
                    on.remove(&entry.id);
                }
                PlanAction::Enable => {
                    if let Some(from) = &entry.from {
                        on.remove(from);
                    }
                    let a = catalog
                        .iter()
                        .find(|a| a.id.to_string() == entry.id)
                        .unwrap();
                    on.insert(
                        entry.id.clone(),
                        Enabled {
                            id: a.id.clone(),
                            descriptor: Some(a.descriptor.clone()),
                        },
                    );
                }
                _ => {}
            }
        }
        on.into_values().collect()
    }

    /// Where the plan runs a module before the provider of an interface it
    /// requires, or disables a provider before a module that requires it.
    fn violations(catalog: &[Available], plan: &Plan) -> Vec<String> {
        let find = |id: &str| catalog.iter().find(|a| a.id.to_string() == id).unwrap();
        let mut found = Vec::new();
        for (i, entry) in plan.entries.iter().enumerate() {
            let module = find(&entry.id);
            for (j, other) in plan.entries.iter().enumerate() {
                let other_module = find(&other.id);
                let provides = |m: &Available, of: &Available| {
                    m.descriptor
                        .provides
                        .iter()
                        .any(|p| of.descriptor.requires.iter().any(|r| r.id == p.id))
                };
                let enables = |e: &graft::plan::PlanEntry| e.action == PlanAction::Enable;
                if enables(entry) && enables(other) && j > i && provides(other_module, module) {
                    found.push(format!(
                        "{} runs before {}, which provides what it requires",
                        entry.id, other.id
                    ));
                }
                let disables = |e: &graft::plan::PlanEntry| e.action == PlanAction::Disable;
                if disables(entry) && disables(other) && j > i && provides(module, other_module) {
                    found.push(format!(
                        "{} is disabled before {}, which requires it",
                        entry.id, other.id
                    ));
                }
            }
        }
        found
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn plans_respect_dependencies_and_settle(
            needs in needs(),
            first in prop::collection::vec((0usize..PRODUCTS, prop::option::of(1u32..4)), 1..4),
            second in prop::collection::vec((0usize..PRODUCTS, prop::option::of(1u32..4), any::<bool>()), 1..4),
        ) {
            let catalog = catalog(&needs);
            let ask = |product: usize, version: Option<u32>| match version {
                Some(v) => format!("mod-p{product}-{v}.0.0"),
                None => format!("mod-p{product}"),
            };
            let requests: Vec<Request> = first.iter().map(|(p, v)| Request { id: ask(*p, *v), action: RequestAction::Enable }).collect();
            let options = PlanOptions::default();
            let Ok(plan1) = plan(&catalog, &[], &requests, &options) else { return Ok(()) };
            prop_assert!(violations(&catalog, &plan1).is_empty(), "{:?}: {:?}", plan1, violations(&catalog, &plan1));
            let on = apply(&catalog, &[], &plan1);
            let again = plan(&catalog, &on, &requests, &options).expect("the same request plans again");
            prop_assert!(
                again.entries.iter().all(|e| e.action == PlanAction::Uptodate),
                "planning again is not a no-op: {:?}", again
            );
            // A second request on the result: enables and disables, each
            // product once (a request that enables and disables one product
            // is not meant to settle).
            let mut named = std::collections::BTreeSet::new();
            let second: Vec<_> = second.into_iter().filter(|(p, ..)| named.insert(*p)).collect();
            let requests: Vec<Request> = second.iter().map(|(p, v, disable)| Request {
                id: ask(*p, *v),
                action: if *disable { RequestAction::Disable } else { RequestAction::Enable },
            }).collect();
            let Ok(plan2) = plan(&catalog, &on, &requests, &options) else { return Ok(()) };
            prop_assert!(violations(&catalog, &plan2).is_empty(), "{:?}: {:?}", plan2, violations(&catalog, &plan2));
            let on2 = apply(&catalog, &on, &plan2);
            let enables: Vec<Request> = requests.into_iter().filter(|r| r.action == RequestAction::Enable).collect();
            if !enables.is_empty() {
                let again = plan(&catalog, &on2, &enables, &options).expect("the same enables plan again");
                prop_assert!(
                    again.entries.iter().all(|e| e.action == PlanAction::Uptodate),
                    "planning again is not a no-op: {:?}", again
                );
            }
        }
    }
}
