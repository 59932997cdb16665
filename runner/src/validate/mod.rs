//! `graft validate`: a vendor's CI check of a module package against
//! fixture databases (see `fixture`).
//!
//! The package is checked once (descriptor, component and contract,
//! `describe`, data folders), then each fixture of its module at a release
//! the plugin upgrades from (or at its own release) is restored into two
//! throwaway tenants, and the real engine runs on them: a simulation, the
//! upgrade, the same upgrade again, the upgrade on the second copy, and the
//! rollback where the plugin has one. Every job runs with the wall clock
//! fixed at the fixture's capture time and randomness seeded per tenant and
//! step (see `host::Determinism`), so what still differs between the two
//! copies is the plugin's own nondeterminism.
//!
//! An `Err` is bad input (no package folder, no fixtures, a fixture that is
//! not one); a failed check is a result.

mod checks;
mod compare;
pub mod junit;
mod runs;

use crate::host::Host;
use crate::install::{Installer, Job, ModuleReport, TenantReport};
use crate::journal::Journal;
use crate::limits::Limits;
use crate::package::{self, Catalog, Package};
use crate::plan::{Request, RequestAction};
use crate::storage::Dump;
use crate::storage::Tenants;
use crate::{fixture::Fixture, InstallOptions, ModuleId};
use anyhow::{anyhow, bail, Result};
use checks::*;
use runs::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Passed, with something to look at (for example little headroom).
    Warn,
    Fail,
    /// Did not apply, or could not run because an earlier check failed.
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub message: String,
    /// The records and fields behind a failure or warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Check {
    fn new(check: &'static str, status: Status, message: impl Into<String>) -> Check {
        Check {
            check,
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// A failed check: `what` went wrong, then the difference that names a
    /// record, with every difference in the details.
    fn failed(check: &'static str, what: String, differences: compare::Differences) -> Check {
        let message = format!("{what}: {}", differences.headline());
        Check::new(check, Status::Fail, message).with_details(differences.into_details())
    }

    /// A failed check ends with the usual fix for it.
    fn add_fix(&mut self) {
        let fix = match self.check {
            "inspect" => {
                "make inspect tell this release from the data (an index or collection \
                          only it has), or keep the release in the module's state (contract 0.2)"
            }
            "upgrade" => "fix the step the failure names; --json has the plugin's log",
            "idempotent" => {
                "an upgrade of data already at the release must change nothing and \
                             return unchanged"
            }
            "simulation" => {
                "behave the same when the context says simulate: the runner rolls \
                             the writes back itself"
            }
            "deterministic" => {
                "compute data only from the data, the fixed wall clock and the \
                                seeded random numbers, never from the monotonic clock or a \
                                hash map's order"
            }
            "overlay" => {
                "load reference data through the overlay (the SDK's data::load_folder \
                          or data::load), never with put"
            }
            "rollback" => {
                "the rollback must give back exactly the data of the release it rolls \
                           back to"
            }
            _ => return,
        };
        if self.status == Status::Fail && !self.message.contains("; fix: ") {
            self.message = format!("{}; fix: {fix}", self.message);
        }
    }

    fn with_details(mut self, details: Vec<String>) -> Check {
        self.details = details;
        self
    }
}

/// The checks run against one fixture.
#[derive(Debug, Serialize)]
pub struct FixtureResult {
    pub fixture: PathBuf,
    /// The release of the module the fixture holds.
    pub release: String,
    pub duration_ms: u64,
    pub checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
pub struct Validation {
    pub package: PathBuf,
    /// The package's module id, when its descriptor could be read.
    pub module: Option<String>,
    pub ok: bool,
    /// Checks of the package itself.
    pub checks: Vec<Check>,
    pub fixtures: Vec<FixtureResult>,
    /// Fixtures in the folder that do not apply, and why.
    pub not_applicable: Vec<NotApplicable>,
}

#[derive(Debug, Serialize)]
pub struct NotApplicable {
    pub fixture: PathBuf,
    pub reason: String,
}

impl Validation {
    fn of(package: &Path) -> Validation {
        Validation {
            package: package.to_path_buf(),
            module: None,
            ok: true,
            checks: Vec::new(),
            fixtures: Vec::new(),
            not_applicable: Vec::new(),
        }
    }

    /// Every check, with the fixture it ran on (`None`: the package's own).
    pub fn all_checks(&self) -> impl Iterator<Item = (Option<&FixtureResult>, &Check)> {
        self.checks.iter().map(|c| (None, c)).chain(
            self.fixtures
                .iter()
                .flat_map(|f| f.checks.iter().map(move |c| (Some(f), c))),
        )
    }

    pub fn count(&self, status: Status) -> usize {
        self.all_checks()
            .filter(|(_, c)| c.status == status)
            .count()
    }
}

/// A callback told what a validation works on.
pub type Progress = Box<dyn Fn(&str)>;

pub struct Validator<'a> {
    pub host: &'a Host,
    pub limits: &'a Limits,
    /// Where the other releases of the module are (for rollbacks); default:
    /// the folder the package is in.
    pub modules_dir: Option<PathBuf>,
    /// Told what runs now (a fixture and a job), and `""` at the end.
    pub progress: Option<Progress>,
    /// A release the plugin upgrades from or rolls back to without a
    /// fixture fails the validation instead of warning.
    pub strict: bool,
    /// Where package archives are unpacked.
    pub unpack_dir: PathBuf,
}

impl crate::Graft {
    /// `graft validate`: a package against fixtures, on this runner's host
    /// and limits, with every call's instructions counted for the report.
    /// `modules_dir`: where the package's other releases are.
    /// `strict`: a release without a fixture fails (see `Validator`).
    pub fn validate(
        &mut self,
        package_dir: &Path,
        fixtures_dir: &Path,
        modules_dir: Option<PathBuf>,
        progress: Option<Progress>,
        strict: bool,
    ) -> Result<Validation> {
        self.count_fuel();
        Validator {
            host: self.host(),
            limits: self.limits(),
            modules_dir,
            progress,
            unpack_dir: self.unpack_dir(),
            strict,
        }
        .validate(package_dir, fixtures_dir)
    }

    /// The checks `validate` makes of a package before any fixture runs
    /// (descriptor, component, `describe`, data folders), without fixtures:
    /// what `graft package` requires of what it assembles.
    pub fn check_package(&mut self, package_dir: &Path) -> Validation {
        let validator = Validator {
            host: self.host(),
            limits: self.limits(),
            modules_dir: None,
            progress: None,
            unpack_dir: self.unpack_dir(),
            strict: false,
        };
        let mut validation = Validation::of(package_dir);
        let checked = validator.check_package(package_dir, &mut validation);
        validation.module = checked.map(|(package, _)| package.id.to_string());
        validation.ok = validation.count(Status::Fail) == 0;
        validation
    }
}

impl Validator<'_> {
    pub fn validate(&self, package_dir: &Path, fixtures_dir: &Path) -> Result<Validation> {
        // An archive is validated as the folder it unpacks to; the other
        // releases are looked for beside the archive.
        let archive = crate::package::archive::is_archive(package_dir) && package_dir.is_file();
        let given = package_dir;
        let unpacked;
        let package_dir = if archive {
            unpacked = crate::package::archive::unpacked(package_dir, &self.unpack_dir)?;
            unpacked.as_path()
        } else {
            package_dir
        };
        if !package_dir.is_dir() {
            bail!(
                "{}: no such package folder: give the folder with ModuleDescriptor.json and the plugin, \
                 or its .tar.gz",
                package_dir.display()
            );
        }
        let fixtures = read_fixtures(fixtures_dir)?;
        let mut validation = Validation::of(given);
        let Some((package, described)) = self.check_package(package_dir, &mut validation) else {
            validation.ok = false;
            return Ok(validation);
        };
        validation.module = Some(package.id.to_string());
        let catalog_dir = match &self.modules_dir {
            Some(dir) => dir.clone(),
            None => (if archive { given } else { package_dir })
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        let catalog = Catalog::new(&catalog_dir).unpacking_into(&self.unpack_dir);
        let found = catalog.find(&package.id).map_err(|e| {
            anyhow!(
                "{}: the modules folder must hold the package under test: {e}",
                catalog_dir.display()
            )
        })?;
        let same_folder = found.dir.canonicalize().ok() == package.dir.canonicalize().ok();
        // An archive validated beside the folder `graft package` wrote with
        // it: the catalog reads the folder, which must hold the same files.
        let same_files = || {
            archive
                && crate::package::archive::tree_digest(&found.dir).ok()
                    == crate::package::archive::tree_digest(&package.dir).ok()
        };
        if !same_folder && !same_files() {
            bail!(
                "{}: the modules folder has another package of {} ({}): validate the package in it, or point --modules elsewhere",
                catalog_dir.display(),
                package.id,
                found.dir.display()
            );
        }
        let mut applicable = Vec::new();
        for (path, fixture) in fixtures {
            match applies(&fixture, &package.id, &described) {
                Ok(release) => applicable.push((path, fixture, release)),
                Err(reason) => validation.not_applicable.push(NotApplicable {
                    fixture: path,
                    reason,
                }),
            }
        }
        if applicable.is_empty() {
            bail!(
                "{}: no fixture applies to {}: add one captured at a release it upgrades from ({}) \
                 with `graft fixture capture --module {}`",
                fixtures_dir.display(),
                package.id,
                described.upgrades_from.join(", "),
                package.id.name
            );
        }
        validation
            .checks
            .push(self.check_coverage(&package.id, &described, &applicable));
        let context = Context {
            host: self.host,
            limits: self.limits,
            catalog: &catalog,
            catalog_dir: &catalog_dir,
            package: &package,
            rolls_back_to: &described.rolls_back_to,
        };
        for (path, fixture, release) in applicable {
            self.tell(&format!("{}: {release} -> {}", path.display(), package.id));
            let result = context.run_fixture(&path, &fixture, release);
            self.tell("");
            validation.fixtures.push(result?);
        }
        for result in &mut validation.fixtures {
            for check in &mut result.checks {
                check.add_fix();
            }
        }
        validation.ok = validation.count(Status::Fail) == 0;
        Ok(validation)
    }

    /// Every release the plugin upgrades from or rolls back to has a
    /// fixture, or the upgrade (or rollback) from it is never checked.
    fn check_coverage(
        &self,
        id: &ModuleId,
        described: &crate::host::wit::Description,
        applicable: &[(PathBuf, Fixture, ModuleId)],
    ) -> Check {
        let mut releases: Vec<&String> = described
            .upgrades_from
            .iter()
            .chain(&described.rolls_back_to)
            .collect();
        releases.sort();
        releases.dedup();
        let covered = |release: &str| {
            applicable
                .iter()
                .any(|(_, _, at)| at.version.as_str() == release)
        };
        let missing: Vec<&str> = releases
            .iter()
            .map(|r| r.as_str())
            .filter(|r| !covered(r))
            .collect();
        if missing.is_empty() {
            let all: Vec<&str> = releases.iter().map(|r| r.as_str()).collect();
            return Check::new(
                "coverage",
                Status::Pass,
                format!(
                    "a fixture at every release it upgrades from or rolls back to ([{}])",
                    all.join(", ")
                ),
            );
        }
        let status = if self.strict {
            Status::Fail
        } else {
            Status::Warn
        };
        Check::new(
            "coverage",
            status,
            format!(
                "no fixture at {}: the upgrade (or rollback) from there is not checked; fix: on \
                 a tenant at each, `graft fixture capture --module {}` into the fixtures folder",
                missing.join(", "),
                id.name
            ),
        )
    }

    fn tell(&self, what: &str) {
        if let Some(progress) = &self.progress {
            progress(what);
        }
    }

    /// The package's own checks; `None` when what follows cannot run.
    fn check_package(
        &self,
        dir: &Path,
        validation: &mut Validation,
    ) -> Option<(Package, crate::host::wit::Description)> {
        let checks = &mut validation.checks;
        let package = match Package::load(dir) {
            Ok(package) => {
                checks.push(Check::new(
                    "descriptor",
                    Status::Pass,
                    format!("{} ({})", package.id, package.plugin.display()),
                ));
                package
            }
            Err(e) => {
                checks.push(Check::new("descriptor", Status::Fail, format!("{e:#}")));
                return None;
            }
        };
        let limits = self.limits.for_module(&package.limits);
        let plugin = match self
            .host
            .load(&package, &limits)
            .and_then(|plugin| self.host.instantiate(&plugin, &limits).map(|()| plugin))
        {
            Ok(plugin) => {
                checks.push(Check::new(
                    "component",
                    Status::Pass,
                    format!(
                        "a component for {} that instantiates",
                        plugin.contract.package()
                    ),
                ));
                plugin
            }
            Err(e) => {
                checks.push(Check::new("component", Status::Fail, format!("{e:#}")));
                return None;
            }
        };
        let described = match self.host.describe(&plugin, &limits) {
            Ok(described) => described,
            Err(e) => {
                checks.push(Check::new("describe", Status::Fail, format!("{e:#}")));
                return None;
            }
        };
        if let Err(e) = package.check_description(&described.module_name, &described.release) {
            checks.push(Check::new("describe", Status::Fail, format!("{e:#}")));
            return None;
        }
        checks.push(Check::new(
            "describe",
            Status::Pass,
            format!(
                "{} {}, upgrades from [{}], rolls back to [{}], contract {}",
                described.module_name,
                described.release,
                described.upgrades_from.join(", "),
                described.rolls_back_to.join(", "),
                described.contract
            ),
        ));
        checks.push(check_data_folders(&package));
        let data_ok = checks.last().is_some_and(|c| c.status != Status::Fail);
        data_ok.then_some((package, described))
    }
}

/// Every data file parses as JSON.
fn check_data_folders(package: &Package) -> Check {
    let mut files = 0;
    let mut problems = Vec::new();
    for (dir, _) in package.data_folders() {
        match package::data_files(&dir) {
            Ok(paths) => {
                files += paths.len();
                for path in paths {
                    let parsed = package::read_at_most(&path, package::MAX_DATA_FILE_BYTES)
                        .and_then(|bytes| {
                            serde_json::from_slice::<serde_json::Value>(&bytes)
                                .map_err(anyhow::Error::from)
                        });
                    if let Err(e) = parsed {
                        problems.push(format!("{}: {e:#}", path.display()));
                    }
                }
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if problems.is_empty() {
        Check::new(
            "data-folders",
            Status::Pass,
            format!("{files} data files, all JSON"),
        )
    } else {
        Check::new(
            "data-folders",
            Status::Fail,
            format!("{} of {files} data files cannot be read", problems.len()),
        )
        .with_details(problems)
    }
}

/// Every `*.json` file of the folder, read as a fixture.
fn read_fixtures(dir: &Path) -> Result<Vec<(PathBuf, Fixture)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        anyhow!(
            "{}: cannot read the fixtures folder: {e}; capture fixtures with `graft fixture capture`",
            dir.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!(
            "{}: no fixtures (*.json) in the folder; capture them with `graft fixture capture`",
            dir.display()
        );
    }
    paths
        .into_iter()
        .map(|path| Fixture::read(&path).map(|f| (path, f)))
        .collect()
}

/// The fixture's release of the module, if the package applies to it.
fn applies(
    fixture: &Fixture,
    id: &ModuleId,
    described: &crate::host::wit::Description,
) -> Result<ModuleId, String> {
    let Some(release) = fixture.release_of(&id.name) else {
        return Err(format!("holds no enabled {}", id.name));
    };
    if release.version > id.version {
        return Err(format!("holds {release}, newer than {id}"));
    }
    let known = release.version == id.version
        || described
            .upgrades_from
            .iter()
            .any(|r| r == release.version.as_str());
    if !known {
        return Err(format!(
            "holds {release}; the plugin does not upgrade from {}",
            release.version.as_str()
        ));
    }
    Ok(release)
}
