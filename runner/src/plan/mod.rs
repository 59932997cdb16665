//! Planning a tenant's install: from what the tenant has and what is asked
//! (module ids, or an Okapi install list), the modules to enable, upgrade,
//! downgrade or disable, in dependency order, as Okapi's install list with
//! `from`, `action`, `stage` and `message`.
//!
//! Planning is pure: it reads descriptors only, so it is fast, testable
//! with synthetic descriptors, and what `--simulate` shows before any
//! plugin runs. It is Okapi's `DepResolution` (folio-org/okapi), step for
//! step, so that an install list plans here as it plans there; Okapi's own
//! cases run in `tests/tests/integration/okapi.rs`:
//! - the request is read first (`resolve::Resolution::request`): a name
//!   alone is its newest release, a module already at the release is
//!   `uptodate`, another release of an enabled product is an upgrade or a
//!   downgrade from it;
//! - then the fix-up loop (`resolve`) repairs one thing at a time until
//!   nothing is left: an interface provided twice disables the provider
//!   the request did not name (product swap); a missing required
//!   interface enables its one provider (or disables a module nobody asked
//!   for); an incompatible version moves the provider, or else the module
//!   that uses it, to a release that fits;
//! - then the order (`order`): disables dependents first, then every
//!   module after the providers of what it requires or may use.
//!
//! Where Graft differs on purpose it says so, with the flag that chooses
//! (docs/okapi-compatibility.md): modules with no package are listed as
//! not managed by Graft when `allow_unmanaged`, and a cycle of required
//! interfaces among modules to run is an error, not an arbitrary order.

use crate::descriptor::ModuleDescriptor;
use crate::module_id::ModuleId;
use serde::{Deserialize, Serialize};

mod order;
mod resolve;

/// A module release Graft knows: a package, or a descriptor.
#[derive(Debug, Clone)]
pub struct Available {
    pub id: ModuleId,
    pub descriptor: ModuleDescriptor,
}

/// What the tenant has enabled: the id and, where known, the descriptor it
/// was installed with.
#[derive(Debug, Clone)]
pub struct Enabled {
    pub id: ModuleId,
    pub descriptor: Option<ModuleDescriptor>,
}

/// One entry of an Okapi install list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// A module id, with or without version (`mod-users-19.4.5`, `mod-users`).
    pub id: String,
    pub action: RequestAction,
}

/// The actions of an Okapi install list. `uptodate`, `suggest` and
/// `conflict` are passed through, as Okapi passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestAction {
    Enable,
    Disable,
    Uptodate,
    Suggest,
    Conflict,
}

/// How to plan: Okapi's install parameters that decide the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Okapi's `reinstall`: a module already at the requested release is
    /// enabled again (its plugin runs) instead of `uptodate`.
    pub reinstall: bool,
    /// Okapi's `preRelease` and `npmSnapshot`: which releases count.
    pub releases: ReleaseFilter,
    /// Okapi's `depCheck`; without it the request is taken as it is: no
    /// module pulled in, moved or disabled, and no order but the request's.
    pub dep_check: bool,
    /// A module nothing knows, or a disable of one not enabled, is listed
    /// as not managed by Graft instead of Okapi's "Module ... not found".
    pub allow_unmanaged: bool,
    /// How many repairs the fix-up loop may make (Okapi's 100).
    pub max_iterations: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            reinstall: false,
            releases: ReleaseFilter::default(),
            dep_check: true,
            allow_unmanaged: false,
            max_iterations: 100,
        }
    }
}

/// Okapi's `ModuleVersionFilter`: for pre-releases (`1.0.0-SNAPSHOT`) and
/// npm snapshots (`1.0.10000`), `None` takes them with the rest ("true"),
/// `Some(false)` leaves them out, `Some(true)` takes only them ("only").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFilter {
    pub pre_release: Option<bool>,
    pub npm_snapshot: Option<bool>,
}

impl ReleaseFilter {
    /// Read one of Okapi's values: `true`, `false` or `only`.
    pub fn parse_value(name: &str, value: &str) -> Result<Option<bool>, String> {
        match value {
            "true" => Ok(None),
            "false" => Ok(Some(false)),
            "only" => Ok(Some(true)),
            other => Err(format!(
                "Expected \"true\", \"false\", \"only\" or undefined/null for parameter {name}, but got: {}",
                crate::text::truncate(other, 100)
            )),
        }
    }

    /// Whether a release passes (Okapi's `matchesModule`).
    pub fn matches(&self, id: &ModuleId) -> bool {
        if id.version.is_prerelease() {
            self.pre_release != Some(false)
        } else if id.version.is_npm_snapshot() {
            self.npm_snapshot != Some(false)
        } else {
            self.npm_snapshot != Some(true) && self.pre_release != Some(true)
        }
    }
}

/// One entry of the plan, in Okapi's install-list shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub action: PlanAction,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    Enable,
    Disable,
    /// Already at this release: not run, unless the job reinstalls (then
    /// the plugin runs again and reports `unchanged`).
    Uptodate,
    /// Passed through from the install list; never run.
    Suggest,
    /// Passed through from the install list; never run.
    Conflict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// To be run.
    Pending,
    /// Run and committed.
    Done,
    /// Run and failed; rolled back.
    Failed,
    /// Run, then rolled back because another module of the job failed.
    RolledBack,
    /// Not run because an earlier module failed.
    NotRun,
    /// No package: Graft does not migrate this module.
    NotManaged,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    /// Modules already at the requested release are not run (Okapi's
    /// `uptodate`, without `reinstall`): their entries are done as planned.
    pub fn settle_uptodate(&mut self) {
        for entry in &mut self.entries {
            if entry.action == PlanAction::Uptodate && entry.stage == Stage::Pending {
                entry.stage = Stage::Done;
                entry.message =
                    Some("already at this release: not run (--reinstall runs it)".into());
            }
        }
    }

    /// The entries Graft runs (managed and pending), in order.
    pub fn pending(&self) -> impl Iterator<Item = &PlanEntry> {
        self.entries.iter().filter(|e| e.stage == Stage::Pending)
    }
}

/// Plan `requests` for a tenant that has `enabled`, knowing the releases in
/// `available`. The error is Okapi's message (several joined by ". "),
/// naming the modules and interfaces involved.
pub fn plan(
    available: &[Available],
    enabled: &[Enabled],
    requests: &[Request],
    options: &PlanOptions,
) -> Result<Plan, String> {
    let mut resolution = resolve::Resolution::new(available, enabled, options);
    resolution.requests(requests)?;
    let order = if options.dep_check {
        resolution.fix_up()?;
        order::Order::Dependencies
    } else {
        order::Order::Request
    };
    let resolved = resolution.finish();
    let enabled: Vec<&str> = resolved.enabled.iter().map(String::as_str).collect();
    let mut entries = order::sort(
        resolved.entries,
        &enabled,
        |id| resolved.modules.get(id).copied(),
        order,
    )?;
    entries.extend(resolved.notes);
    Ok(Plan { entries })
}
