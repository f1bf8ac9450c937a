//! The cgroup v2 (unified hierarchy) back end.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    CgroupManager, CgroupStats, DeviceRule, devices_bpf, mkdir, read_key, read_u64, remove_dir,
    write,
};
use crate::spec::Resources;
use crate::{Error, Result};

/// One group in the unified hierarchy.
#[derive(Debug)]
pub struct V2 {
    parent: PathBuf,
    name: String,
    dir: PathBuf,
    created: bool,
    /// Where to go instead when `parent` cannot take limited children.
    fallback: Option<PathBuf>,
    notes: Vec<String>,
}

impl V2 {
    /// A group named `name` under `parent` (not created yet).
    pub fn new(parent: &Path, name: &str) -> V2 {
        V2 {
            parent: parent.to_path_buf(),
            name: name.to_string(),
            dir: parent.join(name),
            created: false,
            fallback: None,
            notes: Vec::new(),
        }
    }

    /// When `parent` holds processes, cgroup v2 forbids enabling controllers
    /// for its children (the "no internal processes" rule); the group then
    /// goes below `fallback` instead, with a note.
    pub fn with_fallback(mut self, fallback: Option<PathBuf>) -> V2 {
        self.fallback = fallback;
        self
    }

    /// Enables what `res` needs in the parent, moving to the fallback parent
    /// once if the caller's own group cannot delegate.
    fn prepare_parent(&mut self, res: &Resources) -> Result<()> {
        let needed = needed(res);
        for &c in &needed {
            let enabled = if self.holds_processes() {
                Err(self.busy())
            } else {
                self.ensure_controller(c)
            };
            match enabled {
                Err(Error::Cgroup { source, .. })
                    if source.raw_os_error() == Some(libc::EBUSY) && self.fallback.is_some() =>
                {
                    let top = self.fallback.take().unwrap_or_default();
                    self.notes.push(format!(
                        "cgroup {} holds processes, so cgroup v2 cannot enable {c} for groups below it; \
                         the container's group is under {} instead (start isolab in a delegated cgroup of its own to nest)",
                        self.parent.display(),
                        top.display()
                    ));
                    self.dir = top.join(&self.name);
                    self.parent = top;
                    return self.prepare_parent(res);
                }
                other => other?,
            }
        }
        self.enable_along_path(&needed)
    }

    /// A group named by a path (`pod/ctr`, an OCI `cgroupsPath`) sits below
    /// groups it may have to make: cgroup v2 offers a controller to a group
    /// only when its parent enables it, so each level between the parent and
    /// the group is made (if missing) and delegates `needed`, top down.
    fn enable_along_path(&self, needed: &[&'static str]) -> Result<()> {
        let Some(rel) = self
            .dir
            .parent()
            .and_then(|last| last.strip_prefix(&self.parent).ok())
        else {
            return Ok(());
        };
        let mut level = self.parent.clone();
        let mut made = Vec::new();
        let mut step = |level: &Path| -> Result<()> {
            match std::fs::create_dir(level) {
                Ok(()) => made.push(level.to_path_buf()),
                // Another container of the same pod may have made it first.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(Error::Cgroup {
                        op: "create",
                        path: level.into(),
                        source,
                    });
                }
            }
            needed
                .iter()
                .try_for_each(|&c| enable_for_children(level, c))
        };
        let done = rel.components().try_for_each(|part| {
            level.push(part);
            step(&level)
        });
        if done.is_err() {
            // A refusal leaves nothing: the levels made here go, deepest first.
            for dir in made.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        done
    }

    /// The parent is not the hierarchy's root (which has no `cgroup.type`)
    /// and has processes of its own: cgroup v2 refuses `memory` for its
    /// children (`EBUSY`), and accepts the threaded `pids` and `cpu` only by
    /// making it a thread root, whose new children cannot take a process
    /// (`clone3` fails with `EOPNOTSUPP`). Either way, no limited group there.
    fn holds_processes(&self) -> bool {
        self.parent.join("cgroup.type").exists()
            && std::fs::read_to_string(self.parent.join("cgroup.procs"))
                .is_ok_and(|p| !p.trim().is_empty())
    }

    fn busy(&self) -> Error {
        Error::Cgroup {
            op: "delegate controllers from",
            path: self.parent.clone(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        }
    }

    /// Makes sure `controller` is delegated to children of the parent.
    fn ensure_controller(&self, controller: &'static str) -> Result<()> {
        enable_for_children(&self.parent, controller)
    }
}

/// Makes sure `controller` is delegated to children of `dir`, enabling it
/// in `cgroup.subtree_control` when `dir` has it.
fn enable_for_children(dir: &Path, controller: &'static str) -> Result<()> {
    let words = |f: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(f))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    if words("cgroup.subtree_control")
        .iter()
        .any(|c| c == controller)
    {
        return Ok(());
    }
    if !words("cgroup.controllers").iter().any(|c| c == controller) {
        return Err(Error::ControllerUnavailable {
            controller,
            reason: format!(
                "{} does not list it in cgroup.controllers (on a hybrid host the v1 hierarchy owns it)",
                dir.display()
            ),
        });
    }
    tracing::info!(controller, parent = %dir.display(), "enabling cgroup v2 controller for children");
    write(
        &dir.join("cgroup.subtree_control"),
        &format!("+{controller}"),
    )
}

/// The controllers `res` needs delegated to the group.
fn needed(res: &Resources) -> Vec<&'static str> {
    let mut needed = Vec::new();
    if res.memory.is_some() {
        needed.push("memory");
    }
    if res.pids.is_some() {
        needed.push("pids");
    }
    if res.cpus.is_some() || res.cpu_shares.is_some() {
        needed.push("cpu");
    }
    if super::cpuset::wanted(res) {
        needed.push("cpuset");
    }
    needed
}

impl CgroupManager for V2 {
    fn create(&mut self, res: &Resources, devices: Option<&[DeviceRule]>) -> Result<()> {
        let quota = super::cpu_quota(res)?;
        self.prepare_parent(res)?;
        // Loaded before the group exists, so a refusal leaves nothing to remove.
        let prog = devices
            .map(devices_bpf::load)
            .transpose()
            .map_err(Error::DeviceCgroup)?;
        mkdir(&self.dir)?;
        self.created = true;
        if let Some(prog) = prog {
            let dir = std::fs::File::open(&self.dir).map_err(|source| Error::Cgroup {
                op: "open",
                path: self.dir.clone(),
                source,
            })?;
            devices_bpf::attach(&prog, &dir.into()).map_err(|e| {
                Error::DeviceCgroup(format!(
                    "attach the device program to {}: {e}",
                    self.dir.display()
                ))
            })?;
        }
        if let Some(m) = res.memory {
            write(&self.dir.join("memory.max"), &m.to_string())?;
            // Swap would let the container exceed its limit; not every kernel has swap accounting.
            let swap = self.dir.join("memory.swap.max");
            if swap.exists() {
                // v2 limits swap alone: the OCI total minus the memory limit.
                let only_swap = match res.memory_swap {
                    Some(u64::MAX) => "max".to_string(),
                    Some(t) => t.saturating_sub(m).to_string(),
                    None => "0".to_string(),
                };
                write(&swap, &only_swap)?;
            }
        }
        if let Some(p) = res.pids {
            write(&self.dir.join("pids.max"), &p.to_string())?;
        }
        if let Some((q, period)) = quota {
            write(&self.dir.join("cpu.max"), &format!("{q} {period}"))?;
        }
        if let Some(s) = res.cpu_shares {
            write(
                &self.dir.join("cpu.weight"),
                &super::cpu_weight(s).to_string(),
            )?;
        }
        super::cpuset::apply(&self.dir, res)
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn self_attach_files(&self) -> Vec<PathBuf> {
        // v2 has no per-thread file outside threaded groups; cgroup.procs takes the lock.
        vec![self.dir.join("cgroup.procs")]
    }

    fn clone_into_dir(&self) -> Option<PathBuf> {
        self.created.then(|| self.dir.clone())
    }

    fn stats(&self) -> CgroupStats {
        CgroupStats {
            peak_memory_bytes: read_u64(&self.dir.join("memory.peak")),
            cpu_time: read_key(&self.dir.join("cpu.stat"), "usage_usec").map(Duration::from_micros),
            oom_kills: read_key(&self.dir.join("memory.events"), "oom_kill"),
            pids_limit_hits: read_key(&self.dir.join("pids.events"), "max"),
        }
    }

    fn remove(&mut self) -> Result<()> {
        if !self.created {
            return Ok(());
        }
        // cgroup.kill (5.14+) kills every task at once; older kernels fall back to per-pid kills.
        let kill = self.dir.join("cgroup.kill");
        if kill.exists()
            && std::fs::read_to_string(self.dir.join("cgroup.procs"))
                .is_ok_and(|s| !s.trim().is_empty())
        {
            let _ = std::fs::write(&kill, "1");
        }
        remove_dir(&self.dir)?;
        self.created = false;
        Ok(())
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

impl Drop for V2 {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::warn!(error = %e, "cgroup left behind");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture parent that looks like a v2 directory with the given controllers.
    fn fixture(controllers: &str, subtree: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(d.path().join("cgroup.subtree_control"), subtree).unwrap();
        d
    }

    #[test]
    fn limits_are_written_in_v2_format() {
        let d = fixture("cpu cpuset memory pids\n", "cpu cpuset memory pids\n");
        let mut cg = V2::new(d.path(), "c1");
        let res = Resources {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            cpu_period: None,
            cpu_shares: Some(1024),
            pids: Some(32),
            memory_swap: None,
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
        };
        cg.create(&res, None).unwrap();
        let rd = |f: &str| std::fs::read_to_string(d.path().join("c1").join(f)).unwrap();
        assert_eq!(rd("memory.max"), "67108864");
        assert_eq!(rd("cpuset.cpus"), "0-1");
        assert_eq!(rd("cpuset.mems"), "0");
        assert_eq!(rd("pids.max"), "32");
        assert_eq!(rd("cpu.max"), "50000 100000");
        // shares 1024 (the default) is weight 39, as with runc.
        assert_eq!(rd("cpu.weight"), "39");
        cg.created = false; // the fixture dir is not empty; tempdir cleans it
    }

    #[test]
    fn missing_controller_is_named_and_nothing_is_created() {
        let d = fixture("cpu pids\n", "cpu pids\n");
        let mut cg = V2::new(d.path(), "c2");
        let err = cg
            .create(
                &Resources {
                    memory: Some(1 << 30),
                    ..Default::default()
                },
                None,
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ControllerUnavailable {
                    controller: "memory",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!d.path().join("c2").exists());
    }

    #[test]
    fn available_controller_is_enabled_for_children() {
        let d = fixture("memory pids\n", "");
        let mut cg = V2::new(d.path(), "c3");
        cg.create(
            &Resources {
                pids: Some(5),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let st = std::fs::read_to_string(d.path().join("cgroup.subtree_control")).unwrap();
        assert_eq!(st, "+pids");
        cg.created = false;
    }

    #[test]
    fn every_level_of_a_nested_path_delegates_the_controllers() {
        let d = fixture("cpu memory pids\n", "");
        // An existing middle level (a pod's group) that does not delegate yet.
        let pod = d.path().join("pod");
        std::fs::create_dir(&pod).unwrap();
        std::fs::write(pod.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(pod.join("cgroup.subtree_control"), "").unwrap();
        let mut cg = V2::new(d.path(), "pod/c5");
        cg.create(
            &Resources {
                cpu_shares: Some(1024),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let st = |p: &Path| std::fs::read_to_string(p.join("cgroup.subtree_control")).unwrap();
        assert_eq!(st(d.path()), "+cpu");
        assert_eq!(st(&pod), "+cpu", "the middle level delegates cpu too");
        assert_eq!(
            std::fs::read_to_string(pod.join("c5/cpu.weight")).unwrap(),
            "39"
        );
        cg.created = false;
    }

    #[test]
    fn a_refused_nested_path_leaves_no_level_behind() {
        // The root offers cpu; the new middle level (a plain directory here)
        // lists no controllers, so delegating from it is refused.
        let d = fixture("cpu\n", "cpu\n");
        let mut cg = V2::new(d.path(), "new/deeper/c6");
        let err = cg
            .create(
                &Resources {
                    cpu_shares: Some(2),
                    ..Default::default()
                },
                None,
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ControllerUnavailable {
                    controller: "cpu",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!d.path().join("new").exists());
    }

    #[test]
    fn stats_are_read_from_v2_files() {
        let d = fixture("memory pids cpu\n", "memory pids cpu\n");
        let cg = V2::new(d.path(), "c4");
        std::fs::create_dir(d.path().join("c4")).unwrap();
        let w = |f: &str, s: &str| std::fs::write(d.path().join("c4").join(f), s).unwrap();
        w("memory.peak", "1048576\n");
        w(
            "cpu.stat",
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
        );
        w("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
        w("pids.events", "max 7\n");
        let s = cg.stats();
        assert_eq!(s.peak_memory_bytes, Some(1 << 20));
        assert_eq!(s.cpu_time, Some(Duration::from_micros(2500)));
        assert_eq!(s.oom_kills, Some(1));
        assert_eq!(s.pids_limit_hits, Some(7));
    }
}
