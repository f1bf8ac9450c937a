//! Opening paths inside the container's root without leaving it.
//!
//! A hostile image can make any component of a path a symlink: `/etc` to a
//! host directory, `/dev/null` to `/etc/passwd`, `/data` to
//! `../../../../root`. The runtime never walks such a path as a host path.
//! It holds a descriptor of the root and opens every path below it with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `..` stops at the
//! root, absolute links restart there, `/proc/self/fd/N`-style links are
//! refused. Entries are opened with `O_PATH`, which never blocks on a FIFO
//! and never reads; new entries are made with `mkdirat`/`openat(O_EXCL)`
//! in an already resolved parent; mounts go through the descriptor.
//!
//! Child-side code: no allocation, only the stack.

use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;

use crate::syscall::{Resolve, Syscall};

/// A descriptor closed on drop.
pub(crate) struct Fd<'a> {
    pub(crate) sys: &'a dyn Syscall,
    /// The raw descriptor.
    pub fd: RawFd,
}

impl Drop for Fd<'_> {
    fn drop(&mut self) {
        self.sys.close(self.fd);
    }
}

/// Longest container path the set-up handles (the kernel's `PATH_MAX`).
const PATH_MAX: usize = 4096;

/// The parent directory of a container path, NUL-terminated on the stack.
pub(crate) struct Parent {
    buf: [u8; PATH_MAX],
}

impl Parent {
    fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"/")
    }
}

/// Splits `/a/b/c` into `/a/b` and `c` (`/c` into `/` and `c`).
pub(crate) fn split(path: &CStr) -> io::Result<(Parent, &CStr)> {
    let bytes = path.to_bytes_with_nul();
    let body = &bytes[..bytes.len() - 1];
    let slash = body
        .iter()
        .rposition(|b| *b == b'/')
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let name = CStr::from_bytes_with_nul(&bytes[slash + 1..])
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if name.is_empty() || slash + 1 >= PATH_MAX {
        return Err(io::Error::from_raw_os_error(if name.is_empty() {
            libc::EINVAL
        } else {
            libc::ENAMETOOLONG
        }));
    }
    let mut parent = Parent { buf: [0; PATH_MAX] };
    if slash == 0 {
        parent.buf[0] = b'/';
    } else {
        parent.buf[..slash].copy_from_slice(&body[..slash]);
    }
    Ok((parent, name))
}

/// Opens the container path `path` below `root` (`O_PATH`, following links inside the root).
pub(crate) fn open<'a>(
    sys: &'a dyn Syscall,
    root: RawFd,
    path: &CStr,
    how: Resolve,
) -> io::Result<Fd<'a>> {
    let fd = sys.open_in(root, path, how, true)?;
    Ok(Fd { sys, fd })
}

/// Opens the parent directory of `path` below `root`; returns it with the last name.
pub(crate) fn open_parent<'a, 'p>(
    sys: &'a dyn Syscall,
    root: RawFd,
    path: &'p CStr,
    how: Resolve,
) -> io::Result<(Fd<'a>, &'p CStr)> {
    let (parent, name) = split(path)?;
    let fd = open(sys, root, parent.as_cstr(), how)?;
    Ok((fd, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_parent_and_name() {
        let (p, n) = split(c"/dev/null").unwrap();
        assert_eq!((p.as_cstr(), n), (c"/dev", c"null"));
        let (p, n) = split(c"/etc").unwrap();
        assert_eq!((p.as_cstr(), n), (c"/", c"etc"));
        let (p, n) = split(c"/a/b/c").unwrap();
        assert_eq!((p.as_cstr(), n), (c"/a/b", c"c"));
        assert!(split(c"/").is_err());
        assert!(split(c"relative").is_err());
    }
}
