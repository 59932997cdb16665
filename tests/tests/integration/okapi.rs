//! Okapi's own unit tests, ported as data (`tests/data/okapi/`): every id
//! and version parse and comparison, every interface-version assertion,
//! and every dependency-resolution scenario of `DepResolutionTest`, run
//! against Graft's `module_id` and `plan`. A case that disagrees fails with
//! Okapi's expectation beside Graft's answer; the counts are in
//! docs/okapi-compatibility.md.
//!
//! Two things are compared loosely, both documented there: lists of
//! modules inside a message are compared as sets (Okapi's follow Java hash
//! order, Graft's are sorted), and Graft may add a hint in parentheses
//! after Okapi's message.

use graft::descriptor::ModuleDescriptor;
use graft::module_id::{InterfaceVersion, ModuleId, ModuleSpec, Version};
use graft::plan::{
    plan, Available, Enabled, PlanAction, PlanOptions, ReleaseFilter, Request, RequestAction,
};
use serde_json::{json, Map, Value};
use std::path::Path;

fn data(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/okapi")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn list<'v>(value: &'v Value, key: &str) -> &'v Vec<Value> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing"))
}

fn s(value: &Value) -> &str {
    value.as_str().unwrap()
}

/// Collects disagreements; fails once at the end with all of them.
#[derive(Default)]
struct Tally {
    ported: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, test: &str, what: String, agrees: bool) {
        self.ported += 1;
        if !agrees {
            self.failures.push(format!("{test}: {what}"));
        }
    }

    /// Cases `[test, a, b, expected]`: Okapi's answer for `a` and `b`.
    fn pairs<T: std::fmt::Display>(
        &mut self,
        cases: &[Value],
        parse: impl Fn(&str) -> T,
        relation: &str,
        answer: impl Fn(&T, &T) -> Value,
    ) {
        for case in cases {
            let (a, b) = (parse(s(&case[1])), parse(s(&case[2])));
            let got = answer(&a, &b);
            let what = format!("{a} {relation} {b}: Okapi {}, Graft {got}", case[3]);
            self.check(s(&case[0]), what, got == case[3]);
        }
    }

    fn finish(self, area: &str, at_least: usize) {
        assert!(
            self.failures.is_empty(),
            "{area}: {} of {} cases disagree with Okapi:\n{}",
            self.failures.len(),
            self.ported,
            self.failures.join("\n")
        );
        assert!(
            self.ported >= at_least,
            "{area}: only {} cases ran",
            self.ported
        );
        println!("{area}: {} cases agree with Okapi", self.ported);
    }
}

#[test]
fn semantic_versions_as_okapi() {
    let cases = data("versions.json");
    let mut tally = Tally::default();
    for case in list(&cases, "semver_parse") {
        let text = s(&case["version"]);
        let parsed = Version::parse(text);
        let agrees = parsed.as_ref().is_ok_and(|v| {
            v.as_str() == text
                && v.is_prerelease() == case["pre_release"].as_bool().unwrap()
                && v.is_npm_snapshot() == case["npm_snapshot"].as_bool().unwrap()
        });
        tally.check(s(&case["test"]), format!("{text}: {parsed:?}"), agrees);
    }
    let version = |t: &str| Version::parse(t).unwrap();
    tally.pairs(list(&cases, "semver_compare"), version, "vs", |a, b| {
        json!(a.compare(b))
    });
    tally.pairs(list(&cases, "semver_equal"), version, "==", |a, b| {
        json!(a == b)
    });
    tally.pairs(
        list(&cases, "semver_prefix"),
        version,
        "has prefix",
        |a, b| json!(a.has_prefix(b)),
    );
    for case in list(&cases, "semver_invalid") {
        let text = s(&case[1]);
        let okapi = s(&case[2]);
        let got = Version::parse(text);
        let agrees = got.as_ref().is_err_and(|e| e.starts_with(okapi));
        tally.check(
            s(&case[0]),
            format!("{text:?}: Okapi {okapi:?}, Graft {got:?}"),
            agrees,
        );
    }
    tally.finish("SemVerTest", 90);
}

#[test]
fn module_ids_as_okapi() {
    let cases = data("versions.json");
    let mut tally = Tally::default();
    let spec = |v: &Value| ModuleSpec::parse(s(v)).unwrap();
    for case in list(&cases, "module_id_parse") {
        let id = s(&case["id"]);
        let parsed = ModuleSpec::parse(id).unwrap();
        let version = parsed.version.as_ref();
        let agrees = parsed.to_string() == id
            && parsed.name == s(&case["product"])
            && version.map(Version::as_str) == case["version"].as_str()
            && version.is_some_and(Version::is_prerelease)
                == case["pre_release"].as_bool().unwrap()
            && version.is_some_and(Version::is_npm_snapshot)
                == case["npm_snapshot"].as_bool().unwrap();
        tally.check(s(&case["test"]), format!("{id}: {parsed:?}"), agrees);
    }
    let id = |t: &str| ModuleSpec::parse(t).unwrap();
    tally.pairs(list(&cases, "module_id_equal"), id, "==", |a, b| {
        json!(a == b)
    });
    // Okapi's `a.hasPrefix(b)`: b, as a pattern, matches a.
    tally.pairs(
        list(&cases, "module_id_prefix"),
        id,
        "has prefix",
        |a, b| json!(ModuleId::parse(&a.to_string()).is_ok_and(|a| b.matches(&a))),
    );
    tally.pairs(list(&cases, "module_id_compare"), id, "vs", |a, b| {
        json!(a.compare(b))
    });
    for case in list(&cases, "module_id_latest") {
        let of = spec(&case["of"]);
        let among: Vec<ModuleId> = list(case, "among")
            .iter()
            .map(|v| ModuleId::parse(s(v)).unwrap())
            .collect();
        let got = of
            .latest(&among)
            .map_or_else(|| of.to_string(), ToString::to_string);
        let expected = s(&case["latest"]);
        tally.check(
            s(&case["test"]),
            format!("latest of {of}: Okapi {expected}, Graft {got}"),
            got == expected,
        );
    }
    for case in list(&cases, "latest_products") {
        // Okapi's getLatestProducts: newest first, at most `limit` per product.
        let mut ids: Vec<ModuleId> = list(case, "modules")
            .iter()
            .map(|v| ModuleId::parse(s(v)).unwrap())
            .collect();
        ids.sort_by(|a, b| b.compare(a).cmp(&0));
        let limit = case["limit"].as_u64().unwrap() as usize;
        let mut kept: Vec<String> = Vec::new();
        for id in &ids {
            let same = kept
                .iter()
                .filter(|k| ModuleId::parse(k).unwrap().name == id.name)
                .count();
            if same < limit {
                kept.push(id.to_string());
            }
        }
        let expected: Vec<&str> = list(case, "result").iter().map(s).collect();
        tally.check(
            s(&case["test"]),
            format!("Okapi {expected:?}, Graft {kept:?}"),
            kept == expected,
        );
    }
    tally.finish("ModuleIdTest", 30);
}

#[test]
fn interface_versions_as_okapi() {
    let cases = data("versions.json");
    let mut tally = Tally::default();
    let split = |v: &Value| {
        let (id, version) = s(v).split_once(' ').unwrap();
        (id.to_string(), version.to_string())
    };
    for case in list(&cases, "interface_compare") {
        let ((a, av), (b, bv)) = (split(&case[1]), split(&case[2]));
        let expected = case[3].as_i64().map(|n| n as i32);
        let got = if a == b {
            InterfaceVersion::compare(&av, &bv)
        } else {
            None
        };
        tally.check(
            s(&case[0]),
            format!("{a} {av} vs {b} {bv}: Okapi {expected:?}, Graft {got:?}"),
            got == expected,
        );
    }
    for case in list(&cases, "interface_compatible") {
        let ((a, av), (b, bv)) = (split(&case[1]), split(&case[2]));
        let expected = case[3].as_bool().unwrap();
        let got = a == b && InterfaceVersion::compatible(&av, &bv);
        tally.check(
            s(&case[0]),
            format!("{a} {av} satisfies {b} {bv}: Okapi {expected}"),
            got == expected,
        );
    }
    for case in list(&cases, "release_filter") {
        let id = ModuleId::parse(s(&case["id"])).unwrap();
        for expect in list(case, "cases") {
            let filter = ReleaseFilter {
                pre_release: expect[0].as_bool(),
                npm_snapshot: expect[1].as_bool(),
            };
            let expected = expect[2].as_bool().unwrap();
            tally.check(
                s(&case["test"]),
                format!("{id} with {filter:?}: Okapi {expected}"),
                filter.matches(&id) == expected,
            );
        }
    }
    for case in list(&cases, "release_filter_values") {
        let got = ReleaseFilter::parse_value("n", s(&case[1]));
        let agrees = match case[3].as_str() {
            Some(message) => got.as_ref().is_err_and(|e| e == message),
            None => got.as_ref().is_ok_and(|v| *v == case[2].as_bool()),
        };
        tally.check(s(&case[0]), format!("{:?}: {got:?}", case[1]), agrees);
    }
    tally.finish("InterfaceDescriptorTest and ModuleVersionFilterTest", 30);
}

/// A descriptor from the data's short form: lists of "interface version"
/// (a trailing word is the interfaceType).
fn descriptor(id: &str, short: &Value) -> Available {
    let interfaces = |key: &str| -> Vec<Value> {
        short
            .get(key)
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |items| {
                items
                    .iter()
                    .map(|item| {
                        let words: Vec<&str> = s(item).split(' ').collect();
                        let typed = words.len() > 2
                            && !words[words.len() - 1].starts_with(|c: char| c.is_ascii_digit());
                        let versions = if typed {
                            &words[1..words.len() - 1]
                        } else {
                            &words[1..]
                        };
                        let mut interface = json!({"id": words[0], "version": versions.join(" ")});
                        if typed {
                            interface["interfaceType"] = json!(words[words.len() - 1]);
                        }
                        interface
                    })
                    .collect()
            })
    };
    let mut text = json!({"id": id, "provides": interfaces("provides"), "requires": interfaces("requires"), "optional": interfaces("optional")});
    if let Some(replaces) = short.get("replaces") {
        text["replaces"] = replaces.clone();
    }
    let (descriptor, id) = ModuleDescriptor::parse(&text.to_string()).unwrap();
    Available { id, descriptor }
}

fn request(text: &str) -> Request {
    let (action, id) = if let Some(id) = text.strip_prefix('-') {
        (RequestAction::Disable, id)
    } else if let Some(id) = text.strip_prefix("suggest:") {
        (RequestAction::Suggest, id)
    } else if let Some(id) = text.strip_prefix("uptodate:") {
        (RequestAction::Uptodate, id)
    } else {
        (RequestAction::Enable, text)
    };
    Request {
        id: id.to_string(),
        action,
    }
}

/// Messages compared as Okapi's, modulo what the module docs say: lists of
/// modules as sets, and Graft's hints in parentheses left out.
fn normalize(message: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' if chars.peek() == Some(&'(') => {}
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let sort = |text: &str, start: &str, end: &str| -> String {
        let mut text = text.to_string();
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let begin = from + at + start.len();
            let stop = text[begin..].find(end).map_or(text.len(), |e| begin + e);
            let mut items: Vec<&str> = text[begin..stop].split(", ").collect();
            items.sort_unstable();
            let sorted = items.join(", ");
            text.replace_range(begin..stop, &sorted);
            from = begin + sorted.len();
        }
        text
    };
    let out = sort(&out, "Multiple modules ", " provide interface");
    sort(&out, "provided by multiple products: ", ".")
}

#[test]
fn dependency_resolution_as_okapi() {
    let cases = data("dep-resolution.json");
    let shared = cases["modules"].as_object().unwrap();
    let mut tally = Tally::default();
    for case in list(&cases, "cases") {
        let test = s(&case["test"]);
        let mut modules: Map<String, Value> = shared.clone();
        if let Some(group) = case.get("group") {
            for (id, short) in cases["groups"][s(group)].as_object().unwrap() {
                modules.insert(id.clone(), short.clone());
            }
        }
        let available: Vec<Available> = list(case, "available")
            .iter()
            .map(|id| descriptor(s(id), &modules[s(id)]))
            .collect();
        let enabled: Vec<Enabled> = list(case, "enabled")
            .iter()
            .map(|id| {
                let a = descriptor(s(id), &modules[s(id)]);
                Enabled {
                    id: a.id,
                    descriptor: Some(a.descriptor),
                }
            })
            .collect();
        let requests: Vec<Request> = list(case, "install")
            .iter()
            .map(|r| request(s(r)))
            .collect();
        let options = PlanOptions {
            reinstall: case["reinstall"].as_bool().unwrap_or(false),
            max_iterations: case["max_iterations"].as_u64().map_or(100, |n| n as usize),
            ..PlanOptions::default()
        };
        let got = plan(&available, &enabled, &requests, &options).map(|plan| {
            plan.entries
                .iter()
                .map(|e| {
                    let action = serde_json::to_value(e.action).unwrap();
                    let mut entry = vec![action, json!(e.id)];
                    if let Some(from) = &e.from {
                        entry.push(json!(from));
                    }
                    Value::Array(entry)
                })
                .collect::<Vec<_>>()
        });
        let (agrees, expected) = match (case.get("plan"), &got) {
            (Some(expected), Ok(entries)) => (
                expected.as_array().unwrap() == entries,
                expected.to_string(),
            ),
            (None, Err(message)) => {
                let okapi = s(&case["error"]);
                (normalize(message) == normalize(okapi), okapi.to_string())
            }
            (Some(expected), Err(_)) => (false, expected.to_string()),
            (None, Ok(_)) => (false, s(&case["error"]).to_string()),
        };
        tally.check(
            test,
            format!("\n  Okapi: {expected}\n  Graft: {got:?}"),
            agrees,
        );
    }
    let not_ported: usize = list(&cases, "not_ported")
        .iter()
        .map(|n| n["assertions"].as_u64().unwrap() as usize)
        .sum();
    assert!(
        not_ported < 20,
        "the cases not ported stay few, each with its reason"
    );
    tally.finish("DepResolutionTest", 95);
}

#[test]
fn plans_use_the_plan_action_names_of_okapi() {
    // The install list's actions, as Okapi's TenantModuleDescriptor names them.
    for (action, name) in [
        (PlanAction::Enable, "enable"),
        (PlanAction::Disable, "disable"),
        (PlanAction::Uptodate, "uptodate"),
        (PlanAction::Suggest, "suggest"),
        (PlanAction::Conflict, "conflict"),
    ] {
        assert_eq!(serde_json::to_value(action).unwrap(), name);
    }
}
