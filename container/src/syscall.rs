//! The seam between set-up logic and the kernel.
//!
//! The child's filesystem set-up runs through [`Syscall`], so the order and
//! arguments of its mounts can be unit-tested with a recorder, without root.
//! Implementations used in the child must not allocate: the child of a
//! multi-threaded parent may not take the allocator's locks.
//!
//! Paths inside the container are never handed to the kernel as host paths:
//! they are opened relative to a file descriptor of the container's root with
//! [`Syscall::open_in`] (see [`crate::rootfs::resolve`]), and mounts go
//! through the resulting descriptor with [`Syscall::mount_fd`].

use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;

/// What a path is, as far as mounting over it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A directory.
    Dir,
    /// A symbolic link (only seen when it was opened without following it).
    Symlink,
    /// Anything else (regular file, device node, FIFO, socket).
    Other,
}

/// How a path inside the container's root is resolved by [`Syscall::open_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Inside the root: `..` stops at it, absolute symlinks restart at it, and
    /// `/proc/<pid>/fd`-style magic links are refused
    /// (`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`).
    InRoot,
    /// Like [`Resolve::InRoot`], and no symlink at all in any component
    /// (`RESOLVE_NO_SYMLINKS`): for the targets of `proc` and `sysfs` mounts.
    NoSymlinks,
    /// As a plain path below the root directory, following symlinks wherever
    /// they lead on the host. Unsafe: it exists only so the escape suite can
    /// show that its symlink attempts get through without in-root resolution.
    Host,
}

/// The source of a mount made through a file descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// No source (`MS_REMOUNT`, propagation changes).
    None,
    /// A host path or a filesystem's source name (`proc`, `tmpfs`).
    Path(&'a CStr),
    /// An open file descriptor (bind the object it refers to).
    Fd(RawFd),
}

/// The kernel calls the filesystem set-up needs.
pub trait Syscall {
    /// `mount(2)` on host paths.
    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> io::Result<()>;
    /// `mount(2)` onto the object `target` refers to (through `/proc/self/fd`).
    fn mount_fd(
        &self,
        source: Source<'_>,
        target: RawFd,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> io::Result<()>;
    /// Opens a host directory with `O_PATH` (the staging directory of the root).
    fn open_dir(&self, path: &CStr) -> io::Result<RawFd>;
    /// Opens `path` below `dir` with `O_PATH` (never blocks, never reads),
    /// resolved as `how` says; with `follow` false a final symlink is opened itself.
    fn open_in(&self, dir: RawFd, path: &CStr, how: Resolve, follow: bool) -> io::Result<RawFd>;
    /// `mkdirat(2)`; an existing entry (of any type) is not an error.
    fn mkdir_at(&self, dir: RawFd, name: &CStr, mode: u32) -> io::Result<()>;
    /// Creates an empty regular file named `name` in `dir` unless an entry of
    /// that name exists (which is left alone and never opened).
    fn create_at(&self, dir: RawFd, name: &CStr) -> io::Result<()>;
    /// Opens (creating) `path` below `dir` for writing as a plain path:
    /// follows symlinks wherever they lead and blocks on a FIFO. The
    /// pre-hardening behaviour, kept only for the escape suite's proof.
    fn create_following(&self, dir: RawFd, path: &CStr) -> io::Result<()>;
    /// `symlinkat(2)`; an existing entry is not an error.
    fn symlink_at(&self, target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()>;
    /// What `fd` refers to.
    fn kind(&self, fd: RawFd) -> io::Result<FileKind>;
    /// The per-mount flags (`MS_NOSUID`, `MS_NODEV`, …) of the mount holding `fd`.
    fn mount_flags(&self, fd: RawFd) -> io::Result<libc::c_ulong>;
    /// `close(2)`.
    fn close(&self, fd: RawFd);
    /// `umount2(target, MNT_DETACH)`.
    fn umount_detach(&self, target: &CStr) -> io::Result<()>;
    /// `pivot_root(2)`.
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> io::Result<()>;
    /// `chdir(2)`.
    fn chdir(&self, path: &CStr) -> io::Result<()>;
    /// `fchdir(2)`.
    fn fchdir(&self, fd: RawFd) -> io::Result<()>;
}

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn ptr_or_null(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

/// `/proc/self/fd/<fd>` as a NUL-terminated string in a stack buffer.
pub struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    /// The magic link naming `fd`.
    pub fn new(fd: RawFd) -> FdPath {
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 10];
        let mut n = fd.max(0) as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[prefix.len() + i] = digits[len - 1 - i];
        }
        FdPath { buf }
    }

    /// The path.
    pub fn as_cstr(&self) -> &CStr {
        // The buffer is zero-filled past the digits, so a NUL is always there.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"/")
    }
}

/// The real kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Linux;

const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

impl Syscall for Linux {
    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> io::Result<()> {
        // SAFETY: every pointer is a NUL-terminated string that outlives the call, or null.
        check(unsafe {
            libc::mount(
                ptr_or_null(source),
                target.as_ptr(),
                ptr_or_null(fstype),
                flags,
                ptr_or_null(data).cast(),
            )
        } as libc::c_long)
    }

    fn mount_fd(
        &self,
        source: Source<'_>,
        target: RawFd,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> io::Result<()> {
        let src_fd;
        let src = match source {
            Source::None => None,
            Source::Path(p) => Some(p),
            Source::Fd(fd) => {
                src_fd = FdPath::new(fd);
                Some(src_fd.as_cstr())
            }
        };
        let dst = FdPath::new(target);
        self.mount(src, dst.as_cstr(), fstype, flags, data)
    }

    fn open_dir(&self, path: &CStr) -> io::Result<RawFd> {
        // SAFETY: path is a valid C string; the fd returned is the caller's.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        check(fd as libc::c_long).map(|()| fd)
    }

    fn open_in(&self, dir: RawFd, path: &CStr, how: Resolve, follow: bool) -> io::Result<RawFd> {
        let mut flags = libc::O_PATH | libc::O_CLOEXEC;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        let resolve = match how {
            Resolve::InRoot => RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            Resolve::NoSymlinks => RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
            Resolve::Host => 0,
        };
        // With no RESOLVE_* flag an absolute path would ignore `dir`: skip the
        // leading slashes so the path stays relative to it.
        let bytes = path.to_bytes_with_nul();
        let skip = if how == Resolve::Host {
            bytes.iter().take_while(|b| **b == b'/').count()
        } else {
            0
        };
        let rel = CStr::from_bytes_with_nul(&bytes[skip..]).unwrap_or(c".");
        let rel = if rel.is_empty() { c"." } else { rel };
        // SAFETY: open_how is plain data; all-zero is its documented default.
        let mut how_arg: libc::open_how = unsafe { std::mem::zeroed() };
        how_arg.flags = flags as u64;
        how_arg.resolve = resolve;
        // SAFETY: a valid C string and an open_how of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                rel.as_ptr(),
                &how_arg as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        check(fd).map(|()| fd as RawFd)
    }

    fn mkdir_at(&self, dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
        // SAFETY: name is a valid C string.
        match check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) } as libc::c_long) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    fn create_at(&self, dir: RawFd, name: &CStr) -> io::Result<()> {
        // O_EXCL: an existing entry (a FIFO, a symlink) is never opened, so
        // nothing can block here or be followed out of the root.
        // SAFETY: name is a valid C string; the fd is closed right away.
        let fd = unsafe {
            libc::openat(
                dir,
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EEXIST) {
                Ok(())
            } else {
                Err(e)
            };
        }
        self.close(fd);
        Ok(())
    }

    fn create_following(&self, dir: RawFd, path: &CStr) -> io::Result<()> {
        let bytes = path.to_bytes_with_nul();
        let skip = bytes.iter().take_while(|b| **b == b'/').count();
        let rel = CStr::from_bytes_with_nul(&bytes[skip..]).unwrap_or(c".");
        // SAFETY: a valid C string; the fd is closed right away.
        let fd = unsafe {
            libc::openat(
                dir,
                rel.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        self.close(fd);
        Ok(())
    }

    fn symlink_at(&self, target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
        // SAFETY: both are valid C strings.
        match check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) } as libc::c_long)
        {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    fn kind(&self, fd: RawFd) -> io::Result<FileKind> {
        // SAFETY: an all-zero stat is a valid value for the kernel to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: empty path with AT_EMPTY_PATH stats the fd itself; st is a valid out pointer.
        check(unsafe {
            libc::fstatat(
                fd,
                c"".as_ptr(),
                &mut st,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        } as libc::c_long)?;
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => FileKind::Dir,
            libc::S_IFLNK => FileKind::Symlink,
            _ => FileKind::Other,
        })
    }

    fn mount_flags(&self, fd: RawFd) -> io::Result<libc::c_ulong> {
        // SAFETY: an all-zero statvfs is a valid value for the kernel to overwrite.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open; st is a valid out pointer.
        check(unsafe { libc::fstatvfs(fd, &mut st) } as libc::c_long)?;
        let f = st.f_flag;
        let mut out = 0;
        for (st_flag, ms_flag) in [
            (libc::ST_RDONLY, libc::MS_RDONLY),
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if f & st_flag != 0 {
                out |= ms_flag;
            }
        }
        Ok(out)
    }

    fn close(&self, fd: RawFd) {
        // SAFETY: closing a descriptor the set-up opened and owns.
        unsafe { libc::close(fd) };
    }

    fn umount_detach(&self, target: &CStr) -> io::Result<()> {
        // SAFETY: target is a valid C string.
        check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } as libc::c_long)
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> io::Result<()> {
        // SAFETY: raw syscall with two valid C strings; libc has no wrapper.
        check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
    }

    fn chdir(&self, path: &CStr) -> io::Result<()> {
        // SAFETY: path is a valid C string.
        check(unsafe { libc::chdir(path.as_ptr()) } as libc::c_long)
    }

    fn fchdir(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: fchdir on an open descriptor.
        check(unsafe { libc::fchdir(fd) } as libc::c_long)
    }
}

#[cfg(test)]
pub(crate) mod recorder {
    //! A [`Syscall`] that records calls and fakes a filesystem, for unit tests.
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Records every call as a line of text; descriptors are fake and map to paths.
    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<String>>,
        /// In-container paths that exist, with their kind.
        pub files: RefCell<BTreeMap<String, FileKind>>,
        /// Fail the call whose text starts with this prefix.
        pub fail_on: Option<(String, i32)>,
        pub fds: RefCell<Vec<String>>,
    }

    impl Recorder {
        fn rec(&self, line: String) -> io::Result<()> {
            let fail = self
                .fail_on
                .as_ref()
                .filter(|(p, _)| line.starts_with(p.as_str()))
                .map(|(_, e)| *e);
            self.calls.borrow_mut().push(line);
            match fail {
                Some(e) => Err(io::Error::from_raw_os_error(e)),
                None => Ok(()),
            }
        }

        fn fd(&self, path: String) -> RawFd {
            let mut fds = self.fds.borrow_mut();
            fds.push(path);
            100 + fds.len() as RawFd - 1
        }

        /// The path a fake descriptor stands for.
        pub fn path_of(&self, fd: RawFd) -> String {
            self.fds
                .borrow()
                .get((fd - 100) as usize)
                .cloned()
                .unwrap_or_else(|| format!("fd{fd}"))
        }

        fn join(&self, dir: RawFd, name: &CStr) -> String {
            let d = self.path_of(dir);
            let n = s(Some(name));
            if n.starts_with('/') {
                n
            } else if d.ends_with('/') {
                format!("{d}{n}")
            } else {
                format!("{d}/{n}")
            }
        }
    }

    fn s(c: Option<&CStr>) -> String {
        c.map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_else(|| "-".into())
    }

    impl Syscall for Recorder {
        fn mount(
            &self,
            source: Option<&CStr>,
            target: &CStr,
            fstype: Option<&CStr>,
            flags: libc::c_ulong,
            data: Option<&CStr>,
        ) -> io::Result<()> {
            self.rec(format!(
                "mount {} {} {} {:#x} {}",
                s(source),
                s(Some(target)),
                s(fstype),
                flags,
                s(data)
            ))
        }
        fn mount_fd(
            &self,
            source: Source<'_>,
            target: RawFd,
            fstype: Option<&CStr>,
            flags: libc::c_ulong,
            data: Option<&CStr>,
        ) -> io::Result<()> {
            let src = match source {
                Source::None => "-".to_string(),
                Source::Path(p) => s(Some(p)),
                Source::Fd(fd) => format!("@{}", self.path_of(fd)),
            };
            self.rec(format!(
                "mount {src} @{} {} {:#x} {}",
                self.path_of(target),
                s(fstype),
                flags,
                s(data)
            ))
        }
        fn open_dir(&self, path: &CStr) -> io::Result<RawFd> {
            self.rec(format!("open_dir {}", s(Some(path))))?;
            Ok(self.fd("/".into()))
        }
        fn open_in(
            &self,
            dir: RawFd,
            path: &CStr,
            how: Resolve,
            _follow: bool,
        ) -> io::Result<RawFd> {
            let p = self.join(dir, path);
            self.rec(format!("open {p} {how:?}"))?;
            if p != "/" && !self.files.borrow().contains_key(&p) {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            Ok(self.fd(p))
        }
        fn mkdir_at(&self, dir: RawFd, name: &CStr, _mode: u32) -> io::Result<()> {
            let p = self.join(dir, name);
            self.files
                .borrow_mut()
                .entry(p.clone())
                .or_insert(FileKind::Dir);
            self.rec(format!("mkdir {p}"))
        }
        fn create_at(&self, dir: RawFd, name: &CStr) -> io::Result<()> {
            let p = self.join(dir, name);
            self.files
                .borrow_mut()
                .entry(p.clone())
                .or_insert(FileKind::Other);
            self.rec(format!("create {p}"))
        }
        fn create_following(&self, dir: RawFd, path: &CStr) -> io::Result<()> {
            let p = self.join(dir, path);
            self.rec(format!("create-following {p}"))
        }
        fn symlink_at(&self, target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
            let p = self.join(dir, name);
            self.rec(format!("symlink {} {p}", s(Some(target))))
        }
        fn kind(&self, fd: RawFd) -> io::Result<FileKind> {
            let p = self.path_of(fd);
            Ok(self
                .files
                .borrow()
                .get(&p)
                .copied()
                .unwrap_or(FileKind::Dir))
        }
        fn mount_flags(&self, _fd: RawFd) -> io::Result<libc::c_ulong> {
            Ok(libc::MS_NOSUID)
        }
        fn close(&self, _fd: RawFd) {}
        fn umount_detach(&self, target: &CStr) -> io::Result<()> {
            self.rec(format!("umount {}", s(Some(target))))
        }
        fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> io::Result<()> {
            self.rec(format!(
                "pivot_root {} {}",
                s(Some(new_root)),
                s(Some(put_old))
            ))
        }
        fn chdir(&self, path: &CStr) -> io::Result<()> {
            self.rec(format!("chdir {}", s(Some(path))))
        }
        fn fchdir(&self, fd: RawFd) -> io::Result<()> {
            self.rec(format!("fchdir @{}", self.path_of(fd)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths_are_formatted_without_allocating() {
        assert_eq!(FdPath::new(0).as_cstr(), c"/proc/self/fd/0");
        assert_eq!(FdPath::new(7).as_cstr(), c"/proc/self/fd/7");
        assert_eq!(FdPath::new(1234).as_cstr(), c"/proc/self/fd/1234");
        assert_eq!(FdPath::new(i32::MAX).as_cstr(), c"/proc/self/fd/2147483647");
    }

    #[test]
    fn in_root_resolution_keeps_absolute_links_inside() {
        let d = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink(host.path(), d.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../real", d.path().join("rel")).unwrap();
        let root = std::ffi::CString::new(d.path().to_str().unwrap()).unwrap();
        let sys = Linux;
        let rfd = sys.open_dir(&root).unwrap();
        // The absolute link names a host directory; inside the root it does not exist.
        let e = sys
            .open_in(rfd, c"/abs", Resolve::InRoot, true)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        // Followed on the host, it leads out.
        let fd = sys.open_in(rfd, c"/abs", Resolve::Host, true).unwrap();
        assert_eq!(sys.kind(fd).unwrap(), FileKind::Dir);
        sys.close(fd);
        // `..` stops at the root.
        let fd = sys.open_in(rfd, c"/rel", Resolve::InRoot, true).unwrap();
        assert_eq!(sys.kind(fd).unwrap(), FileKind::Dir);
        sys.close(fd);
        let e = sys
            .open_in(rfd, c"/rel", Resolve::NoSymlinks, true)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let fd = sys.open_in(rfd, c"/abs", Resolve::InRoot, false).unwrap();
        assert_eq!(sys.kind(fd).unwrap(), FileKind::Symlink);
        sys.close(fd);
        sys.close(rfd);
    }

    #[test]
    fn creating_over_a_fifo_neither_blocks_nor_opens_it() {
        let d = tempfile::tempdir().unwrap();
        let fifo = std::ffi::CString::new(d.path().join("f").to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let root = std::ffi::CString::new(d.path().to_str().unwrap()).unwrap();
        let sys = Linux;
        let rfd = sys.open_dir(&root).unwrap();
        sys.create_at(rfd, c"f").unwrap();
        let fd = sys.open_in(rfd, c"/f", Resolve::InRoot, true).unwrap();
        assert_eq!(sys.kind(fd).unwrap(), FileKind::Other);
        sys.close(fd);
        sys.close(rfd);
    }
}
