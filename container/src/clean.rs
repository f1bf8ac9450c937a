//! What a killed runtime left behind, found by the names this crate gives
//! things: cgroups `isolab-<pid>-<n>` ([`crate::cgroup::unique_name`], `pid`
//! the runtime's), staging roots `isolab-root-isolab-<pid>-<n>` in the temp
//! dir, host veth ends `isl<pid>` ([`crate::net::VethAddrs`], `pid` the
//! container init's), and the container networks' namespaces, interfaces and
//! iptables nat chains ([`crate::net::leftovers`], `pid` the owning
//! process's). A leftover is one whose pid is no longer alive; what a
//! live process owns is never touched.

use std::path::{Path, PathBuf};

/// The prefix of a staging root's name, before its unique name.
const STAGING_PREFIX: &str = "isolab-root-";

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Cgroup directories (any hierarchy) of dead runs.
    pub cgroups: Vec<PathBuf>,
    /// Staging roots of dead runs.
    pub staging: Vec<PathBuf>,
    /// Host-side veth interfaces of dead containers.
    pub veths: Vec<String>,
    /// Container networks of dead runs: namespaces, interfaces, nat chains.
    pub net: Vec<crate::net::leftovers::Leftover>,
}

impl Leftovers {
    /// Nothing found.
    pub fn is_empty(&self) -> bool {
        self.cgroups.is_empty()
            && self.staging.is_empty()
            && self.veths.is_empty()
            && self.net.is_empty()
    }
}

/// The runtime pid in a cgroup name `isolab-<pid>-<n>`.
pub fn cgroup_owner(name: &str) -> Option<i32> {
    let (pid, n) = name.strip_prefix("isolab-")?.split_once('-')?;
    number(n)?;
    number(pid)
}

/// The runtime pid in a staging root's name.
pub fn staging_owner(name: &str) -> Option<i32> {
    cgroup_owner(name.strip_prefix(STAGING_PREFIX)?)
}

/// The container init's pid in a host veth name `isl<pid>`.
pub fn veth_owner(name: &str) -> Option<i32> {
    number(name.strip_prefix("isl")?)
}

/// True when the name is one this crate gives a cgroup or a staging root:
/// a caller that cleans by pid-bearing names of its own leaves these here.
pub fn owns(name: &str) -> bool {
    cgroup_owner(name).is_some() || staging_owner(name).is_some()
}

fn number(digits: &str) -> Option<i32> {
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn dead(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// The entries of `dir` whose name carries the pid of a dead process.
pub fn dead_entries(dir: &Path, owner: impl Fn(&str) -> Option<i32>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| owner(&e.file_name().to_string_lossy()).is_some_and(dead))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Looks in every cgroup hierarchy's root, the temp dir, the host's
/// interfaces, `/run/netns` and the iptables nat table.
pub fn scan() -> Leftovers {
    let cgroups = hostcaps::cgroup::mounts()
        .iter()
        .flat_map(|m| dead_entries(&m.path, cgroup_owner))
        .collect();
    let veths = std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| veth_owner(n).is_some_and(dead))
        .collect();
    Leftovers {
        cgroups,
        staging: dead_entries(&std::env::temp_dir(), staging_owner),
        veths,
        net: crate::net::leftovers::scan(|pid| !dead(pid)),
    }
}

/// Removes a cgroup directory and the groups below it, killing what still runs there.
pub fn remove_cgroup(dir: &Path) -> crate::Result<()> {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path())?;
        }
    }
    crate::cgroup::remove_dir(dir)
}

/// Removes a file or directory tree, first detaching it in case a dead
/// run's mount namespace leaked into the host and left it a mount point.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Removes everything in `found`; returns one line per item, saying what happened.
pub fn remove(found: &Leftovers) -> Vec<String> {
    let mut log = Vec::new();
    for c in &found.cgroups {
        log.push(match remove_cgroup(c) {
            Ok(()) => format!("removed cgroup {}", c.display()),
            Err(e) => format!("could not remove cgroup {}: {e}", c.display()),
        });
    }
    for t in &found.staging {
        log.push(match remove_tree(t) {
            Ok(()) => format!("removed {}", t.display()),
            Err(e) => format!("could not remove {}: {e}", t.display()),
        });
    }
    for v in &found.veths {
        let ok = std::process::Command::new("ip")
            .args(["link", "del", v])
            .status()
            .is_ok_and(|s| s.success());
        log.push(if ok {
            format!("removed veth {v}")
        } else {
            format!("could not remove veth {v} (ip link del {v})")
        });
    }
    for n in &found.net {
        log.push(match crate::net::leftovers::remove_leftover(n) {
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
    fn owners_from_the_names_this_crate_gives() {
        let name = crate::cgroup::unique_name();
        let me = std::process::id() as i32;
        assert_eq!(cgroup_owner(&name), Some(me));
        assert_eq!(staging_owner(&format!("{STAGING_PREFIX}{name}")), Some(me));
        assert_eq!(cgroup_owner("isolab-123-4"), Some(123));
        assert_eq!(cgroup_owner("isolab-probe-123"), None);
        assert_eq!(cgroup_owner("isolab-testhost-4321-Ab9xYz"), None);
        assert_eq!(staging_owner("isolab-root-isolab-77-0"), Some(77));
        let veth = crate::net::VethAddrs::for_pid(4242).host_if;
        assert_eq!(veth_owner(&veth), Some(4242));
        assert_eq!(veth_owner("isl"), None);
        assert_eq!(veth_owner("eth0"), None);
        assert!(owns("isolab-1-2") && owns("isolab-root-isolab-1-2") && !owns("isolab-peer-1"));
    }

    #[test]
    fn a_dead_owner_is_a_leftover_and_a_live_one_is_not() {
        let d = tempfile::tempdir().unwrap();
        // Pid 1 is always alive; 2^22+1 is above pid_max's ceiling, so never.
        let live = d.path().join("isolab-root-isolab-1-0");
        let dead = d
            .path()
            .join(format!("isolab-root-isolab-{}-0", (1 << 22) + 1));
        let unrelated = d.path().join("isolab-cache");
        for p in [&live, &dead, &unrelated] {
            std::fs::create_dir(p).unwrap();
        }
        assert_eq!(dead_entries(d.path(), staging_owner), vec![dead.clone()]);
        let log = remove(&Leftovers {
            staging: vec![dead.clone()],
            ..Leftovers::default()
        });
        assert!(log[0].starts_with("removed"), "{log:?}");
        assert!(!dead.exists() && live.exists() && unrelated.exists());
    }
}
