//! Which cgroup hierarchy the host has and which controllers are usable.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Only the unified (v2) hierarchy, mounted at the cgroup root.
    V2,
    /// Only v1 controller hierarchies.
    V1,
    /// v1 controllers plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`).
    Hybrid,
    /// No cgroup filesystem mounted.
    None,
}

/// One cgroup mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMount {
    /// Mount point.
    pub path: PathBuf,
    /// `cgroup` (v1) or `cgroup2`.
    pub fstype: String,
    /// v1: the controllers bound to this hierarchy (from the super options).
    pub controllers: Vec<String>,
}

/// The v1 controllers isolab knows about.
pub const V1_CONTROLLERS: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

/// Parses `/proc/self/mountinfo` text into its cgroup mounts.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        // Fields: id parent major:minor root mountpoint opts [optional...] - fstype source superopts
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split_whitespace().collect();
        let post: Vec<&str> = post.split_whitespace().collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let controllers = if fstype == "cgroup" {
            post[2]
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o))
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        out.push(CgroupMount {
            path: PathBuf::from(unescape(pre[4])),
            fstype: fstype.into(),
            controllers,
        });
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The mode implied by a set of cgroup mounts.
pub fn mode_of(mounts: &[CgroupMount]) -> CgroupMode {
    let v1 = mounts
        .iter()
        .any(|m| m.fstype == "cgroup" && !m.controllers.is_empty());
    let v2 = mounts.iter().any(|m| m.fstype == "cgroup2");
    match (v1, v2) {
        (true, true) => CgroupMode::Hybrid,
        (true, false) => CgroupMode::V1,
        (false, true) => CgroupMode::V2,
        (false, false) => CgroupMode::None,
    }
}

/// The cgroup mounts of this host.
pub fn mounts() -> Vec<CgroupMount> {
    parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// The cgroup mode of this host.
pub fn mode() -> CgroupMode {
    mode_of(&mounts())
}

/// The v2 mount point, if any.
pub fn v2_root(mounts: &[CgroupMount]) -> Option<&Path> {
    mounts
        .iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.path.as_path())
}

/// The v1 hierarchy a controller is bound to, if any.
pub fn v1_root<'a>(mounts: &'a [CgroupMount], controller: &str) -> Option<&'a Path> {
    mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.controllers.iter().any(|c| c == controller))
        .map(|m| m.path.as_path())
}

/// Controllers enabled for children in a v2 directory (`cgroup.subtree_control`
/// of its root lists what children get; `cgroup.controllers` what it has).
pub fn v2_controllers(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Tries to create and remove a child group under `parent`. `Ok` if both worked.
pub fn can_create_child(parent: &Path) -> Result<(), String> {
    let child = parent.join(format!("isolab-probe-{}", std::process::id()));
    std::fs::create_dir(&child).map_err(|e| format!("cannot create {}: {e}", child.display()))?;
    std::fs::remove_dir(&child).map_err(|e| format!("cannot remove {}: {e}", child.display()))
}

/// `Ok` when a usable memory controller exists (v2 with `memory`, or v1 `memory`)
/// and a child group can be created in it.
pub fn memory_controller_usable() -> Result<(), String> {
    controller_usable("memory")
}

/// `Ok` when `controller` is usable in either hierarchy and a child can be created.
pub fn controller_usable(controller: &str) -> Result<(), String> {
    let ms = mounts();
    if let Some(root) = v2_root(&ms).filter(|r| v2_controllers(r).iter().any(|c| c == controller)) {
        return can_create_child(root);
    }
    match v1_root(&ms, controller) {
        Some(root) => can_create_child(root),
        None => Err(format!(
            "no cgroup `{controller}` controller is mounted (enable it in the cgroup v2 root's cgroup.subtree_control, or mount the v1 controller)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded on a hybrid host (these project machines).
    const HYBRID: &str = "\
25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw,relatime shared:8 - tmpfs tmpfs rw,mode=755
27 26 0:24 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
28 26 0:25 / /sys/fs/cgroup/cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpuacct
29 26 0:26 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory
30 26 0:27 / /sys/fs/cgroup/pids rw,relatime shared:12 - cgroup cgroup rw,pids
31 26 0:28 / /sys/fs/cgroup/systemd rw,relatime shared:13 - cgroup cgroup rw,name=systemd
32 26 0:29 / /sys/fs/cgroup/unified rw,relatime shared:14 - cgroup2 cgroup2 rw
";
    // A typical systemd host with the unified hierarchy only.
    const V2: &str = "\
25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid_fixture_is_hybrid_with_v1_controllers() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(mode_of(&m), CgroupMode::Hybrid);
        assert_eq!(
            v1_root(&m, "memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(v1_root(&m, "pids"), Some(Path::new("/sys/fs/cgroup/pids")));
        assert_eq!(v1_root(&m, "blkio"), None);
        assert_eq!(v2_root(&m), Some(Path::new("/sys/fs/cgroup/unified")));
        // name=systemd is not a controller.
        assert!(
            m.iter()
                .all(|c| !c.controllers.contains(&"name=systemd".to_string()))
        );
    }

    #[test]
    fn unified_fixture_is_v2() {
        let m = parse_mountinfo(V2);
        assert_eq!(mode_of(&m), CgroupMode::V2);
        assert_eq!(v2_root(&m), Some(Path::new("/sys/fs/cgroup")));
        assert_eq!(v1_root(&m, "memory"), None);
    }

    #[test]
    fn no_cgroup_mounts_is_none() {
        assert_eq!(
            mode_of(&parse_mountinfo("25 30 0:22 / /sys rw - sysfs sysfs rw\n")),
            CgroupMode::None
        );
    }

    #[test]
    fn v2_controllers_read_from_fixture_tree() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(
            v2_controllers(d.path()),
            ["cpuset", "cpu", "io", "memory", "pids"]
        );
    }
}
