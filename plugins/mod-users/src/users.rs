//! The shape of a user record at each release, and the per-record changes
//! between them. Fields a release does not know are kept as they are, so a
//! round trip 1.1.0 -> 2.0.0 -> 1.1.0 gives back the same record.

use serde_json::{Map, Value};

/// The `type` 1.1.0 gives every user that has none.
pub const DEFAULT_TYPE: &str = "patron";

/// 1.1.0 -> 2.0.0: `personal` becomes `name` (`lastName` -> `family`,
/// `firstName` -> `given`), `personal.email` moves to `contact.email`,
/// `patronGroup` becomes `groupId`.
pub fn to_2_0_0(user: Value) -> Result<Value, String> {
    let mut user = into_object(user)?;
    for field in ["name", "contact", "groupId"] {
        if user.contains_key(field) {
            return Err(format!(
                "a 1.1.0 user must not have the 2.0.0 field \"{field}\""
            ));
        }
    }
    if let Some(group) = user.remove("patronGroup") {
        user.insert("groupId".into(), group);
    }
    if let Some(personal) = user.remove("personal") {
        let mut name = into_object(personal).map_err(|e| format!("personal: {e}"))?;
        if let Some(email) = name.remove("email") {
            user.insert(
                "contact".into(),
                Value::Object(Map::from_iter([("email".into(), email)])),
            );
        }
        rename(&mut name, "lastName", "family");
        rename(&mut name, "firstName", "given");
        user.insert("name".into(), Value::Object(name));
    }
    Ok(Value::Object(user))
}

/// 2.0.0 -> 1.1.0: the exact reverse of [`to_2_0_0`].
pub fn to_1_1_0(user: Value) -> Result<Value, String> {
    let mut user = into_object(user)?;
    if let Some(group) = user.remove("groupId") {
        user.insert("patronGroup".into(), group);
    }
    let email = match user.remove("contact") {
        Some(contact) => {
            let mut contact = into_object(contact).map_err(|e| format!("contact: {e}"))?;
            let email = contact.remove("email");
            if !contact.is_empty() {
                return Err("contact has fields 1.1.0 cannot hold".into());
            }
            email
        }
        None => None,
    };
    let name = user.remove("name");
    if name.is_none() && email.is_some() {
        return Err("a user with contact.email but no name cannot be written as 1.1.0".into());
    }
    if let Some(name) = name {
        let mut personal = into_object(name).map_err(|e| format!("name: {e}"))?;
        rename(&mut personal, "family", "lastName");
        rename(&mut personal, "given", "firstName");
        if let Some(email) = email {
            personal.insert("email".into(), email);
        }
        user.insert("personal".into(), Value::Object(personal));
    }
    Ok(Value::Object(user))
}

fn into_object(value: Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("expected a JSON object, found {other}")),
    }
}

fn rename(map: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = map.remove(from) {
        map.insert(to.into(), value);
    }
}

/// The contact type 2.1.0 gives a user with an email address (FOLIO's
/// "email" address type), and one without (mail).
pub const CONTACT_BY_EMAIL: &str = "002";
pub const CONTACT_BY_MAIL: &str = "001";

/// 2.0.0 -> 2.1.0, one record (the upgrade does the same set-based, see
/// `upgrade_to_2_1_0`): `preferredContactTypeId` by whether the user has
/// `contact.email`, and `patronGroup` kept beside `groupId` for clients of
/// the 1.x API.
pub fn to_2_1_0(user: Value) -> Result<Value, String> {
    let mut user = into_object(user)?;
    let has_email = user.get("contact").and_then(|c| c.get("email")).is_some();
    if !user.contains_key("preferredContactTypeId") {
        let contact = if has_email {
            CONTACT_BY_EMAIL
        } else {
            CONTACT_BY_MAIL
        };
        user.insert("preferredContactTypeId".into(), Value::from(contact));
    }
    if let Some(group) = user.get("groupId").cloned() {
        user.insert("patronGroup".into(), group);
    }
    Ok(Value::Object(user))
}
