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

mod compare;
pub mod junit;

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
}

impl Validator<'_> {
    pub fn validate(&self, package_dir: &Path, fixtures_dir: &Path) -> Result<Validation> {
        if !package_dir.is_dir() {
            bail!(
                "{}: no such package folder: give the folder with ModuleDescriptor.json and the plugin",
                package_dir.display()
            );
        }
        let fixtures = read_fixtures(fixtures_dir)?;
        let mut validation = Validation {
            package: package_dir.to_path_buf(),
            module: None,
            ok: true,
            checks: Vec::new(),
            fixtures: Vec::new(),
            not_applicable: Vec::new(),
        };
        let Some((package, described)) = self.check_package(package_dir, &mut validation) else {
            validation.ok = false;
            return Ok(validation);
        };
        validation.module = Some(package.id.to_string());
        let catalog_dir = match &self.modules_dir {
            Some(dir) => dir.clone(),
            None => package_dir
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        let catalog = Catalog::new(&catalog_dir);
        let found = catalog.find(&package.id).map_err(|e| {
            anyhow!(
                "{}: the modules folder must hold the package under test: {e}",
                catalog_dir.display()
            )
        })?;
        if found.dir.canonicalize().ok() != package.dir.canonicalize().ok() {
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
        validation.ok = validation.count(Status::Fail) == 0;
        Ok(validation)
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
                        crate::host::CONTRACT
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

struct Context<'a> {
    host: &'a Host,
    limits: &'a Limits,
    catalog: &'a Catalog,
    catalog_dir: &'a Path,
    package: &'a Package,
    rolls_back_to: &'a [String],
}

/// One restored copy of a fixture: a tenant in its own data directory.
struct Copy {
    tenants: Tenants,
    journal: Journal,
    tenant: String,
}

/// The throwaway copy's tenant id: the fixture's own where it is a valid
/// tenant id (plugins see it, and it seeds their random numbers), else the
/// same made valid: fixtures captured before graft took Okapi's rule have
/// tenants such as `users_1_0_0`.
fn copy_tenant_id(captured: &str) -> String {
    if crate::storage::check_tenant_id(captured).is_ok() {
        return captured.to_string();
    }
    let mut id: String = captured
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .skip_while(|c| !c.is_ascii_lowercase())
        .take(31)
        .collect();
    if id.is_empty() {
        id = "fixture".into();
    }
    id
}

impl Context<'_> {
    fn restore(&self, fixture: &Fixture, path: &Path, dir: &Path) -> Result<Copy> {
        let copy = Copy {
            tenants: Tenants::new(dir),
            journal: Journal::new(dir),
            tenant: copy_tenant_id(&fixture.tenant),
        };
        copy.tenants
            .create(&copy.tenant)
            .and_then(|()| copy.tenants.open(&copy.tenant))
            .and_then(|mut db| fixture.restore(&mut *db))
            .map_err(|e| anyhow!("{}: cannot restore the fixture: {e:#}", path.display()))?;
        Ok(copy)
    }

    fn run(&self, copy: &Copy, id: &ModuleId, options: &InstallOptions) -> Result<TenantReport> {
        let installer = Installer {
            tenants: &copy.tenants,
            catalog: self.catalog,
            host: self.host,
            journal: &copy.journal,
            limits: self.limits,
        };
        let job = Job::Modules(vec![Request {
            id: id.to_string(),
            action: RequestAction::Enable,
        }]);
        installer.run(&copy.tenant, &job, options)
    }

    fn dump(&self, copy: &Copy) -> Result<Dump> {
        copy.tenants
            .open(&copy.tenant)?
            .dump()
            .map_err(|e| anyhow!("tenant {}: {e}", copy.tenant))
    }

    fn run_fixture(
        &self,
        path: &Path,
        fixture: &Fixture,
        release: ModuleId,
    ) -> Result<FixtureResult> {
        let started = Instant::now();
        let module = &self.package.id.name;
        let target = &self.package.id;
        let work = tempfile::tempdir()?;
        let a = self.restore(fixture, path, &work.path().join("a"))?;
        let b = self.restore(fixture, path, &work.path().join("b"))?;
        let options = InstallOptions {
            // Load reference data where the tenant had it loaded.
            load_reference: fixture.bases.contains_key(module),
            clock: Some(fixture.clock()?),
            ..InstallOptions::default()
        };
        let simulate = InstallOptions {
            simulate: true,
            ..options.clone()
        };
        let before = self.dump(&a)?;
        let edits = {
            let mut db = a.tenants.open(&a.tenant)?;
            crate::overlay::diff(&mut *db, module).map_err(|e| anyhow!("{e}"))?
        };
        let simulated = self.run(&a, target, &simulate)?;
        let first = self.run(&a, target, &options)?;
        let after_first = self.dump(&a)?;
        let again = self.run(&a, target, &options)?;
        let on_copy = self.run(&b, target, &options)?;
        let after_copy = self.dump(&b)?;

        let mut checks = Vec::new();
        let upgraded = module_report(&first, module);
        checks.push(check_inspect(upgraded, &release));
        checks.push(check_upgrade(&first, upgraded, &release, target));
        let upgrade_ok = first.ok;
        let skip =
            |check: &'static str| Check::new(check, Status::Skip, "not run: the upgrade failed");
        if upgrade_ok {
            checks.push(check_idempotent(&again, module, target));
            checks.push(check_simulation(&simulated, &first));
            checks.push(check_deterministic(
                &first,
                &on_copy,
                &after_first,
                &after_copy,
                module,
            ));
            checks.push(check_overlay(&edits, &before, &after_first, module));
        } else {
            for check in ["idempotent", "simulation", "deterministic", "overlay"] {
                checks.push(skip(check));
            }
        }
        let mut reports = vec![&simulated, &first, &again, &on_copy];
        let rolled_back;
        if !upgrade_ok {
            checks.push(skip("rollback"));
        } else if release.version == target.version {
            checks.push(Check::new(
                "rollback",
                Status::Skip,
                format!("the fixture is at {target} already: nothing to roll back"),
            ));
        } else if !self
            .rolls_back_to
            .iter()
            .any(|r| r == release.version.as_str())
        {
            checks.push(Check::new(
                "rollback",
                Status::Skip,
                format!(
                    "the plugin does not roll back to {} (it rolls back to [{}])",
                    release.version.as_str(),
                    self.rolls_back_to.join(", ")
                ),
            ));
        } else if self.catalog.find(&release).is_err() {
            checks.push(Check::new(
                "rollback",
                Status::Skip,
                format!(
                    "no package of {release} in {}: put it beside the package (or use --modules) to check the rollback",
                    self.catalog_dir.display()
                ),
            ));
        } else {
            rolled_back = self.run(&a, &release, &options)?;
            let after = self.dump(&a)?;
            checks.push(check_rollback(
                &rolled_back,
                &before,
                &after,
                module,
                &release,
            ));
            reports.push(&rolled_back);
        }
        checks.push(self.check_resources(&reports));
        Ok(FixtureResult {
            fixture: path.to_path_buf(),
            release: release.to_string(),
            duration_ms: started.elapsed().as_millis() as u64,
            checks,
        })
    }

    /// The most any step used of each limit, across every run.
    fn check_resources(&self, reports: &[&TenantReport]) -> Check {
        let limits = self.limits.for_module(&self.package.limits);
        let module = &self.package.id.name;
        let steps = reports
            .iter()
            .filter_map(|r| module_report(r, module))
            .flat_map(|m| &m.steps);
        let mut peak: [(f64, String); 4] = Default::default();
        let (mut ms, mut fuel_used, mut memory, mut log) = (0u64, 0u64, 0u64, 0u64);
        for step in steps {
            ms = ms.max(step.usage.duration_ms);
            memory = memory.max(step.usage.peak_memory_bytes);
            log = log.max(step.log.volume());
            let used = [
                step.usage.duration_ms as f64 / limits.deadline.as_millis().max(1) as f64,
                limits
                    .fuel
                    .map(|f| step.usage.fuel.unwrap_or(0) as f64 / f.max(1) as f64)
                    .unwrap_or(0.0),
                step.usage.peak_memory_bytes as f64 / limits.memory_bytes.max(1) as f64,
                step.log.volume() as f64 / limits.log_bytes.max(1) as f64,
            ];
            fuel_used = fuel_used.max(step.usage.fuel.unwrap_or(0));
            for (slot, used) in peak.iter_mut().zip(used) {
                if used > slot.0 {
                    *slot = (used, step.step.clone());
                }
            }
        }
        let names = ["time", "fuel", "memory", "log volume"];
        let fuel_text = match limits.fuel {
            Some(limit) => format!("fuel {fuel_used} of {limit}"),
            None => format!("fuel {fuel_used} (not limited)"),
        };
        let message = format!(
            "most of one step: time {ms} ms of {:.0} s, {fuel_text}, memory {:.1} of {} MiB, log {log} of {} bytes",
            limits.deadline.as_secs_f64(),
            memory as f64 / (1 << 20) as f64,
            limits.memory_bytes >> 20,
            limits.log_bytes
        );
        let details: Vec<String> = names
            .iter()
            .zip(&peak)
            .filter(|(_, (used, _))| *used > 0.5)
            .map(|(name, (used, step))| {
                format!(
                    "{name}: step {step} used {:.0}% of the limit, less than 50% headroom",
                    used * 100.0
                )
            })
            .collect();
        let status = if peak.iter().any(|(used, _)| *used >= 1.0) {
            Status::Fail
        } else if details.is_empty() {
            Status::Pass
        } else {
            Status::Warn
        };
        Check::new("resources", status, message).with_details(details)
    }
}

fn module_report<'r>(report: &'r TenantReport, module: &str) -> Option<&'r ModuleReport> {
    report.modules.iter().find(|m| m.module == module)
}

fn failure_text(report: &TenantReport) -> String {
    report
        .failure()
        .map(|f| f.to_string())
        .unwrap_or_else(|| "the job failed".into())
}

fn check_inspect(report: Option<&ModuleReport>, release: &ModuleId) -> Check {
    let expected = format!("release {}", release.version.as_str());
    match report.and_then(|m| m.stored.as_deref()) {
        None => Check::new(
            "inspect",
            Status::Fail,
            report
                .and_then(|m| m.failure.as_ref())
                .map(|f| format!("inspect did not answer: {f}"))
                .unwrap_or_else(|| "inspect did not run".into()),
        ),
        Some(stored) if stored == expected => {
            Check::new("inspect", Status::Pass, format!("recognises {release}"))
        }
        Some(stored) => Check::new(
            "inspect",
            Status::Fail,
            format!("the fixture holds {release}, inspect says `{stored}`"),
        ),
    }
}

fn check_upgrade(
    report: &TenantReport,
    module: Option<&ModuleReport>,
    from: &ModuleId,
    to: &ModuleId,
) -> Check {
    if !report.ok {
        return Check::new("upgrade", Status::Fail, failure_text(report));
    }
    let changed: u64 = report.changes().iter().map(|c| c.total()).sum();
    let outcome = module.and_then(|m| m.outcome_of("upgrade")).unwrap_or("-");
    let what = if from == to {
        format!("{to} again")
    } else {
        format!("{from} -> {to}")
    };
    Check::new(
        "upgrade",
        Status::Pass,
        format!("{what}: {outcome}, {changed} record changes"),
    )
}

fn check_idempotent(again: &TenantReport, module: &str, target: &ModuleId) -> Check {
    if !again.ok {
        return Check::new(
            "idempotent",
            Status::Fail,
            format!("the second run failed: {}", failure_text(again)),
        );
    }
    let report = module_report(again, module);
    let expected = format!("release {}", target.version.as_str());
    let stored = report.and_then(|m| m.stored.as_deref()).unwrap_or("-");
    if stored != expected {
        return Check::new(
            "idempotent",
            Status::Fail,
            format!("after the upgrade, inspect says `{stored}`, not {expected}"),
        );
    }
    let changes: Vec<_> = again
        .changes()
        .into_iter()
        .filter(|c| c.total() > 0 || !c.schema.is_empty())
        .collect();
    let outcome = report.and_then(|m| m.outcome_of("upgrade")).unwrap_or("-");
    if changes.is_empty() && outcome == "unchanged" {
        return Check::new(
            "idempotent",
            Status::Pass,
            format!("inspect then says {expected}; the second run is unchanged"),
        );
    }
    let mut details: Vec<String> = Vec::new();
    let mut first_record = None;
    for c in &changes {
        details.push(format!(
            "module {}, collection {}: {} inserted, {} updated, {} deleted{}",
            c.module,
            c.collection,
            c.inserted,
            c.updated,
            c.deleted,
            if c.schema.is_empty() {
                String::new()
            } else {
                format!("; schema: {}", c.schema.join("; "))
            }
        ));
        if let Some(sample) = c.samples.first() {
            let mut one = compare::Differences::default();
            let before = sample.before.iter().map(|v| (sample.id.clone(), v.clone()));
            let after = sample.after.iter().map(|v| (sample.id.clone(), v.clone()));
            compare::records(
                &c.collection,
                ("first run", &before.collect()),
                ("second run", &after.collect()),
                &mut one,
            );
            let lines = one.into_details();
            first_record = first_record.or(lines.first().cloned());
            details.extend(lines);
        }
    }
    let first = first_record
        .or(details.first().cloned())
        .unwrap_or_else(|| "no data changes".into());
    Check::new(
        "idempotent",
        Status::Fail,
        format!("the second run was `{outcome}` and changed data: {first}"),
    )
    .with_details(details)
}

fn check_simulation(simulated: &TenantReport, real: &TenantReport) -> Check {
    let mut differences = compare::change_logs(
        ("the simulation", &simulated.changes()),
        ("the real run", &real.changes()),
    );
    let outcomes = |r: &TenantReport| -> Vec<(String, String)> {
        r.modules
            .iter()
            .flat_map(|m| m.steps.iter().map(|s| (s.step.clone(), s.outcome.clone())))
            .collect()
    };
    if simulated.ok != real.ok || outcomes(simulated) != outcomes(real) {
        differences.lines.insert(
            0,
            format!(
                "steps: the simulation {:?}, the real run {:?}",
                outcomes(simulated),
                outcomes(real)
            ),
        );
    }
    if differences.is_empty() {
        let changed: u64 = real.changes().iter().map(|c| c.total()).sum();
        return Check::new(
            "simulation",
            Status::Pass,
            format!("the simulation reported exactly the real run's {changed} record changes"),
        );
    }
    Check::failed(
        "simulation",
        "the simulation differs from the real run".into(),
        differences,
    )
}

fn check_deterministic(
    first: &TenantReport,
    second: &TenantReport,
    after_first: &Dump,
    after_second: &Dump,
    module: &str,
) -> Check {
    if !second.ok {
        return Check::new(
            "deterministic",
            Status::Fail,
            format!(
                "the same upgrade failed on a second copy: {}",
                failure_text(second)
            ),
        );
    }
    let mut differences = compare::collections(
        ("copy 1", after_first.collections.get(module)),
        ("copy 2", after_second.collections.get(module)),
    );
    let empty = std::collections::BTreeMap::new();
    let (bases_1, bases_2) = (
        after_first.bases.get(module).unwrap_or(&empty),
        after_second.bases.get(module).unwrap_or(&empty),
    );
    for collection in bases_1.keys().chain(bases_2.keys()) {
        let none = std::collections::BTreeMap::new();
        compare::records(
            &format!("{collection} (vendor base)"),
            ("copy 1", bases_1.get(collection).unwrap_or(&none)),
            ("copy 2", bases_2.get(collection).unwrap_or(&none)),
            &mut differences,
        );
    }
    if differences.is_empty() {
        let logs =
            compare::change_logs(("copy 1", &first.changes()), ("copy 2", &second.changes()));
        differences = logs;
    }
    if differences.is_empty() {
        return Check::new(
            "deterministic",
            Status::Pass,
            "two copies upgraded to identical data",
        );
    }
    Check::failed(
        "deterministic",
        "two copies of the fixture upgraded to different data".into(),
        differences,
    )
}

fn check_overlay(
    edits: &[crate::overlay::TenantChange],
    before: &Dump,
    after: &Dump,
    module: &str,
) -> Check {
    if edits.is_empty() {
        return Check::new(
            "overlay",
            Status::Skip,
            "the fixture has no tenant edits of reference data to keep",
        );
    }
    let empty = std::collections::BTreeMap::new();
    let lost = compare::lost_edits(
        edits,
        before.collections.get(module).unwrap_or(&empty),
        after.collections.get(module),
    );
    if lost.is_empty() {
        return Check::new(
            "overlay",
            Status::Pass,
            format!("all {} tenant changes to reference data kept", edits.len()),
        );
    }
    Check::failed("overlay", "a tenant edit was lost".into(), lost)
}

fn check_rollback(
    report: &TenantReport,
    before: &Dump,
    after: &Dump,
    module: &str,
    release: &ModuleId,
) -> Check {
    if !report.ok {
        return Check::new(
            "rollback",
            Status::Fail,
            format!(
                "the downgrade to {release} failed: {}",
                failure_text(report)
            ),
        );
    }
    let differences = compare::collections(
        ("the fixture", before.collections.get(module)),
        ("after the rollback", after.collections.get(module)),
    );
    if differences.is_empty() {
        let records: usize = before
            .collections
            .get(module)
            .map(|c| c.values().map(|d| d.records.len()).sum())
            .unwrap_or(0);
        return Check::new(
            "rollback",
            Status::Pass,
            format!("the downgrade to {release} gave back the fixture's {records} records exactly"),
        );
    }
    Check::failed(
        "rollback",
        format!("the downgrade to {release} did not give back the fixture"),
        differences,
    )
}
