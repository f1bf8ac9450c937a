//! Shared helpers for the integration tests: a minimal ELF wrapper around
//! hand-assembled machine code, and the KVM gate.

#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use microvm::{GuestImage, VmConfig};

/// Where hand-assembled tiny guests are linked.
pub const BASE: u64 = 0x10_0000;

/// Skips (returns false) when KVM is not usable here.
pub fn kvm(test: &str) -> bool {
    hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable())
}

/// An x86-64 ET_EXEC ELF with one RWX PT_LOAD of `code` at [`BASE`], entry at its start.
pub fn elf(code: &[u8]) -> Vec<u8> {
    let (ehdr, phdr) = (64usize, 56usize);
    let mut b = vec![0u8; ehdr + phdr];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little endian
    b[6] = 1; // version
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&BASE.to_le_bytes());
    b[32..40].copy_from_slice(&(ehdr as u64).to_le_bytes());
    b[52..54].copy_from_slice(&(ehdr as u16).to_le_bytes());
    b[54..56].copy_from_slice(&(phdr as u16).to_le_bytes());
    b[56..58].copy_from_slice(&1u16.to_le_bytes());
    let p = ehdr;
    b[p..p + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    b[p + 4..p + 8].copy_from_slice(&7u32.to_le_bytes()); // RWX
    b[p + 8..p + 16].copy_from_slice(&((ehdr + phdr) as u64).to_le_bytes());
    b[p + 16..p + 24].copy_from_slice(&BASE.to_le_bytes());
    b[p + 24..p + 32].copy_from_slice(&BASE.to_le_bytes());
    b[p + 32..p + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
    b[p + 40..p + 48].copy_from_slice(&(code.len() as u64).to_le_bytes());
    b[p + 48..p + 56].copy_from_slice(&0x1000u64.to_le_bytes());
    b.extend_from_slice(code);
    b
}

/// Writes `code` as a tiny-guest ELF into a temp file.
pub fn image(code: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&elf(code)).unwrap();
    f
}

/// A tiny-guest config for `image` with a short timeout.
pub fn config(image: &tempfile::NamedTempFile) -> VmConfig {
    VmConfig {
        memory_bytes: 32 << 20,
        vcpus: 1,
        image: GuestImage::Tiny {
            elf: image.path().to_path_buf(),
            cmdline: String::new(),
        },
        disk: None,
        timeout: Duration::from_secs(5),
        serial_echo: false,
        hugepages: false,
        net: None,
    }
}

/// Machine code pieces (64-bit mode), assembly in comments.
pub mod asm {
    /// `mov dx, port`
    pub fn mov_dx(port: u16) -> Vec<u8> {
        let p = port.to_le_bytes();
        vec![0x66, 0xba, p[0], p[1]]
    }
    /// `mov al, v`
    pub fn mov_al(v: u8) -> Vec<u8> {
        vec![0xb0, v]
    }
    /// `mov eax, v`
    pub fn mov_eax(v: u32) -> Vec<u8> {
        let mut c = vec![0xb8];
        c.extend_from_slice(&v.to_le_bytes());
        c
    }
    /// `out dx, al`
    pub const OUT_DX_AL: u8 = 0xee;
    /// `out dx, eax`
    pub const OUT_DX_EAX: u8 = 0xef;
    /// `in al, dx`
    pub const IN_AL_DX: u8 = 0xec;
    /// `jmp $` (spin forever)
    pub const SPIN: [u8; 2] = [0xeb, 0xfe];

    /// `mov dx, port; mov al, v; out dx, al`
    pub fn outb(port: u16, v: u8) -> Vec<u8> {
        let mut c = mov_dx(port);
        c.extend(mov_al(v));
        c.push(OUT_DX_AL);
        c
    }
    /// `mov dx, 0x501; mov eax, code; out dx, eax`, then spin.
    pub fn exit(code: u32) -> Vec<u8> {
        let mut c = mov_dx(0x501);
        c.extend(mov_eax(code));
        c.push(OUT_DX_EAX);
        c.extend(SPIN);
        c
    }
}
