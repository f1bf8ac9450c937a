//! The bare platform: the workload core's [`Platform`] on the isolab device,
//! the TSC and the polling virtio-blk driver.

use alloc::format;
use alloc::string::ToString;
use core::arch::x86_64::__cpuid_count;

use workload::platform::{BlockDevice, BlockError, Platform};
use workload::schema::PlatformKind;

use crate::clock::Clock;
use crate::output::Output;
use crate::port;
use crate::virtio_blk::{BlkError, VirtioBlk};

/// Name the `io` probe's errors give the disk.
const DISK_NAME: &str = "virtio-blk";

/// The tiny guest's platform.
pub struct Bare {
    clock: Clock,
    out: Output,
    virtio_blk_mmio: u64,
}

impl Bare {
    /// A platform writing results to `out`, with the disk at `virtio_blk_mmio` (0: none).
    pub fn new(clock: Clock, out: Output, virtio_blk_mmio: u64) -> Bare {
        Bare {
            clock,
            out,
            virtio_blk_mmio,
        }
    }
}

impl Platform for Bare {
    type Block = Disk;

    fn kind(&self) -> PlatformKind {
        PlatformKind::Bare
    }

    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn clock_resolution_ns(&self) -> u64 {
        // One TSC tick, rounded up to whole nanoseconds.
        1_000_000u64.div_ceil(self.clock.khz()).max(1)
    }

    fn emit(&mut self, line: &str) {
        self.out.write(line.as_bytes());
        self.out.write(b"\n");
    }

    fn kernel_entry(&self) {
        core::hint::black_box(port::inb(port::PING));
    }

    fn kernel_entry_kind(&self) -> &'static str {
        "vmexit"
    }

    fn open_block(&mut self, _target: Option<&str>, size: u64) -> Result<Disk, BlockError> {
        let open_err = |detail: &str| BlockError::Open {
            target: DISK_NAME.to_string(),
            detail: detail.to_string(),
        };
        let dev = VirtioBlk::new(self.virtio_blk_mmio, self.clock)
            .map_err(|e| open_err(&e.to_string()))?;
        if dev.read_only() {
            return Err(open_err("the disk is read-only"));
        }
        if dev.capacity() < size {
            return Err(BlockError::TooSmall {
                target: DISK_NAME.to_string(),
                available: dev.capacity(),
                needed: size,
            });
        }
        Ok(Disk { dev })
    }

    fn mark_ready(&mut self) {
        // The entry code wrote the ready marker before anything else ran, so
        // boot time ends at the guest's first instruction of its own.
    }

    fn llc_bytes(&self) -> Option<u64> {
        largest_cache()
    }
}

/// The `io` probe's disk.
pub struct Disk {
    dev: VirtioBlk,
}

fn op_err(op: &'static str, offset: u64, len: usize, e: BlkError) -> BlockError {
    BlockError::Op {
        op,
        offset,
        len: len as u64,
        detail: format!("{e}"),
    }
}

impl BlockDevice for Disk {
    fn bypasses_cache(&self) -> bool {
        // No guest page cache, but the VMM's backing file goes through the
        // host's page cache.
        false
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let len = buf.len();
        self.dev
            .read_at(offset, buf)
            .map_err(|e| op_err("read", offset, len, e))
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.dev
            .write_at(offset, buf)
            .map_err(|e| op_err("write", offset, buf.len(), e))
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.dev.flush().map_err(|e| op_err("flush", 0, 0, e))
    }
}

/// Size of the largest data or unified cache CPUID leaf 4 describes.
fn largest_cache() -> Option<u64> {
    // CPUID exits to the VMM, which answers from the CPUID table it set.
    if core::arch::x86_64::__cpuid(0).eax < 4 {
        return None;
    }
    let mut best = None;
    for sub in 0..16 {
        let l = __cpuid_count(4, sub);
        let kind = l.eax & 0x1f;
        if kind == 0 {
            break;
        }
        if kind == 2 {
            continue; // instruction cache
        }
        let ways = ((l.ebx >> 22) & 0x3ff) as u64 + 1;
        let partitions = ((l.ebx >> 12) & 0x3ff) as u64 + 1;
        let line = (l.ebx & 0xfff) as u64 + 1;
        let sets = l.ecx as u64 + 1;
        let size = ways * partitions * line * sets;
        best = Some(best.map_or(size, |b: u64| b.max(size)));
    }
    best
}
