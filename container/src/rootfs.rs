//! The container's root filesystem: a plan of mount operations built in the
//! parent (where allocating and failing with good messages is easy) and
//! executed by the child (which only makes syscalls).
//!
//! The root is prepared at a staging directory `S`: the given rootfs bound onto
//! itself (no host directory needed), or a fresh tmpfs on a per-run directory, then `/proc`, `/dev`, `/sys`, volumes, masked and
//! read-only paths, and finally `pivot_root(S)` with the old root detached.
//! Everything happens in the child's mount namespace, so it all disappears
//! with the namespace: nothing is copied and nothing is left on the host.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::mounts::{MountSpec, parse_options};
use crate::spec::{ContainerSpec, RootSpec};
use crate::syscall::{FileKind, Syscall};
use crate::{Error, Result};

/// Host device nodes bind-mounted into the container's `/dev`.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Where the host's static busybox is looked for.
pub const BUSYBOX: &str = "/bin/busybox";

/// busybox applets linked in the minimal root (busybox's shell finds the others itself).
pub const APPLETS: &[&str] = &[
    "sh", "ash", "cat", "echo", "true", "false", "ls", "ps", "hostname", "id", "env", "sleep",
    "grep", "dd", "head", "tail", "seq", "wc", "mount", "umount", "unshare", "nsenter", "ip",
    "ifconfig", "kill", "mkdir", "rm", "touch", "stat", "test", "[", "readlink", "uname", "cut",
    "sed", "awk", "tr", "sort", "uniq", "xargs", "mknod", "chroot", "whoami", "nproc", "free",
    "df", "dmesg", "sysctl", "insmod", "setpriv", "timeout", "yes", "date",
];

/// One step of the root filesystem set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Make every mount in the new namespace a slave, so nothing propagates back to the host.
    MakeRslave,
    /// `mount(2)`.
    Mount {
        /// Source (`None` for none).
        source: Option<CString>,
        /// Target.
        target: CString,
        /// Filesystem type (`None` for binds).
        fstype: Option<CString>,
        /// Flags.
        flags: libc::c_ulong,
        /// Filesystem data.
        data: Option<CString>,
    },
    /// Change the per-mount flags of an existing mount (`MS_REMOUNT | MS_BIND | flags`).
    Remount {
        /// The mount point.
        target: CString,
        /// New flags.
        flags: libc::c_ulong,
    },
    /// Create a directory (existing is fine).
    Mkdir(CString),
    /// Create an empty file to mount over (existing is fine).
    CreateFile(CString),
    /// Create a symlink (existing is fine).
    Symlink {
        /// What it points to.
        target: CString,
        /// The link.
        link: CString,
    },
    /// Hide a path: a read-only empty tmpfs over a directory, `/dev/null` over a file.
    Mask(CString),
    /// Make a path read-only if it exists.
    ReadonlyPath(CString),
    /// `pivot_root` into the staging directory and detach the old root.
    PivotRoot(CString),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Op::MakeRslave => write!(f, "make / a recursive slave mount"),
            Op::Mount {
                source,
                target,
                fstype,
                ..
            } => match fstype {
                Some(t) => write!(f, "mount {} on {}", s(t), s(target)),
                None => write!(
                    f,
                    "bind-mount {} onto {}",
                    source.as_ref().map(s).unwrap_or_default(),
                    s(target)
                ),
            },
            Op::Remount { target, .. } => write!(f, "remount {} with new flags", s(target)),
            Op::Mkdir(p) => write!(f, "create directory {}", s(p)),
            Op::CreateFile(p) => write!(f, "create mount point file {}", s(p)),
            Op::Symlink { target, link } => write!(f, "symlink {} -> {}", s(link), s(target)),
            Op::Mask(p) => write!(f, "mask {}", s(p)),
            Op::ReadonlyPath(p) => write!(f, "make {} read-only", s(p)),
            Op::PivotRoot(p) => write!(f, "pivot_root into {}", s(p)),
        }
    }
}

/// The whole filesystem set-up, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The steps.
    pub ops: Vec<Op>,
}

fn cstr(p: impl AsRef<Path>) -> Result<CString> {
    let p = p.as_ref();
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::InvalidSpec {
        field: "path",
        value: p.display().to_string(),
        reason: "contains a NUL byte".into(),
    })
}

/// `staging` joined with an absolute container path, refusing `..`.
fn inside(staging: &Path, guest: &str) -> Result<PathBuf> {
    let mut out = staging.to_path_buf();
    for c in Path::new(guest).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => {
                return Err(Error::InvalidSpec {
                    field: "container path",
                    value: guest.into(),
                    reason: "must be absolute and must not contain `..`".into(),
                });
            }
        }
    }
    Ok(out)
}

impl Plan {
    fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// `mkdir -p` of `path`, one op per component below `staging`.
    fn mkdir_p(&mut self, staging: &Path, path: &Path) -> Result<()> {
        let rel = path.strip_prefix(staging).unwrap_or(path);
        let mut cur = staging.to_path_buf();
        for c in rel.components() {
            cur.push(c);
            let op = Op::Mkdir(cstr(&cur)?);
            if !self.ops.contains(&op) {
                self.push(op);
            }
        }
        Ok(())
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

/// Builds the plan for `spec` with the staging directory `staging`.
pub fn plan(spec: &ContainerSpec, staging: &Path) -> Result<Plan> {
    let mut p = Plan::default();
    p.push(Op::MakeRslave);
    match &spec.root {
        RootSpec::Dir(dir) => {
            // nodev on the root: device nodes made inside with CAP_MKNOD cannot be opened.
            p.bind(dir, staging, true, libc::MS_NODEV)?;
        }
        RootSpec::Minimal { binaries, busybox } => {
            p.push(Op::Mount {
                source: Some(cstr("isolab-root")?),
                target: cstr(staging)?,
                fstype: Some(cstr("tmpfs")?),
                flags: libc::MS_NOSUID | libc::MS_NODEV,
                data: Some(cstr("mode=755,size=65536k")?),
            });
            for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
                p.push(Op::Mkdir(cstr(staging.join(d))?));
            }
            let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
            for b in minimal_binaries(binaries, *busybox) {
                let target = staging.join("bin").join(b.file_name().unwrap_or_default());
                p.push(Op::CreateFile(cstr(&target)?));
                p.bind(&b, &target, false, ro)?;
            }
            if *busybox && Path::new(BUSYBOX).exists() {
                for a in APPLETS {
                    p.push(Op::Symlink {
                        target: cstr("busybox")?,
                        link: cstr(staging.join("bin").join(a))?,
                    });
                }
            }
        }
    }
    for m in &spec.mounts {
        add_mount(&mut p, staging, m)?;
    }
    let dev = inside(staging, "/dev")?;
    for d in DEVICES {
        let target = dev.join(d);
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
            link: cstr(dev.join(link))?,
        });
    }
    for v in &spec.volumes {
        let target = inside(staging, &v.guest.to_string_lossy())?;
        let is_dir = std::fs::metadata(&v.host)
            .map_err(|e| Error::BadVolume {
                spec: format!("{}:{}", v.host.display(), v.guest.display()),
                reason: format!("host path {}: {e}", v.host.display()),
            })?
            .is_dir();
        if is_dir {
            p.mkdir_p(staging, &target)?;
        } else {
            if let Some(parent) = target.parent() {
                p.mkdir_p(staging, parent)?;
            }
            p.push(Op::CreateFile(cstr(&target)?));
        }
        let after = libc::MS_NOSUID | libc::MS_NODEV | if v.readonly { libc::MS_RDONLY } else { 0 };
        p.bind(&v.host, &target, true, after)?;
    }
    for m in &spec.masked_paths {
        p.push(Op::Mask(cstr(inside(staging, m)?)?));
    }
    for r in &spec.readonly_paths {
        p.push(Op::ReadonlyPath(cstr(inside(staging, r)?)?));
    }
    if spec.readonly_root {
        p.push(Op::Remount {
            target: cstr(staging)?,
            flags: libc::MS_RDONLY | libc::MS_NODEV,
        });
    }
    p.push(Op::PivotRoot(cstr(staging)?));
    Ok(p)
}

fn add_mount(p: &mut Plan, staging: &Path, m: &MountSpec) -> Result<()> {
    let target = inside(staging, &m.destination)?;
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
        if is_dir {
            p.mkdir_p(staging, &target)?;
        } else {
            if let Some(parent) = target.parent() {
                p.mkdir_p(staging, parent)?;
            }
            p.push(Op::CreateFile(cstr(&target)?));
        }
        let recursive = o.flags & libc::MS_REC != 0;
        p.bind(
            host,
            &target,
            recursive,
            o.clear_or_set_after_bind | libc::MS_NODEV,
        )?;
    } else {
        p.mkdir_p(staging, &target)?;
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
        });
    }
    if o.propagation != 0 {
        p.push(Op::Mount {
            source: None,
            target: cstr(&target)?,
            fstype: None,
            flags: o.propagation,
            data: None,
        });
    }
    Ok(())
}

/// The host binaries a minimal root holds.
pub fn minimal_binaries(binaries: &[PathBuf], busybox: bool) -> Vec<PathBuf> {
    let mut out = binaries.to_vec();
    if busybox
        && Path::new(BUSYBOX).exists()
        && !out
            .iter()
            .any(|b| b.file_name() == Some("busybox".as_ref()))
    {
        out.push(PathBuf::from(BUSYBOX));
    }
    out
}

/// Runs the plan. On failure returns the index of the failed op and the error.
pub fn execute(sys: &dyn Syscall, plan: &Plan) -> std::result::Result<(), (usize, io::Error)> {
    for (i, op) in plan.ops.iter().enumerate() {
        run_op(sys, op).map_err(|e| (i, e))?;
    }
    Ok(())
}

fn run_op(sys: &dyn Syscall, op: &Op) -> io::Result<()> {
    match op {
        Op::MakeRslave => sys.mount(None, c"/", None, libc::MS_REC | libc::MS_SLAVE, None),
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => sys.mount(
            source.as_deref(),
            target,
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        ),
        Op::Remount { target, flags } => sys.mount(
            None,
            target,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | flags,
            None,
        ),
        Op::Mkdir(p) => sys.mkdir(p, 0o755),
        Op::CreateFile(p) => sys.create_file(p),
        Op::Symlink { target, link } => sys.symlink(target, link),
        Op::Mask(p) => match sys.file_kind(p)? {
            Some(FileKind::Dir) => sys.mount(
                Some(c"tmpfs"),
                p,
                Some(c"tmpfs"),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some(c"size=0"),
            ),
            Some(FileKind::Other) => sys.mount(Some(c"/dev/null"), p, None, libc::MS_BIND, None),
            None => Ok(()),
        },
        Op::ReadonlyPath(p) => {
            if sys.file_kind(p)?.is_none() {
                return Ok(());
            }
            sys.mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None)?;
            let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            sys.mount(None, p, None, libc::MS_REMOUNT | libc::MS_BIND | ro, None)
        }
        Op::PivotRoot(p) => {
            sys.chdir(p)?;
            // pivot_root(".", ".") stacks the old root on top of the new one; the
            // detach then removes it without needing a directory for it.
            sys.pivot_root(c".", c".")?;
            sys.umount_detach(c".")?;
            sys.chdir(c"/")
        }
    }
}

/// Checks the root exists, and finds `program` in it (following symlinks
/// inside the root, never out of it). Returns the path inside the container.
pub fn resolve_program(spec: &ContainerSpec) -> Result<String> {
    let path_dirs: Vec<String> = spec
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/bin")
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(str::to_string)
        .collect();
    let candidates: Vec<String> = if spec.program.contains('/') {
        vec![spec.program.clone()]
    } else {
        path_dirs
            .iter()
            .map(|d| format!("{}/{}", d.trim_end_matches('/'), spec.program))
            .collect()
    };
    if spec.program.is_empty() {
        return Err(Error::InvalidSpec {
            field: "program",
            value: String::new(),
            reason: "is empty".into(),
        });
    }
    match &spec.root {
        RootSpec::Dir(dir) => {
            let md =
                std::fs::metadata(dir).map_err(|_| Error::RootfsMissing { path: dir.clone() })?;
            if !md.is_dir() {
                return Err(Error::RootfsNotDirectory { path: dir.clone() });
            }
            for c in &candidates {
                if let Some(host) = lookup_in_root(dir, c) {
                    check_executable(&host)?;
                    return Ok(c.clone());
                }
            }
            Err(Error::ProgramNotInRootfs {
                program: spec.program.clone(),
                rootfs: dir.clone(),
                looked: candidates.join(", "),
            })
        }
        RootSpec::Minimal { binaries, busybox } => {
            for b in binaries {
                if !b.exists() {
                    return Err(Error::ProgramMissing { path: b.clone() });
                }
                check_executable(b)?;
            }
            let all = minimal_binaries(binaries, *busybox);
            let has_busybox = all
                .iter()
                .any(|b| b.file_name() == Some("busybox".as_ref()));
            for c in &candidates {
                let Some(name) = c.strip_prefix("/bin/") else {
                    continue;
                };
                if all.iter().any(|b| b.file_name() == Some(name.as_ref()))
                    || (has_busybox && APPLETS.contains(&name))
                {
                    return Ok(c.clone());
                }
            }
            Err(Error::ProgramNotInRootfs {
                program: spec.program.clone(),
                rootfs: PathBuf::from("<minimal root>"),
                looked: candidates.join(", "),
            })
        }
    }
}

fn check_executable(host: &Path) -> Result<()> {
    let md = std::fs::metadata(host).map_err(|_| Error::ProgramMissing {
        path: host.to_path_buf(),
    })?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        return Err(Error::ProgramNotExecutable {
            path: host.to_path_buf(),
        });
    }
    Ok(())
}

/// Resolves `guest` inside `root` like the kernel would after `pivot_root`:
/// absolute symlinks restart at `root`, `..` stops at `root`.
pub fn lookup_in_root(root: &Path, guest: &str) -> Option<PathBuf> {
    let mut todo: Vec<String> = guest
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut cur = root.to_path_buf();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                if cur != root {
                    cur.pop();
                }
                continue;
            }
            _ => {}
        }
        let next = cur.join(&part);
        let md = std::fs::symlink_metadata(&next).ok()?;
        if md.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&next).ok()?;
            let t = target.to_string_lossy();
            if t.starts_with('/') {
                cur = root.to_path_buf();
            }
            todo.extend(
                t.split('/')
                    .filter(|s| !s.is_empty())
                    .rev()
                    .map(str::to_string),
            );
        } else {
            cur = next;
        }
    }
    cur.exists().then_some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::recorder::Recorder;

    fn spec_dir(dir: &Path) -> ContainerSpec {
        ContainerSpec::with_rootfs(dir, "/bin/true")
    }

    #[test]
    fn plan_starts_slave_binds_root_and_ends_with_pivot() {
        let d = tempfile::tempdir().unwrap();
        let plan = plan(&spec_dir(d.path()), Path::new("/stage")).unwrap();
        assert_eq!(plan.ops[0], Op::MakeRslave);
        assert!(
            matches!(&plan.ops[1], Op::Mount { target, fstype: None, .. } if target.as_bytes() == b"/stage")
        );
        assert_eq!(
            plan.ops.last(),
            Some(&Op::PivotRoot(CString::new("/stage").unwrap()))
        );
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
            .position(|o| *o == Op::Mask(CString::new("/s/proc/kcore").unwrap()));
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
                target: CString::new("/s").unwrap(),
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
    fn dotdot_in_a_container_path_is_rejected() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec_dir(d.path());
        s.masked_paths.push("/proc/../../etc".into());
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

    #[test]
    fn execute_masks_dirs_with_tmpfs_files_with_null_and_skips_missing() {
        let rec = Recorder::default();
        rec.files
            .borrow_mut()
            .insert("/s/proc/acpi".into(), FileKind::Dir);
        rec.files
            .borrow_mut()
            .insert("/s/proc/kcore".into(), FileKind::Other);
        let plan = Plan {
            ops: vec![
                Op::Mask(CString::new("/s/proc/acpi").unwrap()),
                Op::Mask(CString::new("/s/proc/kcore").unwrap()),
                Op::Mask(CString::new("/s/proc/missing").unwrap()),
            ],
        };
        execute(&rec, &plan).unwrap();
        let calls = rec.calls.borrow();
        assert_eq!(calls.len(), 2);
        assert!(
            calls[0].starts_with("mount tmpfs /s/proc/acpi tmpfs"),
            "{calls:?}"
        );
        assert!(
            calls[1].starts_with("mount /dev/null /s/proc/kcore -"),
            "{calls:?}"
        );
    }

    #[test]
    fn execute_reports_the_failing_step_and_stops() {
        let rec = Recorder {
            fail_on: Some(("pivot_root".into(), libc::EINVAL)),
            ..Recorder::default()
        };
        let plan = Plan {
            ops: vec![
                Op::Mkdir(CString::new("/s/x").unwrap()),
                Op::PivotRoot(CString::new("/s").unwrap()),
            ],
        };
        let (idx, err) = execute(&rec, &plan).unwrap_err();
        assert_eq!(idx, 1);
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert!(!rec.calls.borrow().iter().any(|c| c.starts_with("umount")));
    }

    #[test]
    fn pivot_detaches_the_old_root() {
        let rec = Recorder::default();
        execute(
            &rec,
            &Plan {
                ops: vec![Op::PivotRoot(CString::new("/s").unwrap())],
            },
        )
        .unwrap();
        assert_eq!(
            *rec.calls.borrow(),
            ["chdir /s", "pivot_root . .", "umount .", "chdir /"]
        );
    }

    #[test]
    fn lookup_follows_absolute_links_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/busybox"), b"x").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", d.path().join("bin/sh")).unwrap();
        // A link escaping with .. stays inside the root.
        std::os::unix::fs::symlink("../../../../bin/busybox", d.path().join("bin/up")).unwrap();
        assert_eq!(
            lookup_in_root(d.path(), "/bin/sh"),
            Some(d.path().join("bin/busybox"))
        );
        assert_eq!(
            lookup_in_root(d.path(), "/bin/up"),
            Some(d.path().join("bin/busybox"))
        );
        assert_eq!(lookup_in_root(d.path(), "/bin/none"), None);
    }

    #[test]
    fn missing_program_in_rootfs_names_the_paths_tried() {
        let d = tempfile::tempdir().unwrap();
        let s = ContainerSpec::with_rootfs(d.path(), "nothere");
        match resolve_program(&s).unwrap_err() {
            Error::ProgramNotInRootfs { looked, .. } => {
                assert!(looked.contains("/bin/nothere"), "{looked}")
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn missing_rootfs_is_its_own_error() {
        let s = ContainerSpec::with_rootfs("/nonexistent/isolab-root", "/bin/true");
        assert!(matches!(
            resolve_program(&s),
            Err(Error::RootfsMissing { .. })
        ));
    }
}
