//! COM1: a `vm-superio` 16550 whose output is captured (bounded) and
//! optionally echoed to this process's stdout.
//!
//! The echo never blocks the vCPU: bytes go into a non-blocking pipe that a
//! thread of its own copies to stdout. When stdout is not drained the pipe
//! fills and further bytes are counted as dropped from the echo (the
//! capture still has them), so neither the guest nor the timeout waits on
//! whoever reads our stdout.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::devices::bus::{BusDevice, IoResult, VmAction};

/// Base port of COM1.
pub const BASE: u64 = 0x3f8;
/// Ports covered.
pub const LEN: u64 = 8;

/// Most bytes kept from one output stream; the rest is counted as dropped.
pub const CAPTURE_LIMIT: usize = 64 << 20;

/// An interrupt line: an irqfd on the Linux path, nothing for the tiny guest
/// (which polls and never takes interrupts).
#[derive(Debug, Default)]
pub struct IrqLine(Option<EventFd>);

impl IrqLine {
    /// A line that goes nowhere.
    pub fn none() -> IrqLine {
        IrqLine(None)
    }

    /// A line backed by an eventfd (registered as an irqfd by the caller).
    pub fn eventfd(evt: EventFd) -> IrqLine {
        IrqLine(Some(evt))
    }

    /// The eventfd, if any.
    pub fn fd(&self) -> Option<&EventFd> {
        self.0.as_ref()
    }
}

impl Trigger for IrqLine {
    type E = std::io::Error;

    fn trigger(&self) -> Result<(), std::io::Error> {
        match &self.0 {
            Some(evt) => evt.write(1),
            None => Ok(()),
        }
    }
}

/// The writing end of the echo: a non-blocking pipe to the echo thread.
#[derive(Debug)]
pub struct Echo {
    pipe: File,
    dropped: u64,
}

/// The echo thread, copying the pipe to stdout until the pipe closes.
#[derive(Debug)]
pub struct EchoThread {
    handle: JoinHandle<()>,
    done: mpsc::Receiver<()>,
}

impl Echo {
    /// Starts the echo thread. The thread ends when the [`Echo`] is dropped
    /// and everything written before has reached stdout (or stdout failed).
    pub fn start() -> std::io::Result<(Echo, EchoThread)> {
        let (read, write) = nonblocking_pipe()?;
        let (done_tx, done) = mpsc::channel();
        let mut read = File::from(read);
        let handle = std::thread::Builder::new()
            .name("serial-echo".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                let mut out = std::io::stdout();
                while let Ok(n @ 1..) = read.read(&mut buf) {
                    if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                        break;
                    }
                }
                let _ = done_tx.send(());
            })?;
        let echo = Echo {
            pipe: File::from(write),
            dropped: 0,
        };
        Ok((echo, EchoThread { handle, done }))
    }

    fn write(&mut self, data: &[u8]) {
        match self.pipe.write(data) {
            Ok(n) => self.dropped += (data.len() - n) as u64,
            // Full pipe (EAGAIN) or a reader that went away: not the guest's problem.
            Err(_) => self.dropped += data.len() as u64,
        }
    }
}

/// A pipe whose write end (only) is non-blocking.
fn nonblocking_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors that we now own.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    let set = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if set < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((read, write))
}

impl EchoThread {
    /// Waits up to `grace` for the thread to copy what is left (the
    /// [`Echo`] must be dropped first), then joins it. A thread still
    /// blocked on an undrained stdout is left to finish on its own: it owns
    /// nothing of the VM.
    pub fn finish(self, grace: Duration) {
        if self.done.recv_timeout(grace).is_ok() {
            let _ = self.handle.join();
        } else {
            tracing::debug!("serial echo still blocked on stdout; not waiting for it");
        }
    }
}

/// The kernel's last console line when it powers off or halts for good
/// (`kernel_power_off`/`kernel_halt` print them at emergency level, so
/// `quiet` does not hide them), after the `[ time]` prefix.
const POWER_OFF_LINES: [&[u8]; 2] = [b"reboot: Power down", b"reboot: System halted"];
/// Longest line kept for [`POWER_OFF_LINES`] matching.
const LINE_MAX: usize = 128;

/// A bounded byte sink, optionally echoing to stdout.
#[derive(Debug, Default)]
pub struct Capture {
    bytes: Vec<u8>,
    dropped: u64,
    echo: Option<Echo>,
    /// The current line (its first [`LINE_MAX`] bytes).
    line: Vec<u8>,
    powered_off: bool,
}

impl Capture {
    /// An empty capture, echoing through `echo` if given.
    pub fn new(echo: Option<Echo>) -> Capture {
        Capture {
            echo,
            ..Capture::default()
        }
    }

    /// Whether the guest kernel announced a power-off or final halt.
    pub fn powered_off(&self) -> bool {
        self.powered_off
    }

    fn watch_lines(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' {
                let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
                self.powered_off |=
                    line.starts_with(b"[") && POWER_OFF_LINES.iter().any(|m| line.ends_with(m));
                self.line.clear();
            } else if self.line.len() < LINE_MAX {
                self.line.push(b);
            }
        }
    }

    /// Stops echoing (closing the pipe, so the echo thread can end) and
    /// returns how many bytes the echo dropped.
    pub fn stop_echo(&mut self) -> u64 {
        self.echo.take().map_or(0, |e| e.dropped)
    }

    /// Appends, keeping at most [`CAPTURE_LIMIT`] bytes.
    pub fn push(&mut self, data: &[u8]) {
        let room = CAPTURE_LIMIT.saturating_sub(self.bytes.len());
        let keep = room.min(data.len());
        self.bytes.extend_from_slice(&data[..keep]);
        self.dropped += (data.len() - keep) as u64;
    }

    /// The captured bytes and the number dropped, leaving the capture empty.
    pub fn take(&mut self) -> (Vec<u8>, u64) {
        (
            std::mem::take(&mut self.bytes),
            std::mem::take(&mut self.dropped),
        )
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        self.watch_lines(buf);
        if let Some(echo) = &mut self.echo {
            echo.write(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The serial console on the port bus.
pub struct SerialConsole {
    uart: Serial<IrqLine, vm_superio::serial::NoEvents, Capture>,
}

impl SerialConsole {
    /// A console raising `irq` on output, echoing through `echo` if given.
    pub fn new(irq: IrqLine, echo: Option<Echo>) -> SerialConsole {
        SerialConsole {
            uart: Serial::new(irq, Capture::new(echo)),
        }
    }

    /// Takes the captured output and the dropped-byte count.
    pub fn take_output(&mut self) -> (Vec<u8>, u64) {
        self.uart.writer_mut().take()
    }

    /// Stops the echo (see [`Capture::stop_echo`]).
    pub fn stop_echo(&mut self) -> u64 {
        self.uart.writer_mut().stop_echo()
    }
}

impl BusDevice for SerialConsole {
    fn read(&mut self, offset: u64, data: &mut [u8]) -> IoResult {
        if data.len() != 1 {
            return IoResult::Stray;
        }
        data[0] = self.uart.read(offset as u8);
        IoResult::Done
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> IoResult {
        if data.len() != 1 {
            return IoResult::Stray;
        }
        if let Err(e) = self.uart.write(offset as u8, data[0]) {
            tracing::debug!(?e, "serial write failed");
        }
        if self.uart.writer_mut().powered_off() {
            IoResult::Action(VmAction::PowerOff)
        } else {
            IoResult::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmitted_bytes_are_captured() {
        let mut s = SerialConsole::new(IrqLine::none(), None);
        for b in b"hi\n" {
            assert_eq!(s.write(0, &[*b]), IoResult::Done);
        }
        // Line status: transmitter empty.
        let mut lsr = [0u8];
        s.read(5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0);
        assert_eq!(s.take_output(), (b"hi\n".to_vec(), 0));
        assert_eq!(s.write(0, &[1, 2]), IoResult::Stray);
    }

    #[test]
    fn echo_never_blocks_and_counts_what_it_dropped() {
        let (echo, thread) = Echo::start().unwrap();
        let mut c = Capture::new(Some(echo));
        // Far more than a pipe holds, written while the thread may be slow:
        // every write returns at once and the capture keeps everything.
        let chunk = vec![b'x'; 1 << 16];
        for _ in 0..64 {
            c.write_all(&chunk).unwrap();
        }
        assert_eq!(c.take().0.len(), 64 << 16);
        let dropped = c.stop_echo();
        assert!(dropped <= 64 << 16);
        thread.finish(Duration::from_secs(10));
    }

    #[test]
    fn the_kernels_power_off_line_stops_the_vm() {
        let mut s = SerialConsole::new(IrqLine::none(), None);
        let mut send = |text: &[u8]| {
            text.iter()
                .map(|b| s.write(0, &[*b]))
                .filter(|r| *r != IoResult::Done)
                .collect::<Vec<_>>()
        };
        // A program printing the words is not the kernel.
        assert!(send(b"reboot: Power down\n").is_empty());
        assert!(send(b"[    1.000000] reboot: Restarting system\r\n").is_empty());
        assert_eq!(
            send(b"[    2.500000] reboot: Power down\r\n"),
            vec![IoResult::Action(VmAction::PowerOff)]
        );
        let mut h = SerialConsole::new(IrqLine::none(), None);
        let r: Vec<_> = b"[    0.1] reboot: System halted\n"
            .iter()
            .map(|b| h.write(0, &[*b]))
            .collect();
        assert_eq!(r.last(), Some(&IoResult::Action(VmAction::PowerOff)));
    }

    #[test]
    fn capture_is_bounded() {
        let mut c = Capture::new(None);
        c.push(&vec![1u8; CAPTURE_LIMIT - 1]);
        c.push(&[2, 3, 4]);
        let (bytes, dropped) = c.take();
        assert_eq!(bytes.len(), CAPTURE_LIMIT);
        assert_eq!(dropped, 2);
    }
}
