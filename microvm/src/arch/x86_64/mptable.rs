//! The Intel MultiProcessor table: how a Linux guest finds its vCPUs, the
//! IOAPIC and the ISA interrupt routing without ACPI.
//!
//! Layout at [`MPTABLE_ADDR`]: the 16-byte floating pointer, then the
//! configuration table (header, one processor entry per vCPU, the ISA bus,
//! the IOAPIC, one I/O interrupt entry per IOAPIC pin, 2 local interrupt
//! entries).
//!
//! Every IRQ 0–23 is routed to the IOAPIC pin of the same number, IRQ 0
//! included: KVM's in-kernel PIT raises GSI 0, which its IOAPIC delivers on
//! pin 0. A table that leaves IRQ 0 as ExtINT only (through the 8259) makes
//! the guest's `check_timer` look for the timer where KVM does not put it;
//! Linux 6.1 then dereferences a null pointer in `setup_IO_APIC`.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{MPTABLE_ADDR, MPTABLE_END};
use crate::error::Error;

const APIC_DEFAULT: u32 = 0xfee0_0000;
const IOAPIC_DEFAULT: u32 = 0xfec0_0000;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const SPEC_REV: u8 = 4;
const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const CPU_ENTRY_LEN: usize = 20;
/// IOAPIC pins (KVM's in-kernel IOAPIC has 24), each with an entry.
const IOAPIC_PINS: u8 = 24;
/// Interrupt types of I/O and local interrupt entries.
const INT_VECTORED: u8 = 0;
const INT_NMI: u8 = 1;
const INT_EXTINT: u8 = 3;

/// Most vCPUs whose entries fit below [`MPTABLE_END`].
pub const MAX_CPUS: u8 = 32;

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

fn small_entry(kind: u8, b: [u8; 7]) -> [u8; 8] {
    let mut e = [0u8; 8];
    e[0] = kind;
    e[1..].copy_from_slice(&b);
    e
}

/// The table bytes for `cpus` vCPUs, to be placed at [`MPTABLE_ADDR`].
pub fn build(cpus: u8) -> Result<Vec<u8>, Error> {
    if cpus == 0 || cpus > MAX_CPUS {
        return Err(Error::VcpuCount {
            requested: cpus,
            max: MAX_CPUS,
        });
    }
    let ioapic_id = cpus; // the first id after the CPUs
    let mut body = Vec::new();
    for id in 0..cpus {
        let mut e = [0u8; CPU_ENTRY_LEN];
        e[0] = 0; // processor
        e[1] = id;
        e[2] = APIC_VERSION;
        e[3] = 1 | if id == 0 { 2 } else { 0 }; // enabled, boot processor
        e[4..8].copy_from_slice(&0x600u32.to_le_bytes()); // family 6 signature
        e[8..12].copy_from_slice(&0x201u32.to_le_bytes()); // FPU + APIC
        body.extend_from_slice(&e);
    }
    body.extend_from_slice(&small_entry(1, [0, b'I', b'S', b'A', b' ', b' ', b' ']));
    let ioapic_addr = IOAPIC_DEFAULT.to_le_bytes();
    body.extend_from_slice(&small_entry(
        2,
        [
            ioapic_id,
            IOAPIC_VERSION,
            1,
            ioapic_addr[0],
            ioapic_addr[1],
            ioapic_addr[2],
            ioapic_addr[3],
        ],
    ));
    for irq in 0..IOAPIC_PINS {
        // Identity: IRQ n on pin n (see the module docs for IRQ 0).
        body.extend_from_slice(&small_entry(
            3,
            [INT_VECTORED, 0, 0, 0, irq, ioapic_id, irq],
        ));
    }
    body.extend_from_slice(&small_entry(4, [INT_EXTINT, 0, 0, 0, 0, 0xff, 0]));
    body.extend_from_slice(&small_entry(4, [INT_NMI, 0, 0, 0, 0, 0xff, 1]));

    let entries = u16::from(cpus) + 1 + 1 + u16::from(IOAPIC_PINS) + 2;
    let table_len = HEADER_LEN + body.len();
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(b"PCMP");
    header[4..6].copy_from_slice(&(table_len as u16).to_le_bytes());
    header[6] = SPEC_REV;
    header[8..16].copy_from_slice(b"ISOLAB  ");
    header[16..28].copy_from_slice(b"MICROVM     ");
    header[34..36].copy_from_slice(&entries.to_le_bytes());
    header[36..40].copy_from_slice(&APIC_DEFAULT.to_le_bytes());
    let mut table = header.to_vec();
    table.extend_from_slice(&body);
    table[7] = checksum(&table);

    let mut floating = [0u8; FLOATING_LEN];
    floating[0..4].copy_from_slice(b"_MP_");
    floating[4..8].copy_from_slice(&((MPTABLE_ADDR as usize + FLOATING_LEN) as u32).to_le_bytes());
    floating[8] = 1; // length in 16-byte units
    floating[9] = SPEC_REV;
    floating[10] = checksum(&floating);

    let mut out = floating.to_vec();
    out.extend_from_slice(&table);
    debug_assert!(out.len() <= (MPTABLE_END - MPTABLE_ADDR) as usize);
    Ok(out)
}

/// Writes the MP table for `cpus` vCPUs into guest memory.
pub fn write(mem: &GuestMemoryMmap, cpus: u8) -> Result<(), Error> {
    let bytes = build(cpus)?;
    mem.write_slice(&bytes, GuestAddress(MPTABLE_ADDR))
        .map_err(|e| Error::GuestMemory(format!("writing the MP table at {MPTABLE_ADDR:#x}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_zero_and_counts_match() {
        for cpus in [1u8, 2, MAX_CPUS] {
            let t = build(cpus).unwrap();
            assert!(t.len() <= (MPTABLE_END - MPTABLE_ADDR) as usize);
            assert_eq!(&t[0..4], b"_MP_");
            assert_eq!(t[..16].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
            let table = &t[16..];
            assert_eq!(&table[0..4], b"PCMP");
            let len = u16::from_le_bytes([table[4], table[5]]) as usize;
            assert_eq!(len, table.len());
            assert_eq!(table.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
            let count = u16::from_le_bytes([table[34], table[35]]);
            assert_eq!(count, u16::from(cpus) + 28);
            // IRQ 0 (the PIT, GSI 0 in KVM) is a vectored interrupt on pin 0.
            let irq0 = HEADER_LEN + cpus as usize * CPU_ENTRY_LEN + 16;
            assert_eq!(table[irq0], 3);
            assert_eq!(table[irq0 + 1], INT_VECTORED);
            assert_eq!((table[irq0 + 5], table[irq0 + 7]), (0, 0));
            let irq23 = irq0 + 23 * 8;
            assert_eq!((table[irq23 + 5], table[irq23 + 7]), (23, 23));
            // the last processor entry is enabled and not the boot CPU
            let last = HEADER_LEN + (cpus as usize - 1) * CPU_ENTRY_LEN;
            assert_eq!(table[last + 1], cpus - 1);
        }
    }

    #[test]
    fn zero_or_too_many_cpus_are_refused() {
        assert!(build(0).is_err());
        assert!(matches!(build(MAX_CPUS + 1), Err(Error::VcpuCount { .. })));
    }
}
