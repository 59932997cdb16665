//! Okapi ModuleDescriptors, read unchanged so real descriptors work.
//!
//! Only the fields the runner uses are typed; every other field (handlers,
//! permission sets, launch descriptors, ...) is kept as it is.

use crate::module_id::{InterfaceVersion, ModuleId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleDescriptor {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<ProvidedInterface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<InterfaceReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional: Vec<InterfaceReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvidedInterface {
    pub id: String,
    pub version: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A required or optional interface; `version` may list alternatives
/// separated by spaces (`"16.0 17.0"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterfaceReference {
    pub id: String,
    pub version: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ModuleDescriptor {
    /// Parse and check a descriptor; errors name the field at fault.
    pub fn parse(text: &str) -> Result<(Self, ModuleId), String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Some(object) = value.as_object() else {
            return Err("expected a JSON object".into());
        };
        let id = match object.get("id") {
            Some(Value::String(id)) => id,
            Some(_) => return Err("field id: must be a string such as \"mod-users-19.4.5\"".into()),
            None => return Err("field id is missing: add \"id\": \"<name>-<version>\"".into()),
        };
        let module_id = ModuleId::parse(id).map_err(|e| format!("field id: {e}"))?;
        if let Some(name) = object.get("name") {
            if !name.is_string() {
                return Err("field name: must be a string".into());
            }
        }
        check_interfaces(object, "provides", false)?;
        check_interfaces(object, "requires", true)?;
        check_interfaces(object, "optional", true)?;
        if let Some(replaces) = object.get("replaces") {
            let ok = replaces
                .as_array()
                .is_some_and(|r| r.iter().all(Value::is_string));
            if !ok {
                return Err("field replaces: must be a list of module names".into());
            }
        }
        let descriptor = serde_json::from_value(value).map_err(|e| format!("{e}"))?;
        Ok((descriptor, module_id))
    }
}

fn check_interfaces(
    object: &Map<String, Value>,
    field: &str,
    alternatives: bool,
) -> Result<(), String> {
    let Some(list) = object.get(field) else {
        return Ok(());
    };
    let Some(list) = list.as_array() else {
        return Err(format!("field {field}: must be a list of interfaces"));
    };
    for (i, item) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Some(item) = item.as_object() else {
            return Err(format!("{at}: must be an object with id and version"));
        };
        match item.get("id") {
            Some(Value::String(id)) if !id.is_empty() => {}
            _ => return Err(format!("{at}.id: missing or not a string")),
        }
        let Some(Value::String(version)) = item.get("version") else {
            return Err(format!("{at}.version: missing or not a string"));
        };
        // As Okapi's `validateVersion`: the first alternative must be
        // maj.min or maj.min.patch; later ones are read up to the first
        // that is not a version.
        if !InterfaceVersion::is_valid_field(version) {
            return Err(format!(
                "{at}.version: {:?} is not an interface version (maj.min or maj.min.patch{})",
                crate::text::truncate(version, 100),
                if alternatives {
                    ", alternatives separated by spaces"
                } else {
                    ""
                }
            ));
        }
        match item.get("interfaceType") {
            None => {}
            Some(Value::String(kind))
                if ["proxy", "system", "multiple"].contains(&kind.as_str()) => {}
            Some(other) => {
                return Err(format!(
                "{at}.interfaceType: {} is not proxy, system or multiple (Okapi refuses it too)",
                crate::text::truncate(&other.to_string(), 100)
            ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields() {
        let text = r#"{"id": "mod-users-19.4.5", "provides": [{"id": "users", "version": "16.1",
            "handlers": [{"methods": ["GET"], "pathPattern": "/users"}]}],
            "requires": [{"id": "permissions", "version": "5.6 6.0"}], "launchDescriptor": {"x": 1}}"#;
        let (descriptor, id) = ModuleDescriptor::parse(text).unwrap();
        assert_eq!(id.name, "mod-users");
        assert!(descriptor.other.contains_key("launchDescriptor"));
        assert!(descriptor.provides[0].other.contains_key("handlers"));
    }

    #[test]
    fn takes_the_interface_versions_okapi_takes() {
        // Okapi checks the first alternative; 32-bit numbers, signs included.
        for version in ["1.0", "1.2.3", "16.0 17.0", "1.0 x", "01.2", "+1.0"] {
            let text = format!(
                r#"{{"id": "mod-a-1.0.0", "requires": [{{"id": "x", "version": "{version}"}}]}}"#
            );
            assert!(ModuleDescriptor::parse(&text).is_ok(), "{version}");
        }
        for version in ["1", "1.2.3.4", "x.1", "1.99999999999", ""] {
            let text = format!(
                r#"{{"id": "mod-a-1.0.0", "requires": [{{"id": "x", "version": "{version}"}}]}}"#
            );
            assert!(ModuleDescriptor::parse(&text).is_err(), "{version}");
        }
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (r#"{"name": "x"}"#, "field id is missing"),
            (r#"{"id": "mod-users"}"#, "field id:"),
            (
                r#"{"id": "mod-users-1.0.0", "provides": [{"id": "users", "version": "1.x"}]}"#,
                "provides[0].version",
            ),
            (
                r#"{"id": "mod-users-1.0.0", "requires": [{"version": "1.0"}]}"#,
                "requires[0].id",
            ),
            (
                r#"{"id": "mod-users-1.0.0", "provides": {}}"#,
                "field provides",
            ),
            ("{", "not JSON"),
            (
                r#"{"id": "mod-users-1.0.0", "provides": [{"id": "users", "version": "1.0", "interfaceType": "internal"}]}"#,
                "provides[0].interfaceType",
            ),
            (
                r#"{"id": "mod-users-1.0.0", "requires": [{"id": "users", "version": " 1.0"}]}"#,
                "requires[0].version",
            ),
        ];
        for (text, expected) in cases {
            let error = ModuleDescriptor::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
