//! Where a container's groups go: below the caller's own cgroup in each
//! hierarchy, so whatever limits the caller lives under (a CI job's memory
//! cap, a systemd slice, a delegated subtree) bound the container too.
//!
//! The caller's cgroup comes from `/proc/self/cgroup`: `0::/path` for v2,
//! `N:memory:/path` (or `N:cpu,cpuacct:/path`) for each v1 hierarchy.

use std::path::{Path, PathBuf};

use hostcaps::cgroup::{CgroupMount, v1_root, v2_root};

/// Where the container's groups are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupPlacement {
    /// Below the cgroup of the process that starts the container.
    #[default]
    BelowCaller,
    /// At the top of each hierarchy, outside the caller's cgroup (the old
    /// behaviour; only the escape suite uses it, to show the difference).
    HierarchyRoot,
}

/// This process's cgroup path in the hierarchy named `key` (`""` for v2, or a
/// v1 controller), from the text of `/proc/self/cgroup`.
pub fn own_path(proc_self_cgroup: &str, key: &str) -> Option<String> {
    proc_self_cgroup.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_id, ctl, path) = (it.next()?, it.next()?, it.next()?);
        let hit = if key.is_empty() {
            ctl.is_empty()
        } else {
            ctl.split(',').any(|c| c == key)
        };
        hit.then(|| path.to_string())
    })
}

/// `mount` joined with the caller's `path`, if that directory exists (it does
/// not where the hierarchy is mounted from a subtree, as in some containers).
fn below(mount: &Path, path: Option<String>) -> PathBuf {
    let Some(p) = path else {
        return mount.to_path_buf();
    };
    // A cgroup being torn down shows as "path (deleted)"; nothing can nest there.
    let rel = p.trim_start_matches('/');
    if rel.is_empty() || rel.ends_with(" (deleted)") {
        return mount.to_path_buf();
    }
    let dir = mount.join(rel);
    if dir.is_dir() {
        dir
    } else {
        mount.to_path_buf()
    }
}

fn self_cgroup() -> String {
    std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()
}

/// The v2 directory new groups go in, for `placement`.
pub fn v2_parent(mounts: &[CgroupMount], placement: CgroupPlacement) -> Option<PathBuf> {
    let root = v2_root(mounts)?;
    Some(match placement {
        CgroupPlacement::HierarchyRoot => root.to_path_buf(),
        CgroupPlacement::BelowCaller => below(root, own_path(&self_cgroup(), "")),
    })
}

/// The v1 directory new groups of `controller` go in, for `placement`.
pub fn v1_parent(
    mounts: &[CgroupMount],
    controller: &str,
    placement: CgroupPlacement,
) -> Option<PathBuf> {
    let root = v1_root(mounts, controller)?;
    Some(match placement {
        CgroupPlacement::HierarchyRoot => root.to_path_buf(),
        CgroupPlacement::BelowCaller => below(root, own_path(&self_cgroup(), controller)),
    })
}

/// Every directory this process's container groups may be created in (one
/// per mounted hierarchy): where to look for them in leak checks.
pub fn parent_dirs() -> Vec<PathBuf> {
    let mounts = hostcaps::cgroup::mounts();
    let text = self_cgroup();
    let mut out: Vec<PathBuf> = mounts
        .iter()
        .map(|m| {
            let key = if m.fstype == "cgroup2" {
                Some(String::new())
            } else {
                m.controllers.first().cloned()
            };
            below(&m.path, key.and_then(|k| own_path(&text, &k)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "9:name=systemd:/\n8:pids:/ci/job-7\n4:memory:/process_api/ab12\n\
                          2:cpu,cpuacct:/ci\n0::/user.slice/user-1000.slice/session-3.scope\n";

    #[test]
    fn own_paths_come_from_the_right_lines() {
        assert_eq!(
            own_path(HYBRID, "memory").as_deref(),
            Some("/process_api/ab12")
        );
        assert_eq!(own_path(HYBRID, "cpuacct").as_deref(), Some("/ci"));
        assert_eq!(own_path(HYBRID, "pids").as_deref(), Some("/ci/job-7"));
        assert_eq!(
            own_path(HYBRID, "").as_deref(),
            Some("/user.slice/user-1000.slice/session-3.scope")
        );
        assert_eq!(own_path(HYBRID, "devices"), None);
    }

    #[test]
    fn below_uses_the_caller_dir_only_when_it_exists() {
        let m = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(m.path().join("ci/job-7")).unwrap();
        assert_eq!(
            below(m.path(), Some("/ci/job-7".into())),
            m.path().join("ci/job-7")
        );
        assert_eq!(below(m.path(), Some("/gone".into())), m.path());
        assert_eq!(below(m.path(), Some("/".into())), m.path());
        assert_eq!(below(m.path(), None), m.path());
    }
}
