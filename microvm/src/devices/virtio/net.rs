//! virtio-net backed by a host tap interface ([`tap`]).
//!
//! Two queues: 0 receives (host to guest), 1 transmits. The device offers
//! `VERSION_1` and `MAC` only — no offloads, no mergeable buffers, no
//! control queue — so each frame is one chain: a 12-byte `virtio_net_hdr`
//! (all zero but `num_buffers` = 1 on receive) and the Ethernet frame.
//!
//! Every chain comes from guest memory and is untrusted. It is collected with
//! `virtio-queue` (which stops at the queue size, so loops end), cut off at
//! [`MAX_CHAIN`] descriptors, and checked as a whole before anything is
//! copied: every buffer has the direction its queue needs and lies in guest
//! memory with that permission, the total length is bounded
//! ([`MAX_FRAME`] plus the header). A chain that fails is returned with
//! length 0 and counted; the queue stays usable, and nothing a guest writes
//! makes the VMM panic.
//!
//! # How receive is driven
//!
//! Transmit runs on the vCPU thread that wrote `QUEUE_NOTIFY`, like
//! virtio-blk. Receive needs someone to notice that the tap has a frame:
//! [`RxThread`] polls the tap (and a stop and a wake eventfd) and, when a
//! frame is there, runs the receive queue under the transport's lock and
//! raises the device's interrupt line — the same irqfd-backed `IrqLine` the
//! block device uses, so the interrupt reaches the guest without a vCPU exit.
//! We chose one small thread over folding the tap into the vCPU loop because
//! a vCPU halted in the guest's idle loop would otherwise never see a frame;
//! and over an event-loop crate because there is exactly one source to watch.
//! When the guest has no receive buffer the frame is kept, the thread stops
//! polling the tap (it would spin on a readable fd) and waits for the wake
//! eventfd, which the device writes when the guest posts buffers.

pub mod tap;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use virtio_bindings::virtio_net::VIRTIO_NET_F_MAC;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, Permissions};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::block::Buf;
use super::mmio::MmioTransport;
use super::{F_VERSION_1, VirtioDevice};

/// virtio device id of a network card.
pub const DEVICE_ID: u32 = 1;
/// Size of each queue offered.
pub const QUEUE_SIZE: u16 = 256;
/// The receive queue.
pub const RX: usize = 0;
/// The transmit queue.
pub const TX: usize = 1;
/// `virtio_net_hdr` with `num_buffers`, as every `VERSION_1` device uses.
pub const HDR_LEN: usize = 12;
/// Longest Ethernet frame accepted or delivered (without offloads the tap
/// never has more than a 64 KiB MTU's worth).
pub const MAX_FRAME: usize = 65_535 + 14;
/// Most descriptors in one chain: more than any sane driver uses without
/// indirect descriptors, few enough to bound the work per chain.
pub const MAX_CHAIN: usize = 64;
/// Shortest frame: an Ethernet header.
const ETH_HLEN: usize = 14;
/// Frames handled per queue run, so one busy side cannot starve the other.
const BUDGET: usize = 256;

/// Frame counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames sent to the tap.
    pub tx_frames: u64,
    /// Frames delivered to the guest.
    pub rx_frames: u64,
    /// Chains refused as malformed (either queue).
    pub bad_chains: u64,
    /// Frames dropped: the tap refused one, or one did not fit the guest's buffer.
    pub dropped: u64,
}

/// Why a chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The chain has no descriptor, or only empty ones.
    #[error("empty descriptor chain")]
    Empty,
    /// More than [`MAX_CHAIN`] descriptors, or the last still points onwards.
    #[error("descriptor chain longer than {MAX_CHAIN} or not terminated")]
    TooLong,
    /// A buffer has the wrong direction for its queue.
    #[error("descriptor {index} has the wrong direction for this queue")]
    WrongDirection {
        /// Position in the chain.
        index: usize,
    },
    /// A buffer lies outside guest memory.
    #[error("guest buffer {addr:#x}+{len:#x} is outside guest memory")]
    GuestRange {
        /// Its address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The frame is shorter than a header and an Ethernet header, or longer
    /// than [`MAX_FRAME`].
    #[error("frame of {len} bytes (with header) is outside {min}..={max}")]
    FrameSize {
        /// Bytes in the chain.
        len: u64,
        /// Fewest allowed.
        min: usize,
        /// Most allowed.
        max: usize,
    },
}

/// Checks a chain's shape: terminated, at most [`MAX_CHAIN`] long, every
/// buffer device-writable when `write` (else device-readable) and inside
/// guest memory. Returns the total length.
pub fn check_chain(mem: &GuestMemoryMmap, chain: &[Buf], write: bool) -> Result<u64, ChainError> {
    let last = chain.last().ok_or(ChainError::Empty)?;
    if chain.len() > MAX_CHAIN || last.next {
        return Err(ChainError::TooLong);
    }
    if let Some(index) = chain.iter().position(|b| b.write != write) {
        return Err(ChainError::WrongDirection { index });
    }
    let perm = if write {
        Permissions::Write
    } else {
        Permissions::Read
    };
    for b in chain {
        if !GuestMemory::check_range(mem, GuestAddress(b.addr), b.len as usize, perm) {
            return Err(ChainError::GuestRange {
                addr: b.addr,
                len: b.len,
            });
        }
    }
    let total: u64 = chain.iter().map(|b| u64::from(b.len)).sum();
    if total == 0 {
        return Err(ChainError::Empty);
    }
    Ok(total)
}

/// Copies a transmit chain (header and frame) into `out`, checked first;
/// `out` then holds the Ethernet frame alone.
pub fn gather_tx(
    mem: &GuestMemoryMmap,
    chain: &[Buf],
    out: &mut Vec<u8>,
) -> Result<(), ChainError> {
    let total = check_chain(mem, chain, false)?;
    let (min, max) = (HDR_LEN + ETH_HLEN, HDR_LEN + MAX_FRAME);
    if total < min as u64 || total > max as u64 {
        return Err(ChainError::FrameSize {
            len: total,
            min,
            max,
        });
    }
    out.clear();
    out.resize(total as usize, 0);
    let mut at = 0usize;
    for b in chain {
        let end = at + b.len as usize;
        mem.read_slice(&mut out[at..end], GuestAddress(b.addr))
            .map_err(|_| ChainError::GuestRange {
                addr: b.addr,
                len: b.len,
            })?;
        at = end;
    }
    // The header asks for nothing we offered (no offloads): drop it.
    out.drain(..HDR_LEN);
    Ok(())
}

/// Writes a receive header and `frame` into a checked, device-writable
/// chain. `Ok(None)` when the frame does not fit (it is then dropped);
/// else the used length.
pub fn scatter_rx(
    mem: &GuestMemoryMmap,
    chain: &[Buf],
    frame: &[u8],
) -> Result<Option<u32>, ChainError> {
    let room = check_chain(mem, chain, true)?;
    let len = HDR_LEN + frame.len();
    if frame.len() > MAX_FRAME || room < len as u64 {
        return Ok(None);
    }
    let mut hdr = [0u8; HDR_LEN];
    // num_buffers (le16), always 1 without mergeable buffers.
    hdr[10] = 1;
    let mut src = hdr.iter().chain(frame.iter()).copied();
    let mut left = len;
    let mut piece = Vec::new();
    for b in chain {
        if left == 0 {
            break;
        }
        let n = (b.len as usize).min(left);
        piece.clear();
        piece.extend(src.by_ref().take(n));
        mem.write_slice(&piece, GuestAddress(b.addr))
            .map_err(|_| ChainError::GuestRange {
                addr: b.addr,
                len: b.len,
            })?;
        left -= n;
    }
    Ok(Some(len as u32))
}

/// The virtio-net device model over a frame-preserving descriptor (a tap,
/// or in tests a datagram socket).
pub struct Net {
    backend: File,
    mac: [u8; 6],
    /// A frame read from the backend and not yet delivered.
    pending: Option<Vec<u8>>,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    stats: NetStats,
    broken: bool,
    /// Written when the guest posts receive buffers while [`RxThread`] has
    /// stopped polling the backend.
    wake: EventFd,
    parked: bool,
}

impl Net {
    /// A device with address `mac` over `backend` (non-blocking).
    pub fn new(backend: File, mac: [u8; 6]) -> std::io::Result<Net> {
        Ok(Net {
            backend,
            mac,
            pending: None,
            rx_buf: vec![0; MAX_FRAME + 1],
            tx_buf: Vec::with_capacity(HDR_LEN + MAX_FRAME),
            stats: NetStats::default(),
            broken: false,
            wake: EventFd::new(EFD_NONBLOCK)?,
            parked: false,
        })
    }

    /// Frame counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Whether a frame waits for a receive buffer.
    pub fn rx_waiting(&self) -> bool {
        self.pending.is_some()
    }

    fn bad(&mut self, e: &ChainError) {
        tracing::debug!(%e, "virtio-net chain refused");
        self.stats.bad_chains += 1;
    }

    /// The next frame from the backend, `None` when there is none now.
    fn next_frame(&mut self) -> Option<Vec<u8>> {
        if let Some(f) = self.pending.take() {
            return Some(f);
        }
        loop {
            match self.backend.read(&mut self.rx_buf) {
                Ok(0) => return None,
                // Longer than any frame we deliver: drop it, try the next.
                Ok(n) if n > MAX_FRAME => self.stats.dropped += 1,
                Ok(n) => return Some(self.rx_buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        tracing::debug!(%e, "virtio-net backend read failed");
                    }
                    return None;
                }
            }
        }
    }

    /// Pops one chain; `Err` when the ring itself is unreadable.
    fn pop(
        &mut self,
        queue: &mut Queue,
        mem: &GuestMemoryMmap,
    ) -> Result<Option<(u16, Vec<Buf>)>, ()> {
        let chain = match queue.iter(mem) {
            Ok(mut it) => it.next(),
            Err(e) => {
                tracing::debug!(%e, "virtio-net avail ring unreadable");
                self.stats.bad_chains += 1;
                self.broken = true;
                return Err(());
            }
        };
        Ok(chain.map(|c| {
            let head = c.head_index();
            // One more than allowed, so an over-long chain is seen as such.
            (head, c.take(MAX_CHAIN + 1).map(Buf::from).collect())
        }))
    }

    fn receive(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        let mut used_any = false;
        for _ in 0..BUDGET {
            let Some(frame) = self.next_frame() else {
                break;
            };
            let Ok(Some((head, bufs))) = self.pop(queue, mem) else {
                self.pending = Some(frame);
                break;
            };
            let len = match scatter_rx(mem, &bufs, &frame) {
                Ok(Some(len)) => {
                    self.stats.rx_frames += 1;
                    len
                }
                Ok(None) => {
                    self.stats.dropped += 1;
                    0
                }
                Err(e) => {
                    // Keep the frame for a well-formed buffer.
                    self.bad(&e);
                    self.pending = Some(frame);
                    0
                }
            };
            if queue.add_used(mem, head, len).is_err() {
                self.stats.bad_chains += 1;
                break;
            }
            used_any = true;
        }
        used_any
    }

    fn transmit(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        let mut used_any = false;
        for _ in 0..BUDGET {
            let Ok(Some((head, bufs))) = self.pop(queue, mem) else {
                break;
            };
            let mut frame = std::mem::take(&mut self.tx_buf);
            match gather_tx(mem, &bufs, &mut frame) {
                Ok(()) => match self.backend.write(&frame) {
                    Ok(_) => self.stats.tx_frames += 1,
                    // A full tap queue drops the frame, as a NIC would.
                    Err(e) => {
                        tracing::debug!(%e, "virtio-net backend write failed");
                        self.stats.dropped += 1;
                    }
                },
                Err(e) => self.bad(&e),
            }
            self.tx_buf = frame;
            if queue.add_used(mem, head, 0).is_err() {
                self.stats.bad_chains += 1;
                break;
            }
            used_any = true;
        }
        used_any
    }
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        F_VERSION_1 | (1 << VIRTIO_NET_F_MAC)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // Config space: the MAC address at offset 0 (nothing else offered).
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| self.mac.get(o as usize).copied())
                .unwrap_or(0);
        }
    }

    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        if !queue.is_valid(mem) || self.broken {
            self.stats.bad_chains += 1;
            return false;
        }
        match index {
            RX => {
                if std::mem::take(&mut self.parked)
                    && let Err(e) = self.wake.write(1)
                {
                    tracing::debug!(%e, "virtio-net wake failed");
                }
                self.receive(queue, mem)
            }
            TX => self.transmit(queue, mem),
            _ => false,
        }
    }

    fn needs_reset(&self) -> bool {
        self.broken
    }

    fn reset(&mut self) {
        self.broken = false;
        self.pending = None;
    }
}

/// The thread that delivers received frames (see the module comment);
/// stopped and joined on drop.
pub struct RxThread {
    stop: EventFd,
    handle: Option<JoinHandle<()>>,
}

impl RxThread {
    /// Starts polling `transport`'s backend.
    pub fn start(transport: Arc<Mutex<MmioTransport<Net>>>) -> std::io::Result<RxThread> {
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let (tap, wake) = {
            let t = transport.lock().unwrap_or_else(|p| p.into_inner());
            (
                t.device().backend.try_clone()?,
                t.device().wake.try_clone()?,
            )
        };
        let stop_fd = stop.try_clone()?;
        let handle = std::thread::Builder::new()
            .name("virtio-net-rx".into())
            .spawn(move || rx_loop(&transport, &tap, &wake, &stop_fd))?;
        Ok(RxThread {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for RxThread {
    fn drop(&mut self) {
        if let Err(e) = self.stop.write(1) {
            tracing::debug!(%e, "stopping the virtio-net thread failed");
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits for a frame (unless parked), a wake or the stop; runs the receive
/// queue after each frame or wake.
fn rx_loop(transport: &Mutex<MmioTransport<Net>>, tap: &File, wake: &EventFd, stop: &EventFd) {
    let mut parked = false;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: tap.as_raw_fd(),
                events: if parked { 0 } else { libc::POLLIN },
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a live array of three pollfds whose descriptors
        // stay open for the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            return;
        }
        if fds[1].revents != 0 {
            let _ = wake.read();
        }
        if fds[2].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            tracing::debug!("virtio-net backend closed");
            return;
        }
        let mut t = transport.lock().unwrap_or_else(|p| p.into_inner());
        let live = t.run_queue(RX as u32);
        // Nothing can be delivered until the guest posts buffers (or
        // finishes setting the device up): stop polling until it does.
        parked = !live || t.device().rx_waiting();
        t.device_mut().parked = parked;
    }
}

#[cfg(test)]
mod tests;
