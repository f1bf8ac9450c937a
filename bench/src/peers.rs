//! Peer tools measured beside isolab: `runc`, `crun` and `bwrap` starting
//! `/bin/true` from one generated busybox root filesystem, and QEMU's
//! `-M microvm` booting the same tiny guest image isolab's VMM boots.
//!
//! A peer that is not installed is recorded as missing, one that cannot run
//! here as failed with its error; neither is ever dropped from the results.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        if self.counterpart == Counterpart::Container && self.name != "bwrap" {
            let _ = Command::new(&self.program)
                .args(["delete", "--force", id])
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
}

/// The prepared peers: a temporary bundle, the peers that work, and the
/// status of every peer (including those that do not).
#[derive(Debug)]
pub struct PeerSet {
    dir: tempfile::TempDir,
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

/// Builds the bundle and tries every peer once.
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
    let rootfs_error = build_bundle(&bundle).err().map(|e| e.to_string());
    let mut set = PeerSet {
        dir,
        runners: Vec::new(),
        statuses: Vec::new(),
    };

    let candidates: [(&str, &str, Counterpart); 4] = [
        ("runc", "runc", Counterpart::Container),
        ("crun", "crun", Counterpart::Container),
        ("bwrap", "bwrap", Counterpart::Container),
        ("qemu-microvm", "qemu-system-x86_64", Counterpart::VmTiny),
    ];
    for (name, program, counterpart) in candidates {
        let tool = hostcaps::peers::find(program, "--version");
        let mut status = SubjectStatus {
            name: name.into(),
            role: "peer".into(),
            status: Status::Measured,
            reason: None,
            version: tool.version.clone(),
        };
        let Some(path) = tool.path else {
            status.status = Status::Missing;
            status.reason = Some(format!("{program} is not installed (not found on PATH)"));
            set.statuses.push(status);
            continue;
        };
        let args = match counterpart {
            Counterpart::Container => match &rootfs_error {
                Some(e) => Err(e.clone()),
                None => Ok(container_args(name, &bundle)),
            },
            Counterpart::VmTiny => match &opts.tiny_image {
                Some(image) => Ok(qemu_args(image)),
                None => Err(opts
                    .image_error
                    .clone()
                    .unwrap_or_else(|| "no tiny guest image".into())),
            },
        };
        let runner = args.map(|args| PeerRunner {
            name: name.into(),
            version: tool.version.clone(),
            counterpart,
            program: path,
            args,
            ok_codes: if counterpart == Counterpart::VmTiny {
                vec![1]
            } else {
                vec![0]
            },
            timeout: opts.timeout,
        });
        match runner.and_then(|r| r.run_once(0).map(|_| r).map_err(|e| e.to_string())) {
            Ok(r) => set.runners.push(r),
            Err(e) => {
                tracing::info!(peer = name, error = %e, "peer cannot run here");
                status.status = Status::Failed;
                status.reason = Some(e);
            }
        }
        set.statuses.push(status);
    }
    Ok(set)
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
        };
        let set = prepare(&opts).unwrap();
        let names: Vec<&str> = set.statuses.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["runc", "crun", "bwrap", "qemu-microvm"]);
        for s in &set.statuses {
            assert!(
                s.status == Status::Measured || s.reason.is_some(),
                "{s:?} lacks a reason"
            );
        }
        let qemu = &set.statuses[3];
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
}
