//! The block the VMM writes for the tiny guest and passes in `rdi` at entry.

/// [`TinyBootInfo::magic`]: "ISOL" in little-endian bytes.
pub const MAGIC: u32 = 0x4c4f_5349;
/// The layout version described here.
pub const VERSION: u32 = 1;
/// Bytes the block takes in guest memory.
pub const SIZE: usize = core::mem::size_of::<TinyBootInfo>();

/// The boot information block, little endian, `repr(C)`: the guest reads it
/// in place, the VMM writes [`TinyBootInfo::to_le_bytes`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TinyBootInfo {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u32,
    /// Bytes of guest RAM.
    pub mem_size: u64,
    /// Guest-physical address of the workload's arguments, 0 if none.
    pub cmdline_addr: u64,
    /// Length of the arguments in bytes.
    pub cmdline_len: u64,
    /// TSC frequency in kHz.
    pub tsc_khz: u64,
    /// Guest-physical address of the virtio-blk MMIO window, 0 if no disk.
    pub virtio_blk_mmio: u64,
    /// First free guest-physical address after the image.
    pub heap_start: u64,
    /// End of the memory usable as heap (below the stack).
    pub heap_end: u64,
}

impl TinyBootInfo {
    /// True when the magic and version are the ones described here.
    pub fn is_current(&self) -> bool {
        self.magic == MAGIC && self.version == VERSION
    }

    /// The block as the guest finds it in memory.
    pub fn to_le_bytes(&self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        let fields = [
            self.mem_size,
            self.cmdline_addr,
            self.cmdline_len,
            self.tsc_khz,
            self.virtio_blk_mmio,
            self.heap_start,
            self.heap_end,
        ];
        for (i, f) in fields.iter().enumerate() {
            b[8 + i * 8..16 + i * 8].copy_from_slice(&f.to_le_bytes());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_are_the_in_memory_layout() {
        let info = TinyBootInfo {
            magic: MAGIC,
            version: VERSION,
            mem_size: 1,
            cmdline_addr: 2,
            cmdline_len: 3,
            tsc_khz: 4,
            virtio_blk_mmio: 5,
            heap_start: 6,
            heap_end: 7,
        };
        assert_eq!(SIZE, 64);
        // SAFETY: TinyBootInfo is repr(C) plain old data of SIZE bytes, read
        // here as bytes; x86-64 is little endian, as the ABI is.
        let raw: [u8; SIZE] = unsafe { core::mem::transmute(info) };
        assert_eq!(raw, info.to_le_bytes());
        assert_eq!(&raw[0..4], b"ISOL");
        assert!(info.is_current());
    }
}
