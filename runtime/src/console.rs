//! `--console-socket`: the caller's unix socket, where the container's init
//! sends the master of the pty it opens in its own `devpts`
//! (see `container::spec::Lifecycle::console_socket`).

use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::{Error, Result};

/// Connects to the caller's console socket.
pub(crate) fn connect(socket: &Path) -> Result<UnixStream> {
    UnixStream::connect(socket).map_err(|e| {
        Error::io(
            format!("connect to the console socket {}", socket.display()),
            e,
        )
    })
}
