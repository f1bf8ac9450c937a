#![allow(clippy::unwrap_used)]

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;

use super::*;

const MEM: usize = 1 << 20;
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x3000;
const USED: u64 = 0x4000;
const SIZE: u16 = 16;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).unwrap()
}

/// A device over one end of a datagram socket pair (frames keep their
/// boundaries, as on a tap); the other end plays the host network.
fn device() -> (Net, UnixDatagram) {
    let (a, b) = UnixDatagram::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let net = Net::new(File::from(OwnedFd::from(a)), [2, 0, 0, 0, 0, 1]).unwrap();
    (net, b)
}

fn buf(addr: u64, len: u32, write: bool, next: bool) -> Buf {
    Buf {
        addr,
        len,
        write,
        next,
    }
}

/// A split queue laid out in guest memory by hand, as a driver would.
struct Ring {
    queue: Queue,
    next_desc: u16,
    avail_idx: u16,
}

impl Ring {
    fn new(mem: &GuestMemoryMmap) -> Ring {
        let mut queue = Queue::new(QUEUE_SIZE).unwrap();
        queue.set_size(SIZE);
        queue.set_desc_table_address(Some(DESC as u32), Some(0));
        queue.set_avail_ring_address(Some(AVAIL as u32), Some(0));
        queue.set_used_ring_address(Some(USED as u32), Some(0));
        queue.set_ready(true);
        assert!(queue.is_valid(mem));
        Ring {
            queue,
            next_desc: 0,
            avail_idx: 0,
        }
    }

    /// Writes `descs` (addr, len, device-writable) as one chain and makes it
    /// available; `looped` makes the last point back at the first.
    fn post(&mut self, mem: &GuestMemoryMmap, descs: &[(u64, u32, bool)], looped: bool) {
        let head = self.next_desc;
        for (i, &(addr, len, write)) in descs.iter().enumerate() {
            let idx = (head + i as u16) % SIZE;
            let last = i + 1 == descs.len();
            let mut flags = if write { F_WRITE } else { 0 };
            let next = if last && looped {
                flags |= F_NEXT;
                head
            } else if last {
                0
            } else {
                flags |= F_NEXT;
                (idx + 1) % SIZE
            };
            let at = DESC + 16 * u64::from(idx);
            mem.write_obj(addr, GuestAddress(at)).unwrap();
            mem.write_obj(len, GuestAddress(at + 8)).unwrap();
            mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
            mem.write_obj(next, GuestAddress(at + 14)).unwrap();
        }
        self.next_desc = (head + descs.len() as u16) % SIZE;
        let slot = AVAIL + 4 + 2 * u64::from(self.avail_idx % SIZE);
        mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_obj(self.avail_idx, GuestAddress(AVAIL + 2))
            .unwrap();
    }

    /// Used index and the (id, len) of used element `n`.
    fn used(&self, mem: &GuestMemoryMmap, n: u16) -> (u16, u32, u32) {
        let idx: u16 = mem.read_obj(GuestAddress(USED + 2)).unwrap();
        let at = USED + 4 + 8 * u64::from(n % SIZE);
        let id: u32 = mem.read_obj(GuestAddress(at)).unwrap();
        let len: u32 = mem.read_obj(GuestAddress(at + 4)).unwrap();
        (idx, id, len)
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_add(seed)).collect()
}

#[test]
fn hostile_chains_are_refused_by_shape() {
    let mem = memory();
    let top = MEM as u64;
    let cases: Vec<(&str, Vec<Buf>, bool, ChainError)> = vec![
        ("empty", vec![], false, ChainError::Empty),
        (
            "zero length",
            vec![buf(0x8000, 0, false, false)],
            false,
            ChainError::Empty,
        ),
        (
            "past the end of memory",
            vec![buf(top - 8, 64, false, false)],
            false,
            ChainError::GuestRange {
                addr: top - 8,
                len: 64,
            },
        ),
        (
            "address + length overflows",
            vec![buf(u64::MAX - 4, u32::MAX, true, false)],
            true,
            ChainError::GuestRange {
                addr: u64::MAX - 4,
                len: u32::MAX,
            },
        ),
        (
            "device-writable buffer on transmit",
            vec![buf(0x8000, 64, false, true), buf(0x9000, 64, true, false)],
            false,
            ChainError::WrongDirection { index: 1 },
        ),
        (
            "read-only buffer on receive",
            vec![buf(0x8000, 2048, false, false)],
            true,
            ChainError::WrongDirection { index: 0 },
        ),
        (
            "unterminated",
            vec![buf(0x8000, 64, false, true)],
            false,
            ChainError::TooLong,
        ),
        (
            "too many descriptors",
            (0..=MAX_CHAIN)
                .map(|i| buf(0x8000, 1, false, i < MAX_CHAIN))
                .collect(),
            false,
            ChainError::TooLong,
        ),
    ];
    for (name, chain, write, want) in cases {
        assert_eq!(check_chain(&mem, &chain, write), Err(want), "{name}");
    }
}

#[test]
fn frames_outside_the_size_bounds_are_refused() {
    let mem = memory();
    let mut out = Vec::new();
    // Larger than the largest frame (in two descriptors, each in memory).
    let big = (HDR_LEN + MAX_FRAME + 1) as u32;
    let chain = [
        buf(0x1_0000, big / 2, false, true),
        buf(0x8_0000, big - big / 2, false, false),
    ];
    assert!(matches!(
        gather_tx(&mem, &chain, &mut out),
        Err(ChainError::FrameSize { .. })
    ));
    // Shorter than a header and an Ethernet header.
    let chain = [buf(0x1_0000, (HDR_LEN + 13) as u32, false, false)];
    assert!(matches!(
        gather_tx(&mem, &chain, &mut out),
        Err(ChainError::FrameSize { .. })
    ));
    // A receive buffer too small for the frame: dropped, not truncated.
    let chain = [buf(0x1_0000, 100, true, false)];
    assert_eq!(scatter_rx(&mem, &chain, &frame(200, 0)), Ok(None));
    assert_eq!(scatter_rx(&mem, &chain, &frame(MAX_FRAME + 1, 0)), Ok(None));
}

#[test]
fn header_and_frame_may_span_descriptors() {
    let mem = memory();
    let f = frame(100, 3);
    let chain = [
        buf(0x1_0000, 5, true, true),
        buf(0x2_0000, 200, true, false),
    ];
    assert_eq!(scatter_rx(&mem, &chain, &f), Ok(Some(112)));
    let mut hdr = [0u8; 5];
    mem.read_slice(&mut hdr, GuestAddress(0x1_0000)).unwrap();
    assert_eq!(hdr, [0; 5]);
    let mut rest = vec![0u8; 107];
    mem.read_slice(&mut rest, GuestAddress(0x2_0000)).unwrap();
    assert_eq!(&rest[5..7], &[1, 0], "num_buffers");
    assert_eq!(&rest[7..], &f[..]);
    // And back: a transmit chain split inside the header.
    let tx = [
        buf(0x1_0000, 5, false, true),
        buf(0x2_0000, 107, false, false),
    ];
    let mut out = Vec::new();
    gather_tx(&mem, &tx, &mut out).unwrap();
    assert_eq!(out, f);
}

#[test]
fn hostile_transmit_chains_leave_the_queue_usable() {
    let mem = memory();
    let (mut net, peer) = device();
    let mut ring = Ring::new(&mem);
    let good = frame(60, 9);
    let mut payload = vec![0u8; HDR_LEN];
    payload.extend(&good);
    mem.write_slice(&payload, GuestAddress(0x8000)).unwrap();
    let len = payload.len() as u32;
    ring.post(&mem, &[(MEM as u64 - 10, len, false)], false); // out of memory
    ring.post(&mem, &[(0x8000, len, true)], false); // wrong direction
    ring.post(&mem, &[(0x8000, 0, false)], false); // zero length
    ring.post(&mem, &[(0x8000, len, false), (0x8000, 1, false)], true); // loop
    ring.post(
        &mem,
        &[(0x8000, (HDR_LEN + MAX_FRAME + 1) as u32, false)],
        false,
    );
    ring.post(&mem, &[(0x8000, len, false)], false); // the good one
    assert!(net.process_queue(TX, &mut ring.queue, &mem));
    let s = net.stats();
    assert_eq!((s.tx_frames, s.bad_chains), (1, 5));
    assert_eq!(ring.used(&mem, 5).0, 6, "every chain returned");
    let mut got = vec![0u8; 2048];
    let n = peer.recv(&mut got).unwrap();
    assert_eq!(&got[..n], &good[..]);
    assert!(peer.recv(&mut got).is_err(), "only the good frame was sent");
    // Still usable afterwards.
    ring.post(&mem, &[(0x8000, len, false)], false);
    assert!(net.process_queue(TX, &mut ring.queue, &mem));
    assert_eq!(net.stats().tx_frames, 2);
    assert!(!net.needs_reset());
}

#[test]
fn receive_skips_hostile_buffers_and_keeps_the_frame() {
    let mem = memory();
    let (mut net, peer) = device();
    let mut ring = Ring::new(&mem);
    let f = frame(1000, 1);
    peer.send(&f).unwrap();
    // Nothing posted yet: the frame waits.
    assert!(!net.process_queue(RX, &mut ring.queue, &mem));
    assert!(net.rx_waiting());
    ring.post(&mem, &[(0x8000, 2048, false)], false); // read-only
    ring.post(&mem, &[(MEM as u64 - 100, 2048, true)], false); // out of memory
    ring.post(&mem, &[(0x8000, 2048, true)], false);
    assert!(net.process_queue(RX, &mut ring.queue, &mem));
    assert!(!net.rx_waiting());
    let s = net.stats();
    assert_eq!((s.rx_frames, s.bad_chains), (1, 2));
    assert_eq!(ring.used(&mem, 0).2, 0);
    assert_eq!(ring.used(&mem, 1).2, 0);
    let (idx, id, len) = ring.used(&mem, 2);
    assert_eq!((idx, id, len), (3, 2, (HDR_LEN + f.len()) as u32));
    let mut back = vec![0u8; f.len()];
    mem.read_slice(&mut back, GuestAddress(0x8000 + HDR_LEN as u64))
        .unwrap();
    assert_eq!(back, f);
    // A frame too big for the buffer is dropped; the next one arrives.
    peer.send(&frame(3000, 2)).unwrap();
    peer.send(&frame(64, 3)).unwrap();
    ring.post(&mem, &[(0x8000, 2048, true)], false);
    ring.post(&mem, &[(0xa000, 2048, true)], false);
    assert!(net.process_queue(RX, &mut ring.queue, &mem));
    assert_eq!(ring.used(&mem, 3).2, 0);
    assert_eq!(ring.used(&mem, 4).2, (HDR_LEN + 64) as u32);
    assert_eq!(net.stats().dropped, 1);
}

#[test]
fn config_space_is_the_mac_and_nothing_past_it() {
    let (net, _peer) = device();
    let mut data = [0xffu8; 8];
    net.read_config(0, &mut data);
    assert_eq!(data, [2, 0, 0, 0, 0, 1, 0, 0]);
    net.read_config(u64::MAX, &mut data);
    assert_eq!(data, [0; 8]);
    assert_eq!(net.queue_max_sizes(), &[QUEUE_SIZE, QUEUE_SIZE]);
}

#[test]
fn a_queue_index_past_the_last_does_nothing() {
    let mem = memory();
    let (mut net, _peer) = device();
    let mut ring = Ring::new(&mem);
    ring.post(&mem, &[(0x8000, 100, false)], false);
    assert!(!net.process_queue(7, &mut ring.queue, &mem));
    assert_eq!(net.stats(), NetStats::default());
}

/// Drives the transport's registers as the guest's driver would.
fn write_reg(t: &Mutex<MmioTransport<Net>>, offset: u64, v: u32) {
    use crate::devices::bus::BusDevice;
    t.lock().unwrap().write(offset, &v.to_le_bytes());
}

fn used_idx(mem: &GuestMemoryMmap) -> u16 {
    mem.read_obj(GuestAddress(USED + 2)).unwrap()
}

/// Waits up to 5 s for the used index to reach `n`.
fn wait_used(mem: &GuestMemoryMmap, n: u16) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while used_idx(mem) != n {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

#[test]
fn the_receive_thread_parks_until_buffers_come_then_delivers_and_interrupts() {
    use crate::devices::legacy::IrqLine;
    use guest_abi::virtio_mmio as reg;
    let mem = memory();
    let (net, peer) = device();
    let irq = EventFd::new(EFD_NONBLOCK).unwrap();
    let line = IrqLine::eventfd(irq.try_clone().unwrap());
    let t = Arc::new(Mutex::new(MmioTransport::new(net, mem.clone(), line)));
    let rx = RxThread::start(t.clone()).unwrap();
    // A frame before the driver is ready: nothing can take it yet.
    peer.send(&frame(80, 5)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(used_idx(&mem), 0);
    // Driver set-up of the receive queue, with one buffer, then DRIVER_OK.
    let mut ring = Ring::new(&mem);
    ring.post(&mem, &[(0x8000, 2048, true)], false);
    write_reg(&t, reg::QUEUE_SEL, 0);
    write_reg(&t, reg::QUEUE_NUM, u32::from(SIZE));
    write_reg(&t, reg::QUEUE_DESC_LOW, DESC as u32);
    write_reg(&t, reg::QUEUE_AVAIL_LOW, AVAIL as u32);
    write_reg(&t, reg::QUEUE_USED_LOW, USED as u32);
    write_reg(&t, reg::QUEUE_READY, 1);
    write_reg(&t, reg::DRIVER_FEATURES_SEL, 1);
    write_reg(&t, reg::DRIVER_FEATURES, 1); // VERSION_1 (bit 32)
    use reg::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};
    write_reg(
        &t,
        reg::STATUS,
        ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK,
    );
    // The guest's notification takes the waiting frame and wakes the thread.
    write_reg(&t, reg::QUEUE_NOTIFY, 0);
    assert!(wait_used(&mem, 1), "first frame not delivered");
    assert!(irq.read().unwrap() >= 1, "no interrupt");
    // The next frame arrives with no notification: the thread delivers it.
    ring.post(&mem, &[(0xa000, 2048, true)], false);
    peer.send(&frame(90, 6)).unwrap();
    assert!(
        wait_used(&mem, 2),
        "thread did not deliver the second frame"
    );
    assert_eq!(ring.used(&mem, 1).2, (HDR_LEN + 90) as u32);
    assert!(irq.read().unwrap() >= 1, "no interrupt from the thread");
    // No buffer for a third: it waits, then a posted buffer takes it.
    peer.send(&frame(70, 7)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !t.lock().unwrap().device().rx_waiting() {
        assert!(std::time::Instant::now() < deadline, "third frame not read");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    ring.post(&mem, &[(0xc000, 2048, true)], false);
    write_reg(&t, reg::QUEUE_NOTIFY, 0);
    assert!(wait_used(&mem, 3), "third frame not delivered");
    drop(rx); // joins the thread
    assert_eq!(t.lock().unwrap().device().stats().rx_frames, 3);
}
