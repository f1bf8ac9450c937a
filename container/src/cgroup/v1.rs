//! The cgroup v1 back end: one group per controller hierarchy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hostcaps::cgroup::CgroupMount;

use super::placement::{CgroupPlacement, v1_parent};
use super::{CgroupManager, CgroupStats, DeviceRule, mkdir, read_key, read_u64, remove_dir, write};
use crate::spec::Resources;
use crate::{Error, Result};

/// The controllers this back end uses.
const CONTROLLERS: [&str; 6] = ["memory", "pids", "cpu", "cpuacct", "devices", "cpuset"];

/// One container's groups in the v1 hierarchies.
#[derive(Debug)]
pub struct V1 {
    /// Controller → the group directory in its hierarchy (None: not mounted).
    dirs: Vec<(&'static str, Option<PathBuf>)>,
    /// Directories created, in creation order.
    created: Vec<PathBuf>,
}

impl V1 {
    /// Groups named `name` in each mounted v1 hierarchy of `mounts`, placed as `placement` says.
    pub fn new(mounts: &[CgroupMount], name: &str, placement: CgroupPlacement) -> V1 {
        let dirs = CONTROLLERS
            .iter()
            .map(|c| (*c, v1_parent(mounts, c, placement).map(|r| r.join(name))))
            .collect();
        V1 {
            dirs,
            created: Vec::new(),
        }
    }

    /// From explicit hierarchy roots (for fixture tests).
    pub fn with_roots(roots: &[(&'static str, &Path)], name: &str) -> V1 {
        let dirs = CONTROLLERS
            .iter()
            .map(|c| {
                (
                    *c,
                    roots
                        .iter()
                        .find(|(rc, _)| rc == c)
                        .map(|(_, r)| r.join(name)),
                )
            })
            .collect();
        V1 {
            dirs,
            created: Vec::new(),
        }
    }

    /// True when at least the memory or pids hierarchy is mounted.
    pub fn has_any_controller(&self) -> bool {
        self.dir("memory").is_some() || self.dir("pids").is_some()
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .and_then(|(_, d)| d.as_deref())
    }

    fn need(&self, controller: &'static str) -> Result<&Path> {
        self.dir(controller)
            .ok_or_else(|| Error::ControllerUnavailable {
                controller,
                reason: "no cgroup v1 hierarchy has it mounted".into(),
            })
    }

    fn ensure(&mut self, dir: &Path) -> Result<()> {
        if !self.created.iter().any(|d| d == dir) {
            mkdir(dir)?;
            self.created.push(dir.to_path_buf());
        }
        Ok(())
    }
}

impl CgroupManager for V1 {
    fn create(&mut self, res: &Resources, devices: Option<&[DeviceRule]>) -> Result<()> {
        let quota = super::cpu_quota(res)?;
        // Check every requested controller before creating anything.
        if devices.is_some() {
            self.need("devices")?;
        }
        if res.memory.is_some() {
            self.need("memory")?;
        }
        if res.pids.is_some() {
            self.need("pids")?;
        }
        if quota.is_some() || res.cpu_shares.is_some() {
            self.need("cpu")?;
        }
        if super::cpuset::wanted(res) {
            self.need("cpuset")?;
        }
        // Memory and cpuacct groups are made even without limits: they do the accounting.
        if let Some(d) = self.dir("memory").map(Path::to_path_buf) {
            self.ensure(&d)?;
            if let Some(m) = res.memory {
                write(&d.join("memory.limit_in_bytes"), &m.to_string())?;
                // memsw = mem: no escape into swap (file absent without swap accounting).
                let memsw = d.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    let total = match res.memory_swap {
                        Some(u64::MAX) => "-1".to_string(),
                        Some(t) => t.max(m).to_string(),
                        None => m.to_string(),
                    };
                    write(&memsw, &total)?;
                }
            }
        }
        if let Some(p) = res.pids {
            let d = self.need("pids")?.to_path_buf();
            self.ensure(&d)?;
            write(&d.join("pids.max"), &p.to_string())?;
        }
        if quota.is_some() || res.cpu_shares.is_some() {
            let d = self.need("cpu")?.to_path_buf();
            self.ensure(&d)?;
            if let Some((q, period)) = quota {
                write(&d.join("cpu.cfs_period_us"), &period.to_string())?;
                write(&d.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
            if let Some(s) = res.cpu_shares {
                write(&d.join("cpu.shares"), &s.to_string())?;
            }
        }
        if let Some(d) = self.dir("cpuacct").map(Path::to_path_buf) {
            self.ensure(&d)?;
        }
        if super::cpuset::wanted(res) {
            let d = self.need("cpuset")?.to_path_buf();
            self.ensure(&d)?;
            super::cpuset::fill_v1(&d)?;
            super::cpuset::apply(&d, res)?;
        }
        if let Some(rules) = devices {
            let d = self.need("devices")?.to_path_buf();
            self.ensure(&d)?;
            // A new group inherits its parent's list: deny all, then allow the list.
            write(&d.join("devices.deny"), "a")?;
            for r in rules {
                let file = if r.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(&d.join(file), &r.v1_line())?;
            }
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        for d in &self.created {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn self_attach_files(&self) -> Vec<PathBuf> {
        self.created.iter().map(|d| d.join("tasks")).collect()
    }

    fn stats(&self) -> CgroupStats {
        let made = |c: &str| self.dir(c).filter(|d| self.created.iter().any(|x| x == d));
        CgroupStats {
            peak_memory_bytes: made("memory")
                .and_then(|d| read_u64(&d.join("memory.max_usage_in_bytes"))),
            cpu_time: made("cpuacct")
                .and_then(|d| read_u64(&d.join("cpuacct.usage")))
                .map(Duration::from_nanos),
            oom_kills: made("memory")
                .and_then(|d| read_key(&d.join("memory.oom_control"), "oom_kill")),
            pids_limit_hits: made("pids").and_then(|d| read_key(&d.join("pids.events"), "max")),
        }
    }

    fn remove(&mut self) -> Result<()> {
        let mut first_err = None;
        while let Some(d) = self.created.pop() {
            if let Err(e) = remove_dir(&d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.created.clone()
    }
}

impl Drop for V1 {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::warn!(error = %e, "cgroup left behind");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_go_to_their_hierarchies() {
        let m = tempfile::tempdir().unwrap();
        let p = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        std::fs::write(m.path().join("memory.memsw.limit_in_bytes"), "").unwrap();
        let mut cg = V1::with_roots(
            &[("memory", m.path()), ("pids", p.path()), ("cpu", c.path())],
            "g",
        );
        cg.create(
            &Resources {
                memory: Some(1 << 24),
                cpus: Some(2.0),
                cpu_period: Some(50_000),
                cpu_shares: Some(512),
                pids: Some(9),
                memory_swap: None,
                cpuset_cpus: None,
                cpuset_mems: None,
            },
            None,
        )
        .unwrap();
        let rd = |d: &Path, f: &str| std::fs::read_to_string(d.join("g").join(f)).unwrap();
        assert_eq!(rd(m.path(), "memory.limit_in_bytes"), "16777216");
        assert_eq!(rd(p.path(), "pids.max"), "9");
        assert_eq!(rd(c.path(), "cpu.cfs_quota_us"), "100000");
        assert_eq!(rd(c.path(), "cpu.cfs_period_us"), "50000");
        assert_eq!(rd(c.path(), "cpu.shares"), "512");
        assert_eq!(cg.paths().len(), 3);
        cg.created.clear();
    }

    #[test]
    fn device_rules_go_to_the_devices_hierarchy_after_a_deny_all() {
        let dv = tempfile::tempdir().unwrap();
        let mut cg = V1::with_roots(&[("devices", dv.path())], "g");
        // Each write to a real devices.allow adds a rule; a plain file keeps the last.
        let rules = super::super::devices::default_rules();
        cg.create(&Resources::default(), Some(&rules)).unwrap();
        let rd = |f: &str| std::fs::read_to_string(dv.path().join("g").join(f)).unwrap();
        assert_eq!(rd("devices.deny"), "a");
        assert_eq!(rd("devices.allow"), "c 136:* rwm");
        cg.created.clear();
        let none = tempfile::tempdir().unwrap();
        let mut cg = V1::with_roots(&[("memory", none.path())], "g");
        let err = cg.create(&Resources::default(), Some(&rules)).unwrap_err();
        assert!(err.to_string().contains("devices"), "{err}");
        assert!(!none.path().join("g").exists());
    }

    #[test]
    fn missing_pids_hierarchy_fails_before_creating_anything() {
        let m = tempfile::tempdir().unwrap();
        let mut cg = V1::with_roots(&[("memory", m.path())], "g");
        let err = cg
            .create(
                &Resources {
                    pids: Some(9),
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
        assert!(!m.path().join("g").exists());
    }

    #[test]
    fn oom_kills_come_from_oom_control() {
        let m = tempfile::tempdir().unwrap();
        let mut cg = V1::with_roots(&[("memory", m.path())], "g");
        cg.create(&Resources::default(), None).unwrap();
        std::fs::write(
            m.path().join("g/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        std::fs::write(m.path().join("g/memory.max_usage_in_bytes"), "4096\n").unwrap();
        let s = cg.stats();
        assert_eq!(s.oom_kills, Some(3));
        assert_eq!(s.peak_memory_bytes, Some(4096));
        assert_eq!(s.cpu_time, None);
        cg.created.clear();
    }
}
