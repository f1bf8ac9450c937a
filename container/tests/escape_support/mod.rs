//! Support for the escape suite: the busybox root with the escape helper,
//! the helper's compilation, weakened specs and verdicts.
#![allow(dead_code)]

pub mod hostile;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use container::security::capabilities::CapabilitySet;
use container::{CgroupPlacement, ContainerSpec, NetMode, RunReport, Running, Stdio};

/// The helper's C source: one escape attempt per sub-command.
pub const HELPER_C: &str = include_str!("helper.c");

/// An isolation a test may remove, to prove an attempt succeeds without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weaken {
    /// No seccomp filter.
    Seccomp,
    /// No seccomp filter and every capability.
    SeccompAndCaps,
    /// No read-only paths (`/proc/sys`, `/proc/sysrq-trigger`, …).
    ReadonlyPaths,
    /// No masked paths (`/proc/kcore`, `/proc/timer_list`, …).
    MaskedPaths,
    /// `/sys` mounted read-write.
    SysRw,
    /// The host's network namespace.
    NetHost,
    /// The host's IPC namespace.
    Ipc,
    /// No pids limit.
    Pids,
    /// No memory limit.
    Memory,
    /// Paths in the root followed as host paths (symlinks leave the root,
    /// FIFOs block, a symlinked `/proc` is accepted).
    PathsInRoot,
    /// User and group ids not range-checked.
    Ids,
    /// No device cgroup.
    Devices,
    /// Groups at the top of each hierarchy instead of below the caller's.
    CgroupRoot,
    /// No cap on captured output.
    CaptureLimit,
}

impl Weaken {
    /// Every weakening, for parsing `ISOLAB_TEST_WEAKEN`.
    pub const ALL: [Weaken; 14] = [
        Weaken::Seccomp,
        Weaken::SeccompAndCaps,
        Weaken::ReadonlyPaths,
        Weaken::MaskedPaths,
        Weaken::SysRw,
        Weaken::NetHost,
        Weaken::Ipc,
        Weaken::Pids,
        Weaken::Memory,
        Weaken::PathsInRoot,
        Weaken::Ids,
        Weaken::Devices,
        Weaken::CgroupRoot,
        Weaken::CaptureLimit,
    ];

    /// The name used in `ISOLAB_TEST_WEAKEN` and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Weaken::Seccomp => "seccomp",
            Weaken::SeccompAndCaps => "seccomp+caps",
            Weaken::ReadonlyPaths => "readonly-paths",
            Weaken::MaskedPaths => "masked-paths",
            Weaken::SysRw => "sys-rw",
            Weaken::NetHost => "net-host",
            Weaken::Ipc => "ipc",
            Weaken::Pids => "pids",
            Weaken::Memory => "memory",
            Weaken::PathsInRoot => "paths-in-root",
            Weaken::Ids => "ids",
            Weaken::Devices => "devices",
            Weaken::CgroupRoot => "cgroup-root",
            Weaken::CaptureLimit => "capture-limit",
        }
    }

    /// Removes this isolation from `spec`.
    pub fn apply(self, spec: &mut ContainerSpec) {
        match self {
            Weaken::Seccomp => spec.seccomp = false,
            Weaken::SeccompAndCaps => {
                spec.seccomp = false;
                // Every capability this process has (`CapabilitySet::all` also
                // names ones a restricted host may lack, which capset refuses).
                let own = own_effective_caps();
                spec.capabilities = CapabilitySet {
                    bounding: own,
                    effective: own,
                    permitted: own,
                    inheritable: 0,
                    ambient: 0,
                };
            }
            Weaken::ReadonlyPaths => spec.readonly_paths.clear(),
            Weaken::MaskedPaths => spec.masked_paths.clear(),
            Weaken::SysRw => {
                for m in spec.mounts.iter_mut().filter(|m| m.destination == "/sys") {
                    m.options.retain(|o| o != "ro");
                }
            }
            Weaken::NetHost => spec.net = NetMode::Host,
            Weaken::Ipc => spec.namespaces.ipc = false,
            Weaken::Pids => spec.resources.pids = None,
            Weaken::Memory => spec.resources.memory = None,
            Weaken::PathsInRoot => spec.hardening.paths_in_root = false,
            Weaken::Ids => spec.hardening.check_ids = false,
            Weaken::Devices => spec.devices = None,
            Weaken::CgroupRoot => spec.cgroup_placement = CgroupPlacement::HierarchyRoot,
            Weaken::CaptureLimit => spec.capture_limit = usize::MAX,
        }
    }
}

/// This process's effective capability mask.
pub fn own_effective_caps() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff in /proc/self/status")
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

/// Weakenings asked for in `ISOLAB_TEST_WEAKEN` (comma separated names): the
/// whole suite then runs without them, and the attempts they stop must fail.
pub fn env_weakenings() -> Vec<Weaken> {
    let Ok(list) = std::env::var("ISOLAB_TEST_WEAKEN") else {
        return Vec::new();
    };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|n| {
            *Weaken::ALL
                .iter()
                .find(|w| w.name() == n)
                .unwrap_or_else(|| panic!("ISOLAB_TEST_WEAKEN: unknown name {n}"))
        })
        .collect()
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stopped; how (deterministic, goes into the table).
    Blocked(String),
    /// Got through; how.
    Escaped(String),
    /// Not attempted: the host lacks what the attempt needs.
    NotRun(String),
}

impl Verdict {
    /// Parses the helper's (or a script's) last `blocked …`/`escaped …` line.
    pub fn from_output(r: &RunReport) -> Verdict {
        let out = String::from_utf8_lossy(&r.stdout);
        let line = out
            .lines()
            .rev()
            .find(|l| l.starts_with("blocked") || l.starts_with("escaped"));
        match line {
            Some(l) if l.starts_with("blocked") => {
                Verdict::Blocked(l["blocked".len()..].trim().to_string())
            }
            Some(l) => Verdict::Escaped(l["escaped".len()..].trim().to_string()),
            None => panic!(
                "no verdict from the container: status {:?}\nstdout: {out}\nstderr: {}",
                r.status,
                String::from_utf8_lossy(&r.stderr)
            ),
        }
    }

    /// The attempt was stopped.
    pub fn blocked(&self) -> bool {
        matches!(self, Verdict::Blocked(_))
    }
}

/// Precondition of the suite: root, a static busybox, gcc with static libc.
pub fn ready(test: &str) -> bool {
    if !hostcaps::testing::require_root(test) {
        return false;
    }
    let bb = if Path::new("/bin/busybox").exists() {
        Ok(())
    } else {
        Err("needs a static /bin/busybox (apt-get install busybox-static)".to_string())
    };
    if !hostcaps::testing::require(test, "busybox", bb) {
        return false;
    }
    hostcaps::testing::require(test, "gcc-static", helper().map(|_| ()))
}

/// The helper binary, compiled once per source version into the target's
/// test scratch directory (a build artifact, not a temp file).
pub fn helper() -> Result<PathBuf, String> {
    static HELPER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            HELPER_C.hash(&mut h);
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("escape-helper");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let bin = dir.join(format!("esc-{:016x}", h.finish()));
            if bin.exists() {
                return Ok(bin);
            }
            let src = dir.join(format!("helper-{}.c", std::process::id()));
            std::fs::write(&src, HELPER_C).map_err(|e| e.to_string())?;
            let tmp = dir.join(format!("esc-{}.tmp", std::process::id()));
            let out = Command::new("gcc")
                .args(["-static", "-O1", "-Wall", "-o"])
                .arg(&tmp)
                .arg(&src)
                .output();
            let _ = std::fs::remove_file(&src);
            let out = out.map_err(|e| format!("gcc not runnable: {e}"))?;
            if !out.status.success() {
                let _ = std::fs::remove_file(&tmp);
                return Err(format!(
                    "gcc -static failed (no static libc?): {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::fs::rename(&tmp, &bin).map_err(|e| e.to_string())?;
            Ok(bin)
        })
        .clone()
}

/// A busybox root in a temp dir with the helper at `/bin/esc`. Busybox is
/// copied, never hard-linked: a container that writes to its `/bin/busybox`
/// must not be writing to the host's.
pub fn rootfs() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("escape-root-")
        .tempdir()
        .expect("tempdir");
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    std::fs::copy(helper().expect("helper"), bin.join("esc")).unwrap();
    for a in [
        "sh", "true", "cat", "ls", "echo", "hostname", "grep", "dd", "sleep", "unshare", "wc",
        "mount", "head", "sed", "kill", "mkdir", "pwd", "tr", "cut",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    for d2 in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(d.path().join(d2)).unwrap();
    }
    d
}

/// Where one attempt runs: its root and the weakenings in force.
pub struct Env {
    /// The root filesystem.
    pub root: tempfile::TempDir,
    /// Isolations removed for this run.
    pub weaken: Vec<Weaken>,
}

impl Env {
    /// A fresh root; weakened as `ISOLAB_TEST_WEAKEN` says plus `extra`.
    pub fn new(extra: Option<Weaken>) -> Env {
        let mut weaken = env_weakenings();
        weaken.extend(extra);
        Env {
            root: rootfs(),
            weaken,
        }
    }

    /// The default spec for `program args…` with output captured.
    pub fn spec(&self, program: &str, args: &[&str]) -> ContainerSpec {
        ContainerSpec::with_rootfs(self.root.path(), program)
            .args(args.iter().copied())
            .stdout(Stdio::Piped)
            .stderr(Stdio::Piped)
            .timeout(Duration::from_secs(30))
    }

    /// `spec` with this environment's weakenings applied.
    fn weakened(&self, mut spec: ContainerSpec) -> ContainerSpec {
        for w in &self.weaken {
            w.apply(&mut spec);
        }
        spec
    }

    /// Runs `spec` with this environment's weakenings applied.
    pub fn run(&self, spec: ContainerSpec) -> RunReport {
        self.try_run(spec)
            .unwrap_or_else(|e| panic!("container run failed: {e}"))
    }

    /// Like [`Env::run`], but the runtime may refuse the spec.
    pub fn try_run(&self, spec: ContainerSpec) -> container::Result<RunReport> {
        container::run(&self.weakened(spec))
    }

    /// Starts `spec` with this environment's weakenings applied.
    pub fn spawn(&self, spec: ContainerSpec) -> Running {
        container::spawn(&self.weakened(spec))
            .unwrap_or_else(|e| panic!("container spawn failed: {e}"))
    }

    /// `sh -c script`.
    pub fn sh(&self, script: &str) -> ContainerSpec {
        self.spec("/bin/sh", &["-c", script])
    }

    /// The helper with `args`.
    pub fn esc(&self, args: &[&str]) -> ContainerSpec {
        self.spec("/bin/esc", args)
    }

    /// Runs `spec` and parses the verdict line.
    pub fn verdict(&self, spec: &ContainerSpec) -> Verdict {
        Verdict::from_output(&self.run(spec.clone()))
    }
}

/// A host process that a container must neither see nor signal; killed on drop.
pub struct HostSleeper {
    /// The child.
    pub child: std::process::Child,
    /// Its unique argument.
    pub mark: String,
}

impl HostSleeper {
    /// Starts `sleep` with a unique duration as its marker.
    pub fn start() -> HostSleeper {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mark = format!("{}.{}{}", 300 + n, std::process::id(), n);
        let child = Command::new("/bin/sleep").arg(&mark).spawn().unwrap();
        HostSleeper { child, mark }
    }

    /// Still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for HostSleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file on the host outside any container root; removed on drop.
pub fn host_marker() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::Builder::new()
        .prefix("escape-marker-")
        .tempdir()
        .unwrap();
    let p = d.path().join("host-marker");
    std::fs::write(&p, "host").unwrap();
    (d, p)
}

/// A non-loopback host network interface, if the host has one.
pub fn host_interface() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().next()
}
