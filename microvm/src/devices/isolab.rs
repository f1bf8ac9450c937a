//! The isolab device on ports `0x500..0x507` (see the Guest ABI in
//! ARCHITECTURE.md): boot-ready marker, exit status, result output, a
//! VM-exit "ping", the TSC frequency and the init-started marker.
//!
//! Anything else — unknown offsets, wrong widths, reads of write-only ports —
//! is refused and counted by the bus as stray I/O; it never stops the VM.

use std::time::Instant;

use crate::devices::bus::{BusDevice, IoResult, VmAction};
use crate::devices::legacy::serial::Capture;

use guest_abi::port;

/// Base port.
pub const BASE: u64 = port::BASE as u64;
/// Ports covered.
pub const LEN: u64 = port::LEN as u64;
/// Offset of the ready marker ([`guest_abi::port::READY`]).
pub const READY: u64 = port::READY as u64;
/// Offset of the exit status ([`guest_abi::port::EXIT`]).
pub const EXIT: u64 = port::EXIT as u64;
/// Offset of the result stream ([`guest_abi::port::OUTPUT`]).
pub const OUTPUT: u64 = port::OUTPUT as u64;
/// Offset of the ping register ([`guest_abi::port::PING`]).
pub const PING: u64 = port::PING as u64;
/// Offset of the TSC frequency ([`guest_abi::port::TSC_KHZ`]).
pub const TSC_KHZ: u64 = port::TSC_KHZ as u64;
/// Offset of the init marker ([`guest_abi::port::INIT`]).
pub const INIT: u64 = port::INIT as u64;
/// The ping reply.
pub const PING_REPLY: u8 = port::PING_REPLY;

/// The device's state.
#[derive(Debug)]
pub struct IsolabDevice {
    ready: Option<Instant>,
    init: Option<Instant>,
    output: Capture,
    tsc_khz: u32,
}

impl IsolabDevice {
    /// A fresh device reporting `tsc_khz`.
    pub fn new(tsc_khz: u32) -> IsolabDevice {
        IsolabDevice {
            ready: None,
            init: None,
            output: Capture::new(None),
            tsc_khz,
        }
    }

    /// When the guest first wrote the ready marker.
    pub fn ready_at(&self) -> Option<Instant> {
        self.ready
    }

    /// When the guest's init first wrote the init marker.
    pub fn init_at(&self) -> Option<Instant> {
        self.init
    }

    /// Takes the result stream and its dropped-byte count.
    pub fn take_output(&mut self) -> (Vec<u8>, u64) {
        self.output.take()
    }
}

impl BusDevice for IsolabDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) -> IoResult {
        match (offset, data.len()) {
            (PING, 1) => data[0] = PING_REPLY,
            (TSC_KHZ, 4) => data.copy_from_slice(&self.tsc_khz.to_le_bytes()),
            _ => return IoResult::Stray,
        }
        IoResult::Done
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> IoResult {
        match offset {
            READY if !data.is_empty() => {
                self.ready.get_or_insert_with(Instant::now);
                IoResult::Done
            }
            INIT if !data.is_empty() => {
                self.init.get_or_insert_with(Instant::now);
                IoResult::Done
            }
            EXIT => {
                let code = match *data {
                    [a] => u32::from(a),
                    [a, b] => u32::from(u16::from_le_bytes([a, b])),
                    [a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
                    _ => return IoResult::Stray,
                };
                IoResult::Action(VmAction::Exit(code))
            }
            OUTPUT if !data.is_empty() => {
                self.output.push(data);
                IoResult::Done
            }
            _ => IoResult::Stray,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_ports_behave() {
        let mut d = IsolabDevice::new(2_000_000);
        let mut b = [0u8; 1];
        assert_eq!(d.read(PING, &mut b), IoResult::Done);
        assert_eq!(b[0], 0x5a);
        let mut t = [0u8; 4];
        assert_eq!(d.read(TSC_KHZ, &mut t), IoResult::Done);
        assert_eq!(u32::from_le_bytes(t), 2_000_000);
        assert!(d.ready_at().is_none());
        assert!(d.init_at().is_none());
        assert_eq!(d.write(INIT, &[1]), IoResult::Done);
        let init = d.init_at().unwrap();
        d.write(INIT, &[1]);
        assert_eq!(d.init_at(), Some(init), "only the first init write counts");
        assert_eq!(d.write(READY, &[1]), IoResult::Done);
        let first = d.ready_at().unwrap();
        d.write(READY, &[1]);
        assert_eq!(
            d.ready_at(),
            Some(first),
            "only the first ready write counts"
        );
        d.write(OUTPUT, b"{\"a\":1}\n");
        assert_eq!(d.take_output().0, b"{\"a\":1}\n");
        assert_eq!(
            d.write(EXIT, &[7, 1]),
            IoResult::Action(VmAction::Exit(0x107))
        );
        assert_eq!(
            d.write(EXIT, &[1, 0, 0, 0x80]),
            IoResult::Action(VmAction::Exit(0x8000_0001))
        );
    }

    #[test]
    fn garbage_is_refused_not_fatal() {
        let mut d = IsolabDevice::new(1);
        assert_eq!(d.write(PING, &[1]), IoResult::Stray);
        assert_eq!(d.write(7, &[1]), IoResult::Stray);
        assert_eq!(d.write(EXIT, &[1, 2, 3]), IoResult::Stray);
        let mut b = [0u8; 2];
        assert_eq!(d.read(PING, &mut b), IoResult::Stray);
        assert_eq!(d.read(OUTPUT, &mut b), IoResult::Stray);
    }
}
