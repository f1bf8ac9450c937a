//! Port-I/O and MMIO buses: address ranges mapped to devices.
//!
//! The same [`Bus`] type serves both; a vCPU exit is routed by address, the
//! device sees the offset into its range.

use std::sync::{Arc, Mutex};

/// Something a device asks the VMM to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmAction {
    /// Stop the VM: the guest exited with this status.
    Exit(u32),
    /// Stop the VM: the guest asked for a reset.
    Reset,
    /// Stop the VM: the guest kernel powered off or halted for good.
    PowerOff,
}

/// The result of one guest access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoResult {
    /// Handled.
    Done,
    /// Nobody claims the address, or the device refused the access (wrong
    /// width, read-only register…). Reads have been filled with all ones.
    Stray,
    /// Handled, and the VMM must act.
    Action(VmAction),
}

/// A device on a bus. `offset` is relative to the device's base.
pub trait BusDevice: Send {
    /// A guest read; fill `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]) -> IoResult;
    /// A guest write.
    fn write(&mut self, offset: u64, data: &[u8]) -> IoResult;
}

/// A device shared between the bus and its owner.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

struct Range {
    base: u64,
    len: u64,
    device: SharedDevice,
}

/// Error inserting a device.
#[derive(Debug, thiserror::Error)]
#[error("bus range {base:#x}+{len:#x} is empty or overlaps another device")]
pub struct Overlap {
    /// Base of the refused range.
    pub base: u64,
    /// Its length.
    pub len: u64,
}

/// Address ranges → devices.
#[derive(Default)]
pub struct Bus {
    ranges: Vec<Range>,
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Maps `device` at `base..base+len`.
    pub fn insert(&mut self, base: u64, len: u64, device: SharedDevice) -> Result<(), Overlap> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(Overlap { base, len })?;
        if self
            .ranges
            .iter()
            .any(|r| base < r.base + r.len && r.base < end)
        {
            return Err(Overlap { base, len });
        }
        self.ranges.push(Range { base, len, device });
        self.ranges.sort_by_key(|r| r.base);
        Ok(())
    }

    /// The device and offset for an access of `size` bytes at `addr`, if one
    /// device covers all of it.
    fn find(&self, addr: u64, size: usize) -> Option<(&SharedDevice, u64)> {
        let r = self
            .ranges
            .iter()
            .find(|r| addr >= r.base && addr - r.base < r.len)?;
        let offset = addr - r.base;
        (offset.checked_add(size as u64)? <= r.len).then_some((&r.device, offset))
    }

    /// Routes a read; unclaimed addresses read as all ones.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> IoResult {
        match self.find(addr, data.len()) {
            Some((dev, offset)) => {
                let result = dev
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .read(offset, data);
                if result == IoResult::Stray {
                    data.fill(0xff);
                }
                result
            }
            None => {
                data.fill(0xff);
                IoResult::Stray
            }
        }
    }

    /// Routes a write; unclaimed addresses ignore it.
    pub fn write(&self, addr: u64, data: &[u8]) -> IoResult {
        match self.find(addr, data.len()) {
            Some((dev, offset)) => dev
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write(offset, data),
            None => IoResult::Stray,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(u8);
    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, data: &mut [u8]) -> IoResult {
            data.fill(self.0 + offset as u8);
            IoResult::Done
        }
        fn write(&mut self, _: u64, data: &[u8]) -> IoResult {
            self.0 = data[0];
            IoResult::Done
        }
    }

    #[test]
    fn routes_by_range_and_refuses_overlaps() {
        let mut bus = Bus::new();
        bus.insert(0x10, 4, Arc::new(Mutex::new(Echo(1)))).unwrap();
        assert!(bus.insert(0x12, 4, Arc::new(Mutex::new(Echo(2)))).is_err());
        assert!(bus.insert(0x20, 0, Arc::new(Mutex::new(Echo(2)))).is_err());
        assert!(
            bus.insert(u64::MAX, 2, Arc::new(Mutex::new(Echo(2))))
                .is_err()
        );
        bus.insert(0x14, 4, Arc::new(Mutex::new(Echo(9)))).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(bus.read(0x12, &mut b), IoResult::Done);
        assert_eq!(b[0], 3);
        assert_eq!(bus.read(0x14, &mut b), IoResult::Done);
        assert_eq!(b[0], 9);
        assert_eq!(bus.read(0x40, &mut b), IoResult::Stray);
        assert_eq!(b[0], 0xff);
    }

    #[test]
    fn accesses_straddling_a_device_end_are_stray() {
        let mut bus = Bus::new();
        bus.insert(0x10, 4, Arc::new(Mutex::new(Echo(1)))).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(bus.read(0x12, &mut b), IoResult::Stray);
        assert_eq!(b, [0xff; 4]);
        assert_eq!(bus.write(0x13, &[1, 2]), IoResult::Stray);
    }
}
