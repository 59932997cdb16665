//! Why a step fails. Returning an [`Error`] rolls back everything the step wrote.

use crate::bindings::graft::migration::store::StoreError;
use crate::bindings::graft::migration::types as wit;
use std::fmt;

/// The error of a step: either the plugin cannot do it (`unsupported`, the
/// platform's 400) or it failed (500), optionally at one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The plugin cannot do this step (say why).
    Unsupported(String),
    /// The step failed.
    Failed {
        message: String,
        collection: Option<String>,
        record_id: Option<String>,
    },
}

/// The result of a step or a storage call.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The plugin cannot do this step.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::Unsupported(message.into())
    }

    /// The step failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed {
            message: message.into(),
            collection: None,
            record_id: None,
        }
    }

    /// Name the record the failure happened at, so the operator can find it.
    pub fn at(self, collection: &str, record_id: &str) -> Self {
        match self {
            Error::Failed { message, .. } => Error::Failed {
                message,
                collection: Some(collection.to_string()),
                record_id: Some(record_id.to_string()),
            },
            unsupported => unsupported,
        }
    }

    /// Name the record, unless the failure names one already.
    pub(crate) fn or_at(self, collection: &str, record_id: &str) -> Self {
        match self {
            Error::Failed {
                record_id: None, ..
            } => self.at(collection, record_id),
            named => named,
        }
    }

    /// Name the collection the failure happened in, where no record is known.
    pub fn in_collection(self, collection: &str) -> Self {
        match self {
            Error::Failed {
                message, record_id, ..
            } => Error::Failed {
                message,
                collection: Some(collection.to_string()),
                record_id,
            },
            unsupported => unsupported,
        }
    }

    pub(crate) fn into_failure(self) -> wit::Failure {
        match self {
            Error::Unsupported(message) => wit::Failure::Unsupported(message),
            Error::Failed {
                message,
                collection,
                record_id,
            } => wit::Failure::Failed(wit::FailureDetail {
                message,
                collection,
                record_id,
            }),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported(message) => write!(f, "unsupported: {message}"),
            Error::Failed {
                message,
                collection,
                record_id,
            } => {
                write!(f, "{message}")?;
                if let Some(c) = collection {
                    write!(f, " (collection {c}")?;
                    if let Some(id) = record_id {
                        write!(f, ", record {id}")?;
                    }
                    write!(f, ")")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UniqueViolation(v) => Error::Failed {
                message: format!("unique index {} violated", v.index),
                collection: Some(v.collection),
                record_id: Some(v.record_id),
            },
            StoreError::NoSuchCollection(c) => Error::Failed {
                message: format!("no collection {c}"),
                collection: Some(c),
                record_id: None,
            },
            StoreError::InvalidName(m) => Error::failed(format!("invalid name: {m}")),
            StoreError::InvalidDocument(m) => Error::failed(format!("invalid document: {m}")),
            StoreError::Other(m) => Error::failed(format!("storage: {m}")),
            #[cfg(feature = "contract-0-2")]
            StoreError::NotPermitted(m) => Error::failed(format!("not permitted: {m}")),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::failed(format!("JSON: {e}"))
    }
}
