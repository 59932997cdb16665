//! One fixture's runs: restored copies of the fixture's tenant, the jobs
//! on them, and the checks of what they did.

use super::*;

pub(super) struct Context<'a> {
    pub(super) host: &'a Host,
    pub(super) limits: &'a Limits,
    pub(super) catalog: &'a Catalog,
    pub(super) catalog_dir: &'a Path,
    pub(super) package: &'a Package,
    pub(super) rolls_back_to: &'a [String],
}

/// One restored copy of a fixture: a tenant in its own data directory.
pub(super) struct Copy {
    pub(super) tenants: Tenants,
    pub(super) journal: Journal,
    pub(super) tenant: String,
}

/// The throwaway copy's tenant id: the fixture's own where it is a valid
/// tenant id (plugins see it, and it seeds their random numbers), else the
/// same made valid: fixtures captured before graft took Okapi's rule have
/// tenants such as `users_1_0_0`.
pub(super) fn copy_tenant_id(captured: &str) -> String {
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
    pub(super) fn restore(&self, fixture: &Fixture, path: &Path, dir: &Path) -> Result<Copy> {
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

    pub(super) fn run(
        &self,
        copy: &Copy,
        id: &ModuleId,
        options: &InstallOptions,
    ) -> Result<TenantReport> {
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

    pub(super) fn dump(&self, copy: &Copy) -> Result<Dump> {
        copy.tenants
            .open(&copy.tenant)?
            .dump()
            .map_err(|e| anyhow!("tenant {}: {e}", copy.tenant))
    }

    pub(super) fn run_fixture(
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
            // The same job again is the idempotency check: its plugin must
            // run, not be skipped as up to date.
            reinstall: true,
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
    pub(super) fn check_resources(&self, reports: &[&TenantReport]) -> Check {
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
