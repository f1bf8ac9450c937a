//! Network peers: the same `net` probe under podman + runc, once with
//! podman's default network (its bridge, and a published port through the
//! CNI portmap DNAT) and once with `--network host`, so the cost of NAT is
//! shown against a peer's own defaults. The paths are named as isolab's
//! (`bridge`, `bridge+nat`, `loopback`), so ratios pair like with like.
//! Their subjects are named apart from the start peer `podman-runc` (see
//! [`SUBJECTS`]): one name, one status, one set of ratios.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isolation::netpeer::Peer;
use workload::args::{Config, NetEndpoint, NetTarget, Probe};
use workload::schema::ResultLine;

use crate::results::{Status, SubjectStatus};

/// One podman configuration that runs the `net` probe.
#[derive(Debug, Clone)]
pub struct PodmanNet {
    /// Subject name: one of [`SUBJECTS`].
    pub name: String,
    host_network: bool,
    rootfs: PathBuf,
    workload: PathBuf,
    /// The default network's gateway (the bridge's host address).
    gateway: Option<Ipv4Addr>,
    timeout: Duration,
}

/// The quick trial run's `net` options.
fn trial() -> Config {
    Config {
        reps: 1,
        net_round_trips: 10,
        net_stream_size: 64 << 10,
        ..Config::default()
    }
}

impl PodmanNet {
    /// Runs the `net` probe once with the `net` options of `cfg` (its
    /// repetitions, round trips and stream size) and returns the result lines.
    pub fn run(&self, cfg: &Config) -> Result<Vec<ResultLine>, String> {
        let mut peers = Vec::new();
        let mut wcfg = Config {
            probes: vec![Probe::Net],
            reps: cfg.reps,
            net_round_trips: cfg.net_round_trips,
            net_stream_size: cfg.net_stream_size,
            ..Config::default()
        };
        let mut podman: Vec<String> = [
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]
        .map(String::from)
        .to_vec();
        let listen = |a: Ipv4Addr| {
            Peer::listen(SocketAddr::from((a, 0))).map_err(|e| format!("peer on {a}: {e}"))
        };
        let target = |path: &str, endpoint| NetTarget {
            path: path.into(),
            endpoint,
        };
        if self.host_network {
            podman.extend(["--network".into(), "host".into()]);
            let p = listen(Ipv4Addr::LOCALHOST)?;
            wcfg.net_targets
                .push(target("loopback", NetEndpoint::Dial(p.addr())));
            peers.push(p);
        } else {
            let gw = self
                .gateway
                .ok_or("podman's default network has no gateway")?;
            let p = listen(gw)?;
            wcfg.net_targets
                .push(target("bridge", NetEndpoint::Dial(p.addr())));
            peers.push(p);
            let hport = std::net::TcpListener::bind((gw, 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free port on {gw}: {e}"))?
                .port();
            let cport = isolation::net::PROBE_PORT;
            podman.extend(["-p".into(), format!("{gw}:{hport}:{cport}")]);
            peers.push(Peer::dial(SocketAddr::from((gw, hport))));
            wcfg.net_targets
                .push(target("bridge+nat", NetEndpoint::Accept(cport)));
        }
        podman.extend([
            "-v".into(),
            format!("{}:/isolab-workload:ro", self.workload.display()),
            "--rootfs".into(),
            self.rootfs.display().to_string(),
            "/isolab-workload".into(),
        ]);
        podman.extend(wcfg.to_args());
        let out = run_bounded(&podman, self.timeout)?;
        drop(peers);
        isolation::parse_results(&out).map_err(|e| e.to_string())
    }
}

/// Runs `podman ARGS`, killed after `timeout`; its stdout, or why it failed.
fn run_bounded(args: &[String], timeout: Duration) -> Result<Vec<u8>, String> {
    let mut child = Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start podman: {e}"))?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let (mut o, mut e) = (Vec::new(), String::new());
        if let Some(s) = out.as_mut() {
            let _ = s.read_to_end(&mut o);
        }
        if let Some(s) = err.as_mut() {
            let _ = s.read_to_string(&mut e);
        }
        (o, e)
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("podman did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let (stdout, stderr) = reader.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(format!("podman {status}: {}", tail.join(" / ")));
    }
    Ok(stdout)
}

/// The subjects and whether each uses `--network host`: podman's default
/// network (bridge and NAT), and the host's.
pub const SUBJECTS: [(&str, bool); 2] = [("podman-runc-net", false), ("podman-runc-host", true)];

/// The podman network peers that work here, and a status for each.
pub fn prepare(rootfs: &Path, timeout: Duration) -> (Vec<PodmanNet>, Vec<SubjectStatus>) {
    let mut ready = Vec::new();
    let mut statuses = Vec::new();
    let status = |name: &str, status, reason: Option<String>| SubjectStatus {
        name: name.into(),
        role: "peer".into(),
        status,
        reason,
        version: podman_version(),
    };
    let have = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let workload = isolation::artifacts::workload_binary();
    for (name, host_network) in SUBJECTS {
        if !have {
            statuses.push(status(
                name,
                Status::Missing,
                Some("podman is not installed".into()),
            ));
            continue;
        }
        let workload = match &workload {
            Ok(w) => w.clone(),
            Err(e) => {
                statuses.push(status(name, Status::Failed, Some(e.to_string())));
                continue;
            }
        };
        let p = PodmanNet {
            name: name.into(),
            host_network,
            rootfs: rootfs.to_path_buf(),
            workload,
            gateway: default_gateway(),
            timeout,
        };
        match p.run(&trial()) {
            Ok(lines) if !lines.iter().any(|l| l.probe == "net") => statuses.push(status(
                name,
                Status::Failed,
                Some("the trial run printed no net result".into()),
            )),
            Ok(_) => {
                statuses.push(status(name, Status::Measured, None));
                ready.push(p);
            }
            Err(e) => statuses.push(status(name, Status::Failed, Some(e))),
        }
    }
    (ready, statuses)
}

fn podman_version() -> Option<String> {
    let o = Command::new("podman").arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

/// The gateway of podman's default network (`podman network inspect podman`).
fn default_gateway() -> Option<Ipv4Addr> {
    let o = Command::new("podman")
        .args([
            "network",
            "inspect",
            "podman",
            "--format",
            "{{range .Subnets}}{{.Gateway}} {{end}}",
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .find_map(|w| w.parse().ok())
}
