//! Booting the project's real Linux guest kernel through `microvm::run`.
//!
//! On every KVM host the kernel must get far enough to print our command line
//! and e820 map over the serial console. On a software-assisted KVM it then
//! stops at its first exception, which the VMM must report as the host's
//! limitation; where Linux guests are supported the full boot is checked too.
//!
//! The kernel comes from `ISOLAB_KERNEL` or the build cache that
//! `isolab kernel build` fills (`$XDG_CACHE_HOME/isolab/kernel/<key>/vmlinux`).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::path::{Path, PathBuf};
use std::time::Duration;

use hostcaps::kvm::KvmKind;
use microvm::boot::initramfs::Initramfs;
use microvm::boot::linux::{CmdlineBuilder, LinuxBoot, LinuxError};
use microvm::{Error, GuestImage, VmConfig, VmExit};

const MIB: u64 = 1 << 20;

/// The guest kernel to boot, or why there is none.
fn guest_kernel() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ISOLAB_KERNEL").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("ISOLAB_KERNEL={} does not exist", p.display()))
        };
    }
    let root = std::env::var_os("XDG_CACHE_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .ok_or("neither XDG_CACHE_HOME nor HOME is set")?;
    let newest = std::fs::read_dir(root.join("isolab").join("kernel"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("vmlinux"))
        .filter(|v| v.is_file())
        .max_by_key(|v| v.metadata().and_then(|m| m.modified()).ok());
    newest.ok_or_else(|| "no guest kernel built: run `isolab kernel build`".to_string())
}

fn kernel(test: &str) -> Option<PathBuf> {
    if !hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable()) {
        return None;
    }
    let k = guest_kernel();
    let ok = k.as_ref().map(|_| ()).map_err(Clone::clone);
    hostcaps::testing::require(test, "guest-kernel", ok).then(|| k.unwrap())
}

/// Whether this host can run a Linux guest past its first interrupt
/// (microvm's functional probe verdict).
fn linux_guest(test: &str) -> bool {
    let ok = match microvm::probe::functional() {
        Ok(p) if p.linux_guest_supported() => Ok(()),
        Ok(p) => Err(format!(
            "needs a host that can boot a Linux guest: here guest kernel code is {:.0}x slower \
             and exceptions delivered = {} ({})",
            p.cpl0_slowdown, p.exceptions_delivered, p.exception_detail
        )),
        Err(e) => Err(format!("KVM functional probe failed: {e}")),
    };
    hostcaps::testing::require(test, "linux-guest", ok)
}

fn config(kernel: &Path, initramfs: Option<Vec<u8>>, cmdline: String, mem: u64) -> VmConfig {
    VmConfig {
        memory_bytes: mem,
        vcpus: 1,
        image: GuestImage::Linux(LinuxBoot {
            kernel: kernel.into(),
            initramfs,
            cmdline,
        }),
        disk: None,
        timeout: Duration::from_secs(240),
        serial_echo: false,
        hugepages: false,
        net: None,
    }
}

fn busybox_initramfs() -> Option<Vec<u8>> {
    let bb = std::fs::read("/bin/busybox").ok()?;
    let mut fs = Initramfs::with_init(bb.clone()).unwrap();
    fs.busybox(bb, &["sh", "echo", "reboot"]).unwrap();
    Some(fs.to_bytes().unwrap())
}

#[test]
fn kernel_prints_our_command_line_and_e820_map() {
    let test = "kernel_prints_our_command_line_and_e820_map";
    let Some(kernel) = kernel(test) else { return };
    let mem = 128 * MIB;
    // A marker only this run puts on the command line.
    let marker = format!("isolab.test={}", std::process::id());
    let cmdline = CmdlineBuilder::new().params(&marker).build().unwrap();
    let initrd = Initramfs::with_init(b"\x7fELF never reached here".to_vec()).unwrap();
    let cfg = config(
        &kernel,
        Some(initrd.to_bytes().unwrap()),
        cmdline.clone(),
        mem,
    );
    let out = microvm::run(&cfg).unwrap();
    let serial = String::from_utf8_lossy(&out.serial);

    assert!(
        serial.contains("Linux version 6.1"),
        "no kernel banner:\n{serial}"
    );
    assert!(
        serial.contains(&format!("Command line: {cmdline}")),
        "our command line is not on the console:\n{serial}"
    );
    for line in [
        "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
        "BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved",
        "BIOS-e820: [mem 0x0000000000100000-0x0000000007ffffff] usable",
    ] {
        assert!(serial.contains(line), "missing `{line}`:\n{serial}");
    }
    assert_eq!(
        serial.matches("BIOS-e820:").count(),
        3,
        "extra e820 entries:\n{serial}"
    );

    match hostcaps::kvm::facts().kind {
        KvmKind::SoftwareAssisted => assert!(
            matches!(out.exit, VmExit::HostLimitation { .. }),
            "expected the host limitation, got: {}",
            out.exit.explain()
        ),
        // The fake /init cannot run: the kernel panics and panic=1 resets.
        _ => assert_eq!(out.exit, VmExit::Reset, "{}", out.exit.explain()),
    }
    println!(
        "exit: {}\ntimings: {:?}\nconsole:\n{serial}",
        out.exit.explain(),
        out.timings
    );
}

#[test]
fn full_boot_runs_init_and_powers_off() {
    let test = "full_boot_runs_init_and_powers_off";
    let Some(kernel) = kernel(test) else { return };
    if !linux_guest(test) {
        return;
    }
    let Some(initrd) = busybox_initramfs() else {
        hostcaps::testing::require(
            test,
            "busybox",
            Err("needs /bin/busybox (busybox-static)".into()),
        );
        return;
    };
    let cmdline = CmdlineBuilder::new()
        .params("rdinit=/bin/sh")
        .init_args(["-c", "echo ISOLAB-INIT-RAN; reboot -f"])
        .build()
        .unwrap();
    let out = microvm::run(&config(&kernel, Some(initrd), cmdline, 128 * MIB)).unwrap();
    let serial = String::from_utf8_lossy(&out.serial);
    assert!(serial.contains("Run /bin/sh as init process"), "{serial}");
    assert!(
        serial.contains("ISOLAB-INIT-RAN"),
        "init did not run:\n{serial}"
    );
    assert_eq!(out.exit, VmExit::Reset, "{}", out.exit.explain());
    assert!(!serial.contains("Kernel panic"), "{serial}");
}

#[test]
fn kernel_panic_ends_in_a_reset_with_the_panic_on_the_console() {
    let test = "kernel_panic_ends_in_a_reset_with_the_panic_on_the_console";
    let Some(kernel) = kernel(test) else { return };
    if !linux_guest(test) {
        return;
    }
    // No initramfs and no root device: the kernel cannot find an init.
    let cmdline = CmdlineBuilder::new().build().unwrap();
    let out = microvm::run(&config(&kernel, None, cmdline, 64 * MIB)).unwrap();
    let serial = String::from_utf8_lossy(&out.serial);
    assert!(serial.contains("Kernel panic - not syncing"), "{serial}");
    assert_eq!(
        out.exit,
        VmExit::Reset,
        "panic=1 must reset: {}",
        out.exit.explain()
    );
}

#[test]
fn a_file_that_is_not_a_kernel_is_refused() {
    let test = "a_file_that_is_not_a_kernel_is_refused";
    if !hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable()) {
        return;
    }
    let bogus = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bogus.path(), b"#!/bin/sh\necho I am not a kernel\n").unwrap();
    let cfg = config(bogus.path(), None, "console=ttyS0".into(), 64 * MIB);
    match microvm::run(&cfg) {
        Err(Error::Linux(LinuxError::NotAKernel { path })) => assert_eq!(path, bogus.path()),
        other => panic!("expected NotAKernel, got {other:?}"),
    }
}

#[test]
fn an_initramfs_larger_than_guest_memory_is_refused() {
    let test = "an_initramfs_larger_than_guest_memory_is_refused";
    let Some(kernel) = kernel(test) else { return };
    let big = vec![0u8; (80 * MIB) as usize];
    let cfg = config(&kernel, Some(big), "console=ttyS0".into(), 64 * MIB);
    match microvm::run(&cfg) {
        Err(Error::Linux(LinuxError::InitramfsTooLarge { size, .. })) => assert_eq!(size, 80 * MIB),
        other => panic!("expected InitramfsTooLarge, got {other:?}"),
    }
}

#[test]
fn a_command_line_longer_than_the_kernel_accepts_is_refused() {
    let test = "a_command_line_longer_than_the_kernel_accepts_is_refused";
    let Some(kernel) = kernel(test) else { return };
    let long = format!("console=ttyS0 {}", "isolab.pad=x ".repeat(400));
    let cfg = config(&kernel, None, long.clone(), 64 * MIB);
    match microvm::run(&cfg) {
        Err(Error::Linux(LinuxError::CmdlineTooLong { len, max })) => {
            assert_eq!(len, long.len());
            assert_eq!(max, 2047);
        }
        other => panic!("expected CmdlineTooLong, got {other:?}"),
    }
}

#[test]
fn the_real_bzimage_loads_with_its_64_bit_entry_and_header() {
    use microvm::boot::linux::{KernelFormat, ZERO_PAGE_START, detect_format, load};
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    let test = "the_real_bzimage_loads_with_its_64_bit_entry_and_header";
    // No KVM needed: only the loader and guest memory.
    let bz = guest_kernel().and_then(|v| {
        let b = v.with_file_name("bzImage");
        b.is_file()
            .then_some(b)
            .ok_or_else(|| format!("no bzImage next to {}", v.display()))
    });
    let ok = bz.as_ref().map(|_| ()).map_err(Clone::clone);
    if !hostcaps::testing::require(test, "guest-kernel", ok) {
        return;
    }
    let bz = bz.unwrap();
    assert_eq!(detect_format(&bz).unwrap(), KernelFormat::BzImage);
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), (128 * MIB) as usize)]).unwrap();
    let boot = LinuxBoot {
        kernel: bz.clone(),
        initramfs: Some(vec![0; 4096]),
        cmdline: "console=ttyS0".into(),
    };
    let entry = load(&mem, &boot).unwrap();
    assert_eq!(
        entry.entry,
        GuestAddress(0x10_0200),
        "startup_64 of the decompressor"
    );
    let zp = ZERO_PAGE_START;
    let version: u16 = mem.read_obj(GuestAddress(zp + 0x206)).unwrap();
    let xloadflags: u16 = mem.read_obj(GuestAddress(zp + 0x236)).unwrap();
    let init_size: u32 = mem.read_obj(GuestAddress(zp + 0x260)).unwrap();
    let magic: u32 = mem.read_obj(GuestAddress(zp + 0x202)).unwrap();
    assert_eq!(magic, u32::from_le_bytes(*b"HdrS"));
    assert!(version >= 0x020c, "protocol {version:#x}");
    assert_eq!(xloadflags & 1, 1, "XLF_KERNEL_64");
    assert!(u64::from(init_size) > std::fs::metadata(&bz).unwrap().len());
    // The payload (after the setup sectors) is at 1 MiB.
    let setup_sects = std::fs::read(&bz).unwrap()[0x1f1] as usize;
    let file = std::fs::read(&bz).unwrap();
    let payload = &file[(setup_sects + 1) * 512..][..64];
    let mut got = [0u8; 64];
    mem.read_slice(&mut got, GuestAddress(0x10_0000)).unwrap();
    assert_eq!(&got[..], payload);
}
