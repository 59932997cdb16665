//! `graft data`: a tenant's records, read and written as an operator.

use super::print;
use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use graft::edits::Edit;
use graft::Graft;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DataCommand {
    /// List the records of a collection.
    List(DataTarget),
    /// Show one record.
    Get {
        #[command(flatten)]
        target: DataTarget,
        id: String,
    },
    /// Insert or replace a record from a JSON file (`-` for standard input);
    /// the id is the record's `id` unless given.
    Put {
        #[command(flatten)]
        target: DataTarget,
        id: Option<String>,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a record.
    Delete {
        #[command(flatten)]
        target: DataTarget,
        id: String,
    },
}

#[derive(Args)]
pub struct DataTarget {
    #[arg(long)]
    pub tenant: String,
    /// The module name, e.g. mod-inventory-storage.
    #[arg(long)]
    pub module: String,
    #[arg(long)]
    pub collection: String,
}

pub(super) fn run(graft: &Graft, command: &DataCommand, json: bool) -> Result<()> {
    match command {
        DataCommand::List(t) => {
            let records = graft.data_list(&t.tenant, &t.module, &t.collection)?;
            print::records(&records, json);
        }
        DataCommand::Get { target: t, id } => {
            match graft.data_get(&t.tenant, &t.module, &t.collection, id)? {
                Some(doc) => print::print_json(&doc),
                None => {
                    return Err(anyhow!(
                        "tenant {}, collection {}: no record {id}",
                        t.tenant,
                        t.collection
                    ))
                }
            }
        }
        DataCommand::Put {
            target: t,
            id,
            file,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(file)
                    .map_err(|e| anyhow!("{}: cannot read: {e}", file.display()))?
            };
            let doc: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow!("{}: not JSON: {e}", file.display()))?;
            let id = match (id, doc.get("id").and_then(|v| v.as_str())) {
                (Some(id), _) => id.clone(),
                (None, Some(id)) => id.to_string(),
                (None, None) => {
                    return Err(anyhow!(
                        "{}: the record has no \"id\": give one after the collection",
                        file.display()
                    ))
                }
            };
            let report =
                graft.data_edit(&t.tenant, &t.module, &t.collection, &Edit::Put { id, doc })?;
            print::edit(&report, json);
        }
        DataCommand::Delete { target: t, id } => {
            let report = graft.data_edit(
                &t.tenant,
                &t.module,
                &t.collection,
                &Edit::Delete { id: id.clone() },
            )?;
            print::edit(&report, json);
        }
    }
    Ok(())
}
