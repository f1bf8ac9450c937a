//! The host side of virtio-net: a tap interface opened by name.
//!
//! The interface is made (and given its host address) by whoever owns the
//! network — `isolation` makes a persistent tap named after its pid, so
//! `isolab clean` can find it after a kill — and the VMM only attaches to
//! it. No `IFF_VNET_HDR`: the device offers no checksum or segmentation
//! offload, so every frame is a plain Ethernet frame and the guest's
//! `virtio_net_hdr` carries nothing the tap would need; the device strips it
//! on transmit and writes an empty one on receive. That is the simplest
//! correct choice, at the price of one copy through a host buffer.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Longest interface name (without the NUL).
pub const NAME_MAX: usize = libc::IFNAMSIZ - 1;

/// Attaches to the tap interface `name` (created if it does not exist; it
/// then goes away with the descriptor). The descriptor is non-blocking, so
/// the device never waits on the host network while holding its lock.
pub fn open(name: &str) -> io::Result<File> {
    if name.is_empty() || name.len() > NAME_MAX || name.contains(['/', '\0', ' ']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not a valid interface name (1-{NAME_MAX} bytes)"),
        ));
    }
    // SAFETY: a constant, NUL-terminated path and plain flags.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened here and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is; the fd
    // is a live tun/tap control descriptor.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::TUNSETIFF,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        for name in ["", "a/b", "has space", "x".repeat(NAME_MAX + 1).as_str()] {
            let e = open(name).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }
}
