//! Hand-assembled tiny guests entered at CPL 3 in long mode, run through
//! `microvm::run`.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use common::asm;
use microvm::VmExit;

#[test]
fn cpl3_guest_does_port_io_and_exits() {
    if !common::kvm("cpl3_guest_does_port_io_and_exits") {
        return;
    }
    let mut code = asm::outb(0x500, 1); // ready marker
    for b in b"hi" {
        code.extend(asm::outb(0x3f8, *b)); // serial
    }
    for b in b"{}\n" {
        code.extend(asm::outb(0x502, *b)); // isolab output
    }
    code.extend(asm::exit(42));
    let img = common::image(&code);
    let out = microvm::run(&common::config(&img)).unwrap();
    assert_eq!(
        out.exit,
        VmExit::GuestExit { code: 42 },
        "{}",
        out.exit.explain()
    );
    assert_eq!(out.serial, b"hi");
    assert_eq!(out.output, b"{}\n");
    let ready = out.timings.ready.expect("ready marker seen");
    assert!(
        out.timings.setup <= ready && ready <= out.timings.total,
        "{:?}",
        out.timings
    );
    assert_eq!(out.stats.io_exits, 7);
    assert_eq!(out.stats.stray_io, 0);
    assert!(out.memory.guest_touched_bytes > 0);
    assert!(out.memory.vmm_overhead_bytes > 0);
    println!("timings {:?} memory {:?}", out.timings, out.memory);
}

#[test]
fn virtio_mmio_window_is_reachable_from_cpl3() {
    if !common::kvm("virtio_mmio_window_is_reachable_from_cpl3") {
        return;
    }
    let mut code = vec![
        0xbb, 0x00, 0x00, 0x00, 0xd0, // mov ebx, 0xd000_0000   ; virtio-mmio window
        0x8b, 0x03, // mov eax, [rbx]              ; MagicValue
        0x8b, 0x4b, 0x08, // mov ecx, [rbx + 8]    ; DeviceID
    ];
    code.extend(asm::mov_dx(0x502));
    code.extend([0x89, 0xc8, asm::OUT_DX_EAX]); // mov eax, ecx ; out dx, eax
    code.extend([0x8b, 0x03]); // mov eax, [rbx]
    code.extend(asm::mov_dx(0x501));
    code.push(asm::OUT_DX_EAX);
    code.extend(asm::SPIN);
    let img = common::image(&code);
    let disk = tempfile::NamedTempFile::new().unwrap();
    disk.as_file().set_len(1 << 20).unwrap();
    let mut cfg = common::config(&img);
    cfg.disk = Some(disk.path().into());
    cfg.hugepages = true;
    let out = microvm::run(&cfg).unwrap();
    assert_eq!(
        out.exit,
        VmExit::GuestExit { code: 0x7472_6976 },
        "{}",
        out.exit.explain()
    );
    assert_eq!(out.output, 2u32.to_le_bytes(), "device id 2 = block");
    assert_eq!(out.stats.mmio_exits, 3);
}

#[test]
fn without_a_disk_the_mmio_window_is_empty() {
    if !common::kvm("without_a_disk_the_mmio_window_is_empty") {
        return;
    }
    let mut code = vec![0xbb, 0x00, 0x00, 0x00, 0xd0, 0x8b, 0x03]; // mov ebx, 0xd000_0000 ; mov eax, [rbx]
    code.extend(asm::mov_dx(0x501));
    code.push(asm::OUT_DX_EAX);
    code.extend(asm::SPIN);
    let img = common::image(&code);
    let out = microvm::run(&common::config(&img)).unwrap();
    assert_eq!(
        out.exit,
        VmExit::GuestExit { code: u32::MAX },
        "unclaimed MMIO reads as all ones"
    );
    assert_eq!(out.stats.stray_io, 1);
}
