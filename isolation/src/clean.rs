//! `isolab clean`: finds and removes what a killed run left behind.
//!
//! Every run names what it creates after the pid of the process that owns it
//! (cgroups `isolab-<pid>-<n>`, temp dirs `isolab-…-<pid>-…` such as the test
//! host's run directory `isolab-testhost-<pid>-…`, host veth ends
//! `isl<pid>`, container networks' namespaces, interfaces and iptables chains
//! as `container::net::leftovers` names them), so a leftover is anything with that shape whose owner is no
//! longer alive. Things owned by a live process are never touched.

use std::path::{Path, PathBuf};

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Cgroup directories (any hierarchy) of dead runs.
    pub cgroups: Vec<PathBuf>,
    /// Temp files and directories of dead runs.
    pub temp: Vec<PathBuf>,
    /// Host-side veth interfaces of dead containers.
    pub veths: Vec<String>,
    /// Container networks of dead runs: namespaces, interfaces, nat chains.
    pub net: Vec<container::net::leftovers::Leftover>,
}

impl Leftovers {
    /// Nothing found.
    pub fn is_empty(&self) -> bool {
        self.cgroups.is_empty()
            && self.temp.is_empty()
            && self.veths.is_empty()
            && self.net.is_empty()
    }
}

/// The pid a leftover's name carries: the first all-digit `-`-separated
/// token after an `isolab` token (`isolab-123-4`, `isolab-root-isolab-123-4`).
pub fn owner_pid(name: &str) -> Option<i32> {
    let mut tokens = name.split('-');
    tokens.find(|t| *t == "isolab")?;
    tokens.find_map(|t| {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    })
}

/// The pid of a host veth end named `isl<pid>`.
pub fn veth_pid(name: &str) -> Option<i32> {
    let digits = name.strip_prefix("isl")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn dead_entries(dir: &Path, pid_of: impl Fn(&str) -> Option<i32>) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            pid_of(&name.to_string_lossy()).is_some_and(|pid| !alive(pid))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Looks for leftovers in the cgroup hierarchies, the temp dir and the host's interfaces.
pub fn scan() -> Leftovers {
    let mounts = hostcaps::cgroup::mounts();
    let mut cgroups = Vec::new();
    for m in &mounts {
        cgroups.extend(dead_entries(&m.path, owner_pid));
    }
    let temp = dead_entries(&std::env::temp_dir(), owner_pid);
    let veths = std::fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| veth_pid(n).is_some_and(|pid| !alive(pid)))
                .collect()
        })
        .unwrap_or_default();
    Leftovers {
        cgroups,
        temp,
        veths,
        net: container::net::leftovers::scan(alive),
    }
}

/// Removes a cgroup directory: kills what still runs in it (and its children), then removes it.
pub fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup(&e.path())?;
            }
        }
    }
    for attempt in 0..50 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // EBUSY while the killed processes are still exiting.
            Err(_) if attempt < 49 => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes everything in `l`; returns one line per item, saying what happened.
pub fn clean(l: &Leftovers) -> Vec<String> {
    let mut log = Vec::new();
    for c in &l.cgroups {
        log.push(match remove_cgroup(c) {
            Ok(()) => format!("removed cgroup {}", c.display()),
            Err(e) => format!("could not remove cgroup {}: {e}", c.display()),
        });
    }
    for t in &l.temp {
        // A dead run's rootfs may still be a mount point if its namespace leaked into the host.
        let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
        let r = if t.is_dir() {
            std::fs::remove_dir_all(t)
        } else {
            std::fs::remove_file(t)
        };
        log.push(match r {
            Ok(()) => format!("removed {}", t.display()),
            Err(e) => format!("could not remove {}: {e}", t.display()),
        });
    }
    for v in &l.veths {
        let ok = std::process::Command::new("ip")
            .args(["link", "del", v])
            .status()
            .map(|s| s.success());
        log.push(match ok {
            Ok(true) => format!("removed veth {v}"),
            _ => format!("could not remove veth {v} (ip link del {v})"),
        });
    }
    for n in &l.net {
        log.push(match container::net::leftovers::remove_leftover(n) {
            Ok(()) => format!("removed {n}"),
            Err(e) => format!("could not remove {n}: {e}"),
        });
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_from_names() {
        assert_eq!(owner_pid("isolab-123-4"), Some(123));
        assert_eq!(owner_pid("isolab-root-isolab-77-0"), Some(77));
        assert_eq!(owner_pid("isolab-testhost-4321-Ab9xYz"), Some(4321));
        assert_eq!(owner_pid("isolab-cache"), None);
        assert_eq!(owner_pid("other-123-4"), None);
        assert_eq!(veth_pid("isl4242"), Some(4242));
        assert_eq!(veth_pid("isl"), None);
        assert_eq!(veth_pid("eth0"), None);
    }

    #[test]
    fn dead_owner_is_a_leftover_and_live_owner_is_not() {
        let d = tempfile::tempdir().unwrap();
        // Pid 1 is always alive; pid 2^22+1 is above pid_max's ceiling, so never alive.
        let live = d.path().join("isolab-1-0");
        let dead = d.path().join(format!("isolab-{}-0", (1 << 22) + 1));
        let unrelated = d.path().join("something-else");
        for p in [&live, &dead, &unrelated] {
            std::fs::create_dir(p).unwrap();
        }
        assert_eq!(dead_entries(d.path(), owner_pid), vec![dead.clone()]);
        let log = clean(&Leftovers {
            cgroups: vec![],
            temp: vec![dead.clone()],
            veths: vec![],
            net: vec![],
        });
        assert!(log[0].starts_with("removed"), "{log:?}");
        assert!(!dead.exists() && live.exists() && unrelated.exists());
    }
}
