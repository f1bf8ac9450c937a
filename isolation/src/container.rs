//! The container backend: the workload (or any program) in isolab's own
//! container runtime, with a minimal root holding the static workload binary
//! and busybox.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use container::{ContainerSpec, ExitStatus, RootSpec, Stdio, Volume};

use super::child::{is_ready_line, vm_hwm_bytes};
use super::disk::seen_as;
use super::{
    Accounting, BootTimes, Exit, Invocation, Isolation, IsolationError, IsolationKind, Limits,
    Outcome, parse_results,
};
use crate::artifacts;

/// Where the probes' io target appears inside the container.
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
    /// The network to make (`--net`); see [`crate::net`].
    pub net: Option<crate::net::ContainerNet>,
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
    let (mut spec, args) = match bundle {
        Some(dir) => bundle_spec(invocation, dir)?,
        None => host_spec(invocation, rootfs)?,
    };
    let args = match invocation {
        Invocation::Probes(cfg) => {
            let mut inside = None;
            if let Some(target) = &cfg.io_target {
                let (with_mount, path) = mount_io_target(spec, Path::new(target));
                spec = with_mount;
                inside = Some(path.display().to_string());
            }
            seen_as(cfg, inside).to_args()
        }
        Invocation::Program { .. } => args.unwrap_or_default(),
    };
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

/// The spec and arguments from an OCI bundle: the workload bound in for
/// probes, or a program (or the bundle's own `process.args`).
fn bundle_spec(
    invocation: &Invocation,
    dir: &Path,
) -> Result<(ContainerSpec, Option<Vec<String>>), IsolationError> {
    Ok(match invocation {
        Invocation::Probes(_) => {
            let bin = artifacts::workload_binary()
                .map_err(|e| IsolationError::BadInput(e.to_string()))?;
            let spec = container::oci::load_bundle(dir)?
                .program("/isolab-workload")
                .volume(Volume {
                    host: bin,
                    guest: "/isolab-workload".into(),
                    readonly: true,
                });
            (spec, None)
        }
        // No program: the bundle's own process.args, as `runc run` does.
        Invocation::Program { program, .. } if program.is_empty() => {
            let spec = container::oci::load_bundle(dir)?;
            let args = spec.args.clone();
            (spec, Some(args))
        }
        Invocation::Program { program, args } => (
            container::oci::load_bundle(dir)?.program(program.as_str()),
            Some(args.clone()),
        ),
    })
}

/// The spec and arguments without a bundle: the given root filesystem, or
/// a minimal one holding just the workload (or busybox for a program).
fn host_spec(
    invocation: &Invocation,
    rootfs: Option<&Path>,
) -> Result<(ContainerSpec, Option<Vec<String>>), IsolationError> {
    Ok(match invocation {
        Invocation::Probes(_) => {
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
            (spec, None)
        }
        Invocation::Program { program, args } => {
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
            (spec, Some(args.clone()))
        }
    })
}

/// Binds the I/O target into the container under [`IO_MOUNT`]; returns the
/// spec and the target's path inside.
fn mount_io_target(mut spec: ContainerSpec, target: &Path) -> (ContainerSpec, PathBuf) {
    let inside = if target.is_dir() {
        spec = spec.volume(Volume {
            host: target.to_path_buf(),
            guest: IO_MOUNT.into(),
            readonly: false,
        });
        PathBuf::from(IO_MOUNT)
    } else {
        let name = target.file_name().unwrap_or_default();
        let guest = Path::new(IO_MOUNT).join(name);
        // A file that does not exist yet: bind its directory instead.
        let (host, g) = if target.exists() {
            (target.to_path_buf(), guest.clone())
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
    (spec, inside)
}

impl Isolation for Container {
    fn kind(&self) -> IsolationKind {
        IsolationKind::Container
    }

    fn run(&self, invocation: &Invocation, limits: &Limits) -> Result<Outcome, IsolationError> {
        // The network and the `net` probe's peers live until the run ends;
        // the probe's configuration is pointed at the peers.
        let wants_peer = matches!(invocation, Invocation::Probes(c) if crate::net::wants_peer(c));
        let network = match (self.net, wants_peer) {
            (None, false) => None,
            (choice, _) => Some(crate::net::container_network(choice.unwrap_or_default())?),
        };
        let pointed = match (invocation, network.as_ref().filter(|_| wants_peer)) {
            (Invocation::Probes(cfg), Some((_, peers))) => {
                Some(Invocation::Probes(peers.point(cfg)))
            }
            _ => None,
        };
        let invocation = pointed.as_ref().unwrap_or(invocation);
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
        let mut running = match &network {
            Some((net, _)) => net.spawn(&spec)?,
            None => container::spawn(&spec)?,
        };
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

        let exit = exit_of(&report);
        let results = match invocation {
            Invocation::Probes(_) => parse_results(&stdout)?,
            Invocation::Program { .. } => parse_results(&stdout).unwrap_or_default(),
        };
        let boot = ready_at.map(|at| boot_times(&report, at, before_clone));
        let mut notes = notes_for(&report, read.dropped, &exit);
        if let Some((net, peers)) = network {
            notes.push(describe_network(&net));
            drop(peers);
            drop(net);
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

/// One line on the network a run had, for its notes: its shape, not its
/// per-run names and addresses, so a matrix notes it once.
fn describe_network(net: &container::net::Network) -> String {
    let mut parts = vec!["own network namespace".to_string()];
    if net.p2p.is_some() {
        parts.push("veth /30 to the host, no NAT (eth0)".into());
    }
    if let Some(b) = &net.bridged {
        parts.push("bridge /29 with MASQUERADE (eth1)".into());
        if let Some((_, c)) = b.published {
            parts.push(format!(
                "a published host port DNATed to container port {c}"
            ));
        }
    }
    format!("net: {}", parts.join("; "))
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

/// Bytes of a line's start kept to recognise the ready line (which is short);
/// a longer line, even one with no newline at all, is never held whole.
const LINE_HEAD: usize = 4096;

/// Least time between RSS samples taken for plain output (result lines are
/// always sampled): `yes` must not cost a `/proc` read per line.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

impl StdoutRead {
    /// Keeps what fits under the capture limit, counts the rest, and
    /// returns how many bytes were kept.
    fn keep(&mut self, data: &[u8]) -> usize {
        let room = super::CAPTURE_LIMIT
            .saturating_sub(self.kept.len())
            .min(data.len());
        self.kept.extend_from_slice(&data[..room]);
        self.dropped += (data.len() - room) as u64;
        room
    }

    /// At the end of a line that looks like a result (`{…`): the ready
    /// timestamp and an RSS sample.
    fn end_result_line(&mut self, head: &[u8], init_pid: i32) {
        if self.ready_at.is_none() && is_ready_line(head) {
            self.ready_at = Some(Instant::now());
        }
        self.hwm = self.hwm.max(vm_hwm_bytes(init_pid));
    }
}

/// Whether a line starting with `head` may be a workload result line.
/// Boot times, counted from just before the container's clone: until the
/// `ready` line at `ready_at`, and until the program's `execve`.
fn boot_times(
    report: &container::RunReport,
    ready_at: Instant,
    before_clone: Instant,
) -> BootTimes {
    BootTimes {
        total: ready_at.saturating_duration_since(before_clone),
        setup: report
            .times
            .exec
            .map(|e| e.saturating_duration_since(before_clone)),
        kernel: None,
        init: None,
    }
}

/// How the container ended, as an [`Exit`]: a SIGKILL with an OOM kill in
/// the group counts as the OOM killer's.
fn exit_of(report: &container::RunReport) -> Exit {
    match (report.timed_out, report.oom_killed, report.status) {
        (true, _, _) => Exit::Timeout,
        (false, true, ExitStatus::Signaled(libc::SIGKILL)) => Exit::OomKilled,
        (false, _, ExitStatus::Exited(code)) => Exit::Exited { code },
        (false, _, ExitStatus::Signaled(signal)) => Exit::Signaled { signal },
    }
}

/// The runtime's notes plus what the user should know about this run:
/// dropped output, OOM kills that did not end it, a forwarded signal.
fn notes_for(report: &container::RunReport, stdout_dropped: u64, exit: &Exit) -> Vec<String> {
    let mut notes = report.notes.clone();
    let dropped = stdout_dropped + report.stderr_dropped;
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
    notes
}

fn looks_like_result(head: &[u8]) -> bool {
    head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Reads the container's stdout to its end: at most [`super::CAPTURE_LIMIT`]
/// bytes kept, the rest read and counted; only the kept part is scanned for
/// lines, so a flood past the limit costs a read and nothing more.
fn read_stdout(stdout: Option<impl Read>, init_pid: i32) -> StdoutRead {
    let mut r = StdoutRead {
        kept: Vec::new(),
        dropped: 0,
        ready_at: None,
        hwm: None,
    };
    let Some(mut f) = stdout else { return r };
    let mut chunk = vec![0u8; 64 << 10];
    let mut head = Vec::with_capacity(LINE_HEAD);
    let mut sampled = Instant::now();
    loop {
        let n = match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let kept = r.keep(&chunk[..n]);
        if kept > 0 && sampled.elapsed() >= SAMPLE_EVERY {
            r.hwm = r.hwm.max(vm_hwm_bytes(init_pid));
            sampled = Instant::now();
        }
        for piece in chunk[..kept].split_inclusive(|b| *b == b'\n') {
            let room = LINE_HEAD.saturating_sub(head.len()).min(piece.len());
            head.extend_from_slice(&piece[..room]);
            if piece.ends_with(b"\n") {
                if looks_like_result(&head) {
                    r.end_result_line(&head, init_pid);
                }
                head.clear();
            }
        }
    }
    if looks_like_result(&head) {
        r.end_result_line(&head, init_pid);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From memory, not a file: the soak tests count this process's fds.
    fn read_all(data: &[u8]) -> StdoutRead {
        read_stdout(Some(data), 0)
    }

    #[test]
    fn the_ready_line_is_seen_and_a_flood_is_bounded() {
        let mut data = b"{\"probe\":\"ready\",\"x\":1}\n".to_vec();
        data.resize(super::super::CAPTURE_LIMIT + 12345, b'y');
        let r = read_all(&data);
        assert!(r.ready_at.is_some());
        assert_eq!(r.kept.len(), super::super::CAPTURE_LIMIT);
        assert_eq!(r.dropped, 12345);
        let r = read_all(b"plain\n{\"probe\":\"cpu\"}\n");
        assert!(r.ready_at.is_none());
        assert_eq!(r.kept, b"plain\n{\"probe\":\"cpu\"}\n");
    }
}
