//! The runtime's error type: every variant names the thing and the path or value involved.

use std::io;
use std::path::PathBuf;

/// Errors of the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--rootfs` points at nothing.
    #[error("root filesystem {path} does not exist")]
    RootfsMissing {
        /// The path given.
        path: PathBuf,
    },
    /// `--rootfs` cannot be used (too long a path, no permission…).
    #[error("root filesystem {path} cannot be used: {source}")]
    RootfsUnusable {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `/proc`, `/sys` or `/dev` in the root is not a plain directory.
    #[error(
        "root filesystem {rootfs}: {path} is {what}; /proc, /sys and /dev must be plain directories (or absent), since the runtime mounts over them"
    )]
    RootfsSpecialPath {
        /// The root filesystem.
        rootfs: PathBuf,
        /// `/proc`, `/sys` or `/dev`.
        path: &'static str,
        /// What it is instead.
        what: String,
    },
    /// `--rootfs` is not a directory.
    #[error("root filesystem {path} is not a directory")]
    RootfsNotDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The program is not inside the root filesystem.
    #[error("program `{program}` not found in root filesystem {rootfs} (looked at: {looked})")]
    ProgramNotInRootfs {
        /// Program as given.
        program: String,
        /// The root filesystem searched.
        rootfs: PathBuf,
        /// Paths tried, comma separated.
        looked: String,
    },
    /// The program for the default root does not exist on the host.
    #[error(
        "program {path} does not exist on the host (the default root is built around a host binary)"
    )]
    ProgramMissing {
        /// The host path.
        path: PathBuf,
    },
    /// The program exists but is not an executable regular file.
    #[error("program {path} is not an executable file")]
    ProgramNotExecutable {
        /// The path checked (on the host).
        path: PathBuf,
    },
    /// The program is a script whose `#!` interpreter is not in the root.
    #[error(
        "cannot execute {program}: its interpreter {interpreter} (from the #! line) is not in the root filesystem"
    )]
    InterpreterMissing {
        /// The script, inside the container.
        program: String,
        /// The interpreter it names.
        interpreter: String,
    },
    /// A field of the spec has a value the runtime cannot use.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidSpec {
        /// Which setting.
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The memory limit cannot even hold the runtime's set-up and the program.
    #[error(
        "memory limit {limit} bytes is below the minimum of {minimum} bytes a container needs to start"
    )]
    MemoryLimitTooLow {
        /// The limit asked for.
        limit: u64,
        /// The smallest limit accepted.
        minimum: u64,
    },
    /// A `--volume HOST:GUEST[:ro]` argument is malformed or its source is missing.
    #[error("volume {spec:?}: {reason}")]
    BadVolume {
        /// The volume as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// The bundle has no readable `config.json`.
    #[error("cannot read OCI config {path}: {source}")]
    BundleConfigUnreadable {
        /// The config path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `config.json` is not valid JSON or does not match the OCI runtime schema.
    #[error("malformed OCI config {path}: {detail}")]
    BundleConfigMalformed {
        /// The config path.
        path: PathBuf,
        /// Parser message (with line and column where known).
        detail: String,
    },
    /// `config.json` uses a field this runtime does not implement.
    #[error("OCI config field `{field}` is not supported: {reason}")]
    UnsupportedOciField {
        /// JSON path of the field, e.g. `linux.seccomp`.
        field: String,
        /// What to do instead.
        reason: String,
    },
    /// No cgroup hierarchy usable for the requested limits.
    #[error("cgroup controller `{controller}` is not available: {reason}")]
    ControllerUnavailable {
        /// The controller (`memory`, `pids`, `cpu`).
        controller: &'static str,
        /// What was found instead.
        reason: String,
    },
    /// A cgroup file or directory operation failed.
    #[error("cgroup {op} {path}: {source}")]
    Cgroup {
        /// What was being done (`create`, `write`, `read`, `remove`).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The device cgroup program could not be loaded or attached.
    #[error("device cgroup: {0}")]
    DeviceCgroup(String),
    /// The seccomp filter could not be built.
    #[error("seccomp filter: {0}")]
    Seccomp(String),
    /// A host-side step before or after the container ran failed.
    #[error("{context}: {source}")]
    Host {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// A set-up step inside the new container failed; the child reported it before exiting.
    #[error("container set-up failed at `{step}`: {source}")]
    Setup {
        /// The step, e.g. `mount proc on /tmp/isolab-root-1/proc`.
        step: String,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// The child died during set-up without reporting why.
    #[error("container init died during set-up without a report ({status})")]
    ChildVanished {
        /// Its wait status, described.
        status: String,
    },
    /// The veth pair could not be created or configured.
    #[error("network set-up: {0}")]
    Network(String),
}

impl Error {
    /// The exit status a command-line runtime should end with for this error,
    /// as podman and Docker do: 127 when the program is not found, 126 when
    /// it cannot be executed, 125 for every failure of the runtime itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::ProgramNotInRootfs { .. }
            | Error::ProgramMissing { .. }
            | Error::InterpreterMissing { .. } => 127,
            Error::ProgramNotExecutable { .. } => 126,
            Error::Setup { step, source } if step.starts_with("execute ") => {
                match source.raw_os_error() {
                    Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
                    _ => 126,
                }
            }
            _ => 125,
        }
    }

    pub(crate) fn host(context: impl Into<String>, source: io::Error) -> Self {
        Error::Host {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;
