//! The OCI runtime command line: what runc and crun implement, enough for
//! podman, containerd's runc shim and dockerd to drive isolab.
//!
//! `isolab create --bundle B --pid-file P ID` sets the container up and
//! leaves its init blocked before `execve` until `isolab start ID`; the state
//! lives under `--root` (default `/run/isolab`) and outlives the command.
//! [`route`] decides from the command line whether the `isolab` binary is
//! asked to act as this runtime; [`main`] runs it.

mod backend;
mod cli;
mod console;
mod dispatch;
mod error;
mod exec;
mod features;
mod forward;
mod hooks;
mod lifecycle;
mod log;
mod procfs;
pub mod seccomp;
pub mod state;
mod syscall_table;
mod vm;

pub use backend::{Backend, BackendKind};
pub use dispatch::route;
pub use error::{Error, Result};

/// Runs the OCI runtime command line `args` (without the program name) on
/// `backend`; returns the process exit status.
pub fn main(backend: BackendKind, args: Vec<std::ffi::OsString>) -> i32 {
    cli::run(backend, args)
}
