//! Tenants and what they hold: `tenant`, `modules list`, `status`,
//! `history`, `changes`, `reference diff`.

use super::config::open;
use super::{print, Cli};
use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use graft::module_id::{ModuleId, ModuleSpec};
use graft::package::Package;

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create tenants (each gets its own database).
    Create {
        /// Tenant ids (Okapi's rule): a lower-case letter, then lower-case
        /// letters or digits, at most 31.
        #[arg(required = true)]
        tenants: Vec<String>,
    },
    /// Delete tenants: their databases (or, on PostgreSQL, their schemas and
    /// metadata), also one graft refuses to open (empty, foreign, malformed).
    Delete {
        #[arg(required = true)]
        tenants: Vec<String>,
    },
    /// List tenants.
    List,
}

#[derive(Subcommand)]
pub enum ModulesCommand {
    /// List packages, with their interfaces and any problem that makes one unusable.
    List {
        /// Only the packages this id prefix matches, as Okapi's `filter`: a
        /// module name (mod-users) or a name and version prefix (mod-users-19,
        /// mod-users-19.4).
        #[arg(value_name = "PREFIX")]
        filter: Option<String>,
    },
}

#[derive(Args)]
pub struct TenantArg {
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
}

#[derive(Subcommand)]
pub enum ReferenceCommand {
    /// What the tenant edited, deleted and added, field by field.
    Diff {
        #[arg(long)]
        tenant: String,
        /// The module name, e.g. mod-inventory-storage.
        #[arg(long)]
        module: String,
    },
}

#[derive(Args)]
pub struct ChangesArgs {
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
    /// One job (see `graft history`); default: every job, summed per collection.
    #[arg(long, value_name = "JOB_ID")]
    pub job: Option<String>,
}

pub(super) fn tenant(cli: &Cli, command: &TenantCommand) -> Result<()> {
    let graft = open(cli)?;
    match command {
        TenantCommand::Create { tenants } => {
            graft.create_tenants(tenants)?;
            print::tenants_done(tenants, "created", cli.json);
        }
        TenantCommand::Delete { tenants } => {
            graft.delete_tenants(tenants)?;
            print::tenants_done(tenants, "deleted", cli.json);
        }
        TenantCommand::List => {
            print::tenants(&graft.tenant_names()?, graft.data_dir(), cli.json);
        }
    }
    Ok(())
}

pub(super) fn modules(cli: &Cli, filter: Option<&str>) -> Result<()> {
    let graft = open(cli)?;
    let (mut packages, mut unusable) = graft.packages()?;
    if let Some(filter) = filter {
        let prefix = ModuleSpec::parse(filter).map_err(|e| anyhow!("{e}"))?;
        packages.retain(|p| prefix.matches(&p.id));
        unusable.retain(|bad| {
            let name = bad
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            name.and_then(|n| ModuleId::parse(&n).ok())
                .is_some_and(|id| prefix.matches(&id))
        });
    }
    let listed: Vec<(Package, String)> = packages
        .into_iter()
        .map(|p| {
            let contract = graft.contract_of(&p);
            (p, contract)
        })
        .collect();
    print::modules(graft.modules_dir(), &listed, &unusable, cli.json);
    Ok(())
}

pub(super) fn status(cli: &Cli, tenant: &str) -> Result<()> {
    print::status(tenant, &open(cli)?.status(tenant)?, cli.json);
    Ok(())
}

pub(super) fn history(cli: &Cli, tenant: &str) -> Result<()> {
    print::history(&open(cli)?.history(tenant)?, cli.json);
    Ok(())
}

pub(super) fn changes(cli: &Cli, args: &ChangesArgs) -> Result<()> {
    let jobs = open(cli)?.job_changes(&args.tenant, args.job.as_deref())?;
    print::changes(&args.tenant, &jobs, args.job.is_some(), cli.json);
    Ok(())
}

pub(super) fn reference(cli: &Cli, command: &ReferenceCommand) -> Result<()> {
    let ReferenceCommand::Diff { tenant, module } = command;
    let diff = open(cli)?.reference_diff(tenant, module)?;
    print::reference_diff(tenant, module, &diff, cli.json);
    Ok(())
}
