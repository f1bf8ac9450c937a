//! virtio-blk backed by a host file.
//!
//! Everything in a request comes from guest memory and is untrusted: the
//! chain is collected with `virtio-queue` (which bounds its length by the
//! queue size, so loops end), then checked as a whole — directions, lengths,
//! guest ranges, disk bounds — before any I/O. A malformed request gets
//! `VIRTIO_BLK_S_IOERR` when it has a usable status byte and is otherwise
//! returned with length 0; nothing a guest writes makes the VMM panic.

use std::fs::File;
use std::os::fd::AsRawFd;

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
    VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT,
};
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{
    Bytes, GuestAddress, GuestMemory, GuestMemoryBackend, GuestMemoryMmap, Permissions,
};

use super::{F_VERSION_1, VirtioDevice};

/// Sector size.
pub const SECTOR: u64 = 512;
/// Queue size offered.
pub const QUEUE_SIZE: u16 = 256;
/// virtio device id of a block device.
pub const DEVICE_ID: u32 = 2;
const HEADER_LEN: u32 = 16;
const SERIAL: &[u8] = b"isolab-virtio-blk";

/// Request counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Requests completed with `VIRTIO_BLK_S_OK`.
    pub requests: u64,
    /// Requests refused (malformed, out of range, I/O error).
    pub bad_requests: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The chain has no descriptor.
    #[error("empty descriptor chain")]
    Empty,
    /// The last descriptor still points onwards: a loop or an over-long chain.
    #[error("descriptor chain does not terminate within the queue size")]
    Unterminated,
    /// The last descriptor cannot hold the status byte.
    #[error("last descriptor is not a device-writable status byte")]
    BadStatus,
    /// The header is missing, device-writable or short.
    #[error("request header is missing, device-writable or shorter than 16 bytes")]
    BadHeader,
    /// A data buffer has the wrong direction for the request.
    #[error("data descriptor {index} has the wrong direction for the request")]
    WrongDirection {
        /// Position in the chain.
        index: usize,
    },
    /// A guest buffer lies outside guest memory.
    #[error("guest buffer {addr:#x}+{len:#x} is outside guest memory")]
    GuestRange {
        /// Its address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The request reaches past the end of the disk.
    #[error("request at sector {sector} for {len} bytes is past the disk's end ({capacity} bytes)")]
    OutOfDisk {
        /// First sector.
        sector: u64,
        /// Bytes.
        len: u64,
        /// Disk size.
        capacity: u64,
    },
    /// A write to a read-only disk.
    #[error("write to a read-only disk")]
    ReadOnly,
    /// A request type this device does not implement.
    #[error("unsupported request type {kind}")]
    Unsupported {
        /// The type field.
        kind: u32,
    },
    /// The host I/O failed.
    #[error("host I/O error: {0}")]
    Io(String),
}

/// A checked view of one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buf {
    /// Guest address.
    pub addr: u64,
    /// Length.
    pub len: u32,
    /// Device-writable.
    pub write: bool,
    /// Has a successor.
    pub next: bool,
}

impl From<Descriptor> for Buf {
    fn from(d: Descriptor) -> Buf {
        Buf {
            addr: d.addr().0,
            len: d.len(),
            write: d.is_write_only(),
            next: d.has_next(),
        }
    }
}

/// The virtio-blk device model.
pub struct Block {
    file: File,
    read_only: bool,
    capacity: u64,
    stats: BlockStats,
    broken: bool,
}

impl Block {
    /// A device over `file` (its size, rounded down to sectors, is the capacity).
    pub fn new(file: File, read_only: bool) -> std::io::Result<Block> {
        let len = file.metadata()?.len();
        Ok(Block {
            file,
            read_only,
            capacity: len - len % SECTOR,
            stats: BlockStats::default(),
            broken: false,
        })
    }

    /// Disk size in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Request counters.
    pub fn stats(&self) -> BlockStats {
        self.stats
    }

    /// Handles one collected chain; returns the bytes written into
    /// device-writable buffers (the used length).
    pub fn handle(&mut self, mem: &GuestMemoryMmap, chain: &[Buf]) -> u32 {
        let status = match chain.last() {
            None => Err(RequestError::Empty),
            Some(last) if last.next => Err(RequestError::Unterminated),
            Some(last) if !last.write || last.len == 0 => Err(RequestError::BadStatus),
            Some(last) => Ok(GuestAddress(last.addr)),
        };
        let status_addr = match status {
            Ok(a) if GuestMemory::check_range(mem, a, 1, Permissions::Write) => a,
            Ok(a) => return self.refuse(RequestError::GuestRange { addr: a.0, len: 1 }),
            Err(e) => return self.refuse(e),
        };
        let (code, written) = match self.execute(mem, chain) {
            Ok(written) => {
                self.stats.requests += 1;
                (VIRTIO_BLK_S_OK, written)
            }
            Err(RequestError::Unsupported { .. }) => {
                self.stats.bad_requests += 1;
                (VIRTIO_BLK_S_UNSUPP, 0)
            }
            Err(e) => {
                tracing::debug!(%e, "virtio-blk request refused");
                self.stats.bad_requests += 1;
                (VIRTIO_BLK_S_IOERR, 0)
            }
        };
        // Checked above; a failure here would only mean the status is lost.
        let _ = mem.write_obj(code as u8, status_addr);
        written.saturating_add(1)
    }

    fn refuse(&mut self, e: RequestError) -> u32 {
        tracing::debug!(%e, "virtio-blk chain ignored");
        self.stats.bad_requests += 1;
        0
    }

    /// Runs a request whose status descriptor is known good.
    fn execute(&mut self, mem: &GuestMemoryMmap, chain: &[Buf]) -> Result<u32, RequestError> {
        let header = chain
            .first()
            .filter(|h| chain.len() >= 2 && !h.write && h.len >= HEADER_LEN);
        let header = header.ok_or(RequestError::BadHeader)?;
        let hdr: [u8; 16] =
            mem.read_obj(GuestAddress(header.addr))
                .map_err(|_| RequestError::GuestRange {
                    addr: header.addr,
                    len: header.len,
                })?;
        let kind = u32::from_le_bytes(hdr[0..4].try_into().unwrap_or_default());
        let sector = u64::from_le_bytes(hdr[8..16].try_into().unwrap_or_default());
        if ![
            VIRTIO_BLK_T_IN,
            VIRTIO_BLK_T_OUT,
            VIRTIO_BLK_T_FLUSH,
            VIRTIO_BLK_T_GET_ID,
        ]
        .contains(&kind)
        {
            return Err(RequestError::Unsupported { kind });
        }
        let data = &chain[1..chain.len() - 1];
        let want_write = kind == VIRTIO_BLK_T_IN || kind == VIRTIO_BLK_T_GET_ID;
        if let Some(index) = data.iter().position(|b| b.write != want_write) {
            return Err(RequestError::WrongDirection { index: index + 1 });
        }
        for b in data {
            if !GuestMemory::check_range(
                mem,
                GuestAddress(b.addr),
                b.len as usize,
                if b.write {
                    Permissions::Write
                } else {
                    Permissions::Read
                },
            ) {
                return Err(RequestError::GuestRange {
                    addr: b.addr,
                    len: b.len,
                });
            }
        }
        let total: u64 = data.iter().map(|b| u64::from(b.len)).sum();
        match kind {
            VIRTIO_BLK_T_IN | VIRTIO_BLK_T_OUT => {
                if kind == VIRTIO_BLK_T_OUT && self.read_only {
                    return Err(RequestError::ReadOnly);
                }
                let start = sector.checked_mul(SECTOR);
                let end = start
                    .and_then(|s| s.checked_add(total))
                    .filter(|e| *e <= self.capacity);
                let (Some(mut offset), Some(_)) = (start, end) else {
                    return Err(RequestError::OutOfDisk {
                        sector,
                        len: total,
                        capacity: self.capacity,
                    });
                };
                for b in data {
                    self.transfer(mem, b, offset, kind == VIRTIO_BLK_T_IN)?;
                    offset += u64::from(b.len);
                }
                Ok(if kind == VIRTIO_BLK_T_IN {
                    total.min(u64::from(u32::MAX - 1)) as u32
                } else {
                    0
                })
            }
            VIRTIO_BLK_T_FLUSH => {
                if !self.read_only {
                    self.file
                        .sync_data()
                        .map_err(|e| RequestError::Io(e.to_string()))?;
                }
                Ok(0)
            }
            VIRTIO_BLK_T_GET_ID => {
                let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
                id[..SERIAL.len()].copy_from_slice(SERIAL);
                let mut written = 0usize;
                for b in data {
                    let n = (b.len as usize).min(id.len() - written);
                    mem.write_slice(&id[written..written + n], GuestAddress(b.addr))
                        .map_err(|_| RequestError::GuestRange {
                            addr: b.addr,
                            len: b.len,
                        })?;
                    written += n;
                }
                Ok(written as u32)
            }
            kind => Err(RequestError::Unsupported { kind }),
        }
    }

    /// Moves one buffer between the disk at `offset` and guest memory,
    /// without an intermediate copy.
    fn transfer(
        &self,
        mem: &GuestMemoryMmap,
        b: &Buf,
        offset: u64,
        read: bool,
    ) -> Result<(), RequestError> {
        if b.len == 0 {
            return Ok(());
        }
        let range = RequestError::GuestRange {
            addr: b.addr,
            len: b.len,
        };
        let slice = mem
            .get_slice(GuestAddress(b.addr), b.len as usize)
            .map_err(|_| range.clone())?;
        let guard = slice.ptr_guard_mut();
        let ptr = guard.as_ptr();
        let mut done = 0usize;
        let len = b.len as usize;
        while done < len {
            let at = (offset + done as u64) as libc::off_t;
            // SAFETY: ptr..ptr+len is a checked, live range of guest memory
            // (get_slice verified it lies in one region); the fd is ours.
            let n = unsafe {
                if read {
                    libc::pread(self.file.as_raw_fd(), ptr.add(done).cast(), len - done, at)
                } else {
                    libc::pwrite(self.file.as_raw_fd(), ptr.add(done).cast(), len - done, at)
                }
            };
            match n {
                n if n > 0 => done += n as usize,
                0 => {
                    return Err(RequestError::Io(
                        "unexpected end of the backing file".into(),
                    ));
                }
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(RequestError::Io(e.to_string()));
                    }
                }
            }
        }
        Ok(())
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only {
            1 << VIRTIO_BLK_F_RO
        } else {
            0
        };
        F_VERSION_1 | (1 << VIRTIO_BLK_F_FLUSH) | ro
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // Config space: capacity in sectors (le64) at offset 0.
        let config = (self.capacity / SECTOR).to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| config.get(o as usize).copied())
                .unwrap_or(0);
        }
    }

    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        if index != 0 || !queue.is_valid(mem) || self.broken {
            self.stats.bad_requests += 1;
            return false;
        }
        let mut used_any = false;
        loop {
            let chain = match queue.iter(mem) {
                Ok(mut it) => it.next(),
                Err(e) => {
                    tracing::debug!(%e, "virtio-blk avail ring unreadable");
                    self.stats.bad_requests += 1;
                    self.broken = true;
                    None
                }
            };
            let Some(chain) = chain else { break };
            let head = chain.head_index();
            let bufs: Vec<Buf> = chain.map(Buf::from).collect();
            let len = self.handle(mem, &bufs);
            if queue.add_used(mem, head, len).is_err() {
                self.stats.bad_requests += 1;
                break;
            }
            used_any = true;
        }
        used_any
    }

    fn needs_reset(&self) -> bool {
        self.broken
    }

    fn reset(&mut self) {
        self.broken = false;
    }
}
