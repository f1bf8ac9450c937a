//! Fuzzes the virtio-blk request path: the input becomes the queue's
//! configuration and the whole of guest memory (descriptor table, rings,
//! headers, buffers), then the device processes the queue. Any panic, or a
//! request touching memory outside the guest, is a bug.
//!
//! `cargo +nightly fuzz run virtio_blk -- -max_total_time=30` (from `microvm/`).

#![no_main]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microvm::devices::virtio::VirtioDevice;
use microvm::devices::virtio::block::Block;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM: small, so random addresses often land inside it.
const MEM: usize = 64 << 10;
/// Bytes of input that configure the queue before guest memory starts.
const CONFIG: usize = 10;

fn disk() -> File {
    // An anonymous file (O_TMPFILE), reopened through /proc/self/fd: a named
    // temp file in a static is never dropped and would outlive every run.
    static DISK: OnceLock<File> = OnceLock::new();
    let d = DISK.get_or_init(|| {
        let f = tempfile::tempfile().expect("temp disk");
        f.set_len(32 << 10).expect("disk size");
        f
    });
    File::options()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{}", d.as_raw_fd()))
        .expect("reopen disk")
}

fuzz_target!(|data: &[u8]| {
    if data.len() < CONFIG {
        return;
    }
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).expect("guest memory");
    let body = &data[CONFIG..];
    mem.write_slice(&body[..body.len().min(MEM)], GuestAddress(0)).expect("fits");

    let read_only = data[8] & 1 == 1;
    let mut blk = Block::new(disk(), read_only).expect("device");
    let mut queue = Queue::new(256).expect("queue");
    queue.set_size(u16_at(0));
    // Addresses are scaled so they cover guest RAM and a little beyond it.
    queue.set_desc_table_address(Some(u32::from(u16_at(2)) * 2), Some(0));
    queue.set_avail_ring_address(Some(u32::from(u16_at(4)) * 2), Some(0));
    queue.set_used_ring_address(Some(u32::from(u16_at(6)) * 2), Some(0));
    queue.set_event_idx(data[9] & 1 == 1);
    queue.set_ready(true);
    for _ in 0..2 {
        blk.process_queue(0, &mut queue, &mem);
    }
    let stats = blk.stats();
    assert!(stats.requests + stats.bad_requests <= 2 * 256 + 2);
});
