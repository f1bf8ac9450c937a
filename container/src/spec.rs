//! What to run and how: [`ContainerSpec`] and its builder.
//!
//! The spec is plain data. [`crate::run`] and [`crate::spawn`] validate it, turn it
//! into a set-up plan in the parent and hand the plan to the child.

use std::path::PathBuf;
use std::time::Duration;

use std::os::fd::RawFd;

use crate::cgroup::{CgroupChoice, CgroupPlacement, DeviceRule};
use crate::mounts::MountSpec;
use crate::security::capabilities::CapabilitySet;

/// Default `PATH` inside the container.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default pids limit: high enough for any real workload, low enough that a
/// fork bomb stays inside.
pub const DEFAULT_PIDS_LIMIT: u64 = 1024;

/// Paths masked (made unreadable) inside the container, as OCI runtimes do.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Paths made read-only inside the container, as OCI runtimes do.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where the container's `/` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSpec {
    /// An existing directory (e.g. an unpacked image or a bundle's `rootfs`),
    /// bind-mounted, never copied.
    Dir(PathBuf),
    /// A root the runtime assembles on a tmpfs for each run: the given host
    /// binaries bind-mounted at `/bin/<name>`, plus `/bin/busybox` and its applet
    /// links when `busybox` is set and the host has a static busybox.
    Minimal {
        /// Host binaries to make available (static ones: there is no libc inside).
        binaries: Vec<PathBuf>,
        /// Add the host's `/bin/busybox` if present.
        busybox: bool,
    },
}

/// One bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Host path (file or directory).
    pub host: PathBuf,
    /// Absolute path inside the container.
    pub guest: PathBuf,
    /// Mount read-only.
    pub readonly: bool,
}

impl Volume {
    /// Parses `HOST:GUEST[:ro|:rw]`.
    pub fn parse(s: &str) -> crate::Result<Volume> {
        let bad = |reason: &str| crate::Error::BadVolume {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (host, guest, readonly) = match parts.as_slice() {
            [h, g] => (*h, *g, false),
            [h, g, "ro"] => (*h, *g, true),
            [h, g, "rw"] => (*h, *g, false),
            [_, _, m] => return Err(bad(&format!("unknown mode `{m}` (use ro or rw)"))),
            _ => return Err(bad("expected HOST:GUEST[:ro]")),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(bad("expected HOST:GUEST[:ro]"));
        }
        if !guest.starts_with('/') {
            return Err(bad("the container path must be absolute"));
        }
        Ok(Volume {
            host: PathBuf::from(host),
            guest: PathBuf::from(guest),
            readonly,
        })
    }
}

/// Networking of the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetMode {
    /// A new network namespace with only `lo`, up.
    #[default]
    Loopback,
    /// `lo` plus a veth pair to the host (`10.200.<n>.1/30` host side, `.2` inside).
    Veth,
    /// Share the host's network namespace (no isolation; for comparisons only).
    Host,
}

/// What a standard stream of the container is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdio {
    /// The runtime's own stream: the container writes to (or reads from) the
    /// caller's file descriptor directly, a terminal or a pipe alike; the
    /// runtime never touches the data.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe the caller reads ([`crate::Running::take_stdout`]); [`crate::run`]
    /// collects it into the report, at most [`ContainerSpec::capture_limit`]
    /// bytes (the rest is read and counted, not kept).
    Piped,
    /// This open file descriptor of the caller (a file to stream output to,
    /// say); it must stay open until [`crate::spawn`] returns.
    Fd(RawFd),
}

/// Default cap on the output [`crate::run`] keeps per piped stream.
pub const DEFAULT_CAPTURE_LIMIT: usize = 16 << 20;

/// Protections against a hostile image or config that can be switched off.
///
/// All are on by default. Switching one off exists only so the escape suite
/// can show that each of its tests is able to fail; never do it otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardening {
    /// Resolve every path inside the root without leaving it (symlinks
    /// included), never block on a FIFO, and refuse a `/proc`, `/sys` or
    /// `/dev` that is not a plain directory.
    pub paths_in_root: bool,
    /// Refuse user and group ids above 2^31 − 1 (`(uid_t)-1` would leave the
    /// program running as root).
    pub check_ids: bool,
}

impl Default for Hardening {
    fn default() -> Self {
        Hardening {
            paths_in_root: true,
            check_ids: true,
        }
    }
}

/// Resource limits, applied through the cgroup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    /// Memory limit in bytes (swap is limited to the same, so it cannot escape to swap).
    pub memory: Option<u64>,
    /// CPU limit in CPUs (quota per period).
    pub cpus: Option<f64>,
    /// The period of the CPU limit in µs (default 100 ms).
    pub cpu_period: Option<u64>,
    /// Relative CPU weight, as v1 `cpu.shares` (2..=262144; v2 converts).
    pub cpu_shares: Option<u64>,
    /// Maximum number of tasks.
    pub pids: Option<u64>,
    /// Memory plus swap in bytes (OCI `memory.swap`; `u64::MAX`: unlimited
    /// swap). Unset: equal to `memory`, so the container cannot use swap.
    pub memory_swap: Option<u64>,
    /// The CPUs the container may run on (`0-3,6`; OCI `cpu.cpus`).
    pub cpuset_cpus: Option<String>,
    /// The memory nodes it may allocate from (OCI `cpu.mems`).
    pub cpuset_mems: Option<String>,
}

/// The namespaces a container gets (mount and pid are always new).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespaces {
    /// New UTS namespace (hostname).
    pub uts: bool,
    /// New IPC namespace.
    pub ipc: bool,
    /// New cgroup namespace (entered after the process is in its cgroup).
    pub cgroup: bool,
    /// New time namespace (zero offsets), where the kernel has them (5.6+).
    pub time: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            uts: true,
            ipc: true,
            cgroup: true,
            time: true,
        }
    }
}

/// A POSIX resource limit set before exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `libc::RLIMIT_*`.
    pub resource: u32,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// How the spawn fits an OCI runtime's create/start split (see `runtime/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifecycle {
    /// Create mode: a listening unix socket. After its set-up, init reports
    /// ready ([`crate::spawn`] returns), waits for [`crate::Running::detach`],
    /// then blocks in `accept` on this socket until a `start` connects, and
    /// only then installs its seccomp filters and executes the program. A
    /// failed `execve` is reported over the accepted connection.
    pub start_gate: Option<RawFd>,
    /// OCI `process.terminal`: a connected unix socket. Init opens a pty in
    /// the container's own `devpts` (after `pivot_root`), sends the master
    /// over this socket (`SCM_RIGHTS`, as runc does), and makes the slave its
    /// standard streams and controlling terminal.
    pub console_socket: Option<RawFd>,
    /// The terminal's size (rows, columns), with `console_socket`.
    pub console_size: Option<(u16, u16)>,
    /// OCI `--preserve-fds N`: descriptors 3 to 3 + N − 1 of the runtime stay
    /// open in the container's process (socket activation's `LISTEN_FDS`).
    /// Each must be open; it is inherited across `execve`.
    pub preserve_fds: u32,
}

/// Everything about one container run.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Root filesystem.
    pub root: RootSpec,
    /// Program: an absolute path inside the root, or a name looked up in `PATH`.
    pub program: String,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// The complete environment (`KEY=VALUE`); nothing is inherited from the host.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: String,
    /// Hostname inside the container.
    pub hostname: String,
    /// Mount `/` read-only.
    pub readonly_root: bool,
    /// Filesystems mounted inside the root (default: proc, dev, devpts, shm, mqueue, sysfs).
    pub mounts: Vec<MountSpec>,
    /// Bind mounts from the host.
    pub volumes: Vec<Volume>,
    /// Paths masked inside the container.
    pub masked_paths: Vec<String>,
    /// Paths made read-only inside the container.
    pub readonly_paths: Vec<String>,
    /// Cgroup limits.
    pub resources: Resources,
    /// Which cgroup hierarchy to use.
    pub cgroup: CgroupChoice,
    /// Where the container's groups go (below the caller's own cgroup).
    pub cgroup_placement: CgroupPlacement,
    /// Device access allowed inside, enforced by the device cgroup (default:
    /// [`crate::cgroup::devices::default_rules`]); `None` turns the device
    /// cgroup off (mounts stay `nodev`).
    pub devices: Option<Vec<DeviceRule>>,
    /// Network set-up.
    pub net: NetMode,
    /// Optional namespaces.
    pub namespaces: Namespaces,
    /// Standard input.
    pub stdin: Stdio,
    /// Standard output.
    pub stdout: Stdio,
    /// Standard error.
    pub stderr: Stdio,
    /// Wall-clock limit; the container is killed when it passes.
    pub timeout: Option<Duration>,
    /// User id the program runs as.
    pub uid: u32,
    /// Group id the program runs as.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Capabilities the program keeps.
    pub capabilities: CapabilitySet,
    /// Set `no_new_privs` (always set when seccomp is on).
    pub no_new_privs: bool,
    /// Install the default seccomp filter.
    pub seccomp: bool,
    /// Resource limits set before exec.
    pub rlimits: Vec<Rlimit>,
    /// Forward SIGINT/SIGTERM received by the runtime while it waits, and clean up.
    pub forward_signals: bool,
    /// Bytes of each piped stream [`crate::Running::wait`] keeps.
    pub capture_limit: usize,
    /// Protections that stay on (see [`Hardening`]).
    pub hardening: Hardening,
    /// A new user namespace with the caller's uid and gid mapped to 0 inside
    /// (see [`crate::rootless`]); on by default when the caller is not root.
    pub user_namespace: bool,
    /// File mode creation mask of the program (unchanged when `None`).
    pub umask: Option<u32>,
    /// Namespaced sysctls (`net.*` needs a network namespace, `kernel.shm*`,
    /// `kernel.msg*`, `kernel.sem` and `fs.mqueue.*` an IPC namespace), written
    /// by the runtime from inside the container's namespaces before init goes on.
    pub sysctls: Vec<(String, String)>,
    /// Seccomp filters that replace the default policy when [`ContainerSpec::seccomp`] is on
    /// (an OCI profile compiled by the caller), installed in order.
    pub seccomp_filters: Option<crate::security::seccomp::Filters>,
    /// The groups' path below each hierarchy's root (OCI `linux.cgroupsPath`,
    /// as runc's cgroupfs manager reads it), instead of a fresh name below the
    /// caller's group.
    pub cgroup_path: Option<String>,
    /// Create/start split and terminal (OCI runtimes only).
    pub lifecycle: Lifecycle,
    /// Existing namespaces joined instead of new ones (OCI
    /// `linux.namespaces[].path`): `CLONE_NEWNET`, `CLONE_NEWIPC` or
    /// `CLONE_NEWUTS` with the path of the namespace file.
    pub join_namespaces: Vec<(i32, PathBuf)>,
}

impl ContainerSpec {
    /// A spec running `program` (absolute inside `rootfs`, or a name in `PATH`) in `rootfs`.
    pub fn with_rootfs(rootfs: impl Into<PathBuf>, program: impl Into<String>) -> ContainerSpec {
        Self::new(RootSpec::Dir(rootfs.into()), program.into())
    }

    /// A spec running the host binary `binary` in a minimal root that holds it
    /// (at `/bin/<name>`) and busybox if the host has it.
    pub fn minimal(binary: impl Into<PathBuf>) -> ContainerSpec {
        let binary = binary.into();
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::new(
            RootSpec::Minimal {
                binaries: vec![binary],
                busybox: true,
            },
            format!("/bin/{name}"),
        )
    }

    fn new(root: RootSpec, program: String) -> ContainerSpec {
        ContainerSpec {
            root,
            program,
            args: Vec::new(),
            env: vec![DEFAULT_PATH.to_string(), "HOME=/".to_string()],
            cwd: "/".into(),
            hostname: "isolab".into(),
            readonly_root: false,
            mounts: crate::mounts::default_mounts(),
            volumes: Vec::new(),
            masked_paths: DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            readonly_paths: DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            resources: Resources {
                pids: Some(DEFAULT_PIDS_LIMIT),
                ..Resources::default()
            },
            cgroup: CgroupChoice::Auto,
            cgroup_placement: CgroupPlacement::BelowCaller,
            devices: Some(crate::cgroup::devices::default_rules()),
            net: NetMode::Loopback,
            namespaces: Namespaces::default(),
            stdin: Stdio::Null,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            timeout: None,
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            capabilities: CapabilitySet::oci_default(),
            no_new_privs: true,
            seccomp: true,
            rlimits: Vec::new(),
            forward_signals: true,
            capture_limit: DEFAULT_CAPTURE_LIMIT,
            hardening: Hardening::default(),
            user_namespace: crate::rootless::needed(),
            umask: None,
            sysctls: Vec::new(),
            seccomp_filters: None,
            cgroup_path: None,
            lifecycle: Lifecycle::default(),
            join_namespaces: Vec::new(),
        }
    }

    /// Sets the program (see [`ContainerSpec::program`]).
    pub fn program(mut self, program: impl Into<String>) -> Self {
        self.program = program.into();
        self
    }
    /// Sets the arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }
    /// Adds `KEY=VALUE` to the environment (replacing an earlier `KEY`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let prefix = format!("{key}=");
        self.env.retain(|e| !e.starts_with(&prefix));
        self.env.push(format!("{key}={value}"));
        self
    }
    /// Sets the hostname.
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = name.into();
        self
    }
    /// Sets the memory limit in bytes.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.resources.memory = Some(bytes);
        self
    }
    /// Sets the CPU limit.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.resources.cpus = Some(cpus);
        self
    }
    /// Sets (or with `None` removes) the pids limit.
    pub fn pids(mut self, max: Option<u64>) -> Self {
        self.resources.pids = max;
        self
    }
    /// Adds a bind mount.
    pub fn volume(mut self, volume: Volume) -> Self {
        self.volumes.push(volume);
        self
    }
    /// Mounts `/` read-only.
    pub fn readonly_root(mut self, ro: bool) -> Self {
        self.readonly_root = ro;
        self
    }
    /// Sets the network mode.
    pub fn net(mut self, net: NetMode) -> Self {
        self.net = net;
        self
    }
    /// Sets standard output.
    pub fn stdout(mut self, s: Stdio) -> Self {
        self.stdout = s;
        self
    }
    /// Sets standard error.
    pub fn stderr(mut self, s: Stdio) -> Self {
        self.stderr = s;
        self
    }
    /// Sets standard input.
    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdin = s;
        self
    }
    /// Sets the wall-clock limit.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Chooses the cgroup hierarchy.
    pub fn cgroup(mut self, choice: CgroupChoice) -> Self {
        self.cgroup = choice;
        self
    }
}
