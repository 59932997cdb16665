//! `mod-notes`: notes with a type. Release 1.0.0 creates `notes` (unique
//! `title`) and the reference collection `note-types`; 2.0.0 renames `title`
//! to `subject`, adds `status: "active"` to every note, stamps each with the
//! time and a random batch number (deterministic only because the runner
//! fixes the clock and seeds randomness), and rolls back to 1.0.0 exactly. Each fault feature breaks 2.0.0 in one way that
//! `graft validate` must catch:
//!
//! - `non-idempotent`: every run bumps each note's `revision`;
//! - `lossy-rollback`: the rollback drops `subject` instead of renaming it;
//! - `simulation-differs`: in a simulation, notes get no `status`;
//! - `overwrites-edits`: reference data is written over the tenant's records
//!   with plain puts instead of through the overlay;
//! - `nondeterministic`: each note records a reading of the monotonic clock;
//! - `wrong-describe`: the plugin says it is 2.0.1.

use graft_plugin_sdk::{
    data, Collection, Context, DataKind, Description, Error, FieldChange, IndexSpec, Migration,
    Outcome, Result, StoredState,
};
use serde_json::{json, Value};

const V2: bool = cfg!(feature = "v2");
const RELEASE: &str = if V2 { "2.0.0" } else { "1.0.0" };
const NOTES: &str = "notes";
const TYPES: &str = "note-types";
/// The index that marks storage at 1.0.0, and the one of 2.0.0.
const TITLE_INDEX: &str = "notes-title";
const SUBJECT_INDEX: &str = "notes-subject";

fn notes() -> Collection<Value> {
    Collection::new(NOTES)
}

struct Notes;

impl Migration for Notes {
    fn describe() -> Description {
        let release = if cfg!(feature = "wrong-describe") {
            "2.0.1"
        } else {
            RELEASE
        };
        let description = Description::new("mod-notes", release);
        if V2 {
            description
                .upgrades_from(&["1.0.0"])
                .rolls_back_to(&["1.0.0"])
        } else {
            description
        }
    }

    fn inspect() -> StoredState {
        let notes = notes();
        if !notes.exists() {
            return StoredState::Empty;
        }
        match (notes.has_index(TITLE_INDEX), notes.has_index(SUBJECT_INDEX)) {
            (Ok(true), Ok(false)) => StoredState::Release("1.0.0".into()),
            (Ok(false), Ok(true)) => StoredState::Release("2.0.0".into()),
            other => StoredState::Unrecognised(format!("notes indexes: {other:?}")),
        }
    }

    fn upgrade(ctx: &Context) -> Result<Outcome> {
        let outcome = match Self::inspect() {
            StoredState::Empty => {
                create()?;
                if V2 {
                    to_2_0_0(ctx)?;
                }
                Outcome::Created
            }
            StoredState::Release(r) if r == RELEASE => Outcome::Unchanged,
            StoredState::Release(r) if r == "1.0.0" && V2 => {
                to_2_0_0(ctx)?;
                Outcome::Upgraded
            }
            other => {
                return Err(Error::unsupported(format!(
                    "mod-notes {RELEASE} cannot upgrade {other:?}"
                )))
            }
        };
        if cfg!(feature = "non-idempotent") {
            bump_revisions()?;
            return Ok(Outcome::Upgraded);
        }
        Ok(outcome)
    }

    fn rollback(ctx: &Context) -> Result<Outcome> {
        if !V2 || ctx.release_to() != "1.0.0" {
            return Err(Error::unsupported(format!(
                "mod-notes {RELEASE} cannot roll back to {}",
                ctx.release_to()
            )));
        }
        let notes = notes();
        notes.drop_index(SUBJECT_INDEX)?;
        if cfg!(feature = "lossy-rollback") {
            notes.update_all(&[
                FieldChange::Remove("subject".into()),
                FieldChange::Remove("status".into()),
                FieldChange::Remove("migration".into()),
            ])?;
        } else {
            notes.update_all(&[
                FieldChange::Rename("subject".into(), "title".into()),
                FieldChange::Remove("status".into()),
                FieldChange::Remove("migration".into()),
            ])?;
        }
        notes.create_index(IndexSpec::unique_ci(TITLE_INDEX, "title"))?;
        Ok(Outcome::Upgraded)
    }

    fn load_data(_ctx: &Context, kind: DataKind) -> Result<Outcome> {
        if cfg!(feature = "overwrites-edits") && kind == DataKind::Reference {
            // The fault: vendor records written with plain puts, so a
            // tenant's edit is overwritten instead of merged.
            let types = Collection::<Value>::new(TYPES);
            for record in data::read_records(kind, TYPES)? {
                let doc: Value = serde_json::from_str(&record.doc)
                    .map_err(|e| Error::failed(e.to_string()).at(TYPES, &record.id))?;
                types.put(&record.id, &doc)?;
            }
            return Ok(Outcome::Upgraded);
        }
        data::load_folder(kind)
    }
}

graft_plugin_sdk::export_migration!(Notes);

fn create() -> Result<()> {
    let notes = notes();
    notes.create()?;
    notes.create_index(IndexSpec::unique_ci(TITLE_INDEX, "title"))?;
    let types = Collection::<Value>::new(TYPES);
    types.create()?;
    types.create_index(IndexSpec::unique_ci("note-types-name", "name"))?;
    Ok(())
}

fn to_2_0_0(ctx: &Context) -> Result<()> {
    let notes = notes();
    notes.drop_index(TITLE_INDEX)?;
    notes.update_all(&[FieldChange::Rename("title".into(), "subject".into())])?;
    notes.create_index(IndexSpec::unique_ci(SUBJECT_INDEX, "subject"))?;
    if cfg!(feature = "simulation-differs") && ctx.simulate {
        return Ok(());
    }
    // Record by record (not set-based), as migrations that compute a value
    // per record do.
    let started = std::time::Instant::now();
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let batch = {
        use std::hash::{BuildHasher, Hasher};
        // RandomState draws its keys from the host's randomness.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(at);
        format!("{:016x}", hasher.finish())
    };
    let mut writer = notes.writer(500);
    for record in notes.scan(500) {
        let (id, mut note) = record?;
        note["status"] = json!("active");
        note["migration"] = json!({"atMillis": at, "batch": batch});
        if cfg!(feature = "nondeterministic") {
            note["migrationTicket"] = json!(started.elapsed().as_nanos() as u64 ^ id.len() as u64);
        }
        writer.put(&id, &note)?;
    }
    writer.finish()?;
    Ok(())
}

fn bump_revisions() -> Result<()> {
    let notes = notes();
    let mut writer = notes.writer(500);
    for record in notes.scan(500) {
        let (id, mut note) = record?;
        let revision = note.get("revision").and_then(Value::as_u64).unwrap_or(0);
        note["revision"] = json!(revision + 1);
        writer.put(&id, &note)?;
    }
    writer.finish()?;
    Ok(())
}
