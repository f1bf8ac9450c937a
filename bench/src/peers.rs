//! Peer tools measured beside isolab: `runc`, `crun`, `bwrap` and gVisor's
//! `runsc` starting `/bin/true` from one generated busybox root filesystem,
//! podman starting `/bin/true` in a small image with runc, crun or isolab as
//! its OCI runtime, and QEMU's `-M microvm` booting the same tiny guest image
//! isolab's VMM boots.
//!
//! A peer that is not installed is recorded as missing, one that cannot run
//! here as failed with its error; neither is ever dropped from the results.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::frontend::{FrontendError, Podman};
use crate::results::{Status, SubjectStatus};

/// Errors preparing or running a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Creating the temporary bundle failed.
    #[error("preparing {what} in {path}: {source}")]
    Prepare {
        /// What was being created.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The peer could not be started at all.
    #[error("cannot start {peer}: {source}")]
    Spawn {
        /// Peer name.
        peer: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The peer ran but did not succeed.
    #[error("{peer} failed ({status}): {stderr}")]
    Failed {
        /// Peer name.
        peer: String,
        /// Exit status text.
        status: String,
        /// Last lines of its error output.
        stderr: String,
    },
    /// The peer did not finish in time (and was killed).
    #[error("{peer} did not finish within {timeout:?} and was killed")]
    Timeout {
        /// Peer name.
        peer: String,
        /// The limit.
        timeout: Duration,
    },
}

/// What a peer is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counterpart {
    /// isolab's container starting `/bin/true` in the same root filesystem.
    Container,
    /// isolab's VMM booting the same tiny guest image to its ready marker and exit.
    VmTiny,
}

impl Counterpart {
    /// The isolation subject name of isolab's side.
    pub fn subject(self) -> &'static str {
        match self {
            Counterpart::Container => "container",
            Counterpart::VmTiny => "vm-tiny",
        }
    }
}

/// A peer ready to be timed.
#[derive(Debug, Clone)]
pub struct PeerRunner {
    /// Subject name in the results (`runc`, `crun`, `bwrap`, `qemu-microvm`).
    pub name: String,
    /// Version line, if known.
    pub version: Option<String>,
    /// isolab's side of the comparison.
    pub counterpart: Counterpart,
    program: PathBuf,
    /// Arguments; `{id}` is replaced with a unique container id per run.
    args: Vec<String>,
    /// Environment added to the peer's.
    envs: Vec<(String, String)>,
    /// Arguments of the same program that remove what a failed run left
    /// registered (`{id}` as above), if anything can be.
    cleanup: Option<Vec<String>>,
    /// Exit codes that mean success (QEMU's debug-exit device turns guest
    /// status 0 into 1).
    ok_codes: Vec<i32>,
    timeout: Duration,
}

impl PeerRunner {
    /// Runs the peer once and returns its whole-process wall time.
    pub fn run_once(&self, seq: u64) -> Result<Duration, PeerError> {
        let id = format!("isolab-peer-{}-{seq}", std::process::id());
        let args: Vec<String> = self.args.iter().map(|a| a.replace("{id}", &id)).collect();
        let start = Instant::now();
        let mut child = Command::new(&self.program)
            .args(&args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| PeerError::Spawn {
                peer: self.name.clone(),
                source,
            })?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.cleanup(&id);
                    return Err(PeerError::Timeout {
                        peer: self.name.clone(),
                        timeout: self.timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_micros(200)),
                Err(source) => {
                    return Err(PeerError::Spawn {
                        peer: self.name.clone(),
                        source,
                    });
                }
            }
        };
        let elapsed = start.elapsed();
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        match status.code() {
            Some(c) if self.ok_codes.contains(&c) => Ok(elapsed),
            _ => {
                self.cleanup(&id);
                Err(PeerError::Failed {
                    peer: self.name.clone(),
                    status: status.to_string(),
                    stderr: last_lines(&stderr, 3),
                })
            }
        }
    }

    /// Removes what a failed or killed OCI runtime may have left registered.
    fn cleanup(&self, id: &str) {
        if let Some(args) = &self.cleanup {
            let _ = Command::new(&self.program)
                .args(args.iter().map(|a| a.replace("{id}", id)))
                .envs(self.envs.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" / ");
    if tail.is_empty() {
        "no error output".into()
    } else {
        tail
    }
}

/// Options for preparing the peers.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// The tiny guest image QEMU should boot (`None`: QEMU is recorded as failed with `image_error`).
    pub tiny_image: Option<PathBuf>,
    /// Why there is no tiny image, when there is none.
    pub image_error: Option<String>,
    /// Per-run time limit.
    pub timeout: Duration,
    /// isolab's own binary as an OCI runtime for podman (`None`: the
    /// podman-isolab peer is recorded as missing).
    pub oci_runtime: Option<PathBuf>,
}

/// The prepared peers: a temporary bundle, the peers that work, and the
/// status of every peer (including those that do not).
#[derive(Debug)]
pub struct PeerSet {
    dir: tempfile::TempDir,
    /// The podman store the podman peers share. Held, never read: dropping
    /// it removes the store, its containers and their cgroups.
    _podman: Option<Podman>,
    /// Peers that passed a trial run.
    pub runners: Vec<PeerRunner>,
    /// Every peer, measured or not, with the reason.
    pub statuses: Vec<SubjectStatus>,
}

impl PeerSet {
    /// The busybox root filesystem shared by every container runtime (and
    /// isolab's own container, for a like-for-like start).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("bundle").join("rootfs")
    }

    /// Marks a peer that stopped working mid-run as failed.
    pub fn mark_failed(&mut self, name: &str, error: &str) {
        self.runners.retain(|r| r.name != name);
        if let Some(s) = self.statuses.iter_mut().find(|s| s.name == name) {
            s.status = Status::Failed;
            s.reason = Some(error.to_string());
        }
    }
}

/// A peer before its trial run: how to start it, or why it cannot be.
struct Candidate {
    name: &'static str,
    /// The program looked for on `PATH` (its version is recorded).
    program: &'static str,
    counterpart: Counterpart,
    /// Its arguments, environment and cleanup, or why there are none.
    how: Result<How, String>,
    /// Set when the peer's absence is a missing piece, not a failure.
    missing: Option<String>,
}

/// How to start a peer: arguments, environment, cleanup arguments.
struct How {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cleanup: Option<Vec<String>>,
}

impl How {
    fn args(args: Vec<String>) -> How {
        How {
            args,
            envs: Vec::new(),
            cleanup: None,
        }
    }
}

/// Builds the bundle (and the podman image) and tries every peer once.
pub fn prepare(opts: &PeerOptions) -> Result<PeerSet, PeerError> {
    let dir = tempfile::Builder::new()
        .prefix("isolab-peers-")
        .tempdir()
        .map_err(|source| PeerError::Prepare {
            what: "a temporary directory",
            path: std::env::temp_dir(),
            source,
        })?;
    let bundle = dir.path().join("bundle");
    let rootfs = build_bundle(&bundle).map_err(|e| e.to_string());
    let podman = podman_with_image().map_err(|e| e.to_string());
    let mut candidates = oci_candidates(&bundle, &rootfs, dir.path());
    candidates.push(Candidate {
        name: "qemu-microvm",
        program: "qemu-system-x86_64",
        counterpart: Counterpart::VmTiny,
        how: match &opts.tiny_image {
            Some(image) => Ok(How::args(qemu_args(image))),
            None => Err(opts
                .image_error
                .clone()
                .unwrap_or_else(|| "no tiny guest image".into())),
        },
        missing: None,
    });
    candidates.extend(podman_candidates(&podman, opts.oci_runtime.as_deref()));
    let mut set = PeerSet {
        dir,
        _podman: podman.ok(),
        runners: Vec::new(),
        statuses: Vec::new(),
    };
    for c in candidates {
        try_candidate(&mut set, c, opts.timeout);
    }
    Ok(set)
}

/// Records a candidate's status, and keeps its runner when a trial run works.
fn try_candidate(set: &mut PeerSet, c: Candidate, timeout: Duration) {
    let tool = hostcaps::peers::find(c.program, "--version");
    let mut status = SubjectStatus {
        name: c.name.into(),
        role: "peer".into(),
        status: Status::Measured,
        reason: None,
        version: tool.version.clone(),
    };
    let Some(path) = tool.path else {
        status.status = Status::Missing;
        status.reason = Some(format!(
            "{} is not installed (not found on PATH)",
            c.program
        ));
        set.statuses.push(status);
        return;
    };
    if let Some(why) = c.missing {
        status.status = Status::Missing;
        status.reason = Some(why);
        set.statuses.push(status);
        return;
    }
    let runner = c.how.map(|how| PeerRunner {
        name: c.name.into(),
        version: tool.version.clone(),
        counterpart: c.counterpart,
        program: path,
        args: how.args,
        envs: how.envs,
        cleanup: how.cleanup,
        ok_codes: if c.counterpart == Counterpart::VmTiny {
            vec![1]
        } else {
            vec![0]
        },
        timeout,
    });
    match runner.and_then(|r| r.run_once(0).map(|_| r).map_err(|e| e.to_string())) {
        Ok(r) => set.runners.push(r),
        Err(e) => {
            tracing::info!(peer = c.name, error = %e, "peer cannot run here");
            status.status = Status::Failed;
            status.reason = Some(explain(c.name, e));
        }
    }
    set.statuses.push(status);
}

/// Names the known cause of a peer's failure in front of its own words.
fn explain(name: &str, error: String) -> String {
    let crun = name == "crun" || name == "podman-crun";
    if crun && error.contains("hybrid mode") {
        format!("crun refuses hybrid cgroups (it runs where cgroups are v2 only): {error}")
    } else {
        error
    }
}

/// The OCI runtimes and bwrap on the shared busybox bundle.
fn oci_candidates(bundle: &Path, rootfs: &Result<(), String>, dir: &Path) -> Vec<Candidate> {
    let runsc_root = dir.join("runsc").display().to_string();
    let runsc_global = [
        "--root",
        &runsc_root,
        "--rootless=false",
        "--network=none",
        "--platform=ptrace",
    ]
    .map(String::from);
    let mut out = Vec::new();
    for (name, program) in [
        ("runc", "runc"),
        ("crun", "crun"),
        ("bwrap", "bwrap"),
        ("runsc", "runsc"),
    ] {
        let how = rootfs.clone().map(|()| {
            let mut args = container_args(name, bundle);
            let mut cleanup =
                (name != "bwrap").then(|| ["delete", "--force", "{id}"].map(String::from).to_vec());
            if name == "runsc" {
                // gVisor's state under the run's directory, ptrace platform
                // (no KVM platform needed), no network stack.
                args.splice(0..0, runsc_global.iter().cloned());
                if let Some(c) = cleanup.as_mut() {
                    c.splice(0..0, runsc_global.iter().cloned());
                }
            }
            How {
                args,
                envs: Vec::new(),
                cleanup,
            }
        });
        out.push(Candidate {
            name,
            program,
            counterpart: Counterpart::Container,
            how,
            missing: None,
        });
    }
    out
}

/// The image podman peers start `/bin/true` in.
const PODMAN_IMAGE: &str = "localhost/isolab-peer:latest";

/// A private podman store with the demo image built in it.
fn podman_with_image() -> Result<Podman, FrontendError> {
    let podman = Podman::new()?;
    let busybox =
        hostcaps::peers::which("busybox").ok_or(FrontendError::Missing { tool: "busybox" })?;
    let workload = isolation::artifacts::workload_binary().map_err(|e| FrontendError::Prepare {
        what: "the image's static program",
        path: PathBuf::from("isolab-workload"),
        source: std::io::Error::other(e.to_string()),
    })?;
    podman.build_demo_image(PODMAN_IMAGE, &busybox, &workload)?;
    Ok(podman)
}

/// podman with runc, crun, isolab and isolab-vm as its runtime, in one
/// private store.
fn podman_candidates(podman: &Result<Podman, String>, isolab: Option<&Path>) -> Vec<Candidate> {
    let isolab_vm = podman
        .as_ref()
        .ok()
        .zip(isolab)
        .map(|(p, isolab)| isolab_vm_runtime(p.dir(), isolab));
    let runtimes: [(&'static str, Option<Result<String, String>>); 4] = [
        ("podman-runc", Some(Ok("runc".into()))),
        ("podman-crun", Some(Ok("crun".into()))),
        ("podman-isolab", isolab.map(|p| Ok(p.display().to_string()))),
        ("podman-isolab-vm", isolab_vm),
    ];
    runtimes
        .into_iter()
        .map(|(name, runtime)| podman_candidate(podman, name, runtime))
        .collect()
}

/// One podman peer: `runtime` is the `--runtime` value, `None` when there
/// is no isolab binary, or why the runtime cannot run here.
fn podman_candidate(
    podman: &Result<Podman, String>,
    name: &'static str,
    runtime: Option<Result<String, String>>,
) -> Candidate {
    let missing = match &runtime {
        None => Some("no isolab binary to give podman as its runtime".to_string()),
        Some(Err(why)) => Some(why.clone()),
        Some(Ok(_)) => None,
    };
    let how = match (podman, runtime) {
        (Err(e), _) => Err(format!("podman's image: {e}")),
        (Ok(_), None | Some(Err(_))) => Err("no runtime".into()),
        (Ok(p), Some(Ok(rt))) => {
            let mut args = p.global_args();
            args.extend(p.run_args(&rt));
            args.extend(["--rm", "--name", "{id}", PODMAN_IMAGE, "/bin/true"].map(String::from));
            let mut cleanup = p.global_args();
            cleanup.extend(["rm", "--force", "--time", "0", "{id}"].map(String::from));
            Ok(How {
                args,
                envs: p.envs(),
                cleanup: Some(cleanup),
            })
        }
    };
    Candidate {
        name,
        program: "podman",
        counterpart: Counterpart::Container,
        how,
        missing,
    }
}

/// `isolab-vm` (isolab's binary under the name that makes it boot the
/// image in the micro VM) in the podman store's directory, when this host
/// can boot the Linux guest; else why not.
fn isolab_vm_runtime(dir: &Path, isolab: &Path) -> Result<String, String> {
    isolation::vm_linux::linux_guest_support()
        .map_err(|why| format!("the Linux guest cannot boot here: {why}"))?;
    let link = dir.join("isolab-vm");
    std::os::unix::fs::symlink(isolab, &link)
        .map_err(|e| format!("link {}: {e}", link.display()))?;
    Ok(link.display().to_string())
}

fn container_args(name: &str, bundle: &Path) -> Vec<String> {
    let bundle = bundle.display().to_string();
    match name {
        "bwrap" => [
            "--unshare-all",
            "--ro-bind",
            &format!("{bundle}/rootfs"),
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "/bin/true",
        ]
        .map(String::from)
        .to_vec(),
        _ => ["run", "--bundle", &bundle, "{id}"]
            .map(String::from)
            .to_vec(),
    }
}

fn qemu_args(image: &Path) -> Vec<String> {
    [
        "-M",
        "microvm,x-option-roms=off,isa-serial=on,rtc=off",
        "-enable-kvm",
        "-cpu",
        "host,-arch-capabilities",
        "-m",
        "128M",
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-serial",
        "null",
        "-device",
        "isa-debug-exit,iobase=0x501",
        "-kernel",
        &image.display().to_string(),
        "-append",
        "ready",
    ]
    .map(String::from)
    .to_vec()
}

/// Writes an OCI bundle: a busybox root filesystem and a minimal `config.json`
/// that runs `/bin/true` in fresh namespaces.
fn build_bundle(bundle: &Path) -> Result<(), PeerError> {
    let busybox = hostcaps::peers::which("busybox").ok_or_else(|| PeerError::Prepare {
        what: "the busybox root filesystem",
        path: bundle.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "busybox is not installed (apt-get install busybox-static)",
        ),
    })?;
    let rootfs = bundle.join("rootfs");
    let prep = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| PeerError::Prepare { what, path, source }
    };
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).map_err(prep("the root filesystem", &rootfs))?;
    }
    let bb = rootfs.join("bin/busybox");
    std::fs::copy(&busybox, &bb).map_err(prep("busybox in the root filesystem", &bb))?;
    for applet in ["true", "sh"] {
        let link = rootfs.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link)
            .map_err(prep("a busybox applet link", &link))?;
    }
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/bin/true"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "isolab-peer",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    let path = bundle.join("config.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&config).expect("static JSON"),
    )
    .map_err(prep("config.json", &path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\n\nb\nc\nd\n", 2), "c / d");
        assert_eq!(last_lines("", 2), "no error output");
    }

    #[test]
    fn bundle_has_rootfs_and_config() {
        if !hostcaps::testing::require(
            "bundle_has_rootfs_and_config",
            "busybox",
            hostcaps::peers::which("busybox")
                .map(|_| ())
                .ok_or_else(|| "busybox not installed".into()),
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        build_bundle(dir.path()).unwrap();
        assert!(dir.path().join("rootfs/bin/busybox").is_file());
        assert_eq!(
            std::fs::read_link(dir.path().join("rootfs/bin/true")).unwrap(),
            Path::new("busybox")
        );
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["process"]["args"][0], "/bin/true");
    }

    #[test]
    fn every_peer_is_recorded_and_working_ones_are_timed() {
        let opts = PeerOptions {
            tiny_image: None,
            image_error: Some("no image in this test".into()),
            timeout: Duration::from_secs(20),
            oci_runtime: None,
        };
        let set = prepare(&opts).unwrap();
        let names: Vec<&str> = set.statuses.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "runc",
                "crun",
                "bwrap",
                "runsc",
                "qemu-microvm",
                "podman-runc",
                "podman-crun",
                "podman-isolab",
                "podman-isolab-vm"
            ]
        );
        for s in &set.statuses {
            assert!(
                s.status == Status::Measured || s.reason.is_some(),
                "{s:?} lacks a reason"
            );
        }
        // The network peers are subjects of their own, not a second `podman-runc`.
        for (net, _) in crate::netpeers::SUBJECTS {
            assert!(!names.contains(&net), "{net} is also a start peer");
        }
        let qemu = &set.statuses[4];
        assert_ne!(
            qemu.status,
            Status::Measured,
            "QEMU cannot be measured without an image"
        );
        let rootfs = set.rootfs();
        assert!(rootfs.join("bin/busybox").exists() || set.statuses[0].status != Status::Measured);
        if !hostcaps::testing::require(
            "every_peer_is_recorded_and_working_ones_are_timed",
            "bwrap",
            set.runners
                .iter()
                .any(|r| r.name == "bwrap")
                .then_some(())
                .ok_or_else(|| format!("bwrap cannot run here: {:?}", set.statuses[2].reason)),
        ) {
            return;
        }
        let bwrap = set.runners.iter().find(|r| r.name == "bwrap").unwrap();
        let t = bwrap.run_once(1).unwrap();
        assert!(t > Duration::ZERO && t < Duration::from_secs(20));
        drop(set);
        assert!(!rootfs.exists(), "the temporary bundle is removed");
    }

    #[test]
    fn podman_peers_start_with_each_runtime_or_say_why() {
        let test = "podman_peers_start_with_each_runtime_or_say_why";
        if !hostcaps::testing::require_root(test)
            || !hostcaps::testing::require(
                test,
                "podman",
                hostcaps::peers::which("podman")
                    .map(|_| ())
                    .ok_or_else(|| "podman not installed".into()),
            )
        {
            return;
        }
        // runc stands in for isolab's binary: this checks the wiring.
        let opts = PeerOptions {
            tiny_image: None,
            image_error: Some("no image in this test".into()),
            timeout: Duration::from_secs(60),
            oci_runtime: hostcaps::peers::which("runc"),
        };
        let set = prepare(&opts).unwrap();
        let status = |name: &str| set.statuses.iter().find(|s| s.name == name).unwrap();
        for s in &set.statuses {
            println!("{}: {:?} {:?}", s.name, s.status, s.reason);
        }
        for name in ["podman-runc", "podman-isolab"] {
            assert_eq!(status(name).status, Status::Measured, "{:?}", status(name));
        }
        // isolab-vm is named for the Linux guest: measured where it boots,
        // else missing with the verdict's reason.
        let vm = status("podman-isolab-vm");
        match isolation::vm_linux::linux_guest_support() {
            Ok(()) => assert_eq!(vm.status, Status::Measured, "{vm:?}"),
            Err(_) => assert!(
                vm.status == Status::Missing
                    && vm
                        .reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with("the Linux guest cannot boot here")),
                "{vm:?}"
            ),
        }
        let crun = status("podman-crun");
        if hostcaps::cgroup::mode() == hostcaps::cgroup::CgroupMode::V2 {
            assert_eq!(crun.status, Status::Measured, "{crun:?}");
        } else if crun.status != Status::Missing {
            let reason = crun.reason.as_deref().unwrap_or_default();
            assert!(
                reason.starts_with("crun refuses hybrid cgroups"),
                "{crun:?}"
            );
        }
        let podman = set
            .runners
            .iter()
            .find(|r| r.name == "podman-runc")
            .unwrap();
        let t = podman.run_once(1).unwrap();
        assert!(t > Duration::ZERO && t < Duration::from_secs(60));
    }
}
