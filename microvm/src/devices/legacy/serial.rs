//! COM1: a `vm-superio` 16550 whose output is captured (bounded) and
//! optionally echoed to this process's stdout.

use std::io::Write;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::devices::bus::{BusDevice, IoResult};

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

/// A bounded byte sink, optionally echoing to stdout.
#[derive(Debug, Default)]
pub struct Capture {
    bytes: Vec<u8>,
    dropped: u64,
    echo: bool,
}

impl Capture {
    /// An empty capture.
    pub fn new(echo: bool) -> Capture {
        Capture {
            bytes: Vec::new(),
            dropped: 0,
            echo,
        }
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
        if self.echo {
            // The user asked to see the console live; a closed stdout is not the guest's problem.
            let _ = std::io::stdout().write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.echo {
            let _ = std::io::stdout().flush();
        }
        Ok(())
    }
}

/// The serial console on the port bus.
pub struct SerialConsole {
    uart: Serial<IrqLine, vm_superio::serial::NoEvents, Capture>,
}

impl SerialConsole {
    /// A console raising `irq` on output, echoing when asked.
    pub fn new(irq: IrqLine, echo: bool) -> SerialConsole {
        SerialConsole {
            uart: Serial::new(irq, Capture::new(echo)),
        }
    }

    /// Takes the captured output and the dropped-byte count.
    pub fn take_output(&mut self) -> (Vec<u8>, u64) {
        self.uart.writer_mut().take()
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
        match self.uart.write(offset as u8, data[0]) {
            Ok(()) => IoResult::Done,
            Err(e) => {
                tracing::debug!(?e, "serial write failed");
                IoResult::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmitted_bytes_are_captured() {
        let mut s = SerialConsole::new(IrqLine::none(), false);
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
    fn capture_is_bounded() {
        let mut c = Capture::new(false);
        c.push(&vec![1u8; CAPTURE_LIMIT - 1]);
        c.push(&[2, 3, 4]);
        let (bytes, dropped) = c.take();
        assert_eq!(bytes.len(), CAPTURE_LIMIT);
        assert_eq!(dropped, 2);
    }
}
