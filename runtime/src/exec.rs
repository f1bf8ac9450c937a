//! `exec`: another process in a running container.

use std::path::PathBuf;

use clap::Args;

use crate::state::Store;
use crate::{BackendKind, Error, Result};

/// `exec`'s arguments (runc's).
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The process as runtime spec JSON (instead of the flags below).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Write the process's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master to.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    tty: bool,
    /// Working directory.
    #[arg(long)]
    cwd: Option<String>,
    /// Environment variables (KEY=VALUE).
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// UID\[:GID\].
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Extra descriptors to pass.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// The container id.
    id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs `exec`.
pub(crate) fn exec(_store: &Store, _backend: BackendKind, a: &ExecArgs) -> Result<i32> {
    Err(Error::Unsupported {
        field: "exec".into(),
        reason: format!("not implemented yet (container {})", a.id),
    })
}
