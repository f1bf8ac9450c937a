//! Every way a tiny guest can stop becomes a distinct, explained outcome,
//! and bad input is refused with a specific error.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::asm;
use hostcaps::kvm::KvmKind;
use microvm::{Error, VmExit};

#[test]
fn i8042_reset_is_reported() {
    if !common::kvm("i8042_reset_is_reported") {
        return;
    }
    let mut code = asm::outb(0x64, 0xfe);
    code.extend(asm::SPIN);
    let img = common::image(&code);
    let out = microvm::run(&common::config(&img)).unwrap();
    assert_eq!(out.exit, VmExit::Reset, "{}", out.exit.explain());
}

#[test]
fn other_i8042_commands_do_not_reset() {
    if !common::kvm("other_i8042_commands_do_not_reset") {
        return;
    }
    let mut code = asm::outb(0x64, 0xd1);
    code.extend(asm::exit(5));
    let img = common::image(&code);
    let out = microvm::run(&common::config(&img)).unwrap();
    assert_eq!(out.exit, VmExit::GuestExit { code: 5 });
}

#[test]
fn a_fault_with_no_idt_is_a_triple_fault() {
    if !common::kvm("a_fault_with_no_idt_is_a_triple_fault") {
        return;
    }
    // ud2: #UD with no IDT → #DF → triple fault.
    let mut code = vec![0x0f, 0x0b];
    code.extend(asm::exit(1));
    let img = common::image(&code);
    let out = microvm::run(&common::config(&img)).unwrap();
    match (&out.exit, hostcaps::kvm::facts().kind) {
        (VmExit::Shutdown, _) => println!("triple fault reported as Shutdown"),
        // A software-assisted KVM may fail to deliver the fault at all.
        (VmExit::HostLimitation { detail }, KvmKind::SoftwareAssisted) => {
            assert!(detail.contains("software-assisted"), "{detail}")
        }
        (other, _) => panic!("expected a triple fault, got {}", other.explain()),
    }
}

#[test]
fn an_endless_loop_is_stopped_by_the_timeout() {
    if !common::kvm("an_endless_loop_is_stopped_by_the_timeout") {
        return;
    }
    let img = common::image(&asm::SPIN);
    let mut cfg = common::config(&img);
    cfg.timeout = Duration::from_millis(200);
    let t = Instant::now();
    let out = microvm::run(&cfg).unwrap();
    let took = t.elapsed();
    assert_eq!(out.exit, VmExit::Timeout);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(
        took < Duration::from_secs(3),
        "the kick must end KVM_RUN promptly: {took:?}"
    );
    assert!(out.timings.ready.is_none());
}

#[test]
fn garbage_to_the_isolab_device_is_counted_not_fatal() {
    if !common::kvm("garbage_to_the_isolab_device_is_counted_not_fatal") {
        return;
    }
    let mut code = Vec::new();
    code.extend(asm::outb(0x503, 0x12)); // write to the (read-only) ping port
    code.extend(asm::outb(0x507, 0xff)); // unused port in the device
    code.extend(asm::outb(0x504, 0x01)); // write to the TSC port
    code.extend(asm::mov_dx(0x502));
    code.push(asm::IN_AL_DX); // read the write-only output port
    code.extend(asm::outb(0x80, 0x00)); // a port nobody claims
    code.extend(asm::mov_dx(0x501));
    code.extend([0xb0, 0x07, 0xee]); // mov al, 7 ; out dx, al
    code.extend(asm::SPIN);
    let img = common::image(&code);
    let out = microvm::run(&common::config(&img)).unwrap();
    assert_eq!(out.exit, VmExit::GuestExit { code: 7 });
    assert_eq!(out.stats.stray_io, 5);
    assert!(out.output.is_empty());
}

#[test]
fn the_guest_starts_at_cpl3_with_the_boot_info_in_rdi() {
    if !common::kvm("the_guest_starts_at_cpl3_with_the_boot_info_in_rdi") {
        return;
    }
    let mut code = vec![
        0x8b, 0x07, // mov eax, [rdi]        ; TinyBootInfo.magic
    ];
    code.extend(asm::mov_dx(0x502));
    code.push(asm::OUT_DX_EAX); // 4 bytes of output: "ISOL"
    code.extend([0x48, 0x89, 0xe0]); // mov rax, rsp
    code.extend([0x48, 0xc1, 0xe8, 0x0c]); // shr rax, 12
    code.push(asm::OUT_DX_EAX); // (rsp >> 12) as 4 output bytes
    code.extend([0x8c, 0xc8]); // mov eax, cs
    code.extend([0x83, 0xe0, 0x03]); // and eax, 3      ; CPL
    code.extend(asm::mov_dx(0x501));
    code.push(asm::OUT_DX_EAX);
    code.extend(asm::SPIN);
    let img = common::image(&code);
    let mut cfg = common::config(&img);
    cfg.image = microvm::GuestImage::Tiny {
        elf: img.path().into(),
        cmdline: "cpu mem".into(),
    };
    let out = microvm::run(&cfg).unwrap();
    assert_eq!(out.exit, VmExit::GuestExit { code: 3 }, "CPL must be 3");
    assert_eq!(&out.output[..4], b"ISOL");
    let rsp_page = u32::from_le_bytes(out.output[4..8].try_into().unwrap());
    assert_eq!(u64::from(rsp_page), (cfg.memory_bytes - 4096) >> 12);
}

#[test]
fn tsc_port_reports_the_frequency() {
    if !common::kvm("tsc_port_reports_the_frequency") {
        return;
    }
    let mut code = asm::mov_dx(0x504);
    code.push(0xed); // in eax, dx
    code.extend(asm::mov_dx(0x501));
    code.push(asm::OUT_DX_EAX);
    code.extend(asm::SPIN);
    let img = common::image(&code);
    let out = microvm::run(&common::config(&img)).unwrap();
    let VmExit::GuestExit { code: khz } = out.exit else {
        panic!("{}", out.exit.explain())
    };
    assert!(khz > 100_000, "TSC of {khz} kHz is implausible");
}

#[test]
fn bad_input_gets_specific_errors() {
    let img = common::image(&asm::exit(0));
    let mut cfg = common::config(&img);

    cfg.memory_bytes = 0;
    assert!(matches!(microvm::run(&cfg), Err(Error::MemoryZero)));
    cfg.memory_bytes = 1 << 50;
    let e = microvm::run(&cfg).unwrap_err();
    assert!(matches!(e, Error::MemoryTooLarge { .. }), "{e}");
    cfg.memory_bytes = 2 << 20;
    let e = microvm::run(&cfg).unwrap_err();
    assert!(matches!(e, Error::MemoryTooSmall { .. }), "{e}");
    cfg.memory_bytes = 32 << 20;

    cfg.vcpus = 2;
    assert!(matches!(
        microvm::run(&cfg),
        Err(Error::TinyVcpus { requested: 2 })
    ));
    cfg.vcpus = 0;
    assert!(matches!(microvm::run(&cfg), Err(Error::VcpuCount { .. })));
    cfg.vcpus = 1;

    cfg.image = microvm::GuestImage::Tiny {
        elf: "/nonexistent/isolab-tiny.elf".into(),
        cmdline: String::new(),
    };
    let e = microvm::run(&cfg).unwrap_err();
    assert!(
        matches!(&e, Error::ImageUnreadable { path, .. } if path.ends_with("isolab-tiny.elf")),
        "{e}"
    );

    let mut script = tempfile::NamedTempFile::new().unwrap();
    script.write_all(b"#!/bin/sh\necho not a guest\n").unwrap();
    cfg.image = microvm::GuestImage::Tiny {
        elf: script.path().into(),
        cmdline: String::new(),
    };
    let e = microvm::run(&cfg).unwrap_err();
    assert!(matches!(e, Error::ImageNotElf { .. }), "{e}");

    // A network device needs the Linux guest; a tap name that cannot be
    // an interface is refused by name, before KVM is touched.
    let net = microvm::NetConfig {
        tap: "no/such tap".into(),
        mac: [2, 0, 0, 0, 0, 1],
        guest: std::net::Ipv4Addr::new(10, 0, 0, 2),
        host: std::net::Ipv4Addr::new(10, 0, 0, 1),
        prefix: 30,
    };
    cfg = common::config(&img);
    cfg.net = Some(net.clone());
    assert!(matches!(microvm::run(&cfg), Err(Error::NetNeedsLinux)));
    cfg.image = microvm::GuestImage::Linux(microvm::boot::linux::LinuxBoot {
        kernel: "/nonexistent/vmlinux".into(),
        initramfs: None,
        cmdline: String::new(),
    });
    let e = microvm::run(&cfg).unwrap_err();
    assert!(
        matches!(&e, Error::TapUnavailable { name, .. } if name == "no/such tap"),
        "{e}"
    );

    cfg = common::config(&img);
    cfg.disk = Some("/nonexistent/disk.img".into());
    let e = microvm::run(&cfg).unwrap_err();
    assert!(
        matches!(&e, Error::DiskUnreadable { path, .. } if path.ends_with("disk.img")),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    cfg.disk = Some(dir.path().into());
    let e = microvm::run(&cfg).unwrap_err();
    assert!(matches!(e, Error::DiskUnreadable { .. }), "{e}");

    cfg = common::config(&img);
    cfg.image = microvm::GuestImage::Tiny {
        elf: img.path().into(),
        cmdline: "x".repeat(1 << 17),
    };
    if common::kvm("bad_input_gets_specific_errors (command line)") {
        let e = microvm::run(&cfg).unwrap_err();
        assert!(matches!(e, Error::CmdlineTooLong { .. }), "{e}");
    }
}
