//! virtio-blk backed by a host file.
//!
//! Everything in a request comes from guest memory and is untrusted: the
//! chain is collected with `virtio-queue` (which bounds its length by the
//! queue size, so loops end), then checked as a whole — directions, lengths,
//! guest ranges, disk bounds — before any I/O. A malformed request gets
//! `VIRTIO_BLK_S_IOERR` when it has a usable status byte and is otherwise
//! returned with length 0; nothing a guest writes makes the VMM panic.
//!
//! # Host page cache
//!
//! A device made with [`Block::with_direct`] holds two descriptors on the
//! same file: one opened with `O_DIRECT` (see [`open_direct`]) and an
//! ordinary, buffered one. Each guest buffer goes through the direct
//! descriptor when its host address, its length and its file offset meet
//! the file's direct-I/O alignment (`STATX_DIOALIGN`, else
//! [`DIRECT_ALIGN_DEFAULT`]), so the benchmark's large, page-aligned
//! transfers bypass the host page cache as the workload's own `O_DIRECT`
//! does natively and in a container. Anything else (an odd length, an
//! unaligned buffer or offset, the unaligned tail of a buffer, or a direct
//! transfer the filesystem still refuses with `EINVAL`) goes through the
//! buffered descriptor, so every request the device accepted before still
//! works.
//!
//! Mixing the two is coherent here because the kernel keeps `O_DIRECT`
//! coherent with the page cache of the same inode when the two are not used
//! concurrently: a direct read first writes back dirty cached pages of its
//! range, a direct write writes them back and invalidates them (so a later
//! buffered read rereads the disk). The device never overlaps them: requests
//! are handled one at a time (one queue, under the transport's lock), no
//! descriptor of ours maps the file, and the buffered path only carries
//! small, unaligned pieces, so the pages it leaves cached are few. We chose
//! the second descriptor over a bounce buffer because it needs no allocation
//! and no extra copy, and it keeps the buffered path exactly what it was.
//!
//! A flush (`VIRTIO_BLK_T_FLUSH`) is `fdatasync` on each descriptor that
//! wrote since the last flush (on one inode either would do on a local
//! filesystem, but network and FUSE filesystems keep per-open-file state).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

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
use crate::outcome::DiskMode;

/// Sector size.
pub const SECTOR: u64 = 512;
/// Queue size offered.
pub const QUEUE_SIZE: u16 = 256;
/// virtio device id of a block device.
pub const DEVICE_ID: u32 = 2;
const HEADER_LEN: u32 = 16;
const SERIAL: &[u8] = b"isolab-virtio-blk";
/// Direct-I/O alignment (memory and file offset) assumed when the
/// filesystem does not report its own (`STATX_DIOALIGN`, Linux 6.1+): enough
/// for any logical block size up to a page.
pub const DIRECT_ALIGN_DEFAULT: u64 = 4096;

/// Request counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Requests completed with `VIRTIO_BLK_S_OK`.
    pub requests: u64,
    /// Requests refused (malformed, out of range, I/O error).
    pub bad_requests: u64,
    /// Bytes moved through the `O_DIRECT` descriptor.
    pub direct_bytes: u64,
    /// Bytes moved through the buffered descriptor (all of them on a
    /// buffered device; the unaligned ones on a direct device).
    pub buffered_bytes: u64,
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

/// Opens `path` again with `O_DIRECT` (read-only when `read_only`), for
/// [`Block::with_direct`]. `Ok(None)` when the filesystem refuses direct I/O
/// (`EINVAL`, e.g. tmpfs before Linux 6.6); any other failure is an error.
pub fn open_direct(path: &Path, read_only: bool) -> std::io::Result<Option<File>> {
    match File::options()
        .read(true)
        .write(!read_only)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `O_DIRECT` descriptor and what it needs of a transfer.
struct Direct {
    file: File,
    /// Alignment of the host buffer address.
    mem_align: u64,
    /// Alignment of the file offset and of the length.
    offset_align: u64,
}

impl Direct {
    fn new(file: File) -> Direct {
        let (mem_align, offset_align) =
            dio_alignment(&file).unwrap_or((DIRECT_ALIGN_DEFAULT, DIRECT_ALIGN_DEFAULT));
        Direct {
            file,
            mem_align,
            offset_align,
        }
    }

    /// How many of `len` bytes at host address `host` and file offset
    /// `offset` this descriptor can move (0: none, use the buffered one).
    fn usable(&self, host: u64, len: u64, offset: u64) -> u64 {
        if !host.is_multiple_of(self.mem_align) || !offset.is_multiple_of(self.offset_align) {
            return 0;
        }
        len - len % self.offset_align
    }
}

/// The file's direct-I/O alignment (memory, offset) from `STATX_DIOALIGN`,
/// if the kernel and filesystem report one.
fn dio_alignment(file: &File) -> Option<(u64, u64)> {
    // SAFETY: statx is plain data; all zeroes is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is ours and open, the path is a NUL-terminated empty
    // string (with AT_EMPTY_PATH: the fd itself), and `stx` is a live,
    // writable statx buffer.
    let rc = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    let ok = rc == 0
        && stx.stx_mask & libc::STATX_DIOALIGN != 0
        && stx.stx_dio_mem_align.is_power_of_two()
        && stx.stx_dio_offset_align.is_power_of_two();
    ok.then(|| {
        (
            u64::from(stx.stx_dio_mem_align),
            u64::from(stx.stx_dio_offset_align),
        )
    })
}

/// The virtio-blk device model.
pub struct Block {
    /// The buffered descriptor (the only one of a buffered device).
    file: File,
    direct: Option<Direct>,
    read_only: bool,
    capacity: u64,
    stats: BlockStats,
    broken: bool,
    /// Descriptors written since the last flush: (buffered, direct).
    dirty: (bool, bool),
}

/// Bytes of a disk backed by `file`. A block device's `st_size` is 0; its
/// size is where its end is.
fn disk_len(mut file: &File, meta: &std::fs::Metadata) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileTypeExt;
    if meta.file_type().is_block_device() {
        // All transfers use positioned I/O: the file offset is free to move.
        file.seek(SeekFrom::End(0))
    } else {
        Ok(meta.len())
    }
}

impl Block {
    /// A buffered device over `file` (its size, rounded down to sectors, is
    /// the capacity): all I/O goes through the host page cache.
    pub fn new(file: File, read_only: bool) -> std::io::Result<Block> {
        Block::with_direct(file, None, read_only)
    }

    /// A device over `file` that moves aligned transfers through `direct`,
    /// the same file opened with `O_DIRECT` (see [`open_direct`]); `None`
    /// makes a buffered device. Fails if `direct` is another file.
    pub fn with_direct(
        file: File,
        direct: Option<File>,
        read_only: bool,
    ) -> std::io::Result<Block> {
        let meta = file.metadata()?;
        if let Some(d) = &direct {
            let dm = d.metadata()?;
            if (dm.dev(), dm.ino()) != (meta.dev(), meta.ino()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the O_DIRECT descriptor is not the disk file (replaced while opening?)",
                ));
            }
        }
        let len = disk_len(&file, &meta)?;
        Ok(Block {
            file,
            direct: direct.map(Direct::new),
            read_only,
            capacity: len - len % SECTOR,
            stats: BlockStats::default(),
            broken: false,
            dirty: (false, false),
        })
    }

    /// Whether aligned transfers bypass the host page cache.
    pub fn mode(&self) -> DiskMode {
        if self.direct.is_some() {
            DiskMode::Direct
        } else {
            DiskMode::Buffered
        }
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
        let (kind, sector) = read_header(mem, chain)?;
        let data = &chain[1..chain.len() - 1];
        let want_write = kind == VIRTIO_BLK_T_IN || kind == VIRTIO_BLK_T_GET_ID;
        check_data(mem, data, want_write)?;
        let total: u64 = data.iter().map(|b| u64::from(b.len)).sum();
        match kind {
            VIRTIO_BLK_T_IN | VIRTIO_BLK_T_OUT => self.read_write(mem, data, kind, sector, total),
            VIRTIO_BLK_T_FLUSH => {
                if !self.read_only {
                    self.flush()?;
                }
                Ok(0)
            }
            VIRTIO_BLK_T_GET_ID => write_id(mem, data),
            kind => Err(RequestError::Unsupported { kind }),
        }
    }

    /// A read or write of `total` bytes from `sector`, bounded by the disk.
    fn read_write(
        &mut self,
        mem: &GuestMemoryMmap,
        data: &[Buf],
        kind: u32,
        sector: u64,
        total: u64,
    ) -> Result<u32, RequestError> {
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

    /// `fdatasync` on each descriptor written since the last flush (the
    /// one that would have written first when none was).
    fn flush(&mut self) -> Result<(), RequestError> {
        let (buffered, direct) = match (self.dirty, &self.direct) {
            ((false, false), Some(_)) => (false, true),
            ((false, false), None) => (true, false),
            (dirty, _) => dirty,
        };
        let io = |e: std::io::Error| RequestError::Io(e.to_string());
        if direct && let Some(d) = &self.direct {
            d.file.sync_data().map_err(io)?;
            self.dirty.1 = false;
        }
        if buffered {
            self.file.sync_data().map_err(io)?;
            self.dirty.0 = false;
        }
        Ok(())
    }

    /// Moves one buffer between the disk at `offset` and guest memory,
    /// without an intermediate copy: its aligned part through the
    /// `O_DIRECT` descriptor when there is one, the rest buffered.
    fn transfer(
        &mut self,
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
        // Cleared for the rest of this buffer if the filesystem refuses a
        // direct transfer our alignment allowed.
        let mut try_direct = true;
        while done < len {
            let at = offset + done as u64;
            let left = len - done;
            let (fd, want, direct) = self.pick_fd(try_direct, ptr as u64 + done as u64, left, at);
            // SAFETY: ptr..ptr+len is a checked, live range of guest memory
            // (get_slice verified it lies in one region) and
            // done + want <= len; the fd is ours.
            let n = unsafe {
                if read {
                    libc::pread(fd, ptr.add(done).cast(), want, at as libc::off_t)
                } else {
                    libc::pwrite(fd, ptr.add(done).cast(), want, at as libc::off_t)
                }
            };
            match n {
                n if n > 0 => {
                    let n = n as usize;
                    done += n;
                    self.account(n as u64, direct, read);
                }
                0 => {
                    return Err(RequestError::Io(
                        "unexpected end of the backing file".into(),
                    ));
                }
                _ => try_direct &= retry_after(std::io::Error::last_os_error(), direct, b, offset)?,
            }
        }
        Ok(())
    }

    /// The descriptor for the next `left` bytes at host address `host` and
    /// disk offset `at`, how many of them to move, and whether it is the
    /// `O_DIRECT` one: that one when allowed and alignment permits, else
    /// the buffered one for all of them.
    fn pick_fd(&self, try_direct: bool, host: u64, left: usize, at: u64) -> (RawFd, usize, bool) {
        let direct = self
            .direct
            .as_ref()
            .filter(|_| try_direct)
            .map(|d| (d.file.as_raw_fd(), d.usable(host, left as u64, at)))
            .filter(|&(_, n)| n > 0);
        match direct {
            Some((fd, n)) => (fd, n as usize, true),
            None => (self.file.as_raw_fd(), left, false),
        }
    }

    /// Counts `n` bytes moved, and marks the descriptor dirty for the next
    /// flush when they were written.
    fn account(&mut self, n: u64, direct: bool, read: bool) {
        if direct {
            self.stats.direct_bytes += n;
            self.dirty.1 |= !read;
        } else {
            self.stats.buffered_bytes += n;
            self.dirty.0 |= !read;
        }
    }
}

/// Reads and checks the request header (the chain's first, device-readable
/// buffer): the request type, known to this device, and the sector.
fn read_header(mem: &GuestMemoryMmap, chain: &[Buf]) -> Result<(u32, u64), RequestError> {
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
    Ok((kind, sector))
}

/// Checks that every data buffer has the direction the request needs and
/// lies in guest memory with that permission.
fn check_data(mem: &GuestMemoryMmap, data: &[Buf], want_write: bool) -> Result<(), RequestError> {
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
    Ok(())
}

/// Whether to go on with a transfer that failed with `e`: `Ok(false)` when
/// the filesystem refused a direct one our alignment allowed (the rest of
/// the buffer then goes buffered), `Ok(true)` when interrupted, else the
/// error.
fn retry_after(
    e: std::io::Error,
    direct: bool,
    b: &Buf,
    offset: u64,
) -> Result<bool, RequestError> {
    if direct && e.raw_os_error() == Some(libc::EINVAL) {
        tracing::debug!(
            addr = b.addr,
            len = b.len,
            offset,
            "O_DIRECT transfer refused; going buffered"
        );
        Ok(false)
    } else if e.kind() != std::io::ErrorKind::Interrupted {
        Err(RequestError::Io(e.to_string()))
    } else {
        Ok(true)
    }
}

/// Answers `VIRTIO_BLK_T_GET_ID`: the serial, truncated to the buffers.
fn write_id(mem: &GuestMemoryMmap, data: &[Buf]) -> Result<u32, RequestError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: u64 = 0x1000;
    const STATUS: u64 = 0x2000;
    const MEM: usize = 4 << 20;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).unwrap()
    }

    /// Runs one request of `kind` at `sector` with one data buffer; returns
    /// (status byte, used length).
    fn request(
        blk: &mut Block,
        mem: &GuestMemoryMmap,
        kind: u32,
        sector: u64,
        data: (u64, u32),
    ) -> (u8, u32) {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&kind.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        mem.write_slice(&h, GuestAddress(HDR)).unwrap();
        mem.write_obj(0xeeu8, GuestAddress(STATUS)).unwrap();
        let device_writes = kind == VIRTIO_BLK_T_IN || kind == VIRTIO_BLK_T_GET_ID;
        let chain = [
            Buf {
                addr: HDR,
                len: 16,
                write: false,
                next: true,
            },
            Buf {
                addr: data.0,
                len: data.1,
                write: device_writes,
                next: true,
            },
            Buf {
                addr: STATUS,
                len: 1,
                write: true,
                next: false,
            },
        ];
        let used = blk.handle(mem, &chain);
        (mem.read_obj(GuestAddress(STATUS)).unwrap(), used)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// A disk of `bytes` in `dir`: its path and a device over it, opened as
    /// the builder does.
    fn disk_in(dir: &Path, bytes: u64) -> (tempfile::TempPath, Block) {
        let f = tempfile::NamedTempFile::new_in(dir).unwrap();
        f.as_file().set_len(bytes).unwrap();
        let path = f.into_temp_path();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let direct = open_direct(&path, false).unwrap();
        let blk = Block::with_direct(file, direct, false).unwrap();
        (path, blk)
    }

    /// What `open(O_DIRECT)` on `path` does, asked without our code.
    fn direct_allowed(path: &Path) -> bool {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a NUL-terminated path; the fd, if any, is closed below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_DIRECT) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "open(O_DIRECT): {e}");
            return false;
        }
        // SAFETY: fd was just opened here and is closed once.
        unsafe { libc::close(fd) };
        true
    }

    /// Writes then reads back an aligned and an unaligned buffer, checks
    /// the file holds the data and the direct/buffered split is as expected.
    fn round_trips(blk: &mut Block, path: &Path, mem: &GuestMemoryMmap) {
        let direct = blk.mode() == DiskMode::Direct;
        // Aligned: 64 KiB from a page-aligned buffer at a 4 KiB offset.
        let data = pattern(64 << 10, 1);
        mem.write_slice(&data, GuestAddress(0x10_0000)).unwrap();
        let r = request(blk, mem, VIRTIO_BLK_T_OUT, 8, (0x10_0000, 64 << 10));
        assert_eq!(r, (VIRTIO_BLK_S_OK as u8, 1));
        let r = request(blk, mem, VIRTIO_BLK_T_IN, 8, (0x20_0000, 64 << 10));
        assert_eq!(r, (VIRTIO_BLK_S_OK as u8, (64 << 10) + 1));
        let mut back = vec![0u8; 64 << 10];
        mem.read_slice(&mut back, GuestAddress(0x20_0000)).unwrap();
        assert!(back == data, "aligned read-back differs");
        let s = blk.stats();
        if direct {
            assert_eq!((s.direct_bytes, s.buffered_bytes), (128 << 10, 0));
        } else {
            assert_eq!((s.direct_bytes, s.buffered_bytes), (0, 128 << 10));
        }
        // Unaligned: an odd length from an odd address at sector 1 (offset
        // 512), over the page the direct write just wrote.
        let odd = pattern(1001, 7);
        mem.write_slice(&odd, GuestAddress(0x30_0003)).unwrap();
        let r = request(blk, mem, VIRTIO_BLK_T_OUT, 8 + 1, (0x30_0003, 1001));
        assert_eq!(r, (VIRTIO_BLK_S_OK as u8, 1));
        let s2 = blk.stats();
        assert_eq!(s2.direct_bytes, s.direct_bytes, "unaligned went direct");
        assert_eq!(s2.buffered_bytes, s.buffered_bytes + 1001);
        // A direct read of the whole range sees the buffered write.
        let r = request(blk, mem, VIRTIO_BLK_T_IN, 8, (0x20_0000, 64 << 10));
        assert_eq!(r.0, VIRTIO_BLK_S_OK as u8);
        let mut want = data.clone();
        want[512..512 + 1001].copy_from_slice(&odd);
        mem.read_slice(&mut back, GuestAddress(0x20_0000)).unwrap();
        assert!(back == want, "direct read missed the buffered write");
        // An unaligned read sees the direct write's bytes around it.
        let r = request(blk, mem, VIRTIO_BLK_T_IN, 8 + 3, (0x30_1001, 777));
        assert_eq!(r, (VIRTIO_BLK_S_OK as u8, 778));
        let mut small = vec![0u8; 777];
        mem.read_slice(&mut small, GuestAddress(0x30_1001)).unwrap();
        assert_eq!(small, want[1536..1536 + 777]);
        // Flush, then the file itself holds it all.
        assert_eq!(
            request(blk, mem, VIRTIO_BLK_T_FLUSH, 0, (0x30_0000, 0)).0,
            VIRTIO_BLK_S_OK as u8
        );
        assert_eq!(blk.dirty, (false, false));
        let on_disk = std::fs::read(path).unwrap();
        assert!(on_disk[4096..4096 + (64 << 10)] == want[..], "file differs");
    }

    #[test]
    fn aligned_io_goes_direct_where_the_filesystem_allows_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut blk) = disk_in(dir.path(), 1 << 20);
        let expect = if direct_allowed(&path) {
            DiskMode::Direct
        } else {
            DiskMode::Buffered
        };
        assert_eq!(blk.mode(), expect);
        round_trips(&mut blk, &path, &memory());
    }

    #[test]
    fn unaligned_requests_and_tails_go_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let (_path, mut blk) = disk_in(dir.path(), 1 << 20);
        if blk.mode() == DiskMode::Buffered {
            eprintln!("skipped: {} refuses O_DIRECT", dir.path().display());
            return;
        }
        let mem = memory();
        let offset_align = blk.direct.as_ref().map_or(0, |d| d.offset_align);
        eprintln!("direct-I/O offset alignment here: {offset_align}");
        // Aligned start, 4 KiB + 100 bytes: the page direct, the tail buffered.
        let r = request(&mut blk, &mem, VIRTIO_BLK_T_OUT, 0, (0x10_0000, 4196));
        assert_eq!(r.0, VIRTIO_BLK_S_OK as u8);
        assert_eq!(
            (blk.stats().direct_bytes, blk.stats().buffered_bytes),
            (4096, 100)
        );
        assert_eq!(blk.dirty, (true, true));
        // Aligned buffer and length at sector 1: buffered unless the
        // filesystem takes 512-byte aligned offsets.
        let r = request(&mut blk, &mem, VIRTIO_BLK_T_IN, 1, (0x10_0000, 4096));
        assert_eq!(r, (VIRTIO_BLK_S_OK as u8, 4097));
        let s = blk.stats();
        if offset_align > SECTOR {
            assert_eq!((s.direct_bytes, s.buffered_bytes), (4096, 100 + 4096));
        } else {
            assert_eq!((s.direct_bytes, s.buffered_bytes), (2 * 4096, 100));
        }
        // GET_ID into an odd address still works.
        let r = request(&mut blk, &mem, VIRTIO_BLK_T_GET_ID, 0, (0x10_0001, 20));
        assert_eq!(r, (VIRTIO_BLK_S_OK as u8, 21));
        let mut id = [0u8; 17];
        mem.read_slice(&mut id, GuestAddress(0x10_0001)).unwrap();
        assert_eq!(&id, SERIAL);
        // Flush syncs both descriptors that wrote.
        let r = request(&mut blk, &mem, VIRTIO_BLK_T_FLUSH, 0, (0x10_0000, 0));
        assert_eq!(r.0, VIRTIO_BLK_S_OK as u8);
        assert_eq!(blk.dirty, (false, false));
    }

    #[test]
    fn bounds_are_checked_before_direct_io() {
        let dir = tempfile::tempdir().unwrap();
        let (_path, mut blk) = disk_in(dir.path(), 1 << 20);
        let mem = memory();
        // Guest buffer past the end of guest memory.
        let r = request(
            &mut blk,
            &mem,
            VIRTIO_BLK_T_IN,
            0,
            (MEM as u64 - 4096, 8192),
        );
        assert_eq!(r, (VIRTIO_BLK_S_IOERR as u8, 1));
        // Past the end of the disk.
        let r = request(&mut blk, &mem, VIRTIO_BLK_T_IN, 2047, (0x10_0000, 4096));
        assert_eq!(r, (VIRTIO_BLK_S_IOERR as u8, 1));
        let s = blk.stats();
        assert_eq!((s.requests, s.bad_requests), (0, 2));
        assert_eq!((s.direct_bytes, s.buffered_bytes), (0, 0));
    }

    #[test]
    fn tmpfs_disk_reports_what_open_o_direct_does() {
        let shm = Path::new("/dev/shm");
        // SAFETY: statfs is plain data; all zeroes is a valid value.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: the path is NUL-terminated and `fs` a live, writable buffer.
        let rc = unsafe { libc::statfs(c"/dev/shm".as_ptr(), &mut fs) };
        if rc != 0 || fs.f_type != libc::TMPFS_MAGIC {
            eprintln!("skipped: /dev/shm is not a tmpfs here");
            return;
        }
        let (path, mut blk) = disk_in(shm, 1 << 20);
        let expect = if direct_allowed(&path) {
            DiskMode::Direct
        } else {
            DiskMode::Buffered
        };
        assert_eq!(blk.mode(), expect, "tmpfs on this kernel");
        eprintln!("tmpfs disk: {}", blk.mode().as_str());
        round_trips(&mut blk, &path, &memory());
    }

    #[test]
    fn a_direct_descriptor_of_another_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = disk_in(dir.path(), 4096);
        let (b, _) = disk_in(dir.path(), 4096);
        let Some(other) = open_direct(&b, false).unwrap() else {
            eprintln!("skipped: {} refuses O_DIRECT", dir.path().display());
            return;
        };
        let file = File::options().read(true).write(true).open(&a).unwrap();
        assert!(Block::with_direct(file, Some(other), false).is_err());
    }
}
