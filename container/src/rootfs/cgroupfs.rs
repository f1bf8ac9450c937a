//! The cgroup filesystem inside the container: a bundle's `type: cgroup`
//! (or `cgroup2`) mount, usually at `/sys/fs/cgroup`, so a program reads its
//! own limits there as under runc.
//!
//! What is shown is only the container's own groups, never the host's tree:
//! - cgroup v2 with a cgroup namespace: a fresh `cgroup2` mount, whose root
//!   is the namespace's root, the container's group (the child unshares the
//!   namespace after joining its group and before its mounts);
//! - cgroup v2 without one: a bind of the container's group directory;
//! - cgroup v1: a tmpfs holding, per hierarchy the container has a group in,
//!   a bind of that group named like the host's mount (`cpu,cpuacct`), with
//!   symlinks for the single names (`cpu -> cpu,cpuacct`). Hierarchies the
//!   container has no group of (freezer, `name=systemd`, …) are left out.
//!
//! Everything is `nosuid,nodev,noexec`; `ro` in the options makes every
//! part read-only (the tmpfs last, once its directories exist).

use std::path::{Path, PathBuf};

use hostcaps::cgroup::CgroupMount;

use super::plan::{Op, Plan, cstr, inside};
use crate::Result;
use crate::mounts::{MountSpec, parse_options};

/// What the cgroup mount can show: the host's cgroup mounts, the container's
/// group directories and whether the container has a cgroup namespace.
#[derive(Debug, Clone, Copy)]
pub struct CgroupView<'a> {
    /// The host's cgroup mounts (`hostcaps::cgroup::mounts()`).
    pub mounts: &'a [CgroupMount],
    /// The container's group directories (`CgroupManager::paths`).
    pub dirs: &'a [PathBuf],
    /// The container gets a new cgroup namespace.
    pub namespace: bool,
}

impl<'a> CgroupView<'a> {
    /// The hierarchy mount holding `dir` (the longest mount point above it).
    fn mount_of(&self, dir: &Path) -> Option<&'a CgroupMount> {
        self.mounts
            .iter()
            .filter(|m| dir.starts_with(&m.path) && dir != m.path)
            .max_by_key(|m| m.path.as_os_str().len())
    }

    /// The container's v2 group, if its groups are on cgroup v2.
    fn v2_dir(&self) -> Option<&'a Path> {
        self.dirs
            .iter()
            .find(|d| self.mount_of(d).is_some_and(|m| m.fstype == "cgroup2"))
            .map(PathBuf::as_path)
    }

    /// (hierarchy name, group directory) for each v1 hierarchy the container has a group in.
    fn v1_groups(&self) -> Vec<(String, &'a Path)> {
        let mut out: Vec<(String, &Path)> = Vec::new();
        for d in self.dirs {
            let Some(m) = self.mount_of(d).filter(|m| m.fstype == "cgroup") else {
                continue;
            };
            let Some(name) = m.path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.to_string(), d));
            }
        }
        out
    }
}

/// The flags every part of the cgroup view ends with.
fn final_flags(m: &MountSpec) -> libc::c_ulong {
    let o = parse_options(&m.options);
    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | (o.flags & libc::MS_RDONLY)
}

/// Adds the ops for the cgroup mount `m` to `p`.
pub(super) fn add(p: &mut Plan, m: &MountSpec, view: &CgroupView<'_>) -> Result<()> {
    let target = inside(&m.destination)?;
    let flags = final_flags(m);
    let v2_host = view.mounts.iter().any(|m| m.fstype == "cgroup2")
        && !view.mounts.iter().any(|m| m.fstype == "cgroup");
    if let Some(dir) = view.v2_dir().filter(|_| !view.namespace) {
        p.mount_point_dir(&target)?;
        return p.bind_dir(dir, &target, flags);
    }
    if view.v2_dir().is_some() || (view.namespace && v2_host) {
        p.mount_point_dir(&target)?;
        p.push_op(Op::Mount {
            source: Some(cstr("cgroup2")?),
            target: cstr(&target)?,
            fstype: Some(cstr("cgroup2")?),
            flags,
            data: None,
            strict: true,
        });
        return Ok(());
    }
    let groups = view.v1_groups();
    if groups.is_empty() {
        // No group of its own (cgroups disabled): nothing of the host's tree is shown.
        tracing::warn!(destination = %m.destination, "the container has no cgroup of its own; cgroup mount skipped");
        return Ok(());
    }
    v1_tree(p, &target, &groups, flags)
}

/// cgroup v1: a tmpfs with one bind per hierarchy and the single-name links.
fn v1_tree(
    p: &mut Plan,
    target: &Path,
    groups: &[(String, &Path)],
    flags: libc::c_ulong,
) -> Result<()> {
    p.mount_point_dir(target)?;
    p.push_op(Op::Mount {
        source: Some(cstr("cgroup")?),
        target: cstr(target)?,
        fstype: Some(cstr("tmpfs")?),
        flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        data: Some(cstr("mode=755,size=64k")?),
        strict: true,
    });
    for (name, dir) in groups {
        let at = target.join(name);
        p.push_op(Op::Mkdir(cstr(&at)?));
        p.bind_dir(dir, &at, flags)?;
        for single in name.split(',').filter(|s| s != name) {
            p.push_op(Op::Symlink {
                target: cstr(name)?,
                link: cstr(target.join(single))?,
            });
        }
    }
    if flags & libc::MS_RDONLY != 0 {
        p.push_op(Op::Remount {
            target: cstr(target)?,
            flags,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(path: &str, fstype: &str) -> CgroupMount {
        CgroupMount {
            path: path.into(),
            fstype: fstype.into(),
            controllers: Vec::new(),
        }
    }

    fn spec(options: &[&str]) -> MountSpec {
        MountSpec {
            destination: "/sys/fs/cgroup".into(),
            fstype: "cgroup".into(),
            source: "cgroup".into(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ops(view: &CgroupView<'_>, options: &[&str]) -> Vec<String> {
        let mut p = Plan::default();
        add(&mut p, &spec(options), view).unwrap();
        p.ops.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn v1_shows_each_own_group_with_links_and_goes_read_only_last() {
        let mounts = [
            mount("/sys/fs/cgroup/memory", "cgroup"),
            mount("/sys/fs/cgroup/cpu,cpuacct", "cgroup"),
            mount("/sys/fs/cgroup/unified", "cgroup2"),
        ];
        let dirs = [
            PathBuf::from("/sys/fs/cgroup/memory/a/isolab-1"),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/isolab-1"),
        ];
        let view = CgroupView {
            mounts: &mounts,
            dirs: &dirs,
            namespace: false,
        };
        let got = ops(&view, &["nosuid", "ro"]);
        assert!(
            got.contains(&"mount tmpfs on /sys/fs/cgroup".to_string()),
            "{got:?}"
        );
        assert!(got.contains(
            &"bind-mount /sys/fs/cgroup/memory/a/isolab-1 onto /sys/fs/cgroup/memory".to_string()
        ));
        assert!(got.contains(&"symlink /sys/fs/cgroup/cpu -> cpu,cpuacct".to_string()));
        assert!(got.contains(&"symlink /sys/fs/cgroup/cpuacct -> cpu,cpuacct".to_string()));
        assert_eq!(got.last().unwrap(), "remount /sys/fs/cgroup with new flags");
    }

    #[test]
    fn v2_mounts_cgroup2_in_a_namespace_and_binds_the_group_without() {
        let mounts = [mount("/sys/fs/cgroup", "cgroup2")];
        let dirs = [PathBuf::from("/sys/fs/cgroup/x/isolab-1")];
        let mut view = CgroupView {
            mounts: &mounts,
            dirs: &dirs,
            namespace: true,
        };
        assert!(ops(&view, &[]).contains(&"mount cgroup2 on /sys/fs/cgroup".to_string()));
        view.namespace = false;
        let got = ops(&view, &["ro"]);
        assert!(
            got.contains(&"bind-mount /sys/fs/cgroup/x/isolab-1 onto /sys/fs/cgroup".to_string())
        );
        assert!(!got.iter().any(|o| o.starts_with("mount cgroup2")));
    }

    #[test]
    fn no_group_of_its_own_shows_nothing_of_the_host() {
        let mounts = [mount("/sys/fs/cgroup/memory", "cgroup")];
        let view = CgroupView {
            mounts: &mounts,
            dirs: &[],
            namespace: false,
        };
        assert!(ops(&view, &[]).is_empty());
    }
}
