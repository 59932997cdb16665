//! What to run on a tenant (`Job`), and how (`InstallOptions`).

use crate::host::ProgressFn;
use crate::module_id::ModuleId;
use crate::plan::{ReleaseFilter, Request, RequestAction};
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::sync::Arc;
use std::time::SystemTime;

/// Makes a progress callback for a step that reports progress:
/// (tenant, module, step).
pub type ProgressFactory = Arc<dyn Fn(&str, &str, &str) -> Option<ProgressFn> + Send + Sync>;

/// What to run on a tenant.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "requests", rename_all = "kebab-case")]
pub enum Job {
    /// Modules the operator named: each must have a package.
    Modules(Vec<Request>),
    /// An Okapi install list: modules with no package are listed as not
    /// managed by Graft, and the rest runs.
    InstallList(Vec<Request>),
    /// Every enabled module to its newest release.
    UpgradeAll,
}

impl Job {
    /// Every module the job names is a module id or name: checked before
    /// any tenant runs.
    pub fn check(&self) -> Result<()> {
        let requests = match self {
            Job::Modules(requests) | Job::InstallList(requests) => requests,
            Job::UpgradeAll => return Ok(()),
        };
        for (n, request) in requests.iter().enumerate() {
            ModuleId::check_request(&request.id).map_err(|e| {
                let at = match self {
                    Job::InstallList(_) => format!("install list entry {n}: "),
                    _ => String::new(),
                };
                anyhow!("{at}{e}")
            })?;
        }
        Ok(())
    }

    /// Enable these module ids, in order.
    pub fn enable(ids: &[ModuleId]) -> Job {
        Job::Modules(
            ids.iter()
                .map(|id| Request {
                    id: id.to_string(),
                    action: RequestAction::Enable,
                })
                .collect(),
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    /// All modules of the tenant's job commit together or not at all.
    #[default]
    Atomic,
    /// Each module commits on its own (the platform's behaviour).
    PerModule,
}

#[derive(Clone, Default)]
pub struct InstallOptions {
    pub load_reference: bool,
    pub load_sample: bool,
    /// Tenant parameters passed to the plugins, besides loadReference and loadSample.
    pub parameters: Vec<(String, String)>,
    pub progress: Option<ProgressFactory>,
    /// Run everything, then roll it all back: report what would change.
    pub simulate: bool,
    pub commit: CommitMode,
    /// Fail a module whose steps report more record warnings than this.
    pub max_warnings: Option<u64>,
    /// Disabling a module also removes its data.
    pub purge: bool,
    /// Run modules already at the requested release again (Okapi's
    /// `reinstall`); without it they are `uptodate` and not run.
    pub reinstall: bool,
    /// Okapi's `preRelease` and `npmSnapshot`: which releases a module
    /// name alone, or a dependency, may resolve to.
    pub releases: ReleaseFilter,
    /// Okapi's `depCheck=false`: the request as it is, no dependency
    /// pulled in, moved or disabled, in the request's order.
    pub no_dep_check: bool,
    /// Okapi's `ignoreErrors`: with `CommitMode::PerModule`, a failed
    /// module does not stop the modules after it.
    pub ignore_errors: bool,
    /// Install-list entries with no package are listed as not managed by
    /// Graft instead of failing the plan (Okapi: "Module ... not found").
    pub allow_unmanaged: bool,
    /// The time every plugin call of the job reads from its wall clock;
    /// default: when the job starts (see `host::Determinism`).
    pub clock: Option<SystemTime>,
    /// The job's id; default: a new one. A queue worker names its jobs so
    /// that a job's commit can be found after the worker died.
    pub job_id: Option<String>,
}

/// The parameters a plugin's context carries: Okapi's `loadReference` and
/// `loadSample`, then the operator's own.
pub(super) fn parameters(options: &InstallOptions) -> Vec<(String, String)> {
    let mut parameters = vec![
        (
            "loadReference".to_string(),
            options.load_reference.to_string(),
        ),
        ("loadSample".to_string(), options.load_sample.to_string()),
    ];
    parameters.extend(options.parameters.iter().cloned());
    parameters
}
