//! Real container front ends driving an OCI runtime: podman in a private
//! store, and the small image every front end runs.
//!
//! Used by the peers (podman with runc, crun or isolab as its runtime) and
//! by the front-end tests. Everything podman writes goes into one temporary
//! directory that is removed, with the containers, mounts and cgroups made
//! there, when the [`Podman`] is dropped.

pub mod cleanup;
mod image;
mod podman;

pub use image::{DEMO_APPLETS, write_demo_context};
pub use podman::Podman;

use std::path::PathBuf;

/// Errors setting up or driving a front end.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// The tool is not installed.
    #[error("{tool} is not installed (not found on PATH; scripts/setup-host installs it)")]
    Missing {
        /// The program looked for.
        tool: &'static str,
    },
    /// Writing a file or directory of the private store or image context failed.
    #[error("preparing {what} in {path}: {source}")]
    Prepare {
        /// What was being written.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A front-end command could not be started.
    #[error("cannot start {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A front-end command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its error output.
        stderr: String,
    },
}
