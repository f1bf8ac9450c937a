//! Minimal polled 16550 output on COM1, used only when booted through PVH
//! (QEMU), where the isolab output port does not exist.

use crate::port::{inb, outb};

const COM1: u16 = 0x3f8;
const LSR: u16 = COM1 + 5;
const LSR_THR_EMPTY: u8 = 0x20;
/// Bound on the wait for the transmitter, so a missing UART cannot hang us.
const MAX_SPINS: u32 = 100_000;

/// Writes bytes to COM1, waiting for the transmit holding register each time.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        let mut spins = 0;
        while inb(LSR) & LSR_THR_EMPTY == 0 && spins < MAX_SPINS {
            spins += 1;
        }
        outb(COM1, b);
    }
}
