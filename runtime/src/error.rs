//! The runtime command line's errors: each names the container or the field.

use std::io;

/// Errors of the OCI runtime command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container with this id under `--root`.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A container with this id is already there.
    #[error("container {0} already exists")]
    Exists(String),
    /// The id cannot name a container.
    #[error("invalid container id {0:?}: use letters, digits, `_`, `+`, `-` and `.`")]
    BadId(String),
    /// The container is not in a state that allows the operation.
    #[error("container {id} is {status}: {what}")]
    WrongState {
        /// The container.
        id: String,
        /// Its status now.
        status: String,
        /// What was refused.
        what: String,
    },
    /// Something the caller asked for that isolab does not do.
    #[error("{field}: {reason}")]
    Unsupported {
        /// The flag or config field.
        field: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// The container runtime failed.
    #[error(transparent)]
    Container(#[from] container::Error),
    /// A host operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: io::Error,
    },
}

impl Error {
    /// An I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// The runtime's result type.
pub type Result<T> = std::result::Result<T, Error>;
