//! The Linux-guest isolation end to end.
//!
//! Where this host cannot run a Linux guest (software-assisted KVM), `run`
//! must refuse at once with the reason, and the prepared VM must still boot
//! the real kernel as far as this host allows. Full runs are gated on the
//! `linux-guest` capability and skip with the reason elsewhere.

use std::time::Duration;

use bench::isolation::vm_linux::{self, VmLinux};
use bench::isolation::{Exit, Invocation, Isolation, IsolationError, IsolationKind, Limits};

fn kernel_built(test: &str) -> bool {
    let k = bench::kernel::resolve(None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    hostcaps::testing::require(test, "guest-kernel", k)
}

fn linux_guest(test: &str) -> bool {
    hostcaps::testing::require(test, "linux-guest", vm_linux::linux_guest_support())
}

#[test]
fn unsupported_host_refuses_with_the_reason() {
    let Err(why) = vm_linux::linux_guest_support() else {
        println!("this host supports Linux guests; nothing to refuse");
        return;
    };
    let err = VmLinux::new()
        .run(
            &Invocation::Probes(vec!["ready".into()]),
            &Limits::default(),
        )
        .unwrap_err();
    match err {
        IsolationError::Unsupported { kind, reason } => {
            assert_eq!(kind, IsolationKind::VmLinux);
            assert_eq!(reason, why);
        }
        other => panic!("expected Unsupported, got {other}"),
    }
}

#[test]
fn prepared_guest_boots_the_real_kernel_as_far_as_this_host_allows() {
    let test = "prepared_guest_boots_the_real_kernel_as_far_as_this_host_allows";
    if !hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable())
        || !kernel_built(test)
    {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let limits = Limits {
        memory: Some(128 << 20),
        timeout: Duration::from_secs(240),
        ..Limits::default()
    };
    let inv = Invocation::Probes(vec!["ready".into(), "cpu".into()]);
    let p = vm_linux::prepare(&VmLinux::new(), &inv, &limits, cache.path()).unwrap();
    let out = vm_linux::interpret(&p, microvm::run(&p.config).unwrap()).unwrap();
    let console = String::from_utf8_lossy(&out.console);
    assert!(console.contains("Command line: console=ttyS0"), "{console}");
    assert!(
        console.contains("isolab.vm -- ready cpu"),
        "probe arguments missing:\n{console}"
    );
    assert!(console.contains("BIOS-e820: [mem 0x0000000000100000-0x0000000007ffffff] usable"));
    if vm_linux::linux_guest_support().is_err() {
        match &out.exit {
            Exit::VmStopped { detail } => assert!(detail.contains("host limitation"), "{detail}"),
            other => panic!("expected the host limitation, got {other:?}"),
        }
        assert!(out.results.is_empty());
    } else {
        assert_eq!(out.exit, Exit::Exited { code: 0 }, "{console}");
        assert!(out.results.iter().any(|r| r.probe == "cpu"));
    }
}

#[test]
fn full_boot_runs_every_probe_and_powers_off() {
    let test = "full_boot_runs_every_probe_and_powers_off";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    let disk_dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        memory: Some(512 << 20),
        timeout: Duration::from_secs(300),
        io_target: Some(disk_dir.path().into()),
        ..Limits::default()
    };
    let out = VmLinux::new()
        .run(&Invocation::Probes(vec!["all".into()]), &limits)
        .unwrap();
    let console = String::from_utf8_lossy(&out.console);
    assert_eq!(out.exit, Exit::Exited { code: 0 }, "{console}");
    for probe in ["ready", "cpu", "mem", "syscall", "io", "idle"] {
        assert!(
            out.results.iter().any(|r| r.probe == probe),
            "no {probe} result:\n{console}"
        );
    }
    let boot = out.boot.expect("ready marker seen");
    let kernel = boot.kernel.expect("kernel printed when it started /init");
    assert!(boot.setup.unwrap() + kernel <= boot.total, "{boot:?}");
    assert!(out.accounting.guest_touched_bytes.unwrap() > 0);
    assert_eq!(
        std::fs::read_dir(disk_dir.path()).unwrap().count(),
        0,
        "scratch disk left behind"
    );
    println!("boot: {boot:?}");
}

#[test]
fn a_program_runs_under_busybox_with_its_exit_status() {
    let test = "a_program_runs_under_busybox_with_its_exit_status";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    let inv = Invocation::Program {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "echo isolab-says-hi; exit 3".into()],
    };
    let out = VmLinux::new().run(&inv, &Limits::default()).unwrap();
    assert_eq!(
        out.exit,
        Exit::Exited { code: 3 },
        "{}",
        String::from_utf8_lossy(&out.console)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("isolab-says-hi"));
}
