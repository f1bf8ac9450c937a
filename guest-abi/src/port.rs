//! The isolab device: eight I/O ports from [`BASE`]. Offsets are relative to
//! [`BASE`]; [`at`] gives the port number a guest uses.

/// First port of the device.
pub const BASE: u16 = 0x500;
/// Ports covered, from [`BASE`].
pub const LEN: u16 = 8;

/// Write: the guest is ready (the VMM timestamps the first write).
pub const READY: u16 = 0;
/// Write (8, 16 or 32 bit): the guest's exit status; the VMM stops the guest.
pub const EXIT: u16 = 1;
/// Write: one byte (or every byte of a wider or string write) of the result stream.
pub const OUTPUT: u16 = 2;
/// Read (8 bit): returns [`PING_REPLY`]; one VM-exit round trip.
pub const PING: u16 = 3;
/// Read (32 bit): the TSC frequency in kHz.
pub const TSC_KHZ: u16 = 4;
/// Write: the guest's init has started (the VMM timestamps the first
/// write), splitting a Linux guest's boot into kernel and init.
pub const INIT: u16 = 5;

/// What a read of [`PING`] returns.
pub const PING_REPLY: u8 = 0x5a;

/// The port number of the register at `offset`.
pub const fn at(offset: u16) -> u16 {
    BASE + offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_register_is_inside_the_device() {
        for r in [READY, EXIT, OUTPUT, PING, TSC_KHZ, INIT] {
            assert!(r < LEN, "offset {r}");
        }
        assert_eq!(at(EXIT), 0x501);
        assert_eq!(at(INIT), 0x505);
    }
}
