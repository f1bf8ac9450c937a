//! The seam between set-up logic and the kernel.
//!
//! The child's filesystem set-up runs through [`Syscall`], so the order and
//! arguments of its mounts can be unit-tested with a recorder, without root.
//! Implementations used in the child must not allocate: the child of a
//! multi-threaded parent may not take the allocator's locks.

use std::ffi::CStr;
use std::io;

/// What a path is, as far as mounting over it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A directory.
    Dir,
    /// Anything else (regular file, device node…).
    Other,
}

/// The kernel calls the filesystem set-up needs.
pub trait Syscall {
    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: libc::c_ulong,
        data: Option<&CStr>,
    ) -> io::Result<()>;
    /// `umount2(target, MNT_DETACH)`.
    fn umount_detach(&self, target: &CStr) -> io::Result<()>;
    /// `pivot_root(2)`.
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> io::Result<()>;
    /// `chdir(2)`.
    fn chdir(&self, path: &CStr) -> io::Result<()>;
    /// `mkdir(2)`; an existing path is not an error.
    fn mkdir(&self, path: &CStr, mode: u32) -> io::Result<()>;
    /// Creates an empty regular file if nothing exists at `path`.
    fn create_file(&self, path: &CStr) -> io::Result<()>;
    /// `symlink(2)`; an existing path is not an error.
    fn symlink(&self, target: &CStr, link: &CStr) -> io::Result<()>;
    /// What `path` is, `None` if it does not exist.
    fn file_kind(&self, path: &CStr) -> io::Result<Option<FileKind>>;
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn ptr_or_null(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

/// The real kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Linux;

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
        })
    }

    fn umount_detach(&self, target: &CStr) -> io::Result<()> {
        // SAFETY: target is a valid C string.
        check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> io::Result<()> {
        // SAFETY: raw syscall with two valid C strings; libc has no wrapper.
        let rc =
            unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
        check(rc as libc::c_int)
    }

    fn chdir(&self, path: &CStr) -> io::Result<()> {
        // SAFETY: path is a valid C string.
        check(unsafe { libc::chdir(path.as_ptr()) })
    }

    fn mkdir(&self, path: &CStr, mode: u32) -> io::Result<()> {
        // SAFETY: path is a valid C string.
        match check(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    fn create_file(&self, path: &CStr) -> io::Result<()> {
        // SAFETY: path is a valid C string; the fd is closed right away.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            // Existing device nodes or read-only files are fine as mount points.
            return match self.file_kind(path) {
                Ok(Some(_)) => Ok(()),
                _ => Err(e),
            };
        }
        // SAFETY: fd was just opened by us.
        unsafe { libc::close(fd) };
        Ok(())
    }

    fn symlink(&self, target: &CStr, link: &CStr) -> io::Result<()> {
        // SAFETY: both are valid C strings.
        match check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    fn file_kind(&self, path: &CStr) -> io::Result<Option<FileKind>> {
        // SAFETY: an all-zero stat is a valid value for the kernel to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: path is a valid C string and st a valid out pointer.
        match check(unsafe { libc::stat(path.as_ptr(), &mut st) }) {
            Ok(()) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(Some(FileKind::Dir)),
            Ok(()) => Ok(Some(FileKind::Other)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
pub(crate) mod recorder {
    //! A [`Syscall`] that records calls and fakes a filesystem, for unit tests.
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Records every call as a line of text.
    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<String>>,
        pub files: RefCell<BTreeMap<String, FileKind>>,
        /// Fail the call whose text starts with this prefix.
        pub fail_on: Option<(String, i32)>,
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
        fn mkdir(&self, path: &CStr, _mode: u32) -> io::Result<()> {
            self.files.borrow_mut().insert(s(Some(path)), FileKind::Dir);
            self.rec(format!("mkdir {}", s(Some(path))))
        }
        fn create_file(&self, path: &CStr) -> io::Result<()> {
            self.files
                .borrow_mut()
                .entry(s(Some(path)))
                .or_insert(FileKind::Other);
            self.rec(format!("create {}", s(Some(path))))
        }
        fn symlink(&self, target: &CStr, link: &CStr) -> io::Result<()> {
            self.rec(format!("symlink {} {}", s(Some(target)), s(Some(link))))
        }
        fn file_kind(&self, path: &CStr) -> io::Result<Option<FileKind>> {
            Ok(self.files.borrow().get(&s(Some(path))).copied())
        }
    }
}
