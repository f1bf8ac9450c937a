//! The Linux-guest isolation end to end.
//!
//! Where this host cannot run a Linux guest (software-assisted KVM), `run`
//! must refuse at once with the reason, and the prepared VM must still boot
//! the real kernel as far as this host allows. Full runs are gated on the
//! `linux-guest` capability and skip with the reason elsewhere.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use common::{assert_io_size, console, limits_s};
use std::time::Duration;

use isolation::vm_linux::{self, VmLinux};
use isolation::{Exit, Invocation, Isolation, IsolationError, IsolationKind, Limits};

fn kernel_built(test: &str) -> bool {
    let k = isolation::kernel::resolve(None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    hostcaps::testing::require(test, "guest-kernel", k)
}

fn linux_guest(test: &str) -> bool {
    hostcaps::testing::require(test, "linux-guest", vm_linux::linux_guest_support())
}

#[test]
fn unsupported_host_refuses_with_the_reason() {
    let _vm = vm_lock();
    let Err(why) = vm_linux::linux_guest_support() else {
        println!("this host supports Linux guests; nothing to refuse");
        return;
    };
    let err = VmLinux::new()
        .run(&Invocation::probes(["ready"]).unwrap(), &Limits::default())
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
    let _vm = vm_lock();
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
    let inv = Invocation::probes(["ready", "cpu"]).unwrap();
    let p = vm_linux::prepare(&VmLinux::new(), &inv, &limits, cache.path()).unwrap();
    let out = vm_linux::interpret(&p, microvm::run(&p.config).unwrap()).unwrap();
    let console = String::from_utf8_lossy(&out.console);
    assert!(console.contains("Command line: console=ttyS0"), "{console}");
    assert!(
        // `ready` always runs first, so the typed configuration does not name it.
        console.contains("isolab.vm -- cpu"),
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
    let _vm = vm_lock();
    let test = "full_boot_runs_every_probe_and_powers_off";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    let disk_dir = tempfile::tempdir().unwrap();
    // The default guest RAM must hold every probe.
    let limits = Limits {
        timeout: Duration::from_secs(300),
        ..Limits::default()
    };
    let target = disk_dir.path().display().to_string();
    let all = [
        "all",
        "--io-size",
        "8M",
        "--reps",
        "2",
        "--io-target",
        &target,
    ];
    let out = VmLinux::new()
        .run(&Invocation::probes(all).unwrap(), &limits)
        .unwrap();
    let console = String::from_utf8_lossy(&out.console);
    assert_eq!(out.exit, Exit::Exited { code: 0 }, "{console}");
    for probe in ["ready", "cpu", "mem", "syscall", "io", "idle"] {
        assert!(
            out.results.iter().any(|r| r.probe == probe),
            "no {probe} result:\n{console}"
        );
    }
    // The cpu checksum is the native one: same work, same answer.
    let cpu = Invocation::probes(["cpu", "--reps", "1"]).unwrap();
    let native = isolation::native::Native::new()
        .run(&cpu, &limits_s(60))
        .unwrap();
    let sum = |o: &isolation::Outcome| {
        o.results
            .iter()
            .find(|r| r.probe == "cpu")
            .and_then(|r| r.checksum.clone())
    };
    assert!(sum(&native).is_some());
    assert_eq!(sum(&out), sum(&native), "{console}");
    let boot = out.boot.expect("ready marker seen");
    let (kernel, init) = (
        boot.kernel.expect("init marked"),
        boot.init.expect("init marked"),
    );
    assert_eq!(boot.setup.unwrap() + kernel + init, boot.total, "{boot:?}");
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
    let _vm = vm_lock();
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

/// A Linux-guest run with these limits; the reasons it cannot run are the
/// caller's skip.
fn linux_run(inv: &Invocation, limits: &Limits) -> isolation::Outcome {
    VmLinux::new().run(inv, limits).unwrap()
}

fn program(args: &[&str]) -> Invocation {
    Invocation::Program {
        program: args[0].into(),
        args: args[1..].iter().map(|a| a.to_string()).collect(),
    }
}

/// What a VM run owns while it runs and must give back: its threads (vCPUs,
/// console echo) and its KVM descriptors. Counted while holding [`vm_lock`],
/// so no other test's VM is in the count.
fn footprint() -> (usize, usize) {
    let entries = |d: &str| {
        std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let threads = entries("/proc/self/task")
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.join("comm")).ok())
        .filter(|c| c.starts_with("vcpu") || c.starts_with("serial-echo"))
        .count();
    let kvm_fds = entries("/proc/self/fd")
        .iter()
        .filter_map(|f| std::fs::read_link(f).ok())
        .filter(|l| {
            let l = l.to_string_lossy();
            l.contains("kvm")
        })
        .count();
    (threads, kvm_fds)
}

/// [`footprint`] once it settles back to `before`, or after 5 s: a joined
/// thread's `/proc` entry can outlive `pthread_join` by a moment.
fn footprint_settled(before: (usize, usize)) -> (usize, usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = footprint();
        if now == before || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs this file's VMs one at a time, so [`footprint`] sees only its own.
fn vm_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn a_bzimage_boots_like_the_vmlinux() {
    let _vm = vm_lock();
    let test = "a_bzimage_boots_like_the_vmlinux";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    let (vmlinux, _) = isolation::kernel::resolve(None).unwrap();
    let vm = VmLinux {
        kernel: Some(vmlinux.with_file_name("bzImage")),
        ..VmLinux::new()
    };
    let out = vm
        .run(&Invocation::probes(["ready"]).unwrap(), &limits_s(240))
        .unwrap();
    assert_eq!(out.exit, Exit::Exited { code: 0 }, "{}", console(&out));
    let boot = out.boot.expect("the ready marker");
    assert!(boot.kernel.is_some() && boot.init.is_some(), "{boot:?}");
    assert!(
        out.notes.iter().any(|n| n.contains("bzImage")),
        "{:?}",
        out.notes
    );
}

#[test]
fn every_vcpu_comes_up() {
    let _vm = vm_lock();
    let test = "every_vcpu_comes_up";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    for cpus in [2u32, 4] {
        let limits = Limits {
            cpus: Some(f64::from(cpus)),
            ..limits_s(240)
        };
        let out = linux_run(&program(&["nproc"]), &limits);
        assert_eq!(out.exit, Exit::Exited { code: 0 }, "{}", console(&out));
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.trim(), cpus.to_string(), "{}", console(&out));
    }
}

#[test]
fn the_guest_disk_is_sized_by_io_size() {
    let _vm = vm_lock();
    let test = "the_guest_disk_is_sized_by_io_size";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    // An empty file as the target: the disk is grown to --io-size, so a
    // fixed-size disk would show here as the wrong length or a failed probe.
    let file = tempfile::NamedTempFile::new().unwrap();
    let target = file.path().display().to_string();
    let inv = Invocation::probes([
        "io",
        "--io-size",
        "3M",
        "--reps",
        "1",
        "--io-target",
        &target,
    ])
    .unwrap();
    let out = VmLinux::new().run(&inv, &limits_s(300)).unwrap();
    assert_eq!(out.exit, Exit::Exited { code: 0 }, "{}", console(&out));
    assert_eq!(std::fs::metadata(file.path()).unwrap().len(), 3 << 20);
    assert_io_size(&out, 3 << 20);
}

#[test]
fn the_io_probe_runs_on_a_loop_block_device() {
    let _vm = vm_lock();
    let test = "the_io_probe_runs_on_a_loop_block_device";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    let backing = tempfile::NamedTempFile::new().unwrap();
    backing.as_file().set_len(16 << 20).unwrap();
    let attach = std::process::Command::new("losetup")
        .args(["--find", "--show"])
        .arg(backing.path())
        .output()
        .unwrap();
    let ok = if attach.status.success() {
        Ok(())
    } else {
        Err(format!(
            "losetup failed: {}",
            String::from_utf8_lossy(&attach.stderr).trim()
        ))
    };
    if !hostcaps::testing::require(test, "loop", ok) {
        return;
    }
    let dev = String::from_utf8_lossy(&attach.stdout).trim().to_string();
    let limits = limits_s(300);
    let inv =
        Invocation::probes(["io", "--io-size", "8M", "--reps", "1", "--io-target", &dev]).unwrap();
    let out = VmLinux::new().run(&inv, &limits);
    let detached = std::process::Command::new("losetup")
        .args(["-d", &dev])
        .status()
        .unwrap();
    let out = out.unwrap();
    assert!(detached.success(), "losetup -d {dev}");
    assert_eq!(out.exit, Exit::Exited { code: 0 }, "{}", console(&out));
    assert!(out.results.iter().any(|r| r.metric == "seq_read_mb_per_s"));
    assert!(
        out.notes.iter().any(|n| n.contains(&dev)),
        "{:?}",
        out.notes
    );
}

#[test]
fn a_missing_program_is_127_and_a_panic_is_named() {
    let _vm = vm_lock();
    let test = "a_missing_program_is_127_and_a_panic_is_named";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    // The status travels from the guest's init over the exit port; the
    // 126 case takes the same path (workload's exec tests cover it).
    let out = linux_run(&program(&["/no/such/program"]), &limits_s(240));
    assert_eq!(out.exit, Exit::Exited { code: 127 }, "{}", console(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("cannot execute /no/such/program"), "{said}");
    // No init at all (and no root device): the kernel panics, and the run
    // says so with the kernel's own words.
    let vm = VmLinux {
        extra_cmdline: "rdinit=/nonexistent".into(),
        ..VmLinux::new()
    };
    let out = vm
        .run(&Invocation::probes(["ready"]).unwrap(), &limits_s(240))
        .unwrap();
    match &out.exit {
        Exit::VmStopped { detail } => {
            assert!(
                detail.starts_with("guest kernel panic: VFS: Unable to mount root fs"),
                "{detail}"
            )
        }
        other => panic!("expected a panic, got {other:?}\n{}", console(&out)),
    }
}

#[test]
fn a_guest_that_never_finishes_is_stopped_and_leaves_nothing() {
    let _vm = vm_lock();
    let test = "a_guest_that_never_finishes_is_stopped_and_leaves_nothing";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    let before = footprint();
    let out = linux_run(
        &program(&["/bin/sh", "-c", "while :; do :; done"]),
        &limits_s(45),
    );
    assert_eq!(out.exit, Exit::Timeout, "{}", console(&out));
    assert_eq!(
        footprint_settled(before),
        before,
        "threads or descriptors left behind"
    );
}

#[test]
fn a_guest_poweroff_ends_the_run_cleanly() {
    let _vm = vm_lock();
    let test = "a_guest_poweroff_ends_the_run_cleanly";
    if !linux_guest(test) || !kernel_built(test) {
        return;
    }
    let started = std::time::Instant::now();
    let timeout = 240;
    let out = linux_run(
        &program(&["/bin/sh", "-c", "echo going-down; poweroff -f"]),
        &limits_s(timeout),
    );
    assert_eq!(out.exit, Exit::Exited { code: 0 }, "{}", console(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("going-down"));
    assert!(
        started.elapsed() < Duration::from_secs(timeout / 2),
        "ended by the timeout?"
    );
}

#[test]
fn missing_truncated_and_non_kernel_files_are_specific_errors() {
    let _vm = vm_lock();
    let test = "missing_truncated_and_non_kernel_files_are_specific_errors";
    if !hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable())
        || !kernel_built(test)
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (vmlinux, _) = isolation::kernel::resolve(None).unwrap();
    let truncated = dir.path().join("vmlinux.cut");
    let head = std::fs::read(&vmlinux).unwrap();
    std::fs::write(&truncated, &head[..1 << 20]).unwrap();
    let script = dir.path().join("not-a-kernel");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let missing = dir.path().join("missing");
    let inv = Invocation::probes(["ready"]).unwrap();
    for (kernel, expect) in [
        (&missing, "does not exist"),
        (&truncated, "cannot load guest kernel"),
        (&script, "is not a Linux kernel"),
    ] {
        let vm = VmLinux {
            kernel: Some(kernel.clone()),
            ..VmLinux::new()
        };
        let before = footprint();
        let msg = match vm_linux::prepare(&vm, &inv, &limits_s(30), dir.path()) {
            Err(e) => e.to_string(),
            Ok(p) => microvm::run(&p.config).unwrap_err().to_string(),
        };
        assert!(msg.contains(expect), "{}: {msg}", kernel.display());
        assert!(msg.contains(&kernel.display().to_string()), "{msg}");
        assert_eq!(
            footprint_settled(before),
            before,
            "{msg}: threads or descriptors left"
        );
    }
}
