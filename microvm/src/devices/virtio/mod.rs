//! Virtio devices over the MMIO transport (virtio 1.x, virtio-mmio version 2).

pub mod block;
pub mod mmio;
pub mod net;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

/// `VIRTIO_F_VERSION_1`: a modern (non-legacy) device.
pub const F_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;

/// A device model behind a transport.
pub trait VirtioDevice: Send {
    /// Virtio device id (1 = network, 2 = block).
    fn device_type(&self) -> u32;
    /// Feature bits offered.
    fn features(&self) -> u64;
    /// Maximum size of each queue (powers of two).
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads device configuration space at `offset`; out-of-range bytes read 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Processes queue `index` after a notification. Returns whether any
    /// buffer was returned to the driver (so it may need an interrupt).
    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool;
    /// The driver broke the queue (e.g. its available index jumped past the
    /// queue size) and must reset the device before it works again.
    fn needs_reset(&self) -> bool {
        false
    }
    /// Forgets device state on a driver reset.
    fn reset(&mut self) {}
}
