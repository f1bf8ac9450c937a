//! One interface for every way of running the workload.
//!
//! The CLI and the benchmark matrix only ever talk to [`Isolation`]; no caller
//! special-cases a backend. Each backend lives in its own module. Beside
//! them: the artifacts they run ([`artifacts`]: the static workload and the
//! tiny guest, built by `build.rs`), the Linux guest kernel ([`kernel`]),
//! what this host can do ([`doctor`]) and the removal of what a killed run
//! left behind ([`clean`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workload::args::Config;
use workload::schema::ResultLine;

pub mod artifacts;
pub mod child;
pub mod clean;
pub mod container;
pub mod disk;
pub mod doctor;
pub mod kernel;
pub mod nanos;
pub mod native;
pub mod net;
pub mod netpeer;
pub mod progress;
pub mod vm_linux;
pub mod vm_tiny;

/// Which isolation a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationKind {
    /// A plain child process: the baseline.
    Native,
    /// Our container runtime.
    Container,
    /// Our VMM running the freestanding tiny guest.
    VmTiny,
    /// Our VMM booting a Linux guest whose `/init` is the workload.
    VmLinux,
}

impl IsolationKind {
    /// Every kind, in report order.
    pub const ALL: [IsolationKind; 4] =
        [Self::Native, Self::Container, Self::VmTiny, Self::VmLinux];

    /// Stable short name used in tables, JSON and file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Container => "container",
            Self::VmTiny => "vm-tiny",
            Self::VmLinux => "vm-linux",
        }
    }
}

impl std::fmt::Display for IsolationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// The isolab workload with this configuration, parsed once by the caller
    /// with the workload's own parser. Its `io_target` is a path on this host;
    /// each backend shows the guest or container its own view of it
    /// ([`disk`] for the VMs), and [`workload::args::Config::to_args`] makes
    /// the child's or guest's argv.
    Probes(workload::args::Config),
    /// An arbitrary program (resolved inside the isolation's root) and its arguments.
    Program {
        /// Program path or name.
        program: String,
        /// Arguments after the program.
        args: Vec<String>,
    },
}

/// Resource settings for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Memory limit (container) or guest RAM size (VM), in bytes.
    pub memory: Option<u64>,
    /// CPU limit (container: quota/period) or vCPU count (VM).
    pub cpus: Option<f64>,
    /// Wall-clock limit for the whole run.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: None,
            cpus: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Exit {
    /// The program (or guest) finished with this status.
    Exited {
        /// Exit status.
        code: i32,
    },
    /// The program was killed by a signal.
    Signaled {
        /// Signal number.
        signal: i32,
    },
    /// Killed by the OOM killer inside its memory limit.
    OomKilled,
    /// Stopped because it exceeded `Limits::timeout`.
    Timeout,
    /// The VM stopped for a reason other than a clean exit (triple fault, host limitation…).
    VmStopped {
        /// Human explanation, e.g. "triple fault" or "host KVM cannot deliver exceptions".
        detail: String,
    },
}

impl Exit {
    /// True for a clean exit with status 0.
    pub fn success(&self) -> bool {
        matches!(self, Exit::Exited { code: 0 })
    }
}

/// Boot time, measured by the host from just before it asked for the run to the
/// moment it saw the workload's ready marker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootTimes {
    /// Whole time to the ready marker.
    #[serde(rename = "total_ns", with = "nanos")]
    pub total: Duration,
    /// Part spent before the workload/guest started executing (runtime or VMM set-up).
    #[serde(rename = "setup_ns", with = "nanos::option", default)]
    pub setup: Option<Duration>,
    /// Part spent in a guest kernel, where there is one: from the guest's
    /// first instruction to its init starting.
    #[serde(rename = "kernel_ns", with = "nanos::option", default)]
    pub kernel: Option<Duration>,
    /// Part from a guest's init starting to the ready marker.
    #[serde(rename = "init_ns", with = "nanos::option", default)]
    pub init: Option<Duration>,
}

/// Resource accounting gathered after a run. Fields a backend cannot measure are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    /// Peak RSS of the host-side process(es) the run created (workload, runtime or VMM).
    pub host_peak_rss_bytes: Option<u64>,
    /// Peak RSS of the runtime/VMM itself, excluding the workload or guest RAM.
    pub overhead_bytes: Option<u64>,
    /// Peak memory charged to the container's cgroup.
    pub cgroup_peak_bytes: Option<u64>,
    /// Guest RAM actually touched (resident) at the end of a VM run.
    pub guest_touched_bytes: Option<u64>,
    /// CPU time (user + system) consumed.
    #[serde(rename = "cpu_time_ns", with = "nanos::option", default)]
    pub cpu_time: Option<Duration>,
    /// OOM kills recorded by the cgroup.
    pub oom_kills: Option<u64>,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The isolation that ran it.
    pub kind: IsolationKind,
    /// How it ended.
    pub exit: Exit,
    /// Boot time, when the program printed a ready marker.
    pub boot: Option<BootTimes>,
    /// Parsed workload result lines (empty for arbitrary programs).
    pub results: Vec<ResultLine>,
    /// The program's standard output (VM: the result stream), verbatim.
    pub stdout: Vec<u8>,
    /// Diagnostics: standard error, or a VM's console log.
    pub console: Vec<u8>,
    /// Resource accounting.
    pub accounting: Accounting,
    /// Things the user should know about this run (fallbacks, host limitations).
    pub notes: Vec<String>,
}

/// Errors an isolation can return before or while running.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// The host lacks a capability this isolation needs.
    #[error("{kind} is not available on this host: {reason}")]
    Unsupported {
        /// The isolation.
        kind: IsolationKind,
        /// What is missing, and what the user can do.
        reason: String,
    },
    /// Invalid input (missing rootfs, bad kernel image, absurd memory size…).
    #[error("{0}")]
    BadInput(String),
    /// The workload printed a line that is not a valid result.
    #[error("malformed result line from the workload: {line:?}: {source}")]
    BadResult {
        /// The line.
        line: String,
        /// Why it did not parse.
        source: serde_json::Error,
    },
    /// I/O error talking to the child or the filesystem.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The program could not be started (native: `execve` failed).
    #[error("cannot start {program}")]
    CannotStart {
        /// The program as given.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// Error from the container runtime.
    #[error(transparent)]
    Container(#[from] ::container::Error),
    /// Error from the VMM.
    #[error(transparent)]
    Vm(#[from] ::microvm::Error),
}

impl IsolationError {
    /// The exit status a command-line runner ends with for this error, as
    /// podman and Docker do: 127 when the program is not found, 126 when it
    /// cannot be executed, 125 for every failure of isolab itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            IsolationError::CannotStart { source, .. } => match source.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
                _ => 126,
            },
            IsolationError::Container(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// A way of running the workload.
pub trait Isolation {
    /// Which kind this is.
    fn kind(&self) -> IsolationKind;
    /// Runs `invocation` under `limits` and returns what happened. A program that
    /// fails is an `Ok` outcome with a non-success [`Exit`]; `Err` means the run
    /// could not be carried out.
    fn run(&self, invocation: &Invocation, limits: &Limits) -> Result<Outcome, IsolationError>;
}

impl Invocation {
    /// The probes with this command line, parsed by the workload's own parser
    /// (`["cpu", "--reps", "3"]`); a bad word is the parser's error.
    pub fn probes<'a>(
        args: impl IntoIterator<Item = &'a str>,
    ) -> Result<Invocation, workload::args::ArgError> {
        Config::from_args(args).map(Invocation::Probes)
    }
}

/// Parses the workload's stdout into result lines. Lines that are not JSON
/// objects (e.g. a shell's output) are left out; a JSON object that does not
/// match the schema is an error, since it means the workload and host disagree.
pub fn parse_results(stdout: &[u8]) -> Result<Vec<ResultLine>, IsolationError> {
    let text = String::from_utf8_lossy(stdout);
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let parsed = serde_json::from_str(line).map_err(|source| IsolationError::BadResult {
            line: line.to_string(),
            source,
        })?;
        out.push(parsed);
    }
    Ok(out)
}

/// Options that select and configure a backend beyond [`Limits`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendOptions {
    /// Container root filesystem (default: a minimal root the runtime assembles).
    pub rootfs: Option<PathBuf>,
    /// OCI bundle directory for the container.
    pub bundle: Option<PathBuf>,
    /// Guest kernel for `vm-linux` (default: the cached project kernel).
    pub kernel: Option<PathBuf>,
    /// Extra kernel parameters for `vm-linux`.
    pub cmdline: String,
    /// Copy a VM's console to stdout as it runs.
    pub console: bool,
    /// Give a program the caller's own stdin, stdout and stderr (native and
    /// container): nothing is copied or kept, so [`Outcome::stdout`] and
    /// [`Outcome::console`] stay empty and no ready line is timestamped.
    /// Otherwise output is captured, at most [`CAPTURE_LIMIT`] bytes per stream.
    pub passthrough_stdio: bool,
    /// The container's network (`--net`); `None`: a namespace with only
    /// `lo`, or both networks when the `net` probe runs without a peer given.
    pub net: Option<net::ContainerNet>,
}

/// Bytes of each output stream a capturing backend keeps; the rest is read
/// (so the program never blocks) and counted in a note.
pub const CAPTURE_LIMIT: usize = 16 << 20;

/// The backend for `kind` with default options.
pub fn backend(kind: IsolationKind) -> Result<Box<dyn Isolation>, IsolationError> {
    backend_with(kind, &BackendOptions::default())
}

/// The micro VM for a caller that named no guest: the Linux guest where this
/// host boots it, else the tiny guest with a note saying why. The one place
/// the fallback is decided; a bundle never falls back (it needs a Linux root).
pub fn preferred_vm(
    options: &BackendOptions,
) -> Result<(Box<dyn Isolation>, Option<String>), IsolationError> {
    match backend_with(IsolationKind::VmLinux, options) {
        Err(IsolationError::Unsupported { reason, .. }) if options.bundle.is_none() => {
            let tiny = backend_with(IsolationKind::VmTiny, options)?;
            let note = format!("Linux guest unavailable ({reason}); using the tiny guest");
            Ok((tiny, Some(note)))
        }
        other => other.map(|b| (b, None)),
    }
}

/// The backend for `kind`, or `Unsupported` with the reason this host (or
/// this build) cannot run it.
pub fn backend_with(
    kind: IsolationKind,
    options: &BackendOptions,
) -> Result<Box<dyn Isolation>, IsolationError> {
    let unsupported = |reason: String| IsolationError::Unsupported { kind, reason };
    match kind {
        IsolationKind::Native => Ok(Box::new(native::Native {
            passthrough_stdio: options.passthrough_stdio,
        })),
        IsolationKind::Container => Ok(Box::new(container::Container {
            rootfs: options.rootfs.clone(),
            bundle: options.bundle.clone(),
            passthrough_stdio: options.passthrough_stdio,
            net: options.net,
        })),
        IsolationKind::VmTiny => {
            hostcaps::kvm::device_usable().map_err(unsupported)?;
            Ok(Box::new(vm_tiny::VmTiny::new()))
        }
        IsolationKind::VmLinux => {
            vm_linux::linux_guest_support().map_err(unsupported)?;
            Ok(Box::new(vm_linux::VmLinux {
                kernel: options.kernel.clone(),
                extra_cmdline: options.cmdline.clone(),
                serial_echo: options.console,
                // The kernel's chatter costs a port exit per byte; a reader
                // of the console (`--console`) gets all of it.
                quiet: !options.console,
                bundle: options.bundle.clone(),
                stream_output: options.passthrough_stdio,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The fallback follows the one Linux-guest verdict: the Linux guest
    /// where it boots, else the tiny guest with that verdict's reason; a
    /// bundle never falls back.
    #[test]
    fn preferred_vm_follows_the_linux_guest_verdict() {
        let test = "preferred_vm_follows_the_linux_guest_verdict";
        if !hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable()) {
            return;
        }
        let (vm, note) = preferred_vm(&BackendOptions::default()).unwrap();
        match vm_linux::linux_guest_support() {
            Ok(()) => {
                assert_eq!(vm.kind(), IsolationKind::VmLinux);
                assert_eq!(note, None);
            }
            Err(reason) => {
                assert_eq!(vm.kind(), IsolationKind::VmTiny);
                let note = note.unwrap();
                assert!(note.contains(&reason), "{note}");
                let bundle = BackendOptions {
                    bundle: Some(PathBuf::from("/nonexistent")),
                    ..BackendOptions::default()
                };
                assert!(matches!(
                    preferred_vm(&bundle),
                    Err(IsolationError::Unsupported { .. })
                ));
            }
        }
    }
}
