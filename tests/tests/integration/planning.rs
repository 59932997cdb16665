//! Dependency resolution: a table of cases, each with the expected plan or
//! error, on synthetic ModuleDescriptors.

use graft::descriptor::ModuleDescriptor;
use graft::plan::{plan, Available, Enabled, Request, RequestAction};
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
fn lines(catalog: &[Available], on: &[&str], asked: &[&str]) -> Result<Vec<String>, String> {
    let plan = plan(catalog, &enabled(catalog, on), &requests(asked))?;
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

struct Case {
    name: &'static str,
    catalog: Vec<Value>,
    enabled: &'static [&'static str],
    request: &'static [&'static str],
    expect: Result<&'static [&'static str], &'static str>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a module without requirements",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-a-1.0.0"]),
        },
        Case {
            name: "no version: the newest release, not a snapshot",
            catalog: vec![
                module("mod-a-1.1.0", &["a 1.0"], &[]),
                module("mod-a-1.2.0", &["a 1.0"], &[]),
                module("mod-a-1.3.0-SNAPSHOT", &["a 1.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-a"],
            expect: Ok(&["enable mod-a-1.2.0"]),
        },
        Case {
            name: "no version and only snapshots: the newest snapshot",
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
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]), module("mod-x-1.0.0", &["x 1.1"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-1.0.0: required by mod-a-1.0.0 (x 1.0)", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "a chain of requirements",
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["b 1.0"]),
                module("mod-b-1.0.0", &["b 1.0"], &["c 2.0"]),
                module("mod-c-1.0.0", &["c 2.3"], &[]),
            ],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&[
                "enable mod-c-1.0.0: required by mod-b-1.0.0 (c 2.0)",
                "enable mod-b-1.0.0: required by mod-a-1.0.0 (b 1.0)",
                "enable mod-a-1.0.0",
            ]),
        },
        Case {
            name: "alternatives: the second one is provided",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0 2.0"]), module("mod-x-2.0.0", &["x 2.1"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-2.0.0: required by mod-a-1.0.0 (x 1.0 2.0)", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "a newer minor satisfies, a newer major does not",
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.2"]),
                module("mod-x-1.0.0", &["x 1.1"], &[]),
                module("mod-x-2.0.0", &["x 2.5"], &[]),
            ],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Err("mod-a-1.0.0 requires interface x 1.2, which no module provides"),
        },
        Case {
            name: "patch versions count",
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.2.3"]),
                module("mod-x-1.0.0", &["x 1.2.1"], &[]),
                module("mod-x-1.0.1", &["x 1.2.5"], &[]),
            ],
            enabled: &["mod-x-1.0.0"],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-1.0.1 from mod-x-1.0.0: mod-a-1.0.0 requires x 1.2.3", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "an enabled provider too old is upgraded",
            catalog: vec![
                module("mod-a-2.0.0", &["a 2.0"], &["x 2.0"]),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
            ],
            enabled: &["mod-x-1.0.0"],
            request: &["mod-a-2.0.0"],
            expect: Ok(&["enable mod-x-2.0.0 from mod-x-1.0.0: mod-a-2.0.0 requires x 2.0", "enable mod-a-2.0.0"]),
        },
        Case {
            name: "an enabled provider too old with no fitting release",
            catalog: vec![module("mod-a-2.0.0", &["a 2.0"], &["x 2.0"]), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &["mod-x-1.0.0"],
            request: &["mod-a-2.0.0"],
            expect: Err("mod-a-2.0.0 requires interface x 2.0, but mod-x-1.0.0 provides x 1.0 and no release of mod-x provides a compatible version"),
        },
        Case {
            name: "a requested provider release that does not fit",
            catalog: vec![
                module("mod-a-2.0.0", &["a 2.0"], &["x 2.0"]),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-x-1.0.0", "mod-a-2.0.0"],
            expect: Err("mod-a-2.0.0 requires interface x 2.0, but mod-x-1.0.0 (as requested) provides x 1.0"),
        },
        Case {
            name: "a missing interface",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["y 1.0"])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Err("mod-a-1.0.0 requires interface y 1.0, which no module provides"),
        },
        Case {
            name: "an interface several products provide must be chosen",
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]),
                module("mod-b-1.0.0", &["x 1.0"], &[]),
                module("mod-c-1.0.0", &["x 1.0"], &[]),
            ],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Err("mod-a-1.0.0 requires interface x 1.0, which several modules provide: mod-b, mod-c; enable one of them"),
        },
        Case {
            name: "naming one of several providers settles it",
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
            catalog: vec![module("mod-b-1.0.0", &["x 1.0"], &[]), module("mod-c-1.0.0", &["x 1.0"], &[])],
            enabled: &[],
            request: &["mod-b-1.0.0", "mod-c-1.0.0"],
            expect: Err("modules mod-b-1.0.0 and mod-c-1.0.0 both provide interface x: enable only one"),
        },
        Case {
            name: "system and multiple interfaces do not conflict",
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
            name: "multiple on one side only still conflicts",
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
            expect: Err("modules mod-b-1.0.0 and mod-c-1.0.0 both provide interface x: enable only one"),
        },
        Case {
            name: "an optional interface is not pulled in",
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
            catalog: vec![
                with(module("mod-a-1.0.0", &["a 1.0"], &[]), "optional", json!([{"id": "x", "version": "2.0"}])),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
            ],
            enabled: &["mod-x-1.0.0"],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-x-2.0.0 from mod-x-1.0.0: mod-a-1.0.0 requires x 2.0", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "a module that replaces another disables it",
            catalog: vec![
                module("mod-old-1.0.0", &["x 1.0"], &[]),
                with(module("mod-new-1.0.0", &["x 1.1"], &[]), "replaces", json!(["mod-old"])),
            ],
            enabled: &["mod-old-1.0.0"],
            request: &["mod-new-1.0.0"],
            expect: Ok(&["disable mod-old-1.0.0: replaced by mod-new-1.0.0", "enable mod-new-1.0.0"]),
        },
        Case {
            name: "a module others require cannot be disabled",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &["mod-x-1.0.0", "mod-a-1.0.0"],
            request: &["-mod-x-1.0.0"],
            expect: Err("cannot disable mod-x-1.0.0: mod-a-1.0.0 requires interface x 1.0 it provides"),
        },
        Case {
            name: "disabling a module and what requires it",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &["mod-x-1.0.0", "mod-a-1.0.0"],
            request: &["-mod-a", "-mod-x"],
            expect: Ok(&["disable mod-a-1.0.0", "disable mod-x-1.0.0"]),
        },
        Case {
            name: "disables: dependents first, whatever the request's order",
            catalog: vec![module("mod-a-1.0.0", &["x 1.0"], &[]), module("mod-z-1.0.0", &["z 1.0"], &["x 1.0"])],
            enabled: &["mod-a-1.0.0", "mod-z-1.0.0"],
            request: &["-mod-a", "-mod-z"],
            expect: Ok(&["disable mod-z-1.0.0", "disable mod-a-1.0.0"]),
        },
        Case {
            name: "product swap: a new product taking an enabled module's interface disables it",
            catalog: vec![module("mod-ldp-1.0.0", &["ldp-query 1.0"], &[]), module("mod-reporting-1.0.0", &["ldp-query 1.1"], &[])],
            enabled: &["mod-ldp-1.0.0"],
            request: &["mod-reporting-1.0.0"],
            expect: Ok(&[
                "disable mod-ldp-1.0.0: mod-reporting-1.0.0 provides interface ldp-query in place of mod-ldp-1.0.0",
                "enable mod-reporting-1.0.0",
            ]),
        },
        Case {
            name: "product swap refused when the request keeps the old provider too",
            catalog: vec![module("mod-ldp-1.0.0", &["ldp-query 1.0"], &[]), module("mod-reporting-1.0.0", &["ldp-query 1.1"], &[])],
            enabled: &["mod-ldp-1.0.0"],
            request: &["mod-ldp-1.0.0", "mod-reporting-1.0.0"],
            expect: Err("modules mod-ldp-1.0.0 and mod-reporting-1.0.0 both provide interface ldp-query: enable only one"),
        },
        Case {
            name: "a cycle of required interfaces is an error naming the modules",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &["b 1.0"]), module("mod-b-1.0.0", &["b 1.0"], &["a 1.0"])],
            enabled: &[],
            request: &["mod-a-1.0.0"],
            expect: Err("modules mod-a-1.0.0 -> mod-b-1.0.0 -> mod-a-1.0.0 require interfaces of each other in a cycle: none can be enabled first"),
        },
        Case {
            name: "an optional interface's provider comes first",
            catalog: vec![with(module("mod-a-1.0.0", &["a 1.0"], &[]), "optional", json!([{"id": "x", "version": "1.0"}])), module("mod-x-1.0.0", &["x 1.0"], &[])],
            enabled: &[],
            request: &["mod-a-1.0.0", "mod-x-1.0.0"],
            expect: Ok(&["enable mod-x-1.0.0", "enable mod-a-1.0.0"]),
        },
        Case {
            name: "in a cycle, the optional edge gives way and the required one holds",
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
            catalog: vec![
                module("mod-a-1.0.0", &["a 1.0"], &["x 1.0"]),
                module("mod-a-2.0.0", &["a 2.0"], &["x 2.0"]),
                module("mod-x-1.0.0", &["x 1.0"], &[]),
                module("mod-x-2.0.0", &["x 2.0"], &[]),
            ],
            enabled: &["mod-x-1.0.0", "mod-a-1.0.0"],
            request: &["mod-a"],
            expect: Ok(&["enable mod-x-2.0.0 from mod-x-1.0.0: mod-a-2.0.0 requires x 2.0", "enable mod-a-2.0.0 from mod-a-1.0.0"]),
        },
        Case {
            name: "a downgrade",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[]), module("mod-a-2.0.0", &["a 2.0"], &[])],
            enabled: &["mod-a-2.0.0"],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["enable mod-a-1.0.0 from mod-a-2.0.0"]),
        },
        Case {
            name: "the enabled release again is up to date",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &["mod-a-1.0.0"],
            request: &["mod-a-1.0.0"],
            expect: Ok(&["uptodate mod-a-1.0.0"]),
        },
        Case {
            name: "modules without a package are listed, not dropped",
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
            name: "disabling what is not enabled does nothing",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[])],
            enabled: &[],
            request: &["-mod-a"],
            expect: Ok(&["disable mod-a [done]: not enabled: nothing to do"]),
        },
        Case {
            name: "disabling another release than the enabled one",
            catalog: vec![module("mod-a-1.0.0", &["a 1.0"], &[]), module("mod-a-2.0.0", &["a 2.0"], &[])],
            enabled: &["mod-a-2.0.0"],
            request: &["-mod-a-1.0.0"],
            expect: Err("cannot disable mod-a-1.0.0: the tenant has mod-a-2.0.0 enabled"),
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
        let got = lines(&catalog, case.enabled, case.request);
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
