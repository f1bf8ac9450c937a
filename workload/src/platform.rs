//! What the kernels need from the machine they run on.
//!
//! Two implementations exist: the Linux platform (`linux` module, `std`
//! feature) and the tiny guest's bare platform (in `guest/tiny`). Everything
//! else in this crate is shared, so a difference between two runs is a
//! difference of the platform, not of the measuring code.

use alloc::boxed::Box;
use alloc::string::String;
use core::net::SocketAddr;

use crate::schema::PlatformKind;

/// The machine a probe runs on.
///
/// Methods with a default body are optional; a platform overrides them when it
/// can do better.
pub trait Platform {
    /// The block device the `io` probe uses (see [`Platform::open_block`]).
    type Block: BlockDevice;

    /// Which platform this is; written into every result line.
    fn kind(&self) -> PlatformKind;

    /// Monotonic time in nanoseconds since an arbitrary origin.
    fn now_ns(&self) -> u64;

    /// The clock's declared resolution in nanoseconds (at least 1). The
    /// `syscall` probe also reports the step it observes.
    fn clock_resolution_ns(&self) -> u64;

    /// Writes one result line. `line` is a complete JSON object without the
    /// trailing newline; the platform adds the line ending and makes sure the
    /// line leaves the process (or guest) before returning.
    fn emit(&mut self, line: &str);

    /// One round trip through the cheapest kernel entry: `getppid(2)` on
    /// Linux, an `in` from port `0x503` (one VM exit) on the bare platform.
    fn kernel_entry(&self);

    /// Name of what [`Platform::kernel_entry`] does, reported as the
    /// `syscall` probe's `kind`: `"syscall"` or `"vmexit"`.
    fn kernel_entry_kind(&self) -> &'static str;

    /// Opens the `io` probe's target with room for at least `size` bytes.
    /// `target` is the user's `--io-target` (a path on Linux; the bare
    /// platform ignores it and uses its virtio-blk disk). Whatever the device
    /// needs to clean up (e.g. a temporary file) happens when it is dropped.
    fn open_block(&mut self, target: Option<&str>, size: u64) -> Result<Self::Block, BlockError>;

    /// Called once, right before the `ready` line is emitted. A Linux PID 1 in
    /// a VM writes the ready marker to port `0x500` here.
    fn mark_ready(&mut self) {}

    /// Waits about `ms` milliseconds doing nothing, for the `idle` probe. The
    /// default polls the clock (the bare guest runs at CPL 3 and cannot `hlt`).
    fn idle(&mut self, ms: u64) {
        let end = self.now_ns().saturating_add(ms.saturating_mul(1_000_000));
        while self.now_ns() < end {
            core::hint::spin_loop();
        }
    }

    /// Size of the last-level cache in bytes, when the platform knows it. The
    /// `mem` probe reports it next to the array size so a reader can check the
    /// arrays are large enough to defeat the cache. The default asks `cpuid`,
    /// which works at CPL 3 on the host and in a guest.
    fn llc_bytes(&self) -> Option<u64> {
        crate::cpuid::llc_bytes()
    }

    /// Opens a TCP connection to `addr` for the `net` probe (Nagle off,
    /// bounded waits). The default has no network: the tiny guest has no
    /// NIC driver.
    fn net_dial(&mut self, addr: SocketAddr) -> Result<Box<dyn NetStream>, NetError> {
        let _ = addr;
        Err(NetError::Unsupported(NO_NIC))
    }

    /// Listens on TCP `port` (all addresses of this platform) for the `net`
    /// probe's inbound direction: the host's peer connects in.
    fn net_listen(&mut self, port: u16) -> Result<Box<dyn NetListener>, NetError> {
        let _ = port;
        Err(NetError::Unsupported(NO_NIC))
    }
}

/// Why the default [`Platform`] has no network.
pub const NO_NIC: &str = "this platform has no network device driver (the tiny guest drives only \
     the isolab ports and a polling virtio-blk)";

/// One TCP connection of the `net` probe. Every wait is bounded, so a peer
/// that disappears fails the probe instead of hanging it.
pub trait NetStream {
    /// Writes all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError>;
    /// Reads exactly `buf.len()` bytes.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), NetError>;
    /// Ends this side's sending (TCP FIN); reading still works.
    fn shutdown_write(&mut self) -> Result<(), NetError>;
}

/// A listening socket of the `net` probe.
pub trait NetListener {
    /// Waits (bounded) for the next connection.
    fn accept(&mut self) -> Result<Box<dyn NetStream>, NetError>;
}

/// A `net` probe failure, naming what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The platform has no network.
    #[error("{0}")]
    Unsupported(&'static str),
    /// No peer was given to measure against.
    #[error(
        "no peer to measure against: give --net-dial PATH=ADDR:PORT or --net-accept PATH=PORT (isolab probe and isolab bench start the peer themselves)"
    )]
    NoPeer,
    /// Connecting, listening or accepting failed.
    #[error("{op} {peer}: {detail}")]
    Setup {
        /// `connect to`, `listen on` or `accept on`.
        op: &'static str,
        /// The address or port.
        peer: String,
        /// Why.
        detail: String,
    },
    /// A read, write or shutdown on an open connection failed.
    #[error("{op} failed: {detail}")]
    Io {
        /// `read`, `write` or `shutdown`.
        op: &'static str,
        /// Why.
        detail: String,
    },
    /// The peer answered something the protocol does not allow.
    #[error("peer broke the protocol: {0}")]
    Protocol(String),
}

/// A disk-like target for the `io` probe.
///
/// Callers only pass offsets and lengths that are multiples of
/// [`BLOCK_ALIGN`], with buffers aligned to [`BLOCK_ALIGN`] (what `O_DIRECT`
/// and DMA want), and never beyond the size asked for in
/// [`Platform::open_block`].
pub trait BlockDevice {
    /// True when reads and writes bypass any page cache (`O_DIRECT`, or a raw
    /// device with no cache in between).
    fn bypasses_cache(&self) -> bool;

    /// Reads `buf.len()` bytes at byte `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError>;

    /// Writes `buf` at byte `offset`.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError>;

    /// Makes every completed write durable (`fsync`, virtio-blk `FLUSH`).
    fn flush(&mut self) -> Result<(), BlockError>;
}

/// Alignment of every block I/O offset, length and buffer, in bytes.
pub const BLOCK_ALIGN: usize = 4096;

/// A block I/O failure, naming the operation and where it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The target could not be opened or prepared.
    #[error("cannot use I/O target {target:?}: {detail}")]
    Open {
        /// The target as given (path, or a device name).
        target: String,
        /// Why.
        detail: String,
    },
    /// The target is smaller than the probe needs.
    #[error("I/O target {target:?} holds {available} bytes, the probe needs {needed}")]
    TooSmall {
        /// The target.
        target: String,
        /// Bytes available.
        available: u64,
        /// Bytes asked for.
        needed: u64,
    },
    /// A read, write or flush failed.
    #[error("{op} at offset {offset} ({len} bytes) failed: {detail}")]
    Op {
        /// `read`, `write` or `flush`.
        op: &'static str,
        /// Byte offset.
        offset: u64,
        /// Length in bytes.
        len: u64,
        /// Why.
        detail: String,
    },
    /// Data read back differs from what was written.
    #[error("data read back at offset {offset} differs from what was written")]
    Mismatch {
        /// Byte offset of the block that differs.
        offset: u64,
    },
}
