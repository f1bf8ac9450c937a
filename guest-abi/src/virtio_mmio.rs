//! The virtio-mmio transport's registers (virtio 1.x, section 4.2.2) and
//! status bits, as the tiny guest's driver and the VMM's device both use
//! them. `microvm`'s tests check every value against `virtio-bindings`
//! (which the freestanding guest cannot link: it needs `std`).

/// "virt", the value of [`MAGIC`].
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// The modern transport's version.
pub const VERSION_MODERN: u32 = 2;

/// Magic value (read).
pub const MAGIC: u64 = 0x000;
/// Transport version (read).
pub const VERSION: u64 = 0x004;
/// Device type (read).
pub const DEVICE_ID: u64 = 0x008;
/// Vendor (read).
pub const VENDOR_ID: u64 = 0x00c;
/// The 32 device feature bits selected by [`DEVICE_FEATURES_SEL`] (read).
pub const DEVICE_FEATURES: u64 = 0x010;
/// Which 32 device feature bits to read.
pub const DEVICE_FEATURES_SEL: u64 = 0x014;
/// The 32 driver feature bits selected by [`DRIVER_FEATURES_SEL`] (write).
pub const DRIVER_FEATURES: u64 = 0x020;
/// Which 32 driver feature bits to write.
pub const DRIVER_FEATURES_SEL: u64 = 0x024;
/// The queue the queue registers below address.
pub const QUEUE_SEL: u64 = 0x030;
/// Largest queue size the device accepts (read).
pub const QUEUE_NUM_MAX: u64 = 0x034;
/// Queue size the driver chose.
pub const QUEUE_NUM: u64 = 0x038;
/// The selected queue is ready.
pub const QUEUE_READY: u64 = 0x044;
/// The driver has new buffers in a queue (write).
pub const QUEUE_NOTIFY: u64 = 0x050;
/// Why the device interrupted (read).
pub const INTERRUPT_STATUS: u64 = 0x060;
/// Interrupts handled (write).
pub const INTERRUPT_ACK: u64 = 0x064;
/// Device status (the [`status`] bits).
pub const STATUS: u64 = 0x070;
/// Descriptor table address, low 32 bits.
pub const QUEUE_DESC_LOW: u64 = 0x080;
/// Descriptor table address, high 32 bits.
pub const QUEUE_DESC_HIGH: u64 = 0x084;
/// Available ring address, low 32 bits.
pub const QUEUE_AVAIL_LOW: u64 = 0x090;
/// Available ring address, high 32 bits.
pub const QUEUE_AVAIL_HIGH: u64 = 0x094;
/// Used ring address, low 32 bits.
pub const QUEUE_USED_LOW: u64 = 0x0a0;
/// Used ring address, high 32 bits.
pub const QUEUE_USED_HIGH: u64 = 0x0a4;
/// Configuration generation (read).
pub const CONFIG_GENERATION: u64 = 0x0fc;
/// Start of the device-specific configuration space.
pub const CONFIG: u64 = 0x100;

/// Device status bits.
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver.
    pub const DRIVER: u32 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error and needs a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    /// The guest gave up.
    pub const FAILED: u32 = 0x80;
}
