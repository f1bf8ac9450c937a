//! A polling virtio-blk driver over the modern (version 2) virtio-mmio
//! transport.
//!
//! One split virtqueue in guest memory, one request in flight: the driver
//! posts a descriptor chain, notifies the device (one MMIO exit, which our
//! VMM handles synchronously) and polls the used ring. It asks the device not
//! to interrupt and never waits for an interrupt, so it works on hosts that
//! cannot deliver them. The guest is identity mapped, so a buffer's virtual
//! address is its guest-physical address.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::ptr::{self, addr_of, addr_of_mut};
use core::sync::atomic::{Ordering, compiler_fence};

use crate::clock::Clock;

/// virtio-mmio registers (virtio 1.x, section 4.2.2), shared with the VMM.
use guest_abi::virtio_mmio::{self as reg, MAGIC_VALUE as MAGIC, status};

const DEVICE_ID_BLOCK: u32 = 2;

const F_BLK_RO: u64 = 1 << 5;
const F_BLK_FLUSH: u64 = 1 << 9;
const F_VERSION_1: u64 = 1 << 32;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const S_OK: u8 = 0;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Sector size of the virtio-blk protocol.
pub const SECTOR: u64 = 512;
/// Descriptors in our queue: 3 per request, plus room for the test-only
/// hostile chains.
pub const QUEUE_SIZE: u16 = 16;
/// Largest data buffer in one request (larger transfers are split).
const MAX_REQUEST: usize = 4 << 20;
/// How long a request may take before the driver gives up, in ms.
const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// The shorter wait the hostile test mode uses: our VMM completes (or
/// refuses) a request during the notify exit itself.
pub const HOSTILE_TIMEOUT_MS: u64 = 100;

/// A descriptor of the split virtqueue.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Desc {
    /// Guest-physical buffer address.
    pub addr: u64,
    /// Buffer length.
    pub len: u32,
    /// `DESC_F_*`.
    pub flags: u16,
    /// Next descriptor when `DESC_F_NEXT`.
    pub next: u16,
}

/// The request header and status byte, kept together in guest memory.
#[repr(C, align(16))]
struct Request {
    kind: u32,
    reserved: u32,
    sector: u64,
    status: u8,
}

/// The queue memory: descriptor table, available ring, used ring.
#[repr(C, align(4096))]
struct Rings {
    desc: [Desc; QUEUE_SIZE as usize],
    avail_flags: u16,
    avail_idx: u16,
    avail_ring: [u16; QUEUE_SIZE as usize],
    avail_used_event: u16,
    _pad: [u8; 2],
    used_flags: u16,
    used_idx: u16,
    used_ring: [(u32, u32); QUEUE_SIZE as usize],
    used_avail_event: u16,
    request: Request,
}

/// A failure of the device or of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkError {
    /// Probing or set-up failed.
    Setup(&'static str),
    /// The device answered with a non-OK status.
    Status(u8),
    /// The device did not complete the request in time.
    Timeout,
    /// Offset or length not sector aligned, or past the disk's end.
    Range,
}

impl core::fmt::Display for BlkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlkError::Setup(why) => write!(f, "virtio-blk set-up failed: {why}"),
            BlkError::Status(s) => write!(f, "virtio-blk device returned status {s}"),
            BlkError::Timeout => f.write_str("virtio-blk request not completed in time"),
            BlkError::Range => {
                f.write_str("request not sector aligned or past the end of the disk")
            }
        }
    }
}

/// How a posted chain ended (used by the hostile test mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The device put it in the used ring with this length; `status` is the
    /// status byte afterwards (0xff if the device left it untouched).
    Used {
        /// Used length.
        len: u32,
        /// Status byte.
        status: u8,
    },
    /// Nothing came back in time.
    NoAnswer,
}

/// The driver for one virtio-blk device.
pub struct VirtioBlk {
    base: u64,
    rings: *mut Rings,
    last_used: u16,
    capacity: u64,
    features: u64,
    clock: Clock,
    timeout_ms: u64,
}

impl VirtioBlk {
    /// Probes and initialises the device at MMIO `base` (virtio 1.x, 3.1.1).
    pub fn new(base: u64, clock: Clock) -> Result<VirtioBlk, BlkError> {
        if base == 0 {
            return Err(BlkError::Setup(
                "no virtio-blk device (the VMM attaches one for the io probe)",
            ));
        }
        let layout = Layout::new::<Rings>();
        // SAFETY: `Rings` has a non-zero size.
        let rings = unsafe { alloc_zeroed(layout) } as *mut Rings;
        if rings.is_null() {
            return Err(BlkError::Setup("no memory for the virtqueue"));
        }
        let mut dev = VirtioBlk {
            base,
            rings,
            last_used: 0,
            capacity: 0,
            features: 0,
            clock,
            timeout_ms: REQUEST_TIMEOUT_MS,
        };
        match dev.init() {
            Ok(()) => Ok(dev),
            Err(e) => {
                dev.write(reg::STATUS, status::FAILED);
                Err(e)
            }
        }
    }

    fn init(&mut self) -> Result<(), BlkError> {
        if self.read(reg::MAGIC) != MAGIC {
            return Err(BlkError::Setup("no virtio-mmio magic at the given address"));
        }
        if self.read(reg::VERSION) != 2 {
            return Err(BlkError::Setup(
                "not a modern (version 2) virtio-mmio device",
            ));
        }
        if self.read(reg::DEVICE_ID) != DEVICE_ID_BLOCK {
            return Err(BlkError::Setup(
                "the virtio-mmio device is not a block device",
            ));
        }
        self.write(reg::STATUS, 0);
        self.write(reg::STATUS, status::ACKNOWLEDGE);
        self.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        self.write(reg::DEVICE_FEATURES_SEL, 0);
        let low = self.read(reg::DEVICE_FEATURES) as u64;
        self.write(reg::DEVICE_FEATURES_SEL, 1);
        let offered = low | (self.read(reg::DEVICE_FEATURES) as u64) << 32;
        if offered & F_VERSION_1 == 0 {
            return Err(BlkError::Setup("device does not offer VIRTIO_F_VERSION_1"));
        }
        self.features = offered & (F_VERSION_1 | F_BLK_FLUSH | F_BLK_RO);
        self.write(reg::DRIVER_FEATURES_SEL, 0);
        self.write(reg::DRIVER_FEATURES, self.features as u32);
        self.write(reg::DRIVER_FEATURES_SEL, 1);
        self.write(reg::DRIVER_FEATURES, (self.features >> 32) as u32);
        let negotiating = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write(reg::STATUS, negotiating);
        if self.read(reg::STATUS) & status::FEATURES_OK == 0 {
            return Err(BlkError::Setup("device refused our features"));
        }

        self.write(reg::QUEUE_SEL, 0);
        let max = self.read(reg::QUEUE_NUM_MAX);
        if max < QUEUE_SIZE as u32 {
            return Err(BlkError::Setup(
                "device queue is smaller than 16 descriptors",
            ));
        }
        self.write(reg::QUEUE_NUM, QUEUE_SIZE as u32);
        let r = self.rings;
        // SAFETY: `r` is our live, zeroed allocation; only field addresses are taken.
        let (desc, avail, used) = unsafe {
            (
                addr_of!((*r).desc) as u64,
                addr_of!((*r).avail_flags) as u64,
                addr_of!((*r).used_flags) as u64,
            )
        };
        // SAFETY: as above; the device is not running the queue yet.
        unsafe { ptr::write_volatile(addr_of_mut!((*r).avail_flags), AVAIL_F_NO_INTERRUPT) };
        self.write(reg::QUEUE_DESC_LOW, desc as u32);
        self.write(reg::QUEUE_DESC_HIGH, (desc >> 32) as u32);
        self.write(reg::QUEUE_AVAIL_LOW, avail as u32);
        self.write(reg::QUEUE_AVAIL_HIGH, (avail >> 32) as u32);
        self.write(reg::QUEUE_USED_LOW, used as u32);
        self.write(reg::QUEUE_USED_HIGH, (used >> 32) as u32);
        self.write(reg::QUEUE_READY, 1);
        if self.read(reg::QUEUE_READY) != 1 {
            return Err(BlkError::Setup("device did not accept the queue"));
        }
        let sectors = self.read(reg::CONFIG) as u64 | (self.read(reg::CONFIG + 4) as u64) << 32;
        self.capacity = sectors.saturating_mul(SECTOR);
        self.write(reg::STATUS, negotiating | status::DRIVER_OK);
        Ok(())
    }

    /// Changes how long a request is waited for.
    pub fn set_timeout_ms(&mut self, ms: u64) {
        self.timeout_ms = ms;
    }

    /// Disk size in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// True when the device accepts flush requests.
    pub fn can_flush(&self) -> bool {
        self.features & F_BLK_FLUSH != 0
    }

    /// True when the device is read-only.
    pub fn read_only(&self) -> bool {
        self.features & F_BLK_RO != 0
    }

    /// Reads `buf.len()` bytes at byte `offset`.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.check_range(offset, buf.len())?;
        for (i, chunk) in buf.chunks_mut(MAX_REQUEST).enumerate() {
            let sector = (offset + (i * MAX_REQUEST) as u64) / SECTOR;
            self.transfer(T_IN, sector, chunk.as_mut_ptr() as u64, chunk.len() as u32)?;
        }
        Ok(())
    }

    /// Writes `buf` at byte `offset`.
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlkError> {
        self.check_range(offset, buf.len())?;
        for (i, chunk) in buf.chunks(MAX_REQUEST).enumerate() {
            let sector = (offset + (i * MAX_REQUEST) as u64) / SECTOR;
            self.transfer(T_OUT, sector, chunk.as_ptr() as u64, chunk.len() as u32)?;
        }
        Ok(())
    }

    /// Asks the device to make completed writes durable (a no-op when it
    /// does not offer flush: then it writes through).
    pub fn flush(&mut self) -> Result<(), BlkError> {
        if !self.can_flush() {
            return Ok(());
        }
        self.request(T_FLUSH, 0, None)
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<(), BlkError> {
        let end = offset.checked_add(len as u64).ok_or(BlkError::Range)?;
        if !offset.is_multiple_of(SECTOR)
            || !(len as u64).is_multiple_of(SECTOR)
            || end > self.capacity
        {
            return Err(BlkError::Range);
        }
        Ok(())
    }

    fn transfer(&mut self, kind: u32, sector: u64, addr: u64, len: u32) -> Result<(), BlkError> {
        self.request(kind, sector, Some((addr, len, kind == T_IN)))
    }

    /// Posts header, optional data buffer and status as one chain, then polls.
    fn request(
        &mut self,
        kind: u32,
        sector: u64,
        data: Option<(u64, u32, bool)>,
    ) -> Result<(), BlkError> {
        let r = self.rings;
        // SAFETY: `r` is our live allocation and the device only touches it
        // while a request is posted, which is not the case here.
        let (hdr, status) = unsafe {
            let req = addr_of_mut!((*r).request);
            ptr::write_volatile(addr_of_mut!((*req).kind), kind);
            ptr::write_volatile(addr_of_mut!((*req).reserved), 0);
            ptr::write_volatile(addr_of_mut!((*req).sector), sector);
            ptr::write_volatile(addr_of_mut!((*req).status), 0xff);
            (req as u64, addr_of!((*req).status) as u64)
        };
        let mut chain = [Desc {
            addr: hdr,
            len: 16,
            flags: DESC_F_NEXT,
            next: 1,
        }; 3];
        let n = match data {
            Some((addr, len, device_writes)) => {
                let flags = DESC_F_NEXT | if device_writes { DESC_F_WRITE } else { 0 };
                chain[1] = Desc {
                    addr,
                    len,
                    flags,
                    next: 2,
                };
                chain[2] = Desc {
                    addr: status,
                    len: 1,
                    flags: DESC_F_WRITE,
                    next: 0,
                };
                3
            }
            None => {
                chain[1] = Desc {
                    addr: status,
                    len: 1,
                    flags: DESC_F_WRITE,
                    next: 0,
                };
                2
            }
        };
        match self.post(&chain[..n], 0) {
            Completion::NoAnswer => Err(BlkError::Timeout),
            Completion::Used { status: S_OK, .. } => Ok(()),
            Completion::Used { status, .. } => Err(BlkError::Status(status)),
        }
    }

    /// Writes `chain` into the descriptor table from index 0, makes `head`
    /// available, notifies and polls for the answer. The test-only hostile
    /// mode passes deliberately broken chains through here too.
    pub fn post(&mut self, chain: &[Desc], head: u16) -> Completion {
        self.post_raw(chain, head, 1)
    }

    /// As [`VirtioBlk::post`], but advances the available index by `advance`
    /// (1 for a well-formed request; more to lie about how much is posted).
    pub fn post_raw(&mut self, chain: &[Desc], head: u16, advance: u16) -> Completion {
        let r = self.rings;
        // SAFETY: `r` is our live allocation; indices are reduced modulo the
        // queue size; volatile accesses because the device reads and writes
        // this memory behind the compiler's back.
        unsafe {
            for (i, d) in chain.iter().take(QUEUE_SIZE as usize).enumerate() {
                ptr::write_volatile(addr_of_mut!((*r).desc[i]), *d);
            }
            let idx = ptr::read_volatile(addr_of!((*r).avail_idx));
            ptr::write_volatile(
                addr_of_mut!((*r).avail_ring[(idx % QUEUE_SIZE) as usize]),
                head,
            );
            compiler_fence(Ordering::SeqCst);
            ptr::write_volatile(addr_of_mut!((*r).avail_idx), idx.wrapping_add(advance));
            compiler_fence(Ordering::SeqCst);
        }
        self.write(reg::QUEUE_NOTIFY, 0);
        let deadline = self.clock.now_ns() + self.timeout_ms * 1_000_000;
        loop {
            // SAFETY: as above.
            let used = unsafe { ptr::read_volatile(addr_of!((*r).used_idx)) };
            if used != self.last_used {
                compiler_fence(Ordering::SeqCst);
                // SAFETY: as above.
                let (_id, len, status) = unsafe {
                    let (id, len) = ptr::read_volatile(addr_of!(
                        (*r).used_ring[(self.last_used % QUEUE_SIZE) as usize]
                    ));
                    (id, len, ptr::read_volatile(addr_of!((*r).request.status)))
                };
                self.last_used = self.last_used.wrapping_add(1);
                return Completion::Used { len, status };
            }
            if self.clock.now_ns() > deadline {
                return Completion::NoAnswer;
            }
            core::hint::spin_loop();
        }
    }

    /// Address of the request header and of the status byte (for hostile
    /// chains that still want a valid status slot).
    pub fn request_slots(&self) -> (u64, u64) {
        let r = self.rings;
        // SAFETY: only field addresses of our live allocation are taken.
        unsafe {
            (
                addr_of!((*r).request) as u64,
                addr_of!((*r).request.status) as u64,
            )
        }
    }

    /// Fills the request header for a hand-made chain.
    pub fn set_header(&mut self, kind: u32, sector: u64) {
        let r = self.rings;
        // SAFETY: our live allocation; no request is in flight.
        unsafe {
            ptr::write_volatile(addr_of_mut!((*r).request.kind), kind);
            ptr::write_volatile(addr_of_mut!((*r).request.sector), sector);
            ptr::write_volatile(addr_of_mut!((*r).request.status), 0xff);
        }
    }

    fn read(&self, offset: u64) -> u32 {
        // SAFETY: the MMIO window is identity mapped and 4 KiB long; every
        // offset used is a register inside it.
        unsafe { ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&self, offset: u64, value: u32) {
        // SAFETY: as in `read`.
        unsafe { ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
}

impl Drop for VirtioBlk {
    fn drop(&mut self) {
        // Reset the device first so it stops using the rings, then free them.
        self.write(reg::STATUS, 0);
        // SAFETY: `rings` came from `alloc_zeroed` with this layout.
        unsafe { dealloc(self.rings as *mut u8, Layout::new::<Rings>()) };
    }
}

/// Request types, for hand-made chains.
pub mod kinds {
    /// Read.
    pub const IN: u32 = super::T_IN;
}

/// Descriptor flags, for hand-made chains.
pub mod flags {
    /// Chained to `next`.
    pub const NEXT: u16 = super::DESC_F_NEXT;
    /// Device writes this buffer.
    pub const WRITE: u16 = super::DESC_F_WRITE;
}
