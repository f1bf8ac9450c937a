//! The result stream: bytes to the isolab output port, one line at a time.
//!
//! Lines go out four bytes per `out` (the port appends every byte of a wide
//! write): KVM turns `rep outsb` into one exit per byte, so 32-bit writes
//! cost a quarter of the exits. Under PVH
//! (QEMU) there is no isolab device (and QEMU's isa-debug-exit at 0x501 may
//! also claim 0x502), so lines go to COM1 instead.

use crate::port::{self, OUTPUT};
use crate::serial;

/// Longest line kept in one piece; longer lines are sent in chunks.
const LINE_BYTES: usize = 512;

/// Line-buffered writer to the output port.
pub struct Output {
    buf: [u8; LINE_BYTES],
    len: usize,
    to_serial: bool,
}

impl Output {
    /// A writer to the output port, or to COM1 when `to_serial`.
    pub const fn new(to_serial: bool) -> Self {
        Output {
            buf: [0; LINE_BYTES],
            len: 0,
            to_serial,
        }
    }

    /// Appends bytes, sending each completed line.
    pub fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = LINE_BYTES - self.len;
            let take = match bytes.iter().position(|&b| b == b'\n') {
                Some(nl) if nl < room => nl + 1,
                _ => bytes.len().min(room),
            };
            self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
            self.len += take;
            bytes = &bytes[take..];
            if self.len == LINE_BYTES || self.buf[self.len - 1] == b'\n' {
                self.flush();
            }
        }
    }

    /// Sends whatever is buffered.
    pub fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        let line = &self.buf[..self.len];
        if self.to_serial {
            serial::write(line);
        } else {
            let mut words = line.chunks_exact(4);
            for w in &mut words {
                port::outl(OUTPUT, u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
            }
            for &b in words.remainder() {
                port::outb(OUTPUT, b);
            }
        }
        self.len = 0;
    }
}

impl core::fmt::Write for Output {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}
