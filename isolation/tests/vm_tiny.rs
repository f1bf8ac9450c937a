//! End-to-end tests of the tiny guest on our VMM (needs a usable /dev/kvm).
//!
//! The hostile guest modes (`hostile-io`, `hostile-virtio`) exist only for
//! these tests; see guest/tiny/README.md.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use common::{assert_io_size, console, limits_s, probes};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use isolation::vm_tiny::VmTiny;
use isolation::{Exit, Invocation, Isolation, IsolationError, IsolationKind};
use workload::kernels::cpu::{CpuParams, checksum};
use workload::schema::PlatformKind;

fn kvm(test: &str) -> bool {
    hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable())
}

#[test]
fn the_guest_disk_is_sized_by_io_size() {
    if !kvm("the_guest_disk_is_sized_by_io_size") {
        return;
    }
    // An empty file as the target: the disk is grown to --io-size.
    let file = tempfile::NamedTempFile::new().unwrap();
    let target = file.path().display().to_string();
    let args = [
        "io",
        "--io-size",
        "3M",
        "--reps",
        "1",
        "--io-rand-ops",
        "8",
        "--io-target",
        &target,
    ];
    let o = VmTiny::new().run(&probes(&args), &limits_s(60)).unwrap();
    assert!(o.exit.success(), "{:?}\n{}", o.exit, console(&o));
    assert_eq!(std::fs::metadata(file.path()).unwrap().len(), 3 << 20);
    assert_io_size(&o, 3 << 20);
}

fn image() -> std::path::PathBuf {
    isolation::artifacts::tiny_guest_image().expect("bench/build.rs builds the tiny guest")
}

/// A guest run straight on the VMM, for the hostile modes whose device-level
/// facts (stray I/O, refused requests) the `Isolation` outcome summarises.
fn raw_run(cmdline: &str, disk: Option<&std::path::Path>) -> microvm::VmOutcome {
    let mut config = microvm::VmConfig::tiny(image(), cmdline);
    config.timeout = Duration::from_secs(30);
    config.disk = disk.map(|d| d.to_path_buf());
    microvm::run(&config).expect("the VMM starts the tiny guest")
}

#[test]
fn every_probe_runs_in_the_tiny_guest() {
    if !kvm("every_probe_runs_in_the_tiny_guest") {
        return;
    }
    let inv = probes(&[
        "all",
        "--reps",
        "2",
        "--cpu-size",
        "64K",
        "--cpu-rounds",
        "4",
        "--mem-size",
        "4M",
        "--stream-size",
        "1M",
        "--syscall-iters",
        "500",
        "--io-size",
        "2M",
        "--io-rand-ops",
        "32",
        "--fsync-ops",
        "2",
        "--idle-ms",
        "10",
    ]);
    let o = VmTiny::new().run(&inv, &limits_s(120)).unwrap();
    assert_eq!(o.kind, IsolationKind::VmTiny);
    assert!(o.exit.success(), "{:?}\nconsole:\n{}", o.exit, console(&o));
    let seen: BTreeSet<&str> = o.results.iter().map(|r| r.probe.as_str()).collect();
    for probe in ["ready", "cpu", "mem", "syscall", "io", "idle"] {
        assert!(seen.contains(probe), "no {probe} result in {seen:?}");
    }
    assert_eq!(o.results[0].probe, "ready", "ready comes first");
    assert!(o.results.iter().all(|r| r.platform == PlatformKind::Bare));
    let syscall = o.results.iter().find(|r| r.probe == "syscall").unwrap();
    assert_eq!(syscall.kind.as_deref(), Some("vmexit"));
    assert!(syscall.value > 0.0, "a VM exit takes time: {syscall:?}");
    let io: Vec<_> = o.results.iter().filter(|r| r.probe == "io").collect();
    assert!(io.iter().all(|r| r.value > 0.0), "{io:?}");

    let boot = o.boot.expect("the guest wrote the ready marker");
    let setup = boot.setup.expect("VMM set-up time is split out");
    assert!(setup <= boot.total, "{boot:?}");
    assert!(o.accounting.overhead_bytes.unwrap() > 0);
    assert!(
        o.accounting.guest_touched_bytes.unwrap() >= 4 << 20,
        "the mem probe touched 4 MiB"
    );
}

#[test]
fn cpu_checksum_equals_the_in_process_one() {
    if !kvm("cpu_checksum_equals_the_in_process_one") {
        return;
    }
    let o = VmTiny::new()
        .run(
            &probes(&[
                "cpu",
                "--reps",
                "2",
                "--cpu-size",
                "256K",
                "--cpu-rounds",
                "3",
            ]),
            &limits_s(60),
        )
        .unwrap();
    assert!(o.exit.success(), "{:?}\n{}", o.exit, console(&o));
    let cpu = o
        .results
        .iter()
        .find(|r| r.probe == "cpu")
        .expect("a cpu result");
    let expected = checksum(CpuParams {
        size: 256 << 10,
        rounds: 3,
    })
    .unwrap();
    assert_eq!(cpu.checksum.as_deref(), Some(expected.as_str()));
}

#[test]
fn timeout_stops_a_guest_that_never_ends() {
    if !kvm("timeout_stops_a_guest_that_never_ends") {
        return;
    }
    let start = Instant::now();
    let o = VmTiny::new()
        .run(&probes(&["idle", "--idle-ms", "86400000"]), &limits_s(2))
        .unwrap();
    assert_eq!(o.exit, Exit::Timeout);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        o.results.first().map(|r| r.probe.as_str()),
        Some("ready"),
        "ready was printed before idling"
    );
}

#[test]
fn garbage_on_the_isolab_device_is_a_clean_error() {
    if !kvm("garbage_on_the_isolab_device_is_a_clean_error") {
        return;
    }
    // The hostile mode is a guest command line, not a probe configuration,
    // so it runs straight on the VMM; its output read as `VmTiny::run` reads
    // it makes the malformed result line a specific error.
    let raw = raw_run("hostile-io", None);
    match isolation::parse_results(&raw.output) {
        Err(IsolationError::BadResult { line, .. }) => assert!(line.contains("garbage"), "{line}"),
        other => panic!("expected a malformed-result error, got {other:?}"),
    }
    // On the VMM: every refused access was counted, and the exit status
    // written after the garbage still arrived intact.
    assert_eq!(
        raw.exit,
        microvm::VmExit::GuestExit { code: 0x1234 },
        "{}",
        String::from_utf8_lossy(&raw.serial)
    );
    assert!(raw.stats.stray_io >= 10, "{:?}", raw.stats);
    // The VMM is still sound: a normal run right after works.
    let o = VmTiny::new()
        .run(&probes(&["ready"]), &limits_s(30))
        .unwrap();
    assert!(o.exit.success(), "{:?}", o.exit);
}

#[test]
fn hostile_virtio_descriptors_are_refused_and_the_device_keeps_working() {
    if !kvm("hostile_virtio_descriptors_are_refused_and_the_device_keeps_working") {
        return;
    }
    let disk = tempfile::NamedTempFile::new().unwrap();
    disk.as_file().set_len(1 << 20).unwrap();
    let raw = raw_run("hostile-virtio", Some(disk.path()));
    let log = String::from_utf8_lossy(&raw.serial).into_owned();
    // The guest exits with the number of cases the device mishandled.
    assert_eq!(raw.exit, microvm::VmExit::GuestExit { code: 0 }, "{log}");
    for case in [
        "buffer-outside-ram",
        "huge-length",
        "past-end-of-disk",
        "descriptor-loop",
        "next-out-of-range",
        "head-out-of-range",
        "status-outside-ram",
        "avail-index-jump",
    ] {
        assert!(
            log.contains(&format!("hostile-virtio: {case}: ")),
            "{case} missing from:\n{log}"
        );
    }
    assert!(raw.stats.blk_bad_requests >= 6, "{:?}", raw.stats);
    assert_eq!(
        std::fs::metadata(disk.path()).unwrap().len(),
        1 << 20,
        "the disk was not resized"
    );
    // A fresh VM on the same VMM code does real I/O again, and its disk in
    // the io target directory leaves nothing behind.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().display().to_string();
    let args = [
        "io",
        "--reps",
        "1",
        "--io-size",
        "1M",
        "--io-rand-ops",
        "8",
        "--fsync-ops",
        "1",
        "--io-target",
        &target,
    ];
    let o = VmTiny::new().run(&probes(&args), &limits_s(60)).unwrap();
    assert!(o.exit.success(), "{:?}\n{}", o.exit, console(&o));
    assert!(o.results.iter().any(|r| r.probe == "io"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files left in the io target"
    );
}

#[test]
fn a_missing_or_non_elf_image_is_a_specific_error() {
    if !kvm("a_missing_or_non_elf_image_is_a_specific_error") {
        return;
    }
    let e = VmTiny::with_image("/nonexistent/isolab-tiny.elf")
        .run(&probes(&["ready"]), &limits_s(10))
        .unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/isolab-tiny.elf"),
        "{e}"
    );
    let not_elf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_elf.path(), b"#!/bin/sh\necho not an ELF\n").unwrap();
    let e = VmTiny::with_image(not_elf.path())
        .run(&probes(&["ready"]), &limits_s(10))
        .unwrap_err();
    assert!(matches!(e, IsolationError::Vm(_)), "{e:?}");
}

#[test]
fn a_bad_probe_argument_is_refused_before_the_guest_starts() {
    // The guest parses its command line with the same parser, so a
    // configuration that parsed here always parses there.
    let e = Invocation::probes(["cpu", "--no-such-option", "1"]).unwrap_err();
    assert!(e.to_string().contains("--no-such-option"), "{e}");
}

#[test]
fn the_same_image_boots_under_qemu_microvm_through_pvh() {
    let test = "the_same_image_boots_under_qemu_microvm_through_pvh";
    if !kvm(test) {
        return;
    }
    let qemu = hostcaps::peers::which("qemu-system-x86_64");
    let found = qemu
        .clone()
        .ok_or_else(|| "qemu-system-x86_64 is not installed".to_string());
    if !hostcaps::testing::require(test, "qemu", found.map(|_| ())) {
        return;
    }
    let out = std::process::Command::new(qemu.unwrap())
        .args([
            "-M",
            "microvm,x-option-roms=off,isa-serial=on,rtc=off",
            "-enable-kvm",
        ])
        .args([
            "-cpu",
            "host,-arch-capabilities",
            "-m",
            "128M",
            "-nodefaults",
            "-no-user-config",
        ])
        .args([
            "-nographic",
            "-serial",
            "stdio",
            "-device",
            "isa-debug-exit,iobase=0x501",
        ])
        .arg("-kernel")
        .arg(image())
        .args(["-append", "cpu --reps 1 --cpu-size 64K --cpu-rounds 2"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // isa-debug-exit reports (status << 1) | 1: status 0 is exit code 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = isolation::parse_results(&out.stdout).unwrap();
    assert_eq!(results[0].probe, "ready", "{text}");
    let expected = checksum(CpuParams {
        size: 64 << 10,
        rounds: 2,
    })
    .unwrap();
    assert_eq!(
        results[1].checksum.as_deref(),
        Some(expected.as_str()),
        "{text}"
    );
}
