//! Entering a vCPU directly in 64-bit long mode: control registers, EFER,
//! segments, general registers and the FPU.
//!
//! The tiny guest starts at CPL 3 with IOPL 3, so it can do port I/O but
//! never runs privileged code (which a software-assisted KVM would emulate
//! thousands of times slower). A software-assisted KVM (kvm_pvm) drops IOPL
//! for CPL-3 code, so the TSS also carries an I/O permission bitmap that
//! allows every port: either mechanism alone lets `in`/`out` through.
//! Linux starts at CPL 0 with `rsi` = zero page.

use kvm_bindings::{Msrs, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::gdt;
use super::layout::{GDT_ADDR, IDT_ADDR, TSS_ADDR, TSS_IOMAP_OFFSET, TSS_LIMIT};
use crate::error::Error;

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const RFLAGS_RESERVED: u64 = 1 << 1;
const RFLAGS_IOPL3: u64 = 3 << 12;

/// The privilege level the guest starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// CPL 0 (Linux, probes).
    Kernel,
    /// CPL 3 with IOPL 3 (the tiny guest).
    User,
}

/// Where and how the guest starts.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// CPL at entry.
    pub privilege: Privilege,
    /// `rip`.
    pub rip: u64,
    /// `rsp`.
    pub rsp: u64,
    /// `rdi` (tiny guest: `TinyBootInfo`).
    pub rdi: u64,
    /// `rsi` (Linux: zero page).
    pub rsi: u64,
}

/// Writes the GDT, an empty IDT and the TSS (with an all-ports-allowed I/O
/// bitmap) into guest memory, which must be fresh (zero).
pub fn write_descriptor_tables(mem: &GuestMemoryMmap) -> Result<(), Error> {
    let bytes: Vec<u8> = gdt::table(TSS_ADDR as u32, TSS_LIMIT)
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    mem.write_slice(&bytes, GuestAddress(GDT_ADDR))
        .and_then(|_| mem.write_obj(0u64, GuestAddress(IDT_ADDR)))
        // I/O map base; the bitmap itself is zero (allowed) in fresh memory.
        .and_then(|_| mem.write_obj(TSS_IOMAP_OFFSET as u16, GuestAddress(TSS_ADDR + 0x66)))
        // Terminator byte after the bitmap, as the architecture requires.
        .and_then(|_| mem.write_obj(0xffu8, GuestAddress(TSS_ADDR + u64::from(TSS_LIMIT))))
        .map_err(|e| Error::GuestMemory(format!("writing GDT/TSS at {GDT_ADDR:#x}: {e}")))
}

/// Puts `vcpu` in long mode with paging rooted at `cr3` and the registers of `entry`.
/// The descriptor tables must already be in guest memory.
pub fn enter_long_mode(vcpu: &VcpuFd, cr3: u64, entry: &Entry) -> Result<(), Error> {
    let table = gdt::table(TSS_ADDR as u32, TSS_LIMIT);
    let mut sregs = vcpu.get_sregs().map_err(Error::kvm("KVM_GET_SREGS"))?;
    let (code, data) = match entry.privilege {
        Privilege::Kernel => (gdt::KERNEL_CODE, gdt::KERNEL_DATA),
        Privilege::User => (gdt::USER_CODE, gdt::USER_DATA),
    };
    let cs = gdt::segment(table[code as usize], code);
    let ds = gdt::segment(table[data as usize], data);
    sregs.cs = cs;
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (ds, ds, ds, ds, ds);
    sregs.tr = gdt::segment(table[gdt::TSS as usize], gdt::TSS);
    sregs.ldt = kvm_segment {
        unusable: 1,
        type_: 2,
        present: 1,
        ..Default::default()
    };
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (std::mem::size_of_val(&table) - 1) as u16;
    sregs.idt.base = IDT_ADDR;
    sregs.idt.limit = 7;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = cr3;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer = EFER_LME | EFER_LMA;
    vcpu.set_sregs(&sregs)
        .map_err(Error::kvm("KVM_SET_SREGS"))?;

    let rflags = match entry.privilege {
        Privilege::Kernel => RFLAGS_RESERVED,
        Privilege::User => RFLAGS_RESERVED | RFLAGS_IOPL3,
    };
    let regs = kvm_regs {
        rip: entry.rip,
        rsp: entry.rsp,
        rbp: entry.rsp,
        rdi: entry.rdi,
        rsi: entry.rsi,
        rflags,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(Error::kvm("KVM_SET_REGS"))?;

    // x87 control word and MXCSR at their reset values, so SSE code works.
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(Error::kvm("KVM_SET_FPU"))
}

/// `IA32_MISC_ENABLE`.
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
/// `IA32_MISC_ENABLE.FAST_STRING`: `rep movs/stos` in large chunks.
const MISC_ENABLE_FAST_STRING: u64 = 1;
/// `IA32_MTRR_DEF_TYPE`.
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
/// MTRRs enabled, default memory type write-back.
const MTRR_ENABLE_WB: u64 = (1 << 11) | 6;

/// The MSRs firmware leaves set before a kernel starts, which a guest
/// entered directly in long mode would otherwise see at their reset values:
/// fast string operations on (else an Intel guest logs "Disabled fast string
/// operations" and runs `rep movs` slowly) and MTRRs enabled with write-back
/// as the default type (else the kernel's MTRR code sees all memory as
/// uncached).
pub fn write_boot_msrs(vcpu: &VcpuFd) -> Result<(), Error> {
    let entries = [
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB),
    ]
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    });
    // Two entries are far below the wrapper's capacity.
    let msrs = Msrs::from_entries(&entries).map_err(|_| Error::MsrRefused {
        index: entries[0].index,
    })?;
    let written = vcpu.set_msrs(&msrs).map_err(Error::kvm("KVM_SET_MSRS"))?;
    match entries.get(written) {
        // KVM stops at the first MSR it refuses and returns how many it set.
        Some(refused) => Err(Error::MsrRefused {
            index: refused.index,
        }),
        None => Ok(()),
    }
}
