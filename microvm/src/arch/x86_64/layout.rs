//! The guest-physical memory map used by the VMM (see the Guest ABI in
//! ARCHITECTURE.md). Everything the VMM writes lives below 1 MiB, except the
//! guest image itself.

/// Page size.
pub const PAGE_SIZE: u64 = 4096;
/// The GDT.
pub const GDT_ADDR: u64 = 0x500;
/// An empty IDT (Linux path; the tiny guest has none).
pub const IDT_ADDR: u64 = 0x5f0;
/// The 64-bit TSS the task register points at. No interrupts use it; its
/// I/O permission bitmap lets CPL-3 code use every port.
pub const TSS_ADDR: u64 = 0x600;
/// Offset of the I/O permission bitmap in the TSS (right after the 104-byte TSS).
pub const TSS_IOMAP_OFFSET: u64 = 0x68;
/// The TSS limit: TSS, 8 KiB bitmap (65536 ports), and the 0xff terminator byte.
pub const TSS_LIMIT: u32 = (TSS_IOMAP_OFFSET + 0x2000) as u32;
/// `TinyBootInfo`, per the Guest ABI.
pub const TINY_BOOT_INFO: u64 = 0x7000;
/// Initial stack of a Linux guest's boot CPU.
pub const LINUX_BOOT_STACK: u64 = 0x8ff0;
/// Page-table root (PML4).
pub const PML4_ADDR: u64 = 0x9000;
/// The single PDPT.
pub const PDPT_ADDR: u64 = 0xa000;
/// Four page directories of 2 MiB pages: identity map of the low 4 GiB.
pub const PD_ADDR: u64 = 0xb000;
/// Number of page directories (each maps 1 GiB).
pub const PD_COUNT: u64 = 4;
/// The tiny guest's command line.
pub const TINY_CMDLINE_ADDR: u64 = 0x2_0000;
/// Room for the tiny guest's command line.
pub const TINY_CMDLINE_MAX: usize = 0x1_0000;
/// The MP table, in the last KiB of base memory where Linux looks for it.
pub const MPTABLE_ADDR: u64 = 0x9_fc00;
/// End of the area the MP table may use.
pub const MPTABLE_END: u64 = 0xa_0000;
/// The tiny guest is linked here.
pub const TINY_IMAGE_BASE: u64 = 0x10_0000;
/// Start of the MMIO hole; guest RAM must end at or below it.
pub const MMIO_HOLE_START: u64 = 0xd000_0000;
/// The virtio-blk device's MMIO window.
pub const VIRTIO_BLK_MMIO: u64 = 0xd000_0000;
/// Size of one virtio-mmio window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// The virtio-blk device's IRQ (Linux path).
pub const VIRTIO_BLK_IRQ: u32 = 5;
/// The virtio-net device's MMIO window (Linux path).
pub const VIRTIO_NET_MMIO: u64 = VIRTIO_BLK_MMIO + VIRTIO_MMIO_SIZE;
/// The virtio-net device's IRQ (Linux path).
pub const VIRTIO_NET_IRQ: u32 = 6;
/// COM1's IRQ.
pub const SERIAL_IRQ: u32 = 4;
/// Bytes below the top of RAM the tiny guest's stack starts at.
pub const TINY_STACK_TOP_GAP: u64 = 4096;
/// Bytes reserved for the tiny guest's stack (below its start).
pub const TINY_STACK_BYTES: u64 = 1 << 20;
/// TSS address KVM needs for its real-mode emulation on Intel (Linux path).
pub const KVM_TSS_ADDR: usize = 0xfffb_d000;
