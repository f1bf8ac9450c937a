//! Running the plan in the child: each [`Op`] through [`Syscall`], every
//! container path resolved inside the root ([`super::resolve`]).

use std::io;
use std::os::fd::RawFd;

use super::plan::{Op, Plan};
use super::resolve::{self, Fd};
use crate::syscall::{FileKind, Resolve, Source, Syscall};

/// Runs the plan. On failure returns the index of the failed op and the error.
pub fn execute(sys: &dyn Syscall, plan: &Plan) -> std::result::Result<(), (usize, io::Error)> {
    let mut root: Option<Fd<'_>> = None;
    for (i, op) in plan.ops.iter().enumerate() {
        run_op(sys, plan, &mut root, op).map_err(|e| (i, e))?;
    }
    Ok(())
}

fn root_fd(root: &Option<Fd<'_>>) -> io::Result<RawFd> {
    root.as_ref()
        .map(|f| f.fd)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
}

fn run_op<'a>(
    sys: &'a dyn Syscall,
    plan: &Plan,
    root: &mut Option<Fd<'a>>,
    op: &Op,
) -> io::Result<()> {
    let how = plan.resolve;
    match op {
        Op::MakeRslave => sys.mount(None, c"/", None, libc::MS_REC | libc::MS_SLAVE, None),
        Op::MountStaging {
            source,
            target,
            fstype,
            flags,
            data,
        } => sys.mount(
            Some(source),
            target,
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        ),
        Op::OpenRoot(p) => {
            *root = Some(Fd {
                sys,
                fd: sys.open_dir(p)?,
            });
            Ok(())
        }
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
            strict,
        } => {
            let how = if *strict && how == Resolve::InRoot {
                Resolve::NoSymlinks
            } else {
                how
            };
            let t = resolve::open(sys, root_fd(root)?, target, how)?;
            let src = source.as_deref().map_or(Source::None, Source::Path);
            sys.mount_fd(src, t.fd, fstype.as_deref(), *flags, data.as_deref())
        }
        Op::Remount { target, flags } => {
            let t = resolve::open(sys, root_fd(root)?, target, how)?;
            remount(sys, plan, t.fd, *flags)
        }
        Op::Mkdir(p) => {
            let (dir, name) = resolve::open_parent(sys, root_fd(root)?, p, how)?;
            sys.mkdir_at(dir.fd, name, 0o755)
        }
        Op::CreateFile(p) => {
            if how == Resolve::Host {
                return sys.create_following(root_fd(root)?, p);
            }
            let (dir, name) = resolve::open_parent(sys, root_fd(root)?, p, how)?;
            sys.create_at(dir.fd, name)
        }
        Op::Symlink { target, link } => {
            let (dir, name) = resolve::open_parent(sys, root_fd(root)?, link, how)?;
            sys.symlink_at(target, dir.fd, name)
        }
        Op::Mask(p) => mask(sys, root_fd(root)?, p, how),
        Op::ReadonlyPath(p) => readonly_path(sys, plan, root_fd(root)?, p),
        Op::PivotRoot => {
            sys.fchdir(root_fd(root)?)?;
            // pivot_root(".", ".") stacks the old root on top of the new one; the
            // detach then removes it without needing a directory for it.
            sys.pivot_root(c".", c".")?;
            sys.umount_detach(c".")?;
            sys.chdir(c"/")
        }
    }
}

/// `MS_REMOUNT | MS_BIND | flags` on the mount `fd` is the root of. In a user
/// namespace the kernel refuses to clear flags it locked on a mount that came
/// from the parent namespace (`nosuid`, `nodev`, `ro`, the atime mode), so
/// those are kept.
fn remount(sys: &dyn Syscall, plan: &Plan, fd: RawFd, mut flags: libc::c_ulong) -> io::Result<()> {
    if plan.keep_locked_flags {
        flags |= sys.mount_flags(fd)?;
    }
    sys.mount_fd(
        Source::None,
        fd,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | flags,
        None,
    )
}

fn open_existing<'a>(
    sys: &'a dyn Syscall,
    root: RawFd,
    p: &std::ffi::CStr,
    how: Resolve,
) -> io::Result<Option<Fd<'a>>> {
    match resolve::open(sys, root, p, how) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn mask(sys: &dyn Syscall, root: RawFd, p: &std::ffi::CStr, how: Resolve) -> io::Result<()> {
    let Some(t) = open_existing(sys, root, p, how)? else {
        return Ok(());
    };
    match sys.kind(t.fd)? {
        FileKind::Dir => sys.mount_fd(
            Source::Path(c"tmpfs"),
            t.fd,
            Some(c"tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(c"size=0"),
        ),
        _ => sys.mount_fd(Source::Path(c"/dev/null"), t.fd, None, libc::MS_BIND, None),
    }
}

fn readonly_path(
    sys: &dyn Syscall,
    plan: &Plan,
    root: RawFd,
    p: &std::ffi::CStr,
) -> io::Result<()> {
    let Some(t) = open_existing(sys, root, p, plan.resolve)? else {
        return Ok(());
    };
    sys.mount_fd(
        Source::Fd(t.fd),
        t.fd,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )?;
    drop(t);
    // Opened again: the old descriptor names the covered entry, not the new bind on top.
    let t = resolve::open(sys, root, p, plan.resolve)?;
    let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    remount(sys, plan, t.fd, ro)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::recorder::Recorder;
    use std::ffi::CString;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    fn with_root(ops: Vec<Op>) -> Plan {
        let mut all = vec![Op::OpenRoot(c("/s"))];
        all.extend(ops);
        Plan {
            ops: all,
            ..Plan::default()
        }
    }

    #[test]
    fn masks_dirs_with_tmpfs_files_with_null_and_skips_missing() {
        let rec = Recorder::default();
        rec.files
            .borrow_mut()
            .insert("/proc/acpi".into(), FileKind::Dir);
        rec.files
            .borrow_mut()
            .insert("/proc/kcore".into(), FileKind::Other);
        let plan = with_root(vec![
            Op::Mask(c("/proc/acpi")),
            Op::Mask(c("/proc/kcore")),
            Op::Mask(c("/proc/missing")),
        ]);
        execute(&rec, &plan).unwrap();
        let calls: Vec<String> = rec
            .calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("mount"))
            .cloned()
            .collect();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(
            calls[0].starts_with("mount tmpfs @/proc/acpi tmpfs"),
            "{calls:?}"
        );
        assert!(
            calls[1].starts_with("mount /dev/null @/proc/kcore -"),
            "{calls:?}"
        );
    }

    #[test]
    fn paths_are_opened_in_the_root_and_strict_mounts_allow_no_symlink() {
        let rec = Recorder::default();
        let plan = with_root(vec![
            Op::Mkdir(c("/proc")),
            Op::Mount {
                source: Some(c("proc")),
                target: c("/proc"),
                fstype: Some(c("proc")),
                flags: 0,
                data: None,
                strict: true,
            },
            Op::CreateFile(c("/etc/hosts")),
        ]);
        rec.files.borrow_mut().insert("/etc".into(), FileKind::Dir);
        execute(&rec, &plan).unwrap();
        let calls = rec.calls.borrow();
        assert!(calls.contains(&"open / InRoot".to_string()), "{calls:?}");
        assert!(calls.contains(&"mkdir /proc".to_string()), "{calls:?}");
        assert!(
            calls.contains(&"open /proc NoSymlinks".to_string()),
            "{calls:?}"
        );
        assert!(calls.contains(&"mount proc @/proc proc 0x0 -".to_string()));
        assert!(
            calls.contains(&"create /etc/hosts".to_string()),
            "{calls:?}"
        );
    }

    #[test]
    fn readonly_path_reopens_before_the_remount_and_keeps_locked_flags() {
        let rec = Recorder::default();
        rec.files
            .borrow_mut()
            .insert("/proc/sys".into(), FileKind::Dir);
        let mut plan = with_root(vec![Op::ReadonlyPath(c("/proc/sys"))]);
        plan.keep_locked_flags = true;
        execute(&rec, &plan).unwrap();
        let calls = rec.calls.borrow();
        let opens = calls
            .iter()
            .filter(|c| *c == "open /proc/sys InRoot")
            .count();
        assert_eq!(opens, 2, "{calls:?}");
        let ro = libc::MS_REMOUNT
            | libc::MS_BIND
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        assert_eq!(
            calls.last().unwrap(),
            &format!("mount - @/proc/sys - {ro:#x} -")
        );
    }

    #[test]
    fn reports_the_failing_step_and_stops() {
        let rec = Recorder {
            fail_on: Some(("pivot_root".into(), libc::EINVAL)),
            ..Recorder::default()
        };
        let plan = with_root(vec![Op::Mkdir(c("/x")), Op::PivotRoot]);
        let (idx, err) = execute(&rec, &plan).unwrap_err();
        assert_eq!(idx, 2);
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert!(!rec.calls.borrow().iter().any(|c| c.starts_with("umount")));
    }

    #[test]
    fn pivot_enters_the_root_fd_and_detaches_the_old_root() {
        let rec = Recorder::default();
        execute(&rec, &with_root(vec![Op::PivotRoot])).unwrap();
        assert_eq!(
            *rec.calls.borrow(),
            [
                "open_dir /s",
                "fchdir @/",
                "pivot_root . .",
                "umount .",
                "chdir /"
            ]
        );
    }

    #[test]
    fn an_in_root_op_before_the_root_is_open_fails() {
        let rec = Recorder::default();
        let plan = Plan {
            ops: vec![Op::Mkdir(c("/x"))],
            ..Plan::default()
        };
        let (idx, err) = execute(&rec, &plan).unwrap_err();
        assert_eq!((idx, err.raw_os_error()), (0, Some(libc::EBADF)));
    }
}
