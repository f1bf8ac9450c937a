//! The container backend: the workload (or any program) in isolab's own
//! container runtime, with a minimal root holding the static workload binary
//! and busybox.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use container::{ContainerSpec, ExitStatus, RootSpec, Stdio, Volume};

use super::child::{is_ready_line, vm_hwm_bytes};
use super::{
    Accounting, BootTimes, Exit, Invocation, Isolation, IsolationError, IsolationKind, Limits,
    Outcome, parse_results,
};
use crate::artifacts;

/// Where `Limits::io_target` appears inside the container.
pub const IO_MOUNT: &str = "/io";

/// Runs invocations in isolab's container runtime.
#[derive(Debug, Clone, Default)]
pub struct Container {
    /// Use this directory as the root instead of the minimal one.
    pub rootfs: Option<PathBuf>,
    /// Start from this OCI bundle's `config.json` (its root, mounts, limits
    /// and security settings); a program invocation replaces its
    /// `process.args`, unless the program is empty.
    pub bundle: Option<PathBuf>,
    /// Give the container the caller's own stdin, stdout and stderr.
    pub passthrough_stdio: bool,
}

impl Container {
    /// A container runner with the default minimal root.
    pub fn new() -> Container {
        Container::default()
    }
}

/// The container spec for `invocation` under `limits`.
pub fn spec_for(
    invocation: &Invocation,
    limits: &Limits,
    rootfs: Option<&Path>,
    bundle: Option<&Path>,
) -> Result<ContainerSpec, IsolationError> {
    let (mut spec, mut args) = match (invocation, bundle) {
        (Invocation::Probes(probes), Some(dir)) => {
            let bin = artifacts::workload_binary()
                .map_err(|e| IsolationError::BadInput(e.to_string()))?;
            let spec = container::oci::load_bundle(dir)?
                .program("/isolab-workload")
                .volume(Volume {
                    host: bin,
                    guest: "/isolab-workload".into(),
                    readonly: true,
                });
            (spec, probes.clone())
        }
        // No program: the bundle's own process.args, as `runc run` does.
        (Invocation::Program { program, .. }, Some(dir)) if program.is_empty() => {
            let spec = container::oci::load_bundle(dir)?;
            let args = spec.args.clone();
            (spec, args)
        }
        (Invocation::Program { program, args }, Some(dir)) => (
            container::oci::load_bundle(dir)?.program(program.as_str()),
            args.clone(),
        ),
        (Invocation::Probes(probes), None) => {
            let bin = artifacts::workload_binary()
                .map_err(|e| IsolationError::BadInput(e.to_string()))?;
            let spec = match rootfs {
                Some(dir) => {
                    // The workload comes from the host, bound read-only into the given root.
                    ContainerSpec::with_rootfs(dir, "/isolab-workload").volume(Volume {
                        host: bin.clone(),
                        guest: "/isolab-workload".into(),
                        readonly: true,
                    })
                }
                None => ContainerSpec::minimal(&bin),
            };
            (spec, probes.clone())
        }
        (Invocation::Program { program, args }, None) => {
            let spec = match rootfs {
                Some(dir) => ContainerSpec::with_rootfs(dir, program.as_str()),
                None => {
                    let mut s = ContainerSpec::minimal("/bin/busybox").program(program.as_str());
                    s.root = RootSpec::Minimal {
                        binaries: Vec::new(),
                        busybox: true,
                    };
                    s
                }
            };
            (spec, args.clone())
        }
    };
    if let Some(target) = &limits.io_target {
        let inside = if target.is_dir() {
            spec = spec.volume(Volume {
                host: target.clone(),
                guest: IO_MOUNT.into(),
                readonly: false,
            });
            PathBuf::from(IO_MOUNT)
        } else {
            let name = target.file_name().unwrap_or_default();
            let guest = Path::new(IO_MOUNT).join(name);
            // A file that does not exist yet: bind its directory instead.
            let (host, g) = if target.exists() {
                (target.clone(), guest.clone())
            } else {
                (
                    target.parent().unwrap_or(Path::new("/")).to_path_buf(),
                    PathBuf::from(IO_MOUNT),
                )
            };
            spec = spec.volume(Volume {
                host,
                guest: g,
                readonly: false,
            });
            guest
        };
        if matches!(invocation, Invocation::Probes(_))
            && !args
                .iter()
                .any(|a| a == "--io-target" || a.starts_with("--io-target="))
        {
            args.push("--io-target".into());
            args.push(inside.display().to_string());
        }
    }
    spec.args = args;
    spec.stdout = Stdio::Piped;
    spec.stderr = Stdio::Piped;
    spec.capture_limit = super::CAPTURE_LIMIT;
    spec.timeout = Some(limits.timeout);
    // A bundle's own limits stay unless the command line overrides them.
    if limits.memory.is_some() || bundle.is_none() {
        spec.resources.memory = limits.memory;
    }
    if limits.cpus.is_some() || bundle.is_none() {
        spec.resources.cpus = limits.cpus;
    }
    Ok(spec)
}

impl Isolation for Container {
    fn kind(&self) -> IsolationKind {
        IsolationKind::Container
    }

    fn run(&self, invocation: &Invocation, limits: &Limits) -> Result<Outcome, IsolationError> {
        let mut spec = spec_for(
            invocation,
            limits,
            self.rootfs.as_deref(),
            self.bundle.as_deref(),
        )?;
        let passthrough =
            self.passthrough_stdio && matches!(invocation, Invocation::Program { .. });
        if passthrough {
            spec.stdin = Stdio::Inherit;
            spec.stdout = Stdio::Inherit;
            spec.stderr = Stdio::Inherit;
        }
        tracing::debug!(program = %spec.program, args = ?spec.args, "container: spawning");
        let mut running = container::spawn(&spec)?;
        let before_clone = running.times().before_clone;
        let stdout = running.take_stdout();
        let init_pid = running.pid();
        // Stdout is read on its own thread so the ready line is timestamped on
        // arrival; `wait` collects stderr and enforces the timeout meanwhile.
        let reader = std::thread::spawn(move || read_stdout(stdout, init_pid));
        let report = running.wait()?;
        let read = reader.join().map_err(|_| IsolationError::Io {
            context: "container stdout reader".into(),
            source: std::io::Error::other("reader thread panicked"),
        })?;
        let (stdout, ready_at, hwm) = (read.kept, read.ready_at, read.hwm);

        let exit = match (report.timed_out, report.oom_killed, report.status) {
            (true, _, _) => Exit::Timeout,
            (false, true, ExitStatus::Signaled(libc::SIGKILL)) => Exit::OomKilled,
            (false, _, ExitStatus::Exited(code)) => Exit::Exited { code },
            (false, _, ExitStatus::Signaled(signal)) => Exit::Signaled { signal },
        };
        let results = match invocation {
            Invocation::Probes(_) => parse_results(&stdout)?,
            Invocation::Program { .. } => parse_results(&stdout).unwrap_or_default(),
        };
        let boot = ready_at.map(|at| BootTimes {
            total: at.saturating_duration_since(before_clone),
            setup: report
                .times
                .exec
                .map(|e| e.saturating_duration_since(before_clone)),
            kernel: None,
            init: None,
        });
        let mut notes = report.notes.clone();
        let dropped = read.dropped + report.stderr_dropped;
        if dropped > 0 {
            notes.push(format!(
                "{dropped} bytes of output past the {} MiB capture limit were read and dropped",
                super::CAPTURE_LIMIT >> 20
            ));
        }
        if report.oom_killed && !matches!(exit, Exit::OomKilled) {
            notes.push(format!(
                "{} process(es) in the container were OOM-killed",
                report.stats.oom_kills.unwrap_or(0)
            ));
        }
        if let Some(sig) = report.interrupted {
            notes.push(format!(
                "interrupted by signal {sig}, forwarded to the container"
            ));
        }
        Ok(Outcome {
            kind: IsolationKind::Container,
            exit,
            boot,
            results,
            stdout,
            console: report.stderr,
            accounting: Accounting {
                host_peak_rss_bytes: hwm.or(report.stats.peak_memory_bytes),
                overhead_bytes: None,
                cgroup_peak_bytes: report.stats.peak_memory_bytes,
                guest_touched_bytes: None,
                cpu_time: report.stats.cpu_time,
                oom_kills: report.stats.oom_kills,
            },
            notes,
        })
    }
}

/// What the stdout reader saw.
struct StdoutRead {
    /// Up to [`super::CAPTURE_LIMIT`] bytes.
    kept: Vec<u8>,
    /// Bytes read past the limit.
    dropped: u64,
    /// When the workload's ready line arrived.
    ready_at: Option<Instant>,
    /// The container init's peak RSS, sampled at every line as the native
    /// backend does, so the two are measured the same way.
    hwm: Option<u64>,
}

fn read_stdout(stdout: Option<std::fs::File>, init_pid: i32) -> StdoutRead {
    let mut r = StdoutRead {
        kept: Vec::new(),
        dropped: 0,
        ready_at: None,
        hwm: None,
    };
    let Some(f) = stdout else { return r };
    let mut reader = BufReader::new(f);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        if r.ready_at.is_none() && is_ready_line(&line) {
            r.ready_at = Some(Instant::now());
        }
        if r.kept.len() < super::CAPTURE_LIMIT {
            r.hwm = r.hwm.max(vm_hwm_bytes(init_pid));
        }
        let room = super::CAPTURE_LIMIT
            .saturating_sub(r.kept.len())
            .min(line.len());
        r.kept.extend_from_slice(&line[..room]);
        r.dropped += (line.len() - room) as u64;
        line.clear();
    }
    r
}
