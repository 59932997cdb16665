//! Tenants and what they hold: `tenant`, `modules list`, `status`,
//! `history`, `changes`, `reference diff`.

use super::config::open;
use super::{print, Cli};
use anyhow::Result;
use clap::{Args, Subcommand};

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
    List,
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

pub(super) fn modules(cli: &Cli) -> Result<()> {
    let graft = open(cli)?;
    let (packages, unusable) = graft.packages()?;
    print::modules(graft.modules_dir(), &packages, &unusable, cli.json);
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
