//! The virtio-blk device model and virtio-mmio transport against hostile
//! guests: out-of-range addresses, zero and huge lengths, descriptor loops,
//! wrong direction flags, bad queue sizes and ring addresses. Each must give
//! an error status or be ignored — and never panic.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::io::{Read, Seek, SeekFrom, Write};

use microvm::devices::bus::{BusDevice, IoResult};
use microvm::devices::legacy::IrqLine;
use microvm::devices::virtio::VirtioDevice;
use microvm::devices::virtio::block::Block;
use microvm::devices::virtio::mmio::{MmioTransport, status};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const HDR: u64 = 0x4000;
const DATA: u64 = 0x5000;
const STATUS: u64 = 0x9000;
const SIZE: u16 = 16;
const NEXT: u16 = 1;
const WRITE: u16 = 2;
const INDIRECT: u16 = 4;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;
const UNTOUCHED: u8 = 0xee;

struct Rig {
    mem: GuestMemoryMmap,
    queue: Queue,
    blk: Block,
    disk: tempfile::NamedTempFile,
    avail_idx: u16,
}

impl Rig {
    fn new(disk_bytes: u64, read_only: bool) -> Rig {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let disk = tempfile::NamedTempFile::new().unwrap();
        disk.as_file().set_len(disk_bytes).unwrap();
        let blk = Block::new(disk.reopen().unwrap(), read_only).unwrap();
        let mut queue = Queue::new(256).unwrap();
        queue.set_size(SIZE);
        queue.set_desc_table_address(Some(DESC as u32), Some(0));
        queue.set_avail_ring_address(Some(AVAIL as u32), Some(0));
        queue.set_used_ring_address(Some(USED as u32), Some(0));
        queue.set_ready(true);
        Rig {
            mem,
            queue,
            blk,
            disk,
            avail_idx: 0,
        }
    }

    fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = GuestAddress(DESC + u64::from(i) * 16);
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.mem.write_slice(&d, at).unwrap();
    }

    fn header(&self, kind: u32, sector: u64) {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&kind.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        self.mem.write_slice(&h, GuestAddress(HDR)).unwrap();
        self.mem.write_obj(UNTOUCHED, GuestAddress(STATUS)).unwrap();
    }

    /// A standard 3-descriptor request: header, data, status.
    fn request(&self, kind: u32, sector: u64, data_addr: u64, data_len: u32, data_flags: u16) {
        self.header(kind, sector);
        self.desc(0, HDR, 16, NEXT, 1);
        self.desc(1, data_addr, data_len, data_flags | NEXT, 2);
        self.desc(2, STATUS, 1, WRITE, 0);
    }

    /// Offers chain `head`, processes the queue, returns the used (id, len).
    fn submit(&mut self, head: u16) -> (u32, u32) {
        let slot = AVAIL + 4 + 2 * u64::from(self.avail_idx % SIZE);
        self.mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem
            .write_obj(self.avail_idx, GuestAddress(AVAIL + 2))
            .unwrap();
        assert!(
            self.blk.process_queue(0, &mut self.queue, &self.mem),
            "the chain must be returned to the guest"
        );
        let used_idx: u16 = self.mem.read_obj(GuestAddress(USED + 2)).unwrap();
        assert_eq!(used_idx, self.avail_idx);
        let entry = USED + 4 + 8 * u64::from((used_idx - 1) % SIZE);
        (
            self.mem.read_obj(GuestAddress(entry)).unwrap(),
            self.mem.read_obj(GuestAddress(entry + 4)).unwrap(),
        )
    }

    fn status(&self) -> u8 {
        self.mem.read_obj(GuestAddress(STATUS)).unwrap()
    }
}

#[test]
fn write_then_read_round_trips_through_the_file() {
    let mut r = Rig::new(64 << 10, false);
    let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    r.mem.write_slice(&pattern, GuestAddress(DATA)).unwrap();
    r.request(1, 3, DATA, 1024, 0); // OUT, sector 3
    assert_eq!(r.submit(0), (0, 1));
    assert_eq!(r.status(), S_OK);
    let mut on_disk = vec![0u8; 1024];
    let mut f = r.disk.reopen().unwrap();
    f.seek(SeekFrom::Start(3 * 512)).unwrap();
    f.read_exact(&mut on_disk).unwrap();
    assert_eq!(on_disk, pattern);

    r.mem
        .write_slice(&[0u8; 1024], GuestAddress(DATA + 0x2000))
        .unwrap();
    r.request(0, 3, DATA + 0x2000, 1024, WRITE); // IN
    assert_eq!(r.submit(0), (0, 1025));
    assert_eq!(r.status(), S_OK);
    let mut back = vec![0u8; 1024];
    r.mem
        .read_slice(&mut back, GuestAddress(DATA + 0x2000))
        .unwrap();
    assert_eq!(back, pattern);
    assert_eq!(r.blk.stats().requests, 2);
}

#[test]
fn reads_see_what_the_host_wrote() {
    let mut r = Rig::new(8192, false);
    let mut f = r.disk.reopen().unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(&[0xab; 512]).unwrap();
    r.request(0, 8, DATA, 512, WRITE);
    r.submit(0);
    assert_eq!(r.status(), S_OK);
    assert_eq!(
        r.mem.read_obj::<u8>(GuestAddress(DATA + 511)).unwrap(),
        0xab
    );
}

#[test]
fn out_of_range_guest_addresses_get_ioerr() {
    let mut r = Rig::new(8192, false);
    r.request(0, 0, 0xffff_f000, 512, WRITE);
    assert_eq!(r.submit(0), (0, 1));
    assert_eq!(r.status(), S_IOERR);
    // Straddling the end of guest RAM.
    r.request(0, 0, (1 << 20) - 256, 512, WRITE);
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
    // Header outside guest RAM.
    r.header(0, 0);
    r.desc(0, u64::MAX - 8, 16, NEXT, 1);
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
    assert_eq!(r.blk.stats().bad_requests, 3);
}

#[test]
fn zero_and_huge_lengths() {
    let mut r = Rig::new(8192, false);
    r.request(0, 0, DATA, 0, WRITE);
    assert_eq!(r.submit(0), (0, 1));
    assert_eq!(r.status(), S_OK, "a zero-length read transfers nothing");
    // Longer than guest RAM.
    r.request(0, 0, DATA, 2 << 20, WRITE);
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
    // So long the chain's byte count overflows: dropped or refused, never OK.
    let bad = r.blk.stats().bad_requests;
    r.request(0, 0, DATA, u32::MAX, WRITE);
    r.submit(0);
    assert_ne!(r.status(), S_OK);
    assert_eq!(r.blk.stats().bad_requests, bad + 1);
    // Fits guest RAM but runs past the disk's end.
    r.request(0, 15, DATA, 1024, WRITE);
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
    // Sector so large the byte offset overflows.
    r.request(1, u64::MAX / 2, DATA, 512, 0);
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
}

#[test]
fn descriptor_loops_are_ignored() {
    let mut r = Rig::new(8192, false);
    r.header(0, 0);
    r.desc(0, HDR, 16, NEXT, 1);
    r.desc(1, DATA, 512, WRITE | NEXT, 0); // back to the head
    assert_eq!(r.submit(0), (0, 0));
    assert_eq!(r.status(), UNTOUCHED);
    // A next index beyond the table.
    r.desc(1, DATA, 512, WRITE | NEXT, 999);
    assert_eq!(r.submit(0), (0, 0));
    assert_eq!(r.blk.stats().bad_requests, 2);
}

#[test]
fn wrong_direction_flags_are_refused() {
    let mut r = Rig::new(8192, false);
    r.request(0, 0, DATA, 512, 0); // IN into a device-readable buffer
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
    r.request(1, 0, DATA, 512, WRITE); // OUT from a device-writable buffer
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
    // Device-writable header.
    r.request(0, 0, DATA, 512, WRITE);
    r.desc(0, HDR, 16, NEXT | WRITE, 1);
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
    // Read-only status byte: no status can be given, the chain is dropped.
    r.request(0, 0, DATA, 512, WRITE);
    r.desc(2, STATUS, 1, 0, 0);
    assert_eq!(r.submit(0), (0, 0));
    assert_eq!(r.status(), UNTOUCHED);
    // Header too short.
    r.request(0, 0, DATA, 512, WRITE);
    r.desc(0, HDR, 8, NEXT, 1);
    r.submit(0);
    assert_eq!(r.status(), S_IOERR);
}

#[test]
fn unsupported_types_read_only_disks_and_get_id() {
    let mut r = Rig::new(8192, true);
    r.request(1, 0, DATA, 512, 0);
    r.submit(0);
    assert_eq!(r.status(), S_IOERR, "write to a read-only disk");
    r.request(99, 0, DATA, 512, WRITE);
    r.submit(0);
    assert_eq!(r.status(), S_UNSUPP);
    r.request(8, 0, DATA, 20, WRITE); // GET_ID
    assert_eq!(r.submit(0), (0, 21));
    let mut id = [0u8; 6];
    r.mem.read_slice(&mut id, GuestAddress(DATA)).unwrap();
    assert_eq!(&id, b"isolab");
    // FLUSH: header and status only (read-only disk: nothing to sync).
    r.header(4, 0);
    r.desc(0, HDR, 16, NEXT, 1);
    r.desc(1, STATUS, 1, WRITE, 0);
    assert_eq!(r.submit(0), (0, 1));
    assert_eq!(r.status(), S_OK);
}

#[test]
fn indirect_tables_and_bad_heads_do_not_panic() {
    let mut r = Rig::new(8192, false);
    // An indirect descriptor (never negotiated) pointing at garbage.
    r.mem
        .write_slice(&[0xffu8; 64], GuestAddress(DATA))
        .unwrap();
    r.desc(0, DATA, 64, INDIRECT, 0);
    r.submit(0);
    // A head index beyond the queue: nothing valid to return.
    let slot = AVAIL + 4 + 2 * u64::from(r.avail_idx % SIZE);
    r.mem.write_obj(200u16, GuestAddress(slot)).unwrap();
    r.avail_idx += 1;
    r.mem
        .write_obj(r.avail_idx, GuestAddress(AVAIL + 2))
        .unwrap();
    r.blk.process_queue(0, &mut r.queue, &r.mem);
    // The avail index jumping far ahead of the queue size.
    r.mem
        .write_obj(r.avail_idx.wrapping_add(1000), GuestAddress(AVAIL + 2))
        .unwrap();
    assert!(!r.blk.process_queue(0, &mut r.queue, &r.mem));
    assert!(r.blk.stats().bad_requests >= 2);
    // The device stops serving the queue until the driver resets it.
    assert!(r.blk.needs_reset());
    r.blk.reset();
    assert!(!r.blk.needs_reset());
}

#[test]
fn rings_outside_guest_memory_are_refused() {
    let mut r = Rig::new(8192, false);
    r.queue.set_ready(false);
    r.queue.set_desc_table_address(Some(0xffff_0000), Some(0));
    r.queue.set_ready(true);
    assert!(!r.blk.process_queue(0, &mut r.queue, &r.mem));
    assert_eq!(r.blk.stats().bad_requests, 1);
}

// --- the MMIO transport -------------------------------------------------

fn reg_read(t: &mut MmioTransport<Block>, off: u64) -> u32 {
    let mut b = [0u8; 4];
    assert_eq!(t.read(off, &mut b), IoResult::Done, "read {off:#x}");
    u32::from_le_bytes(b)
}

fn reg_write(t: &mut MmioTransport<Block>, off: u64, v: u32) -> IoResult {
    t.write(off, &v.to_le_bytes())
}

fn transport(disk_bytes: u64) -> (MmioTransport<Block>, tempfile::NamedTempFile) {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
    let disk = tempfile::NamedTempFile::new().unwrap();
    disk.as_file().set_len(disk_bytes).unwrap();
    let blk = Block::new(disk.reopen().unwrap(), false).unwrap();
    (MmioTransport::new(blk, mem, IrqLine::none()), disk)
}

#[test]
fn transport_identifies_a_modern_block_device() {
    let (mut t, _disk) = transport(1 << 20);
    assert_eq!(reg_read(&mut t, 0x000), 0x7472_6976);
    assert_eq!(reg_read(&mut t, 0x004), 2);
    assert_eq!(reg_read(&mut t, 0x008), 2);
    reg_write(&mut t, 0x014, 1);
    assert_eq!(reg_read(&mut t, 0x010) & 1, 1, "VIRTIO_F_VERSION_1 offered");
    let mut cap = [0u8; 8];
    assert_eq!(t.read(0x100, &mut cap), IoResult::Done);
    assert_eq!(u64::from_le_bytes(cap), 2048, "capacity in sectors");
    assert_eq!(reg_read(&mut t, 0x034), 256);
}

#[test]
fn transport_refuses_bad_sizes_widths_and_features() {
    let (mut t, _disk) = transport(1 << 20);
    // Queue size not a power of two: ignored; a valid one is taken.
    assert_eq!(reg_write(&mut t, 0x038, 15), IoResult::Done);
    assert_eq!(t.queue(0).unwrap().size(), 256);
    reg_write(&mut t, 0x038, 16);
    assert_eq!(t.queue(0).unwrap().size(), 16);
    reg_write(&mut t, 0x038, 1 << 20);
    assert_eq!(t.queue(0).unwrap().size(), 16);
    // A queue that does not exist.
    reg_write(&mut t, 0x030, 7);
    assert_eq!(reg_read(&mut t, 0x034), 0);
    assert_eq!(reg_write(&mut t, 0x038, 16), IoResult::Stray);
    // Wrong widths and misaligned registers.
    assert_eq!(t.write(0x070, &[1]), IoResult::Stray);
    assert_eq!(t.write(0x071, &[1, 0, 0, 0]), IoResult::Stray);
    let mut b = [0u8; 2];
    assert_eq!(t.read(0x000, &mut b), IoResult::Stray);
    // FEATURES_OK without VERSION_1 is not accepted.
    reg_write(&mut t, 0x070, status::ACKNOWLEDGE | status::DRIVER);
    reg_write(
        &mut t,
        0x070,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    assert_eq!(reg_read(&mut t, 0x070) & status::FEATURES_OK, 0);
    reg_write(&mut t, 0x024, 1);
    reg_write(&mut t, 0x020, 1);
    reg_write(
        &mut t,
        0x070,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    assert_ne!(reg_read(&mut t, 0x070) & status::FEATURES_OK, 0);
    // Notifying before DRIVER_OK, or a queue that does not exist, does nothing.
    assert_eq!(reg_write(&mut t, 0x050, 0), IoResult::Done);
    assert_eq!(reg_write(&mut t, 0x050, 9), IoResult::Done);
    assert_eq!(t.device().stats().requests, 0);
    // Reset clears the status.
    reg_write(&mut t, 0x070, 0);
    assert_eq!(reg_read(&mut t, 0x070), 0);
}

#[test]
fn transport_drives_a_request_end_to_end() {
    let r = Rig::new(1 << 20, false);
    let blk = Block::new(r.disk.reopen().unwrap(), false).unwrap();
    // The transport sees the same guest memory as the rig (regions are shared).
    let mut t = MmioTransport::new(blk, r.mem.clone(), IrqLine::none());
    reg_write(&mut t, 0x070, status::ACKNOWLEDGE | status::DRIVER);
    reg_write(&mut t, 0x024, 1);
    reg_write(&mut t, 0x020, 1);
    reg_write(
        &mut t,
        0x070,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    reg_write(&mut t, 0x030, 0);
    reg_write(&mut t, 0x038, u32::from(SIZE));
    reg_write(&mut t, 0x080, DESC as u32);
    reg_write(&mut t, 0x090, AVAIL as u32);
    reg_write(&mut t, 0x0a0, USED as u32);
    reg_write(&mut t, 0x044, 1);
    // Queue addresses cannot change while the queue is live.
    assert_eq!(reg_write(&mut t, 0x080, 0x8000), IoResult::Stray);
    assert_eq!(t.queue(0).unwrap().desc_table(), DESC);
    reg_write(
        &mut t,
        0x070,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
    );

    r.request(8, 0, DATA, 20, WRITE); // GET_ID
    r.mem.write_obj(0u16, GuestAddress(AVAIL + 4)).unwrap();
    r.mem.write_obj(1u16, GuestAddress(AVAIL + 2)).unwrap();
    assert_eq!(reg_write(&mut t, 0x050, 0), IoResult::Done);
    assert_eq!(t.notifications(), 1);
    assert_eq!(r.status(), S_OK);
    assert_eq!(r.mem.read_obj::<u16>(GuestAddress(USED + 2)).unwrap(), 1);
    assert_eq!(reg_read(&mut t, 0x060), 1, "used-buffer interrupt pending");
    reg_write(&mut t, 0x064, 1);
    assert_eq!(reg_read(&mut t, 0x060), 0);
    assert_eq!(t.device().stats().requests, 1);

    // A broken available index: DEVICE_NEEDS_RESET and a config interrupt.
    r.mem.write_obj(500u16, GuestAddress(AVAIL + 2)).unwrap();
    reg_write(&mut t, 0x050, 0);
    assert_ne!(reg_read(&mut t, 0x070) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(reg_read(&mut t, 0x060) & 2, 2);
    reg_write(&mut t, 0x070, 0);
    assert!(
        !t.device().needs_reset(),
        "a driver reset repairs the device"
    );
}
