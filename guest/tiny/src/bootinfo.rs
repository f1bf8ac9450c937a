//! What the guest learns at entry: the isolab `TinyBootInfo` (our VMM) or
//! the PVH `hvm_start_info` (QEMU), reduced to one [`Boot`] description.

use core::ptr;

pub use guest_abi::tiny::TinyBootInfo;
use guest_abi::tiny::{MAGIC as TINY_MAGIC, VERSION as TINY_VERSION};

/// `hvm_start_info::magic`.
const PVH_MAGIC: u32 = 0x336e_c578;
/// E820 type of usable RAM in the PVH memory map.
const E820_RAM: u32 = 1;
/// Heap used under PVH when the start info has no memory map.
const PVH_FALLBACK_HEAP: u64 = 4 << 20;

/// Which loader started us.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Loader {
    /// The isolab VMM (entered at CPL 3 with a `TinyBootInfo`).
    Isolab,
    /// A PVH loader such as QEMU `-M microvm` (through the 32-bit entry).
    Pvh,
}

/// The boot facts the rest of the guest uses.
#[derive(Clone, Copy)]
pub struct Boot {
    /// Who loaded us.
    pub loader: Loader,
    /// The argument string (empty if none).
    pub cmdline: &'static [u8],
    /// TSC kHz from the boot info, 0 if unknown.
    pub tsc_khz: u64,
    /// virtio-blk MMIO base, 0 if none.
    pub virtio_blk_mmio: u64,
    /// Heap range.
    pub heap_start: u64,
    /// End of the heap range (exclusive).
    pub heap_end: u64,
}

unsafe extern "C" {
    static __image_end: u8;
}

/// Reads the boot description. `tiny` is the VMM's `rdi`, `pvh` the PVH
/// `ebx` (only meaningful when `tiny` is 0).
///
/// # Safety
/// `tiny`, when non-zero, must be the address the VMM passed; `pvh`, when
/// `tiny` is 0, must be the address the PVH loader passed (or 0). Both point
/// into identity-mapped guest RAM.
pub unsafe fn read(tiny: u64, pvh: u64) -> Result<Boot, &'static str> {
    if tiny != 0 {
        // SAFETY: the caller guarantees `tiny` points at a TinyBootInfo in mapped RAM.
        let info = unsafe { ptr::read_volatile(tiny as *const TinyBootInfo) };
        return from_tiny(&info, ptr::addr_of!(__image_end) as u64);
    }
    let image_end = ptr::addr_of!(__image_end) as u64;
    let mut boot = Boot {
        loader: Loader::Pvh,
        cmdline: &[],
        tsc_khz: 0,
        virtio_blk_mmio: 0,
        heap_start: image_end,
        heap_end: image_end + PVH_FALLBACK_HEAP,
    };
    if pvh == 0 {
        return Ok(boot);
    }
    // SAFETY: the caller guarantees `pvh` points at an hvm_start_info; every
    // field is read at its documented offset inside the 56-byte structure.
    unsafe {
        let base = pvh as *const u8;
        if ptr::read_unaligned(base as *const u32) != PVH_MAGIC {
            return Ok(boot);
        }
        let version = ptr::read_unaligned(base.add(4) as *const u32);
        let cmdline = ptr::read_unaligned(base.add(24) as *const u64);
        if cmdline != 0 {
            boot.cmdline = c_string(cmdline);
        }
        if version >= 1 {
            let map = ptr::read_unaligned(base.add(40) as *const u64);
            let entries = ptr::read_unaligned(base.add(48) as *const u32);
            for i in 0..entries.min(128) as u64 {
                let e = (map + i * 24) as *const u8;
                let addr = ptr::read_unaligned(e as *const u64);
                let size = ptr::read_unaligned(e.add(8) as *const u64);
                let kind = ptr::read_unaligned(e.add(16) as *const u32);
                if kind == E820_RAM && addr <= image_end && image_end < addr + size {
                    boot.heap_end = addr + size;
                }
            }
        }
    }
    Ok(boot)
}

/// Validates a `TinyBootInfo`.
fn from_tiny(info: &TinyBootInfo, image_end: u64) -> Result<Boot, &'static str> {
    if info.magic != TINY_MAGIC {
        return Err("boot info has a wrong magic (expected \"ISOL\")");
    }
    if info.version != TINY_VERSION {
        return Err("boot info version is not 1");
    }
    if info.heap_start >= info.heap_end || info.heap_end > info.mem_size {
        return Err("boot info heap range is empty or outside guest RAM");
    }
    if info.heap_start < image_end {
        return Err("boot info heap overlaps the guest image");
    }
    if info.cmdline_len > 0 && info.cmdline_addr.saturating_add(info.cmdline_len) > info.mem_size {
        return Err("boot info command line lies outside guest RAM");
    }
    let cmdline: &'static [u8] = if info.cmdline_addr == 0 || info.cmdline_len == 0 {
        &[]
    } else {
        // SAFETY: checked above to lie inside guest RAM, which is identity
        // mapped and not written again while the guest runs.
        unsafe {
            core::slice::from_raw_parts(info.cmdline_addr as *const u8, info.cmdline_len as usize)
        }
    };
    Ok(Boot {
        loader: Loader::Isolab,
        cmdline,
        tsc_khz: info.tsc_khz,
        virtio_blk_mmio: info.virtio_blk_mmio,
        heap_start: info.heap_start,
        heap_end: info.heap_end,
    })
}

/// A NUL-terminated string in guest memory (bounded at 4 KiB).
///
/// # Safety
/// `addr` must point into mapped memory.
unsafe fn c_string(addr: u64) -> &'static [u8] {
    let p = addr as *const u8;
    let mut len = 0;
    // SAFETY: the caller guarantees `addr` is mapped; we stop at the NUL or 4 KiB.
    while len < 4096 && unsafe { ptr::read_volatile(p.add(len)) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just read are mapped and stay unchanged.
    unsafe { core::slice::from_raw_parts(p, len) }
}
