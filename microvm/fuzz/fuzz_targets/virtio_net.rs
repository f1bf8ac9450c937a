//! Fuzzes the virtio-net queues: the input becomes both queues'
//! configuration, the frames waiting on the host side, and the whole of
//! guest memory (descriptor tables, rings, buffers); then the device runs
//! receive and transmit. Any panic, or a copy touching memory outside the
//! guest, is a bug.
//!
//! `cargo +nightly fuzz run virtio_net -- -max_total_time=30` (from `microvm/`).

#![no_main]

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;

use libfuzzer_sys::fuzz_target;
use microvm::devices::virtio::VirtioDevice;
use microvm::devices::virtio::net::{Net, RX, TX};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM: small, so random addresses often land inside it.
const MEM: usize = 64 << 10;
/// Bytes of input that configure the two queues and the frames.
const CONFIG: usize = 20;

fn queue(data: &[u8]) -> Queue {
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
    let mut q = Queue::new(256).expect("queue");
    q.set_size(u16_at(0));
    // Addresses are scaled so they cover guest RAM and a little beyond it.
    q.set_desc_table_address(Some(u32::from(u16_at(2)) * 2), Some(0));
    q.set_avail_ring_address(Some(u32::from(u16_at(4)) * 2), Some(0));
    q.set_used_ring_address(Some(u32::from(u16_at(6)) * 2), Some(0));
    q.set_event_idx(data[8] & 1 == 1);
    q.set_ready(true);
    q
}

fuzz_target!(|data: &[u8]| {
    if data.len() < CONFIG {
        return;
    }
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).expect("guest memory");
    let body = &data[CONFIG..];
    mem.write_slice(&body[..body.len().min(MEM)], GuestAddress(0))
        .expect("fits");
    let (dev_end, host_end) = UnixDatagram::pair().expect("socket pair");
    dev_end.set_nonblocking(true).expect("non-blocking");
    host_end.set_nonblocking(true).expect("non-blocking");
    // Frames waiting on the host side: up to three, sizes from the input.
    for i in 0..usize::from(data[18] % 4) {
        let len = usize::from(data[19]).wrapping_mul(i + 7) % 3000;
        let _ = host_end.send(&body[..len.min(body.len())]);
    }
    let mut net = Net::new(File::from(OwnedFd::from(dev_end)), [2, 0, 0, 0, 0, 1]).expect("device");
    let mut rx = queue(&data[0..9]);
    let mut tx = queue(&data[9..18]);
    for _ in 0..2 {
        net.process_queue(RX, &mut rx, &mem);
        net.process_queue(TX, &mut tx, &mem);
    }
    let s = net.stats();
    assert!(s.tx_frames + s.bad_chains <= 4 * 256 + 4);
    // Drain what was sent, so the socket's buffer never fills across runs.
    let mut buf = vec![0u8; 70_000];
    while host_end.recv(&mut buf).is_ok() {}
});
