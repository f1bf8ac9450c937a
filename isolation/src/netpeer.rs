//! The `net` probe's peer: a tiny echo/sink server the harness runs on the
//! host side, outside the isolation under test, speaking the protocol of
//! [`workload::kernels::net`].
//!
//! It either listens (the probe dials it) or dials (the probe listens, e.g.
//! behind a published port) and serves one connection at a time on its own
//! thread until dropped. Every wait is bounded, so dropping it never hangs.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use workload::kernels::net::{MODE_RR, MODE_STREAM};

/// How often a blocked peer looks at its stop flag.
const TICK: Duration = Duration::from_millis(50);

/// A running peer; stopped and joined on drop.
#[derive(Debug)]
pub struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    /// Listens on `addr` (port 0: one the kernel picks) and serves every
    /// connection the probe makes.
    pub fn listen(addr: SocketAddr) -> std::io::Result<Peer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok(Peer::start(addr, move |stop, served| {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        if serve(s, stop).is_ok() {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK / 10),
                    Err(_) => std::thread::sleep(TICK),
                }
            }
        }))
    }

    /// Dials `target` again and again (the probe's listener may not be up
    /// yet, and takes one connection per measurement) and serves each
    /// connection it gets.
    pub fn dial(target: SocketAddr) -> Peer {
        Peer::start(target, move |stop, served| {
            while !stop.load(Ordering::Relaxed) {
                match TcpStream::connect_timeout(&target, TICK * 4) {
                    Ok(s) => {
                        if serve(s, stop).is_ok() {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Refused or unreachable until the probe listens.
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    }

    fn start(
        addr: SocketAddr,
        body: impl FnOnce(&AtomicBool, &AtomicU64) + Send + 'static,
    ) -> Peer {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), served.clone());
        let thread = std::thread::Builder::new()
            .name("isolab-net-peer".into())
            .spawn(move || body(&s, &n))
            .ok();
        Peer {
            addr,
            stop,
            served,
            thread,
        }
    }

    /// The address it listens on (or dials).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections served to the end of their protocol so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads into `buf`, retrying timeouts until `stop`; `Ok(0)` at the end.
fn read_some(s: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> std::io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::Relaxed) {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Serves one connection: the mode byte, then echo or count.
fn serve(mut s: TcpStream, stop: &AtomicBool) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(TICK))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    let mut mode = [0u8; 1];
    if read_some(&mut s, &mut mode, stop)? == 0 {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    let mut buf = vec![0u8; 64 << 10];
    match mode[0] {
        MODE_RR => loop {
            let n = read_some(&mut s, &mut buf, stop)?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n])?;
        },
        MODE_STREAM => {
            let mut count = 0u64;
            loop {
                let n = read_some(&mut s, &mut buf, stop)?;
                if n == 0 {
                    break;
                }
                count += n as u64;
            }
            s.write_all(&count.to_le_bytes())
        }
        other => Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("unknown mode byte {other:#04x}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn echoes_counts_and_stops() {
        let peer = Peer::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut s = TcpStream::connect(peer.addr()).unwrap();
        s.write_all(&[MODE_RR, 7]).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b, [7]);
        drop(s);
        let mut s = TcpStream::connect(peer.addr()).unwrap();
        s.write_all(&[MODE_STREAM]).unwrap();
        s.write_all(&[1u8; 100_000]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut c = [0u8; 8];
        s.read_exact(&mut c).unwrap();
        assert_eq!(u64::from_le_bytes(c), 100_000);
        drop(s);
        let t0 = std::time::Instant::now();
        drop(peer);
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_dialing_peer_waits_for_the_listener() {
        // Reserve a port, release it, and let the peer dial before anyone listens.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target: SocketAddr = ([127, 0, 0, 1], port).into();
        let peer = Peer::dial(target);
        std::thread::sleep(Duration::from_millis(30));
        let l = TcpListener::bind(target).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.write_all(&[MODE_RR, 42]).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b, [42]);
        drop(s);
        drop(l);
        drop(peer);
    }
}
