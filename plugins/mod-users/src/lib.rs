//! The migration plugin of the sample module `mod-users`, one build per
//! release (cargo features `v1_0_0`, `v1_1_0`, `v2_0_0`). Each release's
//! plugin knows every step from an empty tenant up to its own release:
//!
//! - 1.0.0 creates `users` (unique `username` and `barcode`) and the
//!   reference collections `groups` and `addresstypes`;
//! - 1.1.0 adds an index on `personal.email` and the field `type`
//!   (default `"patron"`) on every user, in one set-based update;
//! - 2.0.0 is breaking: `personal` becomes `name` (`lastName` -> `family`,
//!   `firstName` -> `given`), `personal.email` moves to `contact.email`, and
//!   `patronGroup` is renamed `groupId`. Its rollback brings the data back to
//!   1.1.0 exactly.
//! - 2.1.0 (feature `v2_1_0`) is built for contract 0.2: it gives every user
//!   a `preferredContactTypeId` (email where the user has `contact.email`,
//!   mail otherwise: two conditional set-based updates) and keeps
//!   `patronGroup` beside `groupId` (a set-based copy), and records its
//!   release in the module's state: its collections and indexes are those
//!   of 2.0.0, so only the state tells the two apart. It rolls back to
//!   2.0.0 and to 1.1.0, exactly.

mod sample;
mod users;

use graft_plugin_sdk::{
    data, Collection, Context, DataKind, Error, IndexSpec, Outcome, Result, StoredState,
};
#[cfg(not(feature = "v2_1_0"))]
use graft_plugin_sdk::{Description, Migration};
use serde_json::Value;

#[cfg(feature = "v2_1_0")]
const RELEASE: &str = "2.1.0";
#[cfg(all(feature = "v2_0_0", not(feature = "v2_1_0")))]
const RELEASE: &str = "2.0.0";
#[cfg(all(feature = "v1_1_0", not(any(feature = "v2_0_0", feature = "v2_1_0"))))]
const RELEASE: &str = "1.1.0";
#[cfg(not(any(feature = "v1_1_0", feature = "v2_0_0", feature = "v2_1_0")))]
const RELEASE: &str = "1.0.0";

/// Every release, oldest first; this plugin knows those up to `RELEASE`.
#[cfg(not(feature = "v2_1_0"))]
const RELEASES: [&str; 3] = ["1.0.0", "1.1.0", "2.0.0"];

const USERS: &str = "users";
/// The index that marks storage at 1.1.0.
const EMAIL_INDEX: &str = "users-email";
/// The index that marks storage at 2.0.0.
const CONTACT_EMAIL_INDEX: &str = "users-contact-email";

/// Records per page of a scan and per batch of writes.
const PAGE: u32 = 2000;

fn users() -> Collection<Value> {
    Collection::new(USERS)
}

#[cfg(not(feature = "v2_1_0"))]
fn known_releases() -> &'static [&'static str] {
    let position = RELEASES
        .iter()
        .position(|r| *r == RELEASE)
        .expect("RELEASE is listed");
    &RELEASES[..=position]
}

struct ModUsers;

/// Releases up to 2.0.0 are built for contract 0.1: the plugin walks its
/// releases by hand. 2.1.0 is built for 0.2 and declares the same chain
/// (see `chain` below), which is how a 0.1 plugin moves to 0.2.
#[cfg(not(feature = "v2_1_0"))]
impl Migration for ModUsers {
    fn describe() -> Description {
        let known = known_releases();
        let description =
            Description::new("mod-users", RELEASE).upgrades_from(&known[..known.len() - 1]);
        match RELEASE {
            "2.0.0" => description.rolls_back_to(&["1.1.0"]),
            "2.1.0" => description.rolls_back_to(&["2.0.0", "1.1.0"]),
            _ => description,
        }
    }

    fn inspect() -> StoredState {
        match stored_release() {
            Ok(state) => state,
            Err(e) => StoredState::Unrecognised(e.to_string()),
        }
    }

    fn upgrade(ctx: &Context) -> Result<Outcome> {
        let from = match stored_release()? {
            StoredState::Empty => None,
            StoredState::Release(release) => Some(release),
            StoredState::Unrecognised(what) => {
                return Err(Error::failed(format!("storage not recognised: {what}")))
            }
        };
        if from.as_deref() == Some(RELEASE) {
            return Ok(Outcome::Unchanged);
        }
        let known = known_releases();
        let start = match &from {
            None => 0,
            Some(release) => match known.iter().position(|r| r == release) {
                Some(position) => position + 1,
                None => {
                    return Err(Error::unsupported(format!(
                        "tenant {} holds mod-users {release}, newer than this plugin's {RELEASE}: \
                         downgrade with the package of {release}",
                        ctx.tenant
                    )))
                }
            },
        };
        for release in &known[start..] {
            match *release {
                "1.0.0" => create_1_0_0()?,
                "1.1.0" => upgrade_to_1_1_0()?,
                "2.0.0" => upgrade_to_2_0_0()?,
                other => unreachable!("no step to {other}"),
            }
        }
        Ok(if from.is_none() {
            Outcome::Created
        } else {
            Outcome::Upgraded
        })
    }

    fn rollback(ctx: &Context) -> Result<Outcome> {
        let target = ctx.release_to();
        if RELEASE != "2.0.0" || target != "1.1.0" {
            return Err(Error::unsupported(format!(
                "mod-users {RELEASE} cannot roll back to {target}; 2.0.0 rolls back to 1.1.0"
            )));
        }
        match stored_release()? {
            StoredState::Release(r) if r == "1.1.0" => Ok(Outcome::Unchanged),
            StoredState::Release(r) if r == "2.0.0" => {
                rollback_2_0_0_to_1_1_0()?;
                Ok(Outcome::Upgraded)
            }
            other => Err(Error::unsupported(format!(
                "rollback to 1.1.0 needs storage at 2.0.0, found {other:?}"
            ))),
        }
    }

    fn load_data(ctx: &Context, kind: DataKind) -> Result<Outcome> {
        match kind {
            DataKind::Sample => sample::load(ctx, RELEASE),
            _ => data::load_folder(kind),
        }
    }
}

#[cfg(not(feature = "v2_1_0"))]
graft_plugin_sdk::export_migration!(ModUsers);

/// The same releases as a chain (contract 0.2): the SDK derives describe,
/// inspect (the release in the module's state, else `stored_release` for
/// data the 0.1 releases wrote), the upgrade walk and the rollbacks to
/// 2.0.0 and 1.1.0 (2.0.0's and 2.1.0's `down` steps).
#[cfg(feature = "v2_1_0")]
mod chain {
    use super::*;
    use graft_plugin_sdk::{Chain, ReleaseChain, Releases};

    impl ReleaseChain for ModUsers {
        fn releases() -> Releases {
            Releases::new("mod-users")
                .from_data(stored_release)
                .release("1.0.0", |_| create_1_0_0())
                .release("1.1.0", |_| upgrade_to_1_1_0())
                .release("2.0.0", |_| upgrade_to_2_0_0())
                .down(|_| rollback_2_0_0_to_1_1_0())
                .release("2.1.0", |_| upgrade_to_2_1_0())
                .down(|_| rollback_2_1_0_to_2_0_0())
        }

        fn load_data(ctx: &Context, kind: DataKind) -> Result<Outcome> {
            match kind {
                DataKind::Sample => sample::load(ctx, RELEASE),
                _ => data::load_folder(kind),
            }
        }
    }

    graft_plugin_sdk::export_migration!(Chain<ModUsers>);
}

/// Find the release from the shape of the storage, not from what the runner
/// recorded: the indexes each release up to 2.0.0 creates mark it (2.1.0's
/// look like 2.0.0's: its release is in the module's state).
fn stored_release() -> Result<StoredState> {
    let users = users();
    if !users.exists() {
        return Ok(StoredState::Empty);
    }

    let indexes = users.indexes()?;
    let has = |name: &str| indexes.iter().any(|i| i.name == name);
    Ok(match (has(EMAIL_INDEX), has(CONTACT_EMAIL_INDEX)) {
        (false, false) => StoredState::Release("1.0.0".into()),
        (true, false) => StoredState::Release("1.1.0".into()),
        (false, true) => StoredState::Release("2.0.0".into()),
        (true, true) => StoredState::Unrecognised(format!(
            "users has both {EMAIL_INDEX} and {CONTACT_EMAIL_INDEX}"
        )),
    })
}

fn create_1_0_0() -> Result<()> {
    let users = users();
    users.create()?;
    users.create_index(IndexSpec::unique_ci("users-username", "username"))?;
    users.create_index(IndexSpec::unique("users-barcode", "barcode"))?;
    let groups = Collection::<Value>::new("groups");
    groups.create()?;
    groups.create_index(IndexSpec::unique_ci("groups-group", "group"))?;
    let address_types = Collection::<Value>::new("addresstypes");
    address_types.create()?;
    address_types.create_index(IndexSpec::unique_ci(
        "addresstypes-addressType",
        "addressType",
    ))?;
    Ok(())
}

fn upgrade_to_1_1_0() -> Result<()> {
    let users = users();
    users.create_index(IndexSpec::plain(EMAIL_INDEX, "personal.email"))?;
    users.update_all(&[graft_plugin_sdk::FieldChange::SetDefault(
        "type".into(),
        Value::from(users::DEFAULT_TYPE),
    )])?;
    Ok(())
}

// The index on the field a rewrite moves is dropped before the rewrite (the
// store would otherwise remove its entries one record at a time) and the new
// one made after it (built once from all records). The step is one
// transaction: if the rewrite fails, the dropped index comes back.

fn upgrade_to_2_0_0() -> Result<()> {
    let users = users();
    users.drop_index(EMAIL_INDEX)?;
    rewrite_users(users::to_2_0_0)?;
    users.create_index(IndexSpec::plain(CONTACT_EMAIL_INDEX, "contact.email"))?;
    Ok(())
}

/// 2.0.0 -> 2.1.0 in three statements, whatever the number of users: the
/// contact type by whether the user has an email address, and the copy of
/// `groupId`.
#[cfg(feature = "v2_1_0")]
fn upgrade_to_2_1_0() -> Result<()> {
    use graft_plugin_sdk::{FieldChange, Filter};
    let users = users();
    let contact = |value: &str| {
        vec![FieldChange::SetDefault(
            "preferredContactTypeId".into(),
            Value::from(value),
        )]
    };
    let by_email = users.update_where(
        &Filter::new().exists("contact.email"),
        &contact(users::CONTACT_BY_EMAIL),
    )?;
    let by_mail = users.update_where(
        &Filter::new().missing("contact.email"),
        &contact(users::CONTACT_BY_MAIL),
    )?;
    let copied = users.update_where(
        &Filter::new().exists("groupId"),
        &[FieldChange::Copy("groupId".into(), "patronGroup".into())],
    )?;
    graft_plugin_sdk::log::info(&format!(
        "users: contact by email {by_email}, by mail {by_mail}; patronGroup kept on {copied}"
    ));
    Ok(())
}

/// 2.1.0 -> 2.0.0: the fields 2.1.0 added removed (2.0.0 has neither).
#[cfg(feature = "v2_1_0")]
fn rollback_2_1_0_to_2_0_0() -> Result<()> {
    users().update_all(&[
        graft_plugin_sdk::FieldChange::Remove("preferredContactTypeId".into()),
        graft_plugin_sdk::FieldChange::Remove("patronGroup".into()),
    ])?;
    Ok(())
}

fn rollback_2_0_0_to_1_1_0() -> Result<()> {
    let users = users();
    users.drop_index(CONTACT_EMAIL_INDEX)?;
    rewrite_users(users::to_1_1_0)?;
    users.create_index(IndexSpec::plain(EMAIL_INDEX, "personal.email"))?;
    Ok(())
}

/// Rewrite every user with `transform`, streaming: a page read, a batch
/// written (behind the next page's transformation on contract 0.2),
/// progress reported as it goes; an error names the user.
fn rewrite_users(transform: fn(Value) -> std::result::Result<Value, String>) -> Result<()> {
    users().update_each(PAGE, |_, user| {
        transform(user).map(Some).map_err(Error::failed)
    })?;
    Ok(())
}
