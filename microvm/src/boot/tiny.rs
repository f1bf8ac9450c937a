//! Loading the tiny guest: an x86-64 ELF executable whose `PT_LOAD`
//! segments are copied to their physical addresses, plus the
//! `TinyBootInfo` block at [`TINY_BOOT_INFO`] (see the Guest ABI).
//!
//! The file is untrusted input: every header field is checked against the
//! file's size and guest RAM before anything is copied.

use std::path::Path;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::layout::{
    PAGE_SIZE, TINY_BOOT_INFO, TINY_CMDLINE_ADDR, TINY_CMDLINE_MAX, TINY_IMAGE_BASE,
    TINY_STACK_BYTES, TINY_STACK_TOP_GAP,
};
use crate::error::Error;

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
/// Upper bound on program headers, so a hostile header cannot make us loop long.
const MAX_PHDRS: u16 = 64;

pub use guest_abi::tiny::TinyBootInfo;

/// One `PT_LOAD` segment, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset in the file.
    pub offset: usize,
    /// Bytes taken from the file.
    pub file_len: usize,
    /// Guest-physical load address.
    pub addr: u64,
    /// Bytes in memory (the rest after `file_len` is zero).
    pub mem_len: u64,
    /// Executable.
    pub exec: bool,
}

/// A parsed, checked image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinyElf {
    /// Entry point (identity mapped, so also a GPA).
    pub entry: u64,
    /// The segments to load.
    pub segments: Vec<Segment>,
    /// One past the highest loaded byte.
    pub end: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// Parses and checks an image for a guest of `mem_size` bytes.
pub fn parse(bytes: &[u8], mem_size: u64, path: &Path) -> Result<TinyElf, Error> {
    let (entry, table) = program_headers(bytes, path)?;
    let load_limit = mem_size.saturating_sub(TINY_STACK_BYTES + TINY_STACK_TOP_GAP);

    let mut segments = Vec::new();
    for (i, ph) in table.chunks_exact(PHDR_LEN).enumerate() {
        if u32_at(ph, 0) != PT_LOAD {
            continue;
        }
        let segment = load_segment(i, ph, bytes, load_limit, &segments, path)?;
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(not_elf(path, "no PT_LOAD segment"));
    }
    if !segments
        .iter()
        .any(|s| s.exec && entry >= s.addr && entry < s.addr + s.mem_len)
    {
        return Err(bad_seg(
            path,
            format!("entry point {entry:#x} is not inside an executable segment"),
        ));
    }
    let end = segments
        .iter()
        .map(|s| s.addr + s.mem_len)
        .max()
        .unwrap_or(TINY_IMAGE_BASE);
    Ok(TinyElf {
        entry,
        segments,
        end,
    })
}

fn not_elf(path: &Path, reason: &str) -> Error {
    Error::ImageNotElf {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn bad_seg(path: &Path, reason: String) -> Error {
    Error::ImageSegment {
        path: path.to_path_buf(),
        reason,
    }
}

/// Checks the ELF header and returns the entry point and the program
/// header table, which is bounds-checked against the file.
fn program_headers<'a>(bytes: &'a [u8], path: &Path) -> Result<(u64, &'a [u8]), Error> {
    let not_elf = |reason: &str| not_elf(path, reason);
    if bytes.len() < EHDR_LEN || &bytes[..4] != b"\x7fELF" {
        return Err(not_elf("no ELF magic"));
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(not_elf("not a 64-bit little-endian ELF"));
    }
    if u16_at(bytes, 18) != EM_X86_64 {
        return Err(not_elf("machine is not x86-64"));
    }
    if u16_at(bytes, 16) != ET_EXEC {
        return Err(not_elf(
            "not an executable (ET_EXEC) linked at a fixed address",
        ));
    }
    let entry = u64_at(bytes, 24);
    let phoff = u64_at(bytes, 32);
    let phentsize = u16_at(bytes, 54);
    let phnum = u16_at(bytes, 56);
    if usize::from(phentsize) != PHDR_LEN {
        return Err(not_elf("unexpected program header size"));
    }
    if phnum == 0 || phnum > MAX_PHDRS {
        return Err(not_elf("program header count out of range"));
    }
    let table_end = phoff
        .checked_add(u64::from(phnum) * PHDR_LEN as u64)
        .filter(|end| *end <= bytes.len() as u64)
        .ok_or_else(|| not_elf("program headers lie outside the file"))?;
    Ok((entry, &bytes[phoff as usize..table_end as usize]))
}

/// Checks PT_LOAD header `ph` (number `i`): its bytes lie inside the file,
/// and its memory lies above the boot data, below the stack (`load_limit`)
/// and clear of the segments already accepted.
fn load_segment(
    i: usize,
    ph: &[u8],
    bytes: &[u8],
    load_limit: u64,
    segments: &[Segment],
    path: &Path,
) -> Result<Segment, Error> {
    let bad_seg = |reason: String| bad_seg(path, reason);
    let (offset, addr, file_len, mem_len) = (
        u64_at(ph, 8),
        u64_at(ph, 24),
        u64_at(ph, 32),
        u64_at(ph, 40),
    );
    if file_len > mem_len {
        return Err(bad_seg(format!(
            "PT_LOAD #{i}: file size {file_len} exceeds memory size {mem_len}"
        )));
    }
    if offset
        .checked_add(file_len)
        .is_none_or(|e| e > bytes.len() as u64)
    {
        return Err(bad_seg(format!(
            "PT_LOAD #{i}: bytes {offset}+{file_len} lie outside the file"
        )));
    }
    if addr < TINY_IMAGE_BASE {
        return Err(bad_seg(format!(
            "PT_LOAD #{i}: address {addr:#x} is below {TINY_IMAGE_BASE:#x}, where the VMM keeps boot data"
        )));
    }
    let end = addr.checked_add(mem_len).filter(|e| *e <= load_limit).ok_or_else(|| {
        bad_seg(format!(
            "PT_LOAD #{i}: {addr:#x}+{mem_len:#x} does not fit guest RAM below the stack (limit {load_limit:#x})"
        ))
    })?;
    if segments
        .iter()
        .any(|s: &Segment| addr < s.addr + s.mem_len && s.addr < end)
    {
        return Err(bad_seg(format!("PT_LOAD #{i}: overlaps another segment")));
    }
    Ok(Segment {
        offset: offset as usize,
        file_len: file_len as usize,
        addr,
        mem_len,
        exec: u32_at(ph, 4) & PF_X != 0,
    })
}

/// Smallest guest RAM an image ending at `end` can run in.
pub fn min_memory(end: u64) -> u64 {
    page_align(end) + PAGE_SIZE + TINY_STACK_BYTES + TINY_STACK_TOP_GAP
}

fn page_align(x: u64) -> u64 {
    x.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// Reads, checks and loads the image at `path`. Guest RAM is fresh (zero), so
/// only file bytes are copied; `.bss` needs no clearing.
pub fn load(mem: &GuestMemoryMmap, mem_size: u64, path: &Path) -> Result<TinyElf, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::ImageUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    // Structure first (as if memory were plentiful), so a too-small VM is
    // reported as such rather than as a misplaced segment.
    let elf = parse(&bytes, u64::MAX, path)?;
    if mem_size < min_memory(elf.end) {
        return Err(Error::MemoryTooSmall {
            requested: mem_size,
            needed: min_memory(elf.end),
        });
    }
    let elf = parse(&bytes, mem_size, path)?;
    for s in &elf.segments {
        mem.write_slice(
            &bytes[s.offset..s.offset + s.file_len],
            GuestAddress(s.addr),
        )
        .map_err(|e| Error::GuestMemory(format!("loading segment at {:#x}: {e}", s.addr)))?;
    }
    Ok(elf)
}

/// Where the stack starts, per the ABI.
pub fn stack_top(mem_size: u64) -> u64 {
    mem_size - TINY_STACK_TOP_GAP
}

/// Writes the command line and the boot info; returns the boot info's GPA.
pub fn write_boot_info(
    mem: &GuestMemoryMmap,
    mem_size: u64,
    elf: &TinyElf,
    cmdline: &str,
    tsc_khz: u64,
    virtio_blk_mmio: u64,
) -> Result<u64, Error> {
    if cmdline.len() > TINY_CMDLINE_MAX {
        return Err(Error::CmdlineTooLong {
            len: cmdline.len(),
            max: TINY_CMDLINE_MAX,
        });
    }
    let wr =
        |e: vm_memory::GuestMemoryError| Error::GuestMemory(format!("writing tiny boot info: {e}"));
    if !cmdline.is_empty() {
        mem.write_slice(cmdline.as_bytes(), GuestAddress(TINY_CMDLINE_ADDR))
            .map_err(wr)?;
    }
    let info = TinyBootInfo {
        magic: guest_abi::tiny::MAGIC,
        version: guest_abi::tiny::VERSION,
        mem_size,
        cmdline_addr: if cmdline.is_empty() {
            0
        } else {
            TINY_CMDLINE_ADDR
        },
        cmdline_len: cmdline.len() as u64,
        tsc_khz,
        virtio_blk_mmio,
        heap_start: page_align(elf.end),
        heap_end: stack_top(mem_size) - TINY_STACK_BYTES,
    };
    mem.write_slice(&info.to_le_bytes(), GuestAddress(TINY_BOOT_INFO))
        .map_err(wr)?;
    Ok(TINY_BOOT_INFO)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF: one executable PT_LOAD of `code` at `addr`, entry at `addr`.
    pub fn elf_with(code: &[u8], addr: u64) -> Vec<u8> {
        let mut b = vec![0u8; EHDR_LEN + PHDR_LEN];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[24..32].copy_from_slice(&addr.to_le_bytes());
        b[32..40].copy_from_slice(&(EHDR_LEN as u64).to_le_bytes());
        b[52..54].copy_from_slice(&(EHDR_LEN as u16).to_le_bytes());
        b[54..56].copy_from_slice(&(PHDR_LEN as u16).to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = EHDR_LEN;
        b[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        b[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes());
        let off = (EHDR_LEN + PHDR_LEN) as u64;
        b[ph + 8..ph + 16].copy_from_slice(&off.to_le_bytes());
        b[ph + 16..ph + 24].copy_from_slice(&addr.to_le_bytes());
        b[ph + 24..ph + 32].copy_from_slice(&addr.to_le_bytes());
        b[ph + 32..ph + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
        b[ph + 40..ph + 48].copy_from_slice(&(code.len() as u64 + 0x1000).to_le_bytes());
        b.extend_from_slice(code);
        b
    }

    const MEM: u64 = 16 << 20;

    #[test]
    fn a_good_image_parses() {
        let elf = parse(&elf_with(&[0x90, 0xf4], 0x10_0000), MEM, Path::new("x")).unwrap();
        assert_eq!(elf.entry, 0x10_0000);
        assert_eq!(elf.segments.len(), 1);
        assert_eq!(elf.end, 0x10_0000 + 2 + 0x1000);
    }

    #[test]
    fn hostile_headers_are_refused_specifically() {
        let p = Path::new("img");
        assert!(matches!(
            parse(b"#!/bin/sh\n", MEM, p),
            Err(Error::ImageNotElf { .. })
        ));
        let good = elf_with(&[0xf4], 0x10_0000);
        // segment below the image base
        let low = elf_with(&[0xf4], 0x1000);
        assert!(matches!(
            parse(&low, MEM, p),
            Err(Error::ImageSegment { .. })
        ));
        // segment past guest RAM
        let high = elf_with(&[0xf4], MEM - 0x1000);
        assert!(matches!(
            parse(&high, MEM, p),
            Err(Error::ImageSegment { .. })
        ));
        // file size larger than the file
        let mut trunc = good.clone();
        trunc.truncate(good.len() - 1);
        assert!(matches!(
            parse(&trunc, MEM, p),
            Err(Error::ImageSegment { .. })
        ));
        // program headers out of the file
        let mut phoff = good.clone();
        phoff[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse(&phoff, MEM, p),
            Err(Error::ImageNotElf { .. })
        ));
        // wrong machine
        let mut arm = good.clone();
        arm[18] = 183;
        assert!(matches!(
            parse(&arm, MEM, p),
            Err(Error::ImageNotElf { .. })
        ));
        // entry outside any segment
        let mut entry = good.clone();
        entry[24..32].copy_from_slice(&0x20_0000u64.to_le_bytes());
        assert!(matches!(
            parse(&entry, MEM, p),
            Err(Error::ImageSegment { .. })
        ));
        // address + size overflow
        let mut wrap = good;
        let ph = EHDR_LEN;
        wrap[ph + 40..ph + 48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse(&wrap, MEM, p),
            Err(Error::ImageSegment { .. })
        ));
    }

    #[test]
    fn boot_info_layout_matches_the_abi() {
        let info = TinyBootInfo {
            magic: guest_abi::tiny::MAGIC,
            version: guest_abi::tiny::VERSION,
            mem_size: 1,
            heap_end: 7,
            ..Default::default()
        };
        let b = info.to_le_bytes();
        assert_eq!(&b[0..4], b"ISOL");
        assert_eq!(u32_at(&b, 4), 1);
        assert_eq!(u64_at(&b, 8), 1);
        assert_eq!(u64_at(&b, 56), 7);
    }
}
