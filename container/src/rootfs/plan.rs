//! The set-up plan: every mount and file operation of the root, built in the
//! parent (where allocating and failing with good messages is easy) and run
//! by the child ([`super::execute`]), which only makes syscalls.
//!
//! The root is prepared at a staging directory `S`: the given rootfs bound
//! onto itself, or a fresh tmpfs on a per-run directory. From then on every
//! path is a path *inside the container* (`/dev/null`), opened relative to a
//! descriptor of `S` without leaving it ([`super::resolve`]); `/proc`, `/dev`,
//! `/sys`, volumes, masked and read-only paths follow, and finally
//! `pivot_root(S)` with the old root detached. Everything happens in the
//! child's mount namespace, so it all disappears with it.

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::mounts::{MountSpec, parse_options};
use crate::spec::{ContainerSpec, RootSpec};
use crate::syscall::Resolve;
use crate::{Error, Result};

use super::cgroupfs::CgroupView;
use super::{APPLETS, BUSYBOX, DEVICES, minimal_binaries};

/// One step of the root filesystem set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Make every mount in the new namespace a slave, so nothing propagates back to the host.
    MakeRslave,
    /// Mount the root itself at the staging directory (host paths): a
    /// recursive bind of the rootfs, or a tmpfs for the minimal root.
    MountStaging {
        /// Source: the rootfs directory, or `isolab-root`.
        source: CString,
        /// The staging directory.
        target: CString,
        /// `tmpfs`, or `None` for the bind.
        fstype: Option<CString>,
        /// Flags.
        flags: libc::c_ulong,
        /// Filesystem data.
        data: Option<CString>,
    },
    /// Open the staging directory: every later path is resolved inside it.
    OpenRoot(CString),
    /// `mount(2)` onto a path inside the root.
    Mount {
        /// Host path (binds) or filesystem source name; `None` for none.
        source: Option<CString>,
        /// Path inside the container.
        target: CString,
        /// Filesystem type (`None` for binds and propagation changes).
        fstype: Option<CString>,
        /// Flags.
        flags: libc::c_ulong,
        /// Filesystem data.
        data: Option<CString>,
        /// No symlink allowed anywhere in the target (`proc`, `sysfs`).
        strict: bool,
    },
    /// Change the per-mount flags of an existing mount (`MS_REMOUNT | MS_BIND | flags`).
    Remount {
        /// The mount point inside the container (`/` for the root).
        target: CString,
        /// New flags.
        flags: libc::c_ulong,
    },
    /// Create a directory (existing is fine).
    Mkdir(CString),
    /// Create an empty file to mount over (an existing entry is left alone).
    CreateFile(CString),
    /// Create a symlink (existing is fine).
    Symlink {
        /// What it points to.
        target: CString,
        /// The link, inside the container.
        link: CString,
    },
    /// Hide a path: a read-only empty tmpfs over a directory, `/dev/null` over a file.
    Mask(CString),
    /// Make a path read-only if it exists.
    ReadonlyPath(CString),
    /// `pivot_root` into the root and detach the old root.
    PivotRoot,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Op::MakeRslave => write!(f, "make / a recursive slave mount"),
            Op::MountStaging { source, target, .. } => {
                write!(f, "mount the root {} at {}", s(source), s(target))
            }
            Op::OpenRoot(p) => write!(f, "open the root {}", s(p)),
            Op::Mount {
                source,
                target,
                fstype,
                ..
            } => match (fstype, source) {
                (Some(t), _) => write!(f, "mount {} on {}", s(t), s(target)),
                (None, Some(src)) => write!(f, "bind-mount {} onto {}", s(src), s(target)),
                (None, None) => write!(f, "change the propagation of {}", s(target)),
            },
            Op::Remount { target, .. } => write!(f, "remount {} with new flags", s(target)),
            Op::Mkdir(p) => write!(f, "create directory {}", s(p)),
            Op::CreateFile(p) => write!(f, "create mount point file {}", s(p)),
            Op::Symlink { target, link } => write!(f, "symlink {} -> {}", s(link), s(target)),
            Op::Mask(p) => write!(f, "mask {}", s(p)),
            Op::ReadonlyPath(p) => write!(f, "make {} read-only", s(p)),
            Op::PivotRoot => write!(f, "pivot_root into the container's root"),
        }
    }
}

/// The whole filesystem set-up, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The steps.
    pub ops: Vec<Op>,
    /// How paths inside the root are resolved ([`Resolve::InRoot`] unless
    /// the escape suite weakened it).
    pub resolve: Resolve,
    /// Remounts keep the flags the kernel locks on mounts inherited from a
    /// more privileged user namespace (rootless containers).
    pub keep_locked_flags: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            ops: Vec::new(),
            resolve: Resolve::InRoot,
            keep_locked_flags: false,
        }
    }
}

pub(crate) fn cstr(p: impl AsRef<Path>) -> Result<CString> {
    let p = p.as_ref();
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::InvalidSpec {
        field: "path",
        value: p.display().to_string(),
        reason: "contains a NUL byte".into(),
    })
}

/// A container path made canonical (`/a/b`), refusing relative paths and `..`.
pub(crate) fn inside(guest: &str) -> Result<PathBuf> {
    let bad = || Error::InvalidSpec {
        field: "container path",
        value: guest.into(),
        reason: "must be absolute and must not contain `..`".into(),
    };
    if !guest.starts_with('/') {
        return Err(bad());
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(guest).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

impl Plan {
    fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// `mkdir -p` of the container path `path`, one op per component.
    fn mkdir_p(&mut self, path: &Path) -> Result<()> {
        let mut cur = PathBuf::from("/");
        for c in path.components().skip(1) {
            cur.push(c);
            let op = Op::Mkdir(cstr(&cur)?);
            if !self.ops.contains(&op) {
                self.push(op);
            }
        }
        Ok(())
    }

    /// A directory, or an empty file in a created directory, to mount over.
    fn mount_point(&mut self, target: &Path, is_dir: bool) -> Result<()> {
        if is_dir {
            return self.mkdir_p(target);
        }
        if let Some(parent) = target.parent() {
            self.mkdir_p(parent)?;
        }
        self.push(Op::CreateFile(cstr(target)?));
        Ok(())
    }

    /// Appends one op (for the sibling modules that build parts of the plan).
    pub(super) fn push_op(&mut self, op: Op) {
        self.push(op);
    }

    /// `mkdir -p` of a directory to mount over.
    pub(super) fn mount_point_dir(&mut self, target: &Path) -> Result<()> {
        self.mkdir_p(target)
    }

    /// A non-recursive bind of the host directory `host` at `target`, then
    /// its per-mount flags set to `flags`.
    pub(super) fn bind_dir(
        &mut self,
        host: &Path,
        target: &Path,
        flags: libc::c_ulong,
    ) -> Result<()> {
        self.bind(host, target, false, flags)
    }

    fn bind(
        &mut self,
        host: &Path,
        target: &Path,
        recursive: bool,
        after: libc::c_ulong,
    ) -> Result<()> {
        let flags = libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
        self.push(Op::Mount {
            source: Some(cstr(host)?),
            target: cstr(target)?,
            fstype: None,
            flags,
            data: None,
            strict: false,
        });
        if after != 0 {
            self.push(Op::Remount {
                target: cstr(target)?,
                flags: after,
            });
        }
        Ok(())
    }
}

/// Builds the plan for `spec` with the staging directory `staging`, for a
/// container without cgroups of its own (see [`plan_with_cgroups`]).
pub fn plan(spec: &ContainerSpec, staging: &Path) -> Result<Plan> {
    let view = CgroupView {
        mounts: &[],
        dirs: &[],
        namespace: spec.namespaces.cgroup,
    };
    plan_with_cgroups(spec, staging, &view)
}

/// Builds the plan for `spec` with the staging directory `staging`; a cgroup
/// mount shows what `cgroups` says is the container's own ([`super::cgroupfs`]).
pub fn plan_with_cgroups(
    spec: &ContainerSpec,
    staging: &Path,
    cgroups: &CgroupView<'_>,
) -> Result<Plan> {
    let mut p = Plan {
        resolve: if spec.hardening.paths_in_root {
            Resolve::InRoot
        } else {
            Resolve::Host
        },
        keep_locked_flags: spec.user_namespace,
        ..Plan::default()
    };
    p.push(Op::MakeRslave);
    root_ops(&mut p, spec, staging)?;
    for m in &spec.mounts {
        if spec.user_namespace {
            add_mount(&mut p, &crate::rootless::mount(m), cgroups)?;
        } else {
            add_mount(&mut p, m, cgroups)?;
        }
    }
    for d in DEVICES {
        let target = Path::new("/dev").join(d);
        p.push(Op::CreateFile(cstr(&target)?));
        p.bind(&Path::new("/dev").join(d), &target, false, 0)?;
    }
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        p.push(Op::Symlink {
            target: cstr(target)?,
            link: cstr(Path::new("/dev").join(link))?,
        });
    }
    for v in &spec.volumes {
        let target = inside(&v.guest.to_string_lossy())?;
        let is_dir = std::fs::metadata(&v.host)
            .map_err(|e| Error::BadVolume {
                spec: format!("{}:{}", v.host.display(), v.guest.display()),
                reason: format!("host path {}: {e}", v.host.display()),
            })?
            .is_dir();
        p.mount_point(&target, is_dir)?;
        let after = libc::MS_NOSUID | libc::MS_NODEV | if v.readonly { libc::MS_RDONLY } else { 0 };
        p.bind(&v.host, &target, true, after)?;
    }
    for m in &spec.masked_paths {
        p.push(Op::Mask(cstr(inside(m)?)?));
    }
    for r in &spec.readonly_paths {
        p.push(Op::ReadonlyPath(cstr(inside(r)?)?));
    }
    if spec.readonly_root {
        p.push(Op::Remount {
            target: cstr("/")?,
            flags: libc::MS_RDONLY | libc::MS_NODEV,
        });
    }
    p.push(Op::PivotRoot);
    Ok(p)
}

/// The root itself: bound or assembled at `staging`, then opened.
fn root_ops(p: &mut Plan, spec: &ContainerSpec, staging: &Path) -> Result<()> {
    match &spec.root {
        RootSpec::Dir(dir) => {
            p.push(Op::MountStaging {
                source: cstr(dir)?,
                target: cstr(staging)?,
                fstype: None,
                flags: libc::MS_BIND | libc::MS_REC,
                data: None,
            });
            p.push(Op::OpenRoot(cstr(staging)?));
            // nodev on the root: device nodes made inside with CAP_MKNOD cannot be opened.
            p.push(Op::Remount {
                target: cstr("/")?,
                flags: libc::MS_NODEV,
            });
        }
        RootSpec::Minimal { binaries, busybox } => {
            p.push(Op::MountStaging {
                source: cstr("isolab-root")?,
                target: cstr(staging)?,
                fstype: Some(cstr("tmpfs")?),
                flags: libc::MS_NOSUID | libc::MS_NODEV,
                data: Some(cstr("mode=755,size=65536k")?),
            });
            p.push(Op::OpenRoot(cstr(staging)?));
            for d in ["/bin", "/proc", "/dev", "/sys", "/tmp", "/etc"] {
                p.push(Op::Mkdir(cstr(d)?));
            }
            let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
            for b in minimal_binaries(binaries, *busybox) {
                let target = Path::new("/bin").join(b.file_name().unwrap_or_default());
                p.push(Op::CreateFile(cstr(&target)?));
                p.bind(&b, &target, false, ro)?;
            }
            if *busybox && Path::new(BUSYBOX).exists() {
                for a in APPLETS {
                    p.push(Op::Symlink {
                        target: cstr("busybox")?,
                        link: cstr(Path::new("/bin").join(a))?,
                    });
                }
            }
        }
    }
    Ok(())
}

fn add_mount(p: &mut Plan, m: &MountSpec, cgroups: &CgroupView<'_>) -> Result<()> {
    if m.fstype == "cgroup" || m.fstype == "cgroup2" {
        return super::cgroupfs::add(p, m, cgroups);
    }
    let target = inside(&m.destination)?;
    let o = parse_options(&m.options);
    if m.is_bind() {
        let host = Path::new(&m.source);
        let is_dir =
            std::fs::metadata(host)
                .map(|md| md.is_dir())
                .map_err(|e| Error::InvalidSpec {
                    field: "mount source",
                    value: m.source.clone(),
                    reason: e.to_string(),
                })?;
        p.mount_point(&target, is_dir)?;
        let recursive = o.flags & libc::MS_REC != 0;
        p.bind(
            host,
            &target,
            recursive,
            o.clear_or_set_after_bind | libc::MS_NODEV,
        )?;
    } else {
        p.mkdir_p(&target)?;
        // nodev everywhere (a bundle's /dev tmpfs included): a node made with
        // CAP_MKNOD cannot be opened. Only the bind-mounted host nodes work;
        // devpts keeps dev for its ptys and refuses mknod itself.
        let nodev = if m.fstype == "devpts" {
            0
        } else {
            libc::MS_NODEV
        };
        let data = if o.data.is_empty() {
            None
        } else {
            Some(cstr(&o.data)?)
        };
        p.push(Op::Mount {
            source: Some(cstr(&m.source)?),
            target: cstr(&target)?,
            fstype: Some(cstr(&m.fstype)?),
            flags: o.flags | nodev,
            data,
            // proc and sysfs only on plain directories, as runc insists: a
            // symlink there would move them (and their masks) elsewhere.
            strict: matches!(m.fstype.as_str(), "proc" | "sysfs"),
        });
    }
    if o.propagation != 0 {
        p.push(Op::Mount {
            source: None,
            target: cstr(&target)?,
            fstype: None,
            flags: o.propagation,
            data: None,
            strict: false,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_dir(dir: &Path) -> ContainerSpec {
        ContainerSpec::with_rootfs(dir, "/bin/true")
    }

    #[test]
    fn plan_starts_slave_binds_and_opens_the_root_and_ends_with_pivot() {
        let d = tempfile::tempdir().unwrap();
        let plan = plan(&spec_dir(d.path()), Path::new("/stage")).unwrap();
        assert_eq!(plan.ops[0], Op::MakeRslave);
        assert!(
            matches!(&plan.ops[1], Op::MountStaging { target, fstype: None, .. } if target.as_bytes() == b"/stage")
        );
        assert_eq!(plan.ops[2], Op::OpenRoot(CString::new("/stage").unwrap()));
        assert_eq!(plan.ops.last(), Some(&Op::PivotRoot));
        assert_eq!(plan.resolve, Resolve::InRoot);
    }

    #[test]
    fn every_path_after_the_root_is_a_container_path() {
        let d = tempfile::tempdir().unwrap();
        let plan = plan(&spec_dir(d.path()), Path::new("/stage")).unwrap();
        for op in &plan.ops[3..] {
            let t = match op {
                Op::Mount { target, .. } | Op::Remount { target, .. } => target,
                Op::Mkdir(p) | Op::CreateFile(p) | Op::Mask(p) | Op::ReadonlyPath(p) => p,
                Op::Symlink { link, .. } => link,
                _ => continue,
            };
            assert!(
                t.as_bytes().starts_with(b"/") && !t.as_bytes().starts_with(b"/stage"),
                "{op}"
            );
        }
    }

    #[test]
    fn proc_and_sysfs_mounts_are_strict() {
        let d = tempfile::tempdir().unwrap();
        let plan = plan(&spec_dir(d.path()), Path::new("/s")).unwrap();
        for op in &plan.ops {
            if let Op::Mount {
                fstype: Some(t),
                strict,
                ..
            } = op
            {
                let special = matches!(t.as_bytes(), b"proc" | b"sysfs");
                assert_eq!(*strict, special, "{op}");
            }
        }
    }

    #[test]
    fn proc_is_mounted_before_masking_proc_paths() {
        let d = tempfile::tempdir().unwrap();
        let plan = plan(&spec_dir(d.path()), Path::new("/s")).unwrap();
        let proc = plan.ops.iter().position(
            |o| matches!(o, Op::Mount { fstype: Some(t), .. } if t.as_bytes() == b"proc"),
        );
        let kcore = plan
            .ops
            .iter()
            .position(|o| *o == Op::Mask(CString::new("/proc/kcore").unwrap()));
        assert!(proc.unwrap() < kcore.unwrap());
    }

    #[test]
    fn readonly_root_is_remounted_after_all_mounts() {
        let d = tempfile::tempdir().unwrap();
        let plan = plan(&spec_dir(d.path()).readonly_root(true), Path::new("/s")).unwrap();
        let n = plan.ops.len();
        assert_eq!(
            plan.ops[n - 2],
            Op::Remount {
                target: CString::new("/").unwrap(),
                flags: libc::MS_RDONLY | libc::MS_NODEV
            }
        );
    }

    #[test]
    fn every_filesystem_but_devpts_is_nodev() {
        let d = tempfile::tempdir().unwrap();
        let plan = plan(&spec_dir(d.path()), Path::new("/s")).unwrap();
        let mut seen = 0;
        for op in &plan.ops {
            if let Op::Mount {
                fstype: Some(t),
                flags,
                ..
            } = op
            {
                let devpts = t.as_bytes() == b"devpts";
                assert_eq!(flags & libc::MS_NODEV == 0, devpts, "{op}");
                seen += 1;
            }
        }
        assert!(seen >= 6);
    }

    #[test]
    fn dotdot_or_relative_container_paths_are_rejected() {
        let d = tempfile::tempdir().unwrap();
        for bad in ["/proc/../../etc", "proc/kcore"] {
            let mut s = spec_dir(d.path());
            s.masked_paths.push(bad.into());
            let err = plan(&s, Path::new("/s")).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidSpec {
                        field: "container path",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn weakened_paths_resolve_on_the_host() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec_dir(d.path());
        s.hardening.paths_in_root = false;
        assert_eq!(plan(&s, Path::new("/s")).unwrap().resolve, Resolve::Host);
    }
}
