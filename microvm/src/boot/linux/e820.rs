//! The e820 memory map handed to the kernel in the zero page.
//!
//! Guest RAM is one region starting at 0; the map reports it minus the
//! legacy hole below 1 MiB (EBDA, VGA, BIOS area: where the VMM puts its MP
//! table) and minus the MMIO gap below 4 GiB (virtio-mmio lives there).

use linux_loader::loader::bootparam::boot_e820_entry;

/// E820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;

/// Start of the extended BIOS data area: RAM below 1 MiB ends here.
pub const EBDA_START: u64 = 0x9_fc00;
/// Start of "high" memory; the kernel is loaded at or above it.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the MMIO gap (virtio-mmio devices) below 4 GiB.
pub const MMIO_GAP_START: u64 = 0xd000_0000;
/// End of the MMIO gap.
pub const MMIO_GAP_END: u64 = 1 << 32;

/// One e820 entry, in a form that is easy to compare in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// `E820_RAM` or `E820_RESERVED`.
    pub kind: u32,
}

impl From<E820Entry> for boot_e820_entry {
    fn from(e: E820Entry) -> Self {
        boot_e820_entry {
            addr: e.addr,
            size: e.size,
            r#type: e.kind,
        }
    }
}

/// The map for guest RAM covering `[0, mem_end)` (byte after the last one).
///
/// Reported: RAM below the EBDA, the EBDA-to-1 MiB hole as reserved (so the
/// MP table there is never handed out), RAM from 1 MiB up to the MMIO gap,
/// and RAM above 4 GiB if guest memory reaches that far.
pub fn memory_map(mem_end: u64) -> Vec<E820Entry> {
    let mut map = Vec::new();
    let mut ram = |start: u64, end: u64| {
        let end = end.min(mem_end);
        if end > start {
            map.push(E820Entry {
                addr: start,
                size: end - start,
                kind: E820_RAM,
            });
        }
    };
    ram(0, EBDA_START);
    ram(HIMEM_START, MMIO_GAP_START);
    // Memory configured beyond the gap start is shifted above 4 GiB by no one:
    // guest RAM is a single region, so whatever overlaps the gap is not RAM.
    ram(MMIO_GAP_END, mem_end);
    if mem_end > EBDA_START {
        let pos = map
            .iter()
            .position(|e| e.addr >= HIMEM_START)
            .unwrap_or(map.len());
        map.insert(
            pos,
            E820Entry {
                addr: EBDA_START,
                size: HIMEM_START - EBDA_START,
                kind: E820_RESERVED,
            },
        );
    }
    map
}

/// The highest usable RAM address below 4 GiB plus one: where an initramfs
/// may end at the latest.
pub fn low_ram_end(mem_end: u64) -> u64 {
    mem_end.min(MMIO_GAP_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_of_128_mib_has_the_low_hole() {
        let map = memory_map(128 << 20);
        assert_eq!(
            map,
            vec![
                E820Entry {
                    addr: 0,
                    size: 0x9_fc00,
                    kind: E820_RAM
                },
                E820Entry {
                    addr: 0x9_fc00,
                    size: 0x6_0400,
                    kind: E820_RESERVED
                },
                E820Entry {
                    addr: 0x10_0000,
                    size: (128 << 20) - 0x10_0000,
                    kind: E820_RAM
                },
            ]
        );
    }

    #[test]
    fn map_stops_at_the_mmio_gap_and_resumes_above_4g() {
        let map = memory_map(5 << 30);
        let ram: Vec<_> = map.iter().filter(|e| e.kind == E820_RAM).collect();
        assert_eq!(ram.len(), 3);
        assert_eq!(ram[1].addr + ram[1].size, MMIO_GAP_START);
        assert_eq!(ram[2].addr, 1 << 32);
        assert_eq!(ram[2].size, 1 << 30);
        assert!(
            map.iter()
                .all(|e| e.addr + e.size <= MMIO_GAP_START || e.addr >= MMIO_GAP_END)
        );
    }

    #[test]
    fn low_ram_end_is_capped_by_the_gap() {
        assert_eq!(low_ram_end(64 << 20), 64 << 20);
        assert_eq!(low_ram_end(8 << 30), MMIO_GAP_START);
    }
}
