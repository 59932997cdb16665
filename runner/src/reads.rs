//! What operators read and manage outside a job: the tenants, the packages
//! the runner sees, a tenant's modules, its history (with the failed
//! attempts the journal keeps), the changes of its jobs, and fixtures taken
//! from it or restored into a new one. The CLI prints these values; it
//! never opens a database itself.

use crate::changelog::{self, CollectionChanges};
use crate::fixture::Fixture;
use crate::journal::JournalEntry;
use crate::package::{BadPackage, Package};
use crate::storage::{check_tenant_id, EnabledModule, HistoryEntry, JobRecord};
use crate::Graft;
use anyhow::{anyhow, bail, Result};
use serde::Serialize;

/// A tenant's steps, committed and failed.
#[derive(Debug, Serialize)]
pub struct History {
    pub tenant: String,
    /// Every committed step, oldest first.
    pub steps: Vec<HistoryEntry>,
    /// Attempts that failed and were rolled back (from the journal).
    pub failed: Vec<JournalEntry>,
}

/// One job of a tenant and what it changed.
#[derive(Debug, Serialize)]
pub struct JobChanges {
    pub job: JobRecord,
    pub changes: Vec<CollectionChanges>,
}

impl Graft {
    /// Every tenant, sorted.
    pub fn tenant_names(&self) -> Result<Vec<String>> {
        self.tenants.list()
    }

    /// Create tenants; every id is checked first, so nothing is created if
    /// one is bad.
    pub fn create_tenants(&self, tenants: &[String]) -> Result<()> {
        tenants.iter().try_for_each(|t| check_tenant_id(t))?;
        tenants.iter().try_for_each(|t| self.tenants.create(t))
    }

    /// Delete tenants, whatever state their databases are in; every id is
    /// checked first.
    pub fn delete_tenants(&self, tenants: &[String]) -> Result<()> {
        tenants.iter().try_for_each(|t| check_tenant_id(t))?;
        tenants.iter().try_for_each(|t| self.tenants.delete(t))
    }

    /// Every tenant of a selection, before any job runs on one: a valid id,
    /// known, named once.
    pub fn check_tenants(&self, tenants: &[String]) -> Result<()> {
        let known = self.tenants.list()?;
        for (n, tenant) in tenants.iter().enumerate() {
            check_tenant_id(tenant)?;
            if !known.contains(tenant) {
                bail!(
                    "unknown tenant {tenant}: create it with `graft tenant create {tenant}` (nothing ran)"
                );
            }
            if tenants[..n].contains(tenant) {
                bail!("tenant {tenant} is named twice (nothing ran)");
            }
        }
        Ok(())
    }

    /// The packages of the modules folder, and those that cannot be used.
    pub fn packages(&self) -> Result<(Vec<Package>, Vec<BadPackage>)> {
        self.catalog.scan()
    }

    /// The contract version a package's plugin was built for, as listings
    /// show it: `0.2.0`, `0.3.0 (not supported)`, or why it cannot be told.
    pub fn contract_of(&self, package: &Package) -> String {
        match crate::host::contract_version_of(&package.plugin) {
            Ok(version) if crate::host::Contract::of_version(&version).is_some() => version,
            Ok(version) => format!("{version} (not supported)"),
            Err(e) => format!("unknown: {}", crate::text::truncate(&format!("{e:#}"), 200)),
        }
    }

    /// The modules a tenant has, enabled or disabled with their data kept.
    pub fn status(&self, tenant: &str) -> Result<Vec<EnabledModule>> {
        let mut db = self.tenants.open(tenant)?;
        db.modules().map_err(|e| anyhow!("tenant {tenant}: {e}"))
    }

    pub fn history(&self, tenant: &str) -> Result<History> {
        let mut db = self.tenants.open(tenant)?;
        let steps = db.history().map_err(|e| anyhow!("tenant {tenant}: {e}"))?;
        Ok(History {
            tenant: tenant.to_string(),
            steps,
            failed: self.journal.for_tenant(tenant)?,
        })
    }

    /// Every job of a tenant with its changes, or the one job named.
    pub fn job_changes(&self, tenant: &str, job: Option<&str>) -> Result<Vec<JobChanges>> {
        let mut db = self.tenants.open(tenant)?;
        let jobs = db.jobs().map_err(|e| anyhow!("tenant {tenant}: {e}"))?;
        let selected: Vec<JobRecord> = match job {
            Some(id) => {
                let found: Vec<_> = jobs.into_iter().filter(|j| j.job_id == id).collect();
                if found.is_empty() {
                    bail!(
                        "tenant {tenant} has no job {id} (see `graft history --tenant {tenant}`)"
                    );
                }
                found
            }
            None => jobs,
        };
        selected
            .into_iter()
            .map(|job| {
                let changes = changelog::job_changes(&mut *db, &job.job_id)
                    .map_err(|e| anyhow!("tenant {tenant}: {e}"))?;
                Ok(JobChanges { job, changes })
            })
            .collect()
    }

    /// A tenant's data as a fixture (one module's, or all), read under the
    /// tenant's lock so no job is half-way through it.
    pub fn capture_fixture(&self, tenant: &str, module: Option<&str>) -> Result<Fixture> {
        let _lock = self.tenants.lock(tenant)?;
        let mut db = self.tenants.open(tenant)?;
        Fixture::capture(&mut *db, module)
    }

    /// A new tenant made of a fixture, created and filled as one: a kill or
    /// an error leaves no tenant, and the command can be run again.
    pub fn restore_fixture(&self, tenant: &str, fixture: &Fixture) -> Result<()> {
        self.tenants
            .create_with(tenant, |db| fixture.restore_into(db))
    }
}
