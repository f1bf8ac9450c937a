//! Identity-mapped page tables for the low 4 GiB (guest RAM and the MMIO
//! hole), built from 2 MiB pages: six 4 KiB tables in all, written in one go.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{PAGE_SIZE, PD_ADDR, PD_COUNT, PDPT_ADDR, PML4_ADDR};
use crate::error::Error;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;

/// The tables as bytes, laid out from `PML4_ADDR` (which must be followed by
/// the PDPT and the page directories, contiguously). With `user`, every level
/// has the U bit so CPL-3 code may touch all of it.
pub fn tables(user: bool) -> Vec<u8> {
    let flags = PRESENT | WRITABLE | if user { USER } else { 0 };
    let mut entries = vec![0u64; ((2 + PD_COUNT) * PAGE_SIZE / 8) as usize];
    let per_table = (PAGE_SIZE / 8) as usize;
    entries[0] = PDPT_ADDR | flags;
    for i in 0..PD_COUNT as usize {
        entries[per_table + i] = (PD_ADDR + i as u64 * PAGE_SIZE) | flags;
    }
    for (n, e) in entries[2 * per_table..].iter_mut().enumerate() {
        *e = ((n as u64) << 21) | flags | HUGE;
    }
    entries.iter().flat_map(|e| e.to_le_bytes()).collect()
}

/// Writes the tables into guest memory; returns the value for CR3.
pub fn write(mem: &GuestMemoryMmap, user: bool) -> Result<u64, Error> {
    debug_assert_eq!(PDPT_ADDR, PML4_ADDR + PAGE_SIZE);
    debug_assert_eq!(PD_ADDR, PDPT_ADDR + PAGE_SIZE);
    mem.write_slice(&tables(user), GuestAddress(PML4_ADDR))
        .map_err(|e| Error::GuestMemory(format!("writing page tables at {PML4_ADDR:#x}: {e}")))?;
    Ok(PML4_ADDR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bytes: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap())
    }

    #[test]
    fn maps_the_mmio_window_identity_with_user_bit() {
        let t = tables(true);
        assert_eq!(t.len(), 6 * 4096);
        // 0xd000_0000 is 2 MiB page number 0x680, in page directory 3.
        let e = entry(&t, 2 * 512 + 0x680);
        assert_eq!(e & !0xfff, 0xd000_0000);
        assert_eq!(e & 0xff, PRESENT | WRITABLE | USER | HUGE);
        assert_eq!(entry(&t, 0), PDPT_ADDR | PRESENT | WRITABLE | USER);
    }

    #[test]
    fn kernel_tables_have_no_user_bit() {
        let t = tables(false);
        assert_eq!(entry(&t, 512 + 3) & USER, 0);
        assert_eq!(entry(&t, 512 + 3) & !0xfff, PD_ADDR + 3 * 4096);
    }
}
