//! The container's terminal (OCI `process.terminal`), made by init after
//! `pivot_root` so that the pty belongs to the container's own `devpts`
//! (`tty` inside names it). Runs in the child: no allocation.

use std::io;
use std::os::fd::RawFd;

/// `TIOCGPTPEER` (Linux 4.13): opens the slave of a master without a path.
const TIOCGPTPEER: libc::c_ulong = 0x5441;

fn os(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Sends `fd` over the unix socket `sock` with `SCM_RIGHTS`.
fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    #[repr(C, align(8))]
    struct Control([u8; 32]);
    let mut control = Control([0; 32]);
    let name = b"/dev/ptmx";
    let mut iov = libc::iovec {
        iov_base: name.as_ptr() as *mut libc::c_void,
        iov_len: name.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    // SAFETY: the control buffer (32 bytes, 8-aligned) holds one cmsg with one
    // fd (CMSG_SPACE(4) = 24); CMSG_FIRSTHDR points into it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    // SAFETY: msg is fully initialised above.
    os(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } as libc::c_long)?;
    Ok(())
}

/// Opens a pty in the container's `/dev/ptmx`, sends its master over
/// `sock`, and makes the slave fds 0–2 and the controlling terminal (the
/// caller has already called `setsid`).
pub(crate) fn attach(sock: RawFd, (rows, cols): (u16, u16)) -> io::Result<()> {
    // SAFETY: a NUL-terminated literal path.
    let master = os(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    } as libc::c_long)? as RawFd;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    os(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) } as libc::c_long)?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let slave = os(
        unsafe { libc::ioctl(master, TIOCGPTPEER as _, libc::O_RDWR | libc::O_NOCTTY) }
            as libc::c_long,
    )? as RawFd;
    if rows != 0 && cols != 0 {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize.
        unsafe { libc::ioctl(slave, libc::TIOCSWINSZ, &ws) };
    }
    send_fd(sock, master)?;
    // SAFETY: closing fds this function opened or was given to use up.
    unsafe {
        libc::close(master);
        libc::close(sock);
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard streams.
        os(unsafe { libc::dup2(slave, target) } as libc::c_long)?;
    }
    if slave > 2 {
        // SAFETY: the slave lives on as 0–2.
        unsafe { libc::close(slave) };
    }
    // SAFETY: ioctl on fd 0 with an integer argument.
    os(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } as libc::c_long)?;
    Ok(())
}
