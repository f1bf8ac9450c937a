//! `process.terminal` with `--console-socket`: a pty whose slave becomes the
//! container's standard streams and controlling terminal, and whose master
//! goes to the caller over the unix socket (`SCM_RIGHTS`), as runc does; the
//! message's bytes name the terminal.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::{Error, Result};

/// Opens a pty sized `size` (rows, columns), sends its master over the
/// socket at `socket` and returns the slave.
pub(crate) fn allocate(socket: &Path, size: Option<(u16, u16)>) -> Result<OwnedFd> {
    let winsize = size.map(|(rows, cols)| nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let pty =
        nix::pty::openpty(winsize.as_ref(), None).map_err(|e| Error::io("open a pty", e.into()))?;
    let name = nix::unistd::ttyname(&pty.slave)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/dev/ptmx".into());
    let stream = UnixStream::connect(socket).map_err(|e| {
        Error::io(
            format!("connect to the console socket {}", socket.display()),
            e,
        )
    })?;
    let fds = [pty.master.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::io("send the pty over the console socket", e.into()))?;
    Ok(pty.slave)
}
