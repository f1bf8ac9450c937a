//! Resource limits, device access and accounting: one [`CgroupManager`]
//! interface with a cgroup v2 ([`v2::V2`]) and a cgroup v1 ([`v1::V1`]) back end.
//!
//! Groups are created below the caller's own cgroup in each hierarchy
//! ([`placement`]) and named `isolab-<runtime pid>-<n>`, so a finished run
//! leaves nothing: not even an empty parent directory. Device access is
//! limited to an allowlist ([`devices`]): by the v1 `devices` controller, or
//! on v2 by a BPF program ([`devices_bpf`]).

pub mod cpuset;
pub mod devices;
pub mod devices_bpf;
pub mod placement;
pub mod v1;
pub mod v2;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use devices::DeviceRule;
pub use placement::{CgroupPlacement, parent_dirs};

use crate::spec::Resources;
use crate::{Error, Result};

/// CPU period used for `--cpus` (quota = cpus × period).
pub const CPU_PERIOD_US: u64 = 100_000;

/// Which cgroup hierarchy to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CgroupChoice {
    /// v2 if the caller's v2 group offers the memory and pids controllers,
    /// else v1 if mounted, else a v2 mount without controllers (no limits possible).
    #[default]
    Auto,
    /// The v1 controller hierarchies.
    V1,
    /// The v2 hierarchy; `parent` defaults to the caller's own v2 group.
    V2 {
        /// Directory the container's group is created in.
        parent: Option<PathBuf>,
    },
    /// No cgroup at all (no limits, no accounting).
    Disabled,
}

/// What a finished run consumed, read from its cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Peak memory charged to the group.
    pub peak_memory_bytes: Option<u64>,
    /// CPU time (user + system) of all tasks.
    pub cpu_time: Option<Duration>,
    /// Processes killed by the OOM killer inside the group.
    pub oom_kills: Option<u64>,
    /// Times a fork failed because of the pids limit.
    pub pids_limit_hits: Option<u64>,
}

/// One container's cgroup, whatever the hierarchy.
pub trait CgroupManager: Send + std::fmt::Debug {
    /// Creates the group(s) and applies the limits and, when `devices` is
    /// given, the device allowlist.
    fn create(&mut self, res: &Resources, devices: Option<&[DeviceRule]>) -> Result<()>;
    /// Moves `pid` into the group.
    fn add_process(&self, pid: i32) -> Result<()>;
    /// Files a single-threaded process writes `0` to in order to move itself
    /// into the group. Moving oneself through a v1 `tasks` file skips the
    /// global threadgroup lock, whose RCU grace period makes moving another
    /// process by pid cost milliseconds.
    fn self_attach_files(&self) -> Vec<PathBuf>;
    /// The group directory to start the child in with `clone3(CLONE_INTO_CGROUP)`
    /// (cgroup v2 only); then [`CgroupManager::self_attach_files`] is only the fallback.
    fn clone_into_dir(&self) -> Option<PathBuf> {
        None
    }
    /// Reads the accounting.
    fn stats(&self) -> CgroupStats;
    /// Removes the group(s), killing any task still inside. Idempotent.
    fn remove(&mut self) -> Result<()>;
    /// The group directories (for diagnostics and leak checks).
    fn paths(&self) -> Vec<PathBuf>;
    /// Things the user should know about where the groups went.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A manager that manages nothing, for [`CgroupChoice::Disabled`].
#[derive(Debug, Default)]
pub struct NoCgroup;

impl CgroupManager for NoCgroup {
    fn create(&mut self, res: &Resources, _devices: Option<&[DeviceRule]>) -> Result<()> {
        let reason = "cgroups are disabled for this run".to_string();
        if res.memory.is_some() {
            return Err(Error::ControllerUnavailable {
                controller: "memory",
                reason,
            });
        }
        if res.cpus.is_some() || res.cpu_shares.is_some() {
            return Err(Error::ControllerUnavailable {
                controller: "cpu",
                reason,
            });
        }
        if res.pids.is_some() {
            return Err(Error::ControllerUnavailable {
                controller: "pids",
                reason,
            });
        }
        if cpuset::wanted(res) {
            return Err(Error::ControllerUnavailable {
                controller: "cpuset",
                reason,
            });
        }
        Ok(())
    }
    fn add_process(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    fn self_attach_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn stats(&self) -> CgroupStats {
        CgroupStats::default()
    }
    fn remove(&mut self) -> Result<()> {
        Ok(())
    }
    fn paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// A fresh group name, unique on the host.
pub fn unique_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "isolab-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Picks and constructs the manager for `choice` on this host, with groups
/// placed as `placement` says.
pub fn manager_for(
    choice: &CgroupChoice,
    placement: CgroupPlacement,
) -> Result<Box<dyn CgroupManager>> {
    manager_named(choice, placement, &unique_name())
}

/// Like [`manager_for`], with the groups' `name` (a relative path, checked by
/// [`crate::validate`]) given.
pub fn manager_named(
    choice: &CgroupChoice,
    placement: CgroupPlacement,
    name: &str,
) -> Result<Box<dyn CgroupManager>> {
    let mounts = hostcaps::cgroup::mounts();
    let v2_root = hostcaps::cgroup::v2_root(&mounts).map(Path::to_path_buf);
    let v2_parent = placement::v2_parent(&mounts, placement);
    let v1 = || v1::V1::new(&mounts, name, placement);
    // Where the caller's v2 group cannot take limited children (it holds
    // processes), root may still nest at the top of the hierarchy, and says so.
    let v2 = |parent: PathBuf| {
        let fallback = v2_root
            .clone()
            .filter(|r| *r != parent && crate::process::is_root());
        v2::V2::new(&parent, name).with_fallback(fallback)
    };
    match choice {
        CgroupChoice::Disabled => Ok(Box::new(NoCgroup)),
        CgroupChoice::V1 => Ok(Box::new(v1())),
        CgroupChoice::V2 { parent } => {
            let parent = match parent {
                Some(p) => return Ok(Box::new(v2::V2::new(p, name))),
                None => v2_parent.ok_or_else(|| Error::ControllerUnavailable {
                    controller: "cgroup2",
                    reason: "no cgroup2 filesystem is mounted".into(),
                })?,
            };
            Ok(Box::new(v2(parent)))
        }
        CgroupChoice::Auto => {
            if let Some(parent) = &v2_parent {
                let ctl = hostcaps::cgroup::v2_controllers(parent);
                if ctl.iter().any(|c| c == "memory") && ctl.iter().any(|c| c == "pids") {
                    return Ok(Box::new(v2(parent.clone())));
                }
            }
            let v1m = v1();
            if v1m.has_any_controller() {
                return Ok(Box::new(v1m));
            }
            match v2_parent {
                Some(parent) => Ok(Box::new(v2(parent))),
                None => Ok(Box::new(NoCgroup)),
            }
        }
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| Error::Cgroup {
        op: "write",
        path: path.into(),
        source,
    })
}

pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Value of `key` in a flat-keyed file (`memory.events`, `cpu.stat`, `memory.oom_control`).
pub(crate) fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

pub(crate) fn mkdir(path: &Path) -> Result<()> {
    // A named group (OCI cgroupsPath) may need its parents; the group itself
    // must be new.
    let make = || {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::create_dir(path)
    };
    // Once more if a parent went away meanwhile (removed with its last child).
    let made = match make() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => make(),
        other => other,
    };
    made.map_err(|source| Error::Cgroup {
        op: "create",
        path: path.into(),
        source,
    })
}

/// Removes a container's group directory that outlived the process that
/// made it (an OCI container's, at `delete`): kills what is left in it first.
pub fn remove_group(path: &Path) -> Result<()> {
    remove_dir(path)
}

/// Removes a group directory: kills what is left in it and retries while the
/// kernel still counts exiting tasks (EBUSY), for up to two seconds.
pub(crate) fn remove_dir(path: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                kill_procs(path);
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(Error::Cgroup {
                    op: "remove",
                    path: path.into(),
                    source,
                });
            }
        }
    }
}

fn kill_procs(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill has no memory arguments; a stale pid only yields ESRCH.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Smallest CPU limit: 1 ms of CPU time per 100 ms period, the smallest
/// quota the kernel takes.
pub const MIN_CPUS: f64 = 0.01;

/// `res`'s CPU limit as (quota, period) in µs.
pub(crate) fn cpu_quota(res: &Resources) -> Result<Option<(u64, u64)>> {
    let period = res.cpu_period.unwrap_or(CPU_PERIOD_US);
    if !(1000..=1_000_000).contains(&period) {
        return Err(Error::InvalidSpec {
            field: "cpu period",
            value: period.to_string(),
            reason: "must be from 1000 to 1000000 µs".into(),
        });
    }
    Ok(res
        .cpus
        .map(check_cpus)
        .transpose()?
        .map(|q| (q * period / CPU_PERIOD_US, period)))
}

/// v2's `cpu.weight` (1..=10000) for v1 `cpu.shares` (2..=262144), the
/// linear map runc and crun use.
pub(crate) fn cpu_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// The quota for `cpus` CPUs per [`CPU_PERIOD_US`].
pub(crate) fn check_cpus(cpus: f64) -> Result<u64> {
    if !cpus.is_finite() || cpus < MIN_CPUS {
        return Err(Error::InvalidSpec {
            field: "cpus",
            value: cpus.to_string(),
            reason: format!("must be a number of CPUs of at least {MIN_CPUS}"),
        });
    }
    Ok((cpus * CPU_PERIOD_US as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_key_finds_flat_keyed_values() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("memory.events");
        std::fs::write(&f, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n").unwrap();
        assert_eq!(read_key(&f, "oom_kill"), Some(2));
        assert_eq!(read_key(&f, "oom"), Some(1));
        assert_eq!(read_key(&f, "absent"), None);
    }

    #[test]
    fn disabled_cgroup_refuses_limits_naming_the_controller() {
        let err = NoCgroup
            .create(
                &Resources {
                    pids: Some(10),
                    ..Default::default()
                },
                None,
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ControllerUnavailable {
                    controller: "pids",
                    ..
                }
            ),
            "{err}"
        );
        assert!(NoCgroup.create(&Resources::default(), None).is_ok());
    }

    #[test]
    fn cpus_become_a_quota_and_bad_values_are_rejected() {
        assert_eq!(check_cpus(1.5).unwrap(), 150_000);
        assert_eq!(check_cpus(0.01).unwrap(), 1000);
        for bad in [0.0, 0.0001, 0.0099, -1.0] {
            assert!(
                matches!(
                    check_cpus(bad),
                    Err(Error::InvalidSpec { field: "cpus", .. })
                ),
                "{bad}"
            );
        }
        assert!(check_cpus(f64::NAN).is_err());
    }

    #[test]
    fn names_are_unique() {
        assert_ne!(unique_name(), unique_name());
    }
}
