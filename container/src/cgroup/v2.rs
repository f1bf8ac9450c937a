//! The cgroup v2 (unified hierarchy) back end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    CPU_PERIOD_US, CgroupManager, CgroupStats, check_cpus, mkdir, read_key, read_u64, remove_dir,
    write,
};
use crate::spec::Resources;
use crate::{Error, Result};

/// One group in the unified hierarchy.
#[derive(Debug)]
pub struct V2 {
    parent: PathBuf,
    dir: PathBuf,
    created: bool,
}

impl V2 {
    /// A group named `name` under `parent` (not created yet).
    pub fn new(parent: &Path, name: &str) -> V2 {
        V2 {
            parent: parent.to_path_buf(),
            dir: parent.join(name),
            created: false,
        }
    }

    /// Makes sure `controller` is delegated to children of the parent,
    /// enabling it in `cgroup.subtree_control` when the parent has it.
    fn ensure_controller(&self, controller: &'static str) -> Result<()> {
        let words = |f: &str| -> Vec<String> {
            std::fs::read_to_string(self.parent.join(f))
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
                    self.parent.display()
                ),
            });
        }
        tracing::info!(controller, parent = %self.parent.display(), "enabling cgroup v2 controller for children");
        write(
            &self.parent.join("cgroup.subtree_control"),
            &format!("+{controller}"),
        )
    }
}

impl CgroupManager for V2 {
    fn create(&mut self, res: &Resources) -> Result<()> {
        if res.memory.is_some() {
            self.ensure_controller("memory")?;
        }
        if res.pids.is_some() {
            self.ensure_controller("pids")?;
        }
        let quota = res.cpus.map(check_cpus).transpose()?;
        if quota.is_some() {
            self.ensure_controller("cpu")?;
        }
        mkdir(&self.dir)?;
        self.created = true;
        if let Some(m) = res.memory {
            write(&self.dir.join("memory.max"), &m.to_string())?;
            // Swap would let the container exceed its limit; not every kernel has swap accounting.
            let swap = self.dir.join("memory.swap.max");
            if swap.exists() {
                write(&swap, "0")?;
            }
        }
        if let Some(p) = res.pids {
            write(&self.dir.join("pids.max"), &p.to_string())?;
        }
        if let Some(q) = quota {
            write(&self.dir.join("cpu.max"), &format!("{q} {CPU_PERIOD_US}"))?;
        }
        Ok(())
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
        let d = fixture("cpu memory pids\n", "cpu memory pids\n");
        let mut cg = V2::new(d.path(), "c1");
        let res = Resources {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            pids: Some(32),
        };
        cg.create(&res).unwrap();
        let rd = |f: &str| std::fs::read_to_string(d.path().join("c1").join(f)).unwrap();
        assert_eq!(rd("memory.max"), "67108864");
        assert_eq!(rd("pids.max"), "32");
        assert_eq!(rd("cpu.max"), "50000 100000");
        cg.created = false; // the fixture dir is not empty; tempdir cleans it
    }

    #[test]
    fn missing_controller_is_named_and_nothing_is_created() {
        let d = fixture("cpu pids\n", "cpu pids\n");
        let mut cg = V2::new(d.path(), "c2");
        let err = cg
            .create(&Resources {
                memory: Some(1 << 30),
                ..Default::default()
            })
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
        cg.create(&Resources {
            pids: Some(5),
            ..Default::default()
        })
        .unwrap();
        let st = std::fs::read_to_string(d.path().join("cgroup.subtree_control")).unwrap();
        assert_eq!(st, "+pids");
        cg.created = false;
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
