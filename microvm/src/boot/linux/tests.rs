//! The loader against the boot protocol (Documentation/arch/x86/boot.rst):
//! zero-page fields are checked at their documented byte offsets, not
//! through the same struct the loader wrote.

use std::io::Write;

use linux_loader::loader::bootparam::setup_header;
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use super::*;

const MIB: u64 = 1 << 20;

fn guest(mem: u64) -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), mem as usize)]).unwrap()
}

fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f
}

/// A minimal x86_64 ELF with one PT_LOAD segment at `paddr` holding `payload`,
/// `memsz` bytes in memory, entry at `paddr`.
fn elf_kernel(paddr: u64, payload: &[u8], memsz: u64) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    v.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    v.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&paddr.to_le_bytes()); // e_entry
    v.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    v.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    v.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for h in [64u16, 56, 1, 64, 0, 0] {
        v.extend_from_slice(&h.to_le_bytes()); // ehsize phentsize phnum shentsize shnum shstrndx
    }
    let off = 64 + 56;
    v.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    v.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for q in [
        off as u64,
        paddr,
        paddr,
        payload.len() as u64,
        memsz,
        0x1000,
    ] {
        v.extend_from_slice(&q.to_le_bytes());
    }
    assert_eq!(v.len(), off);
    v.extend_from_slice(payload);
    v
}

/// A synthetic bzImage: one setup sector after the boot sector, the given
/// protocol fields, and `payload` as the protected-mode part.
fn bzimage(version: u16, xloadflags: u16, cmdline_size: u32, payload: &[u8]) -> Vec<u8> {
    let hdr = setup_header {
        setup_sects: 1,
        boot_flag: BOOT_FLAG,
        header: HDR_MAGIC,
        version,
        loadflags: 1,
        code32_start: 0x10_0000,
        initrd_addr_max: 0x7fff_ffff,
        kernel_alignment: 0x20_0000,
        xloadflags,
        cmdline_size,
        init_size: 0x40_0000,
        ..Default::default()
    };
    let mut v = vec![0u8; 1024];
    v[0x1f1..0x1f1 + hdr.as_slice().len()].copy_from_slice(hdr.as_slice());
    v.extend_from_slice(payload);
    v
}

fn u8_at(mem: &GuestMemoryMmap, addr: u64) -> u8 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}
fn u16_at(mem: &GuestMemoryMmap, addr: u64) -> u16 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}
fn u32_at(mem: &GuestMemoryMmap, addr: u64) -> u32 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}
fn u64_at(mem: &GuestMemoryMmap, addr: u64) -> u64 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}

fn boot(kernel: &tempfile::NamedTempFile, initrd: Option<Vec<u8>>, cmdline: &str) -> LinuxBoot {
    LinuxBoot {
        kernel: kernel.path().into(),
        initramfs: initrd,
        cmdline: cmdline.into(),
    }
}

#[test]
fn vmlinux_is_loaded_at_its_physical_address_and_entered_there() {
    let mem = guest(128 * MIB);
    let k = file_with(&elf_kernel(16 * MIB, b"KERNEL", 2 * MIB));
    let e = load(&mem, &boot(&k, None, "console=ttyS0")).unwrap();
    assert_eq!(e.entry, GuestAddress(16 * MIB));
    assert_eq!(e.zero_page, GuestAddress(ZERO_PAGE_START));
    let mut got = [0u8; 6];
    mem.read_slice(&mut got, GuestAddress(16 * MIB)).unwrap();
    assert_eq!(&got, b"KERNEL");
}

#[test]
fn zero_page_follows_the_boot_protocol() {
    let mem = guest(128 * MIB);
    let k = file_with(&elf_kernel(16 * MIB, b"KERNEL", 2 * MIB));
    let initrd: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let cmdline = "console=ttyS0 panic=1 -- cpu";
    load(&mem, &boot(&k, Some(initrd.clone()), cmdline)).unwrap();
    let zp = ZERO_PAGE_START;

    assert_eq!(u16_at(&mem, zp + 0x1fe), 0xaa55, "boot_flag");
    assert_eq!(
        u32_at(&mem, zp + 0x202),
        u32::from_le_bytes(*b"HdrS"),
        "header magic"
    );
    assert!(u16_at(&mem, zp + 0x206) >= 0x020c, "protocol version");
    assert_eq!(u8_at(&mem, zp + 0x210), 0xff, "type_of_loader");

    // Command line: pointer, NUL-terminated text.
    let ptr = u32_at(&mem, zp + 0x228) as u64;
    assert_eq!(ptr, CMDLINE_START);
    let mut text = vec![0u8; cmdline.len() + 1];
    mem.read_slice(&mut text, GuestAddress(ptr)).unwrap();
    assert_eq!(&text[..cmdline.len()], cmdline.as_bytes());
    assert_eq!(text[cmdline.len()], 0);

    // Initramfs: page aligned, below the top of RAM, above the kernel, intact.
    let start = u32_at(&mem, zp + 0x218) as u64 | (u32_at(&mem, zp + 0xc0) as u64) << 32;
    let size = u32_at(&mem, zp + 0x21c) as u64;
    assert_eq!(size, initrd.len() as u64);
    assert_eq!(start % 4096, 0);
    assert!(
        start >= 18 * MIB && start + size <= 128 * MIB,
        "initrd at {start:#x}"
    );
    let mut back = vec![0u8; initrd.len()];
    mem.read_slice(&mut back, GuestAddress(start)).unwrap();
    assert_eq!(back, initrd);

    // e820 map: count at 0x1e8, 20-byte entries from 0x2d0.
    let n = u8_at(&mem, zp + 0x1e8) as u64;
    let entries: Vec<(u64, u64, u32)> = (0..n)
        .map(|i| {
            let at = zp + 0x2d0 + 20 * i;
            (
                u64_at(&mem, at),
                u64_at(&mem, at + 8),
                u32_at(&mem, at + 16),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            (0, 0x9_fc00, 1),
            (0x9_fc00, 0x10_0000 - 0x9_fc00, 2),
            (0x10_0000, 127 * MIB, 1)
        ]
    );
}

#[test]
fn bzimage_payload_goes_to_1mib_with_the_64_bit_entry_and_its_header() {
    let mem = guest(64 * MIB);
    let k = file_with(&bzimage(0x020f, 0x3, 2047, b"PAYLOAD"));
    let e = load(&mem, &boot(&k, Some(vec![1; 4096]), "console=ttyS0")).unwrap();
    assert_eq!(e.entry, GuestAddress(0x10_0000 + 0x200));
    let mut got = [0u8; 7];
    mem.read_slice(&mut got, GuestAddress(0x10_0000)).unwrap();
    assert_eq!(&got, b"PAYLOAD");
    // The image's own header is kept (version, init_size) and ours filled in.
    let zp = ZERO_PAGE_START;
    assert_eq!(u16_at(&mem, zp + 0x206), 0x020f);
    assert_eq!(u32_at(&mem, zp + 0x260), 0x40_0000, "init_size");
    assert_eq!(u8_at(&mem, zp + 0x210), 0xff);
    assert_eq!(u32_at(&mem, zp + 0x228) as u64, CMDLINE_START);
    let initrd = u32_at(&mem, zp + 0x218) as u64;
    assert!(
        initrd >= 0x10_0000 + 0x40_0000,
        "initramfs clear of the decompressor"
    );
}

#[test]
fn not_a_kernel_is_named() {
    let mem = guest(32 * MIB);
    for bytes in [&b""[..], b"#!/bin/sh\necho hi\n", &[0u8; 4096]] {
        let f = file_with(bytes);
        match load(&mem, &boot(&f, None, "")) {
            Err(LinuxError::NotAKernel { path }) => assert_eq!(path, f.path()),
            other => panic!("expected NotAKernel, got {other:?}"),
        }
    }
}

#[test]
fn missing_kernel_file_is_a_read_error() {
    let mem = guest(32 * MIB);
    let b = LinuxBoot {
        kernel: "/nonexistent/vmlinux".into(),
        initramfs: None,
        cmdline: "".into(),
    };
    assert!(matches!(load(&mem, &b), Err(LinuxError::ReadKernel { .. })));
}

#[test]
fn bzimage_without_64_bit_entry_is_refused() {
    let mem = guest(32 * MIB);
    let k = file_with(&bzimage(0x020f, 0, 2047, b"P"));
    assert!(matches!(
        load(&mem, &boot(&k, None, "")),
        Err(LinuxError::No64BitEntry { xloadflags: 0, .. })
    ));
}

#[test]
fn initramfs_too_large_for_memory() {
    let mem = guest(32 * MIB);
    let k = file_with(&elf_kernel(16 * MIB, b"K", MIB));
    let initrd = vec![0u8; 20 * MIB as usize];
    match load(&mem, &boot(&k, Some(initrd), "")) {
        Err(LinuxError::InitramfsTooLarge { size, room, limit }) => {
            assert_eq!(size, 20 * MIB);
            assert_eq!(room, 15 * MIB);
            assert_eq!(limit, 32 * MIB);
        }
        other => panic!("expected InitramfsTooLarge, got {other:?}"),
    }
}

#[test]
fn command_line_too_long_for_the_kernel() {
    let mem = guest(32 * MIB);
    let k = file_with(&elf_kernel(16 * MIB, b"K", MIB));
    let long = "a".repeat(3000);
    assert!(matches!(
        load(&mem, &boot(&k, None, &long)),
        Err(LinuxError::CmdlineTooLong {
            len: 3000,
            max: 2047
        })
    ));
    // A bzImage's own cmdline_size is the limit.
    let bz = file_with(&bzimage(0x020f, 1, 100, b"P"));
    assert!(matches!(
        load(&mem, &boot(&bz, None, &"b".repeat(101))),
        Err(LinuxError::CmdlineTooLong { len: 101, max: 100 })
    ));
    assert!(load(&mem, &boot(&bz, None, &"b".repeat(100))).is_ok());
}

#[test]
fn command_line_with_control_characters_is_invalid() {
    let mem = guest(32 * MIB);
    let k = file_with(&elf_kernel(16 * MIB, b"K", MIB));
    assert!(matches!(
        load(&mem, &boot(&k, None, "console=ttyS0\nroot=x")),
        Err(LinuxError::CmdlineInvalid { .. })
    ));
}

#[test]
fn kernel_bigger_than_memory_is_refused() {
    let mem = guest(32 * MIB);
    let k = file_with(&elf_kernel(16 * MIB, b"K", 40 * MIB));
    match load(&mem, &boot(&k, None, "")) {
        Err(LinuxError::KernelTooLarge { end, mem, .. }) => {
            assert_eq!(end, 56 * MIB);
            assert_eq!(mem, 32 * MIB);
        }
        other => panic!("expected KernelTooLarge, got {other:?}"),
    }
}
