//! The `net` probe's sockets on Linux: `std::net` TCP with Nagle off and
//! every wait bounded.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::platform::{NetError, NetListener, NetStream};

/// Longest wait for a connection, an accept, or one read or write: far above
/// any round trip, short enough that a vanished peer fails the probe.
pub const WAIT: Duration = Duration::from_secs(20);

/// A connected socket.
pub struct TcpConn(TcpStream);

fn io_err(op: &'static str) -> impl Fn(std::io::Error) -> NetError {
    move |e| NetError::Io {
        op,
        detail: e.to_string(),
    }
}

impl TcpConn {
    fn new(s: TcpStream) -> std::io::Result<TcpConn> {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(WAIT))?;
        s.set_write_timeout(Some(WAIT))?;
        Ok(TcpConn(s))
    }
}

impl NetStream for TcpConn {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError> {
        self.0.write_all(buf).map_err(io_err("write"))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), NetError> {
        self.0.read_exact(buf).map_err(io_err("read"))
    }

    fn shutdown_write(&mut self) -> Result<(), NetError> {
        self.0.shutdown(Shutdown::Write).map_err(io_err("shutdown"))
    }
}

/// Connects to `addr` (bounded by [`WAIT`]).
pub fn dial(addr: SocketAddr) -> Result<Box<dyn NetStream>, NetError> {
    let setup = |e: std::io::Error| NetError::Setup {
        op: "connect to",
        peer: addr.to_string(),
        detail: e.to_string(),
    };
    let s = TcpStream::connect_timeout(&addr, WAIT).map_err(setup)?;
    Ok(Box::new(TcpConn::new(s).map_err(setup)?))
}

/// A listening socket on every address of this network namespace.
pub struct Listener {
    inner: TcpListener,
    port: u16,
}

/// Listens on `port`.
pub fn listen(port: u16) -> Result<Box<dyn NetListener>, NetError> {
    let inner = TcpListener::bind(("0.0.0.0", port)).map_err(|e| NetError::Setup {
        op: "listen on",
        peer: format!("port {port}"),
        detail: e.to_string(),
    })?;
    Ok(Box::new(Listener { inner, port }))
}

impl NetListener for Listener {
    fn accept(&mut self) -> Result<Box<dyn NetStream>, NetError> {
        let setup = |detail: String| NetError::Setup {
            op: "accept on",
            peer: format!("port {}", self.port),
            detail,
        };
        let mut pfd = libc::pollfd {
            fd: self.inner.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = WAIT.as_millis() as libc::c_int;
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            return Err(setup(std::io::Error::last_os_error().to_string()));
        }
        if n == 0 {
            return Err(setup(format!(
                "no connection from the peer within {} s",
                WAIT.as_secs()
            )));
        }
        let (s, _) = self.inner.accept().map_err(|e| setup(e.to_string()))?;
        Ok(Box::new(TcpConn::new(s).map_err(|e| setup(e.to_string()))?))
    }
}
