//! The virtio-mmio transport, version 2 ("modern"), register by register as
//! the virtio 1.x specification lays them out. The guest sets up queues by
//! writing their addresses here; `virtio-queue` then checks those addresses
//! against guest memory before any ring is read.

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::VirtioDevice;
use crate::devices::bus::{BusDevice, IoResult};
use crate::devices::legacy::serial::IrqLine;
use vm_superio::Trigger;

/// Register offsets (one list for the device and the tiny guest's driver).
use guest_abi::virtio_mmio as reg;
/// Device status bits.
pub use guest_abi::virtio_mmio::status;
use guest_abi::virtio_mmio::{MAGIC_VALUE as MAGIC, VERSION_MODERN as VERSION};

const VENDOR: u32 = 0x4c4f_5349; // "ISOL"

/// Interrupt status bit: a used buffer was returned.
const INT_VRING: u32 = 1;
/// Interrupt status bit: the configuration (or device status) changed.
const INT_CONFIG: u32 = 2;

/// A virtio device behind the MMIO register window.
pub struct MmioTransport<D: VirtioDevice> {
    device: D,
    mem: GuestMemoryMmap,
    irq: IrqLine,
    queues: Vec<Queue>,
    queue_sel: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    status: u32,
    interrupt_status: u32,
    notifications: u64,
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// A transport for `device` over guest memory `mem`, signalling on `irq`.
    pub fn new(device: D, mem: GuestMemoryMmap, irq: IrqLine) -> MmioTransport<D> {
        let queues = device
            .queue_max_sizes()
            .iter()
            // A device model offering an invalid size simply lacks that queue.
            .filter_map(|max| Queue::new(*max).ok())
            .collect();
        MmioTransport {
            device,
            mem,
            irq,
            queues,
            queue_sel: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            status: 0,
            interrupt_status: 0,
            notifications: 0,
        }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Queue `index`, for inspection.
    pub fn queue(&self, index: usize) -> Option<&Queue> {
        self.queues.get(index)
    }

    /// Queue notifications received.
    pub fn notifications(&self) -> u64 {
        self.notifications
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// Queue registers may change only while the queue is not live.
    fn selected_configurable(&mut self) -> Option<&mut Queue> {
        self.selected().filter(|q| !q.ready())
    }

    fn reset(&mut self) {
        self.device.reset();
        for q in &mut self.queues {
            q.reset();
        }
        self.queue_sel = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.status = 0;
        self.interrupt_status = 0;
    }

    fn notify(&mut self, index: u32) {
        self.notifications += 1;
        self.run_queue(index);
    }

    /// The device model, for a helper thread that drives it.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Processes queue `index` as a notification would, raising the
    /// interrupt if buffers were returned: for work that does not start with
    /// the guest (a frame arriving on a network device). Returns false when
    /// the driver has not finished set-up or the queue is not live.
    pub fn run_queue(&mut self, index: u32) -> bool {
        if self.status & status::DRIVER_OK == 0 {
            return false;
        }
        let Some(queue) = self.queues.get_mut(index as usize) else {
            return false;
        };
        let live = queue.ready();
        let used = self.device.process_queue(index as usize, queue, &self.mem);
        if self.device.needs_reset() && self.status & status::DEVICE_NEEDS_RESET == 0 {
            // Tell the driver, with a configuration-change interrupt.
            self.status |= status::DEVICE_NEEDS_RESET;
            self.interrupt_status |= INT_CONFIG;
            if let Err(e) = self.irq.trigger() {
                tracing::debug!(%e, "virtio interrupt failed");
            }
        }
        if used {
            let needs = queue.needs_notification(&self.mem).unwrap_or(true);
            if needs {
                self.interrupt_status |= INT_VRING;
                if let Err(e) = self.irq.trigger() {
                    tracing::debug!(%e, "virtio interrupt failed");
                }
            }
        }
        live
    }

    fn read_reg(&mut self, offset: u64) -> Option<u32> {
        Some(match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device.device_type(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device.features() as u32,
                1 => (self.device.features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => self.selected().map(|q| q.max_size()).unwrap_or(0).into(),
            reg::QUEUE_READY => self.selected().map(|q| q.ready()).unwrap_or(false).into(),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            reg::CONFIG_GENERATION => 0,
            _ => return None,
        })
    }

    fn write_reg(&mut self, offset: u64, v: u32) -> bool {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::DRIVER_FEATURES => {
                // Only features we offer can be taken.
                let offered = self.device.features();
                match self.driver_features_sel {
                    0 => {
                        self.driver_features =
                            (self.driver_features & !0xffff_ffff) | (u64::from(v) & offered)
                    }
                    1 => {
                        self.driver_features =
                            (self.driver_features & 0xffff_ffff) | ((u64::from(v) << 32) & offered)
                    }
                    _ => return false,
                }
            }
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NUM => match self.selected_configurable() {
                // virtio-queue ignores sizes that are 0, too big or not a power of two.
                Some(q) => q.set_size(v.min(u32::from(u16::MAX)) as u16),
                None => return false,
            },
            reg::QUEUE_READY => match self.selected() {
                Some(q) => q.set_ready(v == 1),
                None => return false,
            },
            reg::QUEUE_NOTIFY => self.notify(v),
            reg::INTERRUPT_ACK => self.interrupt_status &= !v,
            reg::STATUS => {
                if v == 0 {
                    self.reset();
                } else if v & status::FEATURES_OK != 0
                    && self.driver_features & super::F_VERSION_1 == 0
                {
                    // A modern transport requires VERSION_1: refuse FEATURES_OK.
                    self.status = v & !status::FEATURES_OK;
                } else {
                    self.status = v;
                }
            }
            reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH => match self.selected_configurable() {
                Some(q) => q.set_desc_table_address(
                    (offset == reg::QUEUE_DESC_LOW).then_some(v),
                    (offset == reg::QUEUE_DESC_HIGH).then_some(v),
                ),
                None => return false,
            },
            reg::QUEUE_AVAIL_LOW | reg::QUEUE_AVAIL_HIGH => match self.selected_configurable() {
                Some(q) => q.set_avail_ring_address(
                    (offset == reg::QUEUE_AVAIL_LOW).then_some(v),
                    (offset == reg::QUEUE_AVAIL_HIGH).then_some(v),
                ),
                None => return false,
            },
            reg::QUEUE_USED_LOW | reg::QUEUE_USED_HIGH => match self.selected_configurable() {
                Some(q) => q.set_used_ring_address(
                    (offset == reg::QUEUE_USED_LOW).then_some(v),
                    (offset == reg::QUEUE_USED_HIGH).then_some(v),
                ),
                None => return false,
            },
            _ => return false,
        }
        true
    }
}

impl<D: VirtioDevice> BusDevice for MmioTransport<D> {
    fn read(&mut self, offset: u64, data: &mut [u8]) -> IoResult {
        if offset >= reg::CONFIG {
            self.device.read_config(offset - reg::CONFIG, data);
            return IoResult::Done;
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
            return IoResult::Stray;
        }
        match self.read_reg(offset) {
            Some(v) => {
                data.copy_from_slice(&v.to_le_bytes());
                IoResult::Done
            }
            None => IoResult::Stray,
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> IoResult {
        if offset >= reg::CONFIG {
            // Block configuration space is read-only here.
            return IoResult::Stray;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return IoResult::Stray;
        };
        if !offset.is_multiple_of(4) {
            return IoResult::Stray;
        }
        if self.write_reg(offset, u32::from_le_bytes(bytes)) {
            IoResult::Done
        } else {
            IoResult::Stray
        }
    }
}

#[cfg(test)]
mod abi_tests {
    use virtio_bindings::virtio_config as c;
    use virtio_bindings::virtio_mmio as m;

    /// The hand-kept list in `guest-abi` (the freestanding guest cannot link
    /// `virtio-bindings`) is the one the bindings give.
    #[test]
    fn registers_and_status_bits_match_virtio_bindings() {
        let pairs: [(u64, u32); 22] = [
            (super::reg::MAGIC, m::VIRTIO_MMIO_MAGIC_VALUE),
            (super::reg::VERSION, m::VIRTIO_MMIO_VERSION),
            (super::reg::DEVICE_ID, m::VIRTIO_MMIO_DEVICE_ID),
            (super::reg::VENDOR_ID, m::VIRTIO_MMIO_VENDOR_ID),
            (super::reg::DEVICE_FEATURES, m::VIRTIO_MMIO_DEVICE_FEATURES),
            (
                super::reg::DEVICE_FEATURES_SEL,
                m::VIRTIO_MMIO_DEVICE_FEATURES_SEL,
            ),
            (super::reg::DRIVER_FEATURES, m::VIRTIO_MMIO_DRIVER_FEATURES),
            (
                super::reg::DRIVER_FEATURES_SEL,
                m::VIRTIO_MMIO_DRIVER_FEATURES_SEL,
            ),
            (super::reg::QUEUE_SEL, m::VIRTIO_MMIO_QUEUE_SEL),
            (super::reg::QUEUE_NUM_MAX, m::VIRTIO_MMIO_QUEUE_NUM_MAX),
            (super::reg::QUEUE_NUM, m::VIRTIO_MMIO_QUEUE_NUM),
            (super::reg::QUEUE_READY, m::VIRTIO_MMIO_QUEUE_READY),
            (super::reg::QUEUE_NOTIFY, m::VIRTIO_MMIO_QUEUE_NOTIFY),
            (
                super::reg::INTERRUPT_STATUS,
                m::VIRTIO_MMIO_INTERRUPT_STATUS,
            ),
            (super::reg::INTERRUPT_ACK, m::VIRTIO_MMIO_INTERRUPT_ACK),
            (super::reg::STATUS, m::VIRTIO_MMIO_STATUS),
            (super::reg::QUEUE_DESC_LOW, m::VIRTIO_MMIO_QUEUE_DESC_LOW),
            (super::reg::QUEUE_DESC_HIGH, m::VIRTIO_MMIO_QUEUE_DESC_HIGH),
            (super::reg::QUEUE_AVAIL_LOW, m::VIRTIO_MMIO_QUEUE_AVAIL_LOW),
            (super::reg::QUEUE_USED_LOW, m::VIRTIO_MMIO_QUEUE_USED_LOW),
            (
                super::reg::CONFIG_GENERATION,
                m::VIRTIO_MMIO_CONFIG_GENERATION,
            ),
            (super::reg::CONFIG, m::VIRTIO_MMIO_CONFIG),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours, u64::from(theirs));
        }
        assert_eq!(
            super::reg::QUEUE_AVAIL_HIGH,
            super::reg::QUEUE_AVAIL_LOW + 4
        );
        assert_eq!(super::reg::QUEUE_USED_HIGH, super::reg::QUEUE_USED_LOW + 4);
        assert_eq!(super::status::ACKNOWLEDGE, c::VIRTIO_CONFIG_S_ACKNOWLEDGE);
        assert_eq!(super::status::DRIVER, c::VIRTIO_CONFIG_S_DRIVER);
        assert_eq!(super::status::DRIVER_OK, c::VIRTIO_CONFIG_S_DRIVER_OK);
        assert_eq!(super::status::FEATURES_OK, c::VIRTIO_CONFIG_S_FEATURES_OK);
        assert_eq!(
            super::status::DEVICE_NEEDS_RESET,
            c::VIRTIO_CONFIG_S_NEEDS_RESET
        );
        assert_eq!(super::status::FAILED, c::VIRTIO_CONFIG_S_FAILED);
        // "virt", little endian.
        assert_eq!(&super::MAGIC.to_le_bytes(), b"virt");
    }
}
