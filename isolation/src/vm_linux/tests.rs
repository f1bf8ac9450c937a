//! `prepare` and `interpret` without a VM: the configuration a run would
//! use, and how recorded VMM outcomes become the common `Outcome`.

use std::time::Duration;

use microvm::{ExitStats, VmMemory, VmTimings};

use super::*;

fn prepared(program: bool) -> Prepared {
    Prepared {
        config: VmConfig {
            memory_bytes: 64 << 20,
            vcpus: 1,
            image: GuestImage::Linux(LinuxBoot {
                kernel: "/k".into(),
                initramfs: None,
                cmdline: String::new(),
            }),
            disk: None,
            timeout: Duration::from_secs(5),
            serial_echo: false,
            hugepages: false,
            net: None,
        },
        kernel_source: KernelSource::Explicit,
        notes: vec!["guest kernel: /k".into()],
        disk: None,
        program,
        bundle: false,
    }
}

fn outcome(exit: VmExit, serial: &str, ready: Option<Duration>) -> VmOutcome {
    VmOutcome {
        exit,
        serial: serial.as_bytes().to_vec(),
        output: Vec::new(),
        timings: VmTimings {
            setup: Duration::from_millis(5),
            ready,
            init: None,
            total: Duration::from_millis(200),
        },
        memory: VmMemory {
            vmm_overhead_bytes: 1 << 20,
            guest_touched_bytes: 20 << 20,
        },
        stats: ExitStats::default(),
    }
}

fn ready_line() -> String {
    serde_json::to_string(&workload::schema::ResultLine {
        schema: workload::schema::SCHEMA_VERSION,
        probe: "ready".into(),
        metric: "boot".into(),
        value: 1.0,
        unit: "ns".into(),
        samples: vec![1.0],
        platform: workload::schema::PlatformKind::Linux,
        checksum: None,
        kind: None,
        extra: Default::default(),
    })
    .unwrap()
}

#[test]
fn probe_run_separates_results_from_the_kernel_log_and_splits_boot_time() {
    let ready = ready_line();
    let serial = format!(
        "[    0.000000] Linux version 6.1\n[    0.060000] Run /init as init process\nnot json\n{ready}\n"
    );
    let out = outcome(
        VmExit::GuestExit { code: 0 },
        &serial,
        Some(Duration::from_millis(90)),
    );
    let o = interpret(&prepared(false), out).unwrap();
    assert_eq!(o.exit, Exit::Exited { code: 0 });
    assert_eq!(o.stdout, format!("{ready}\n").into_bytes());
    assert_eq!(o.results.len(), 1);
    assert_eq!(o.results[0].probe, "ready");
    let console = String::from_utf8(o.console).unwrap();
    assert!(console.contains("Run /init as init process"));
    assert!(console.contains("not json"));
    assert!(!console.contains("schema"));
    let boot = o.boot.unwrap();
    assert_eq!(boot.total, Duration::from_millis(90));
    assert_eq!(boot.setup, Some(Duration::from_millis(5)));
    assert_eq!(boot.kernel, Some(Duration::from_millis(60)));
    assert_eq!(boot.init, None);
    assert_eq!(o.accounting.guest_touched_bytes, Some(20 << 20));
}

#[test]
fn the_init_marker_splits_boot_on_the_hosts_clock() {
    let ready = ready_line();
    // The kernel log says 60 ms, but the host's clock wins when init marked.
    let serial = format!("[    0.060000] Run /init as init process\n{ready}\n");
    let mut out = outcome(
        VmExit::GuestExit { code: 0 },
        &serial,
        Some(Duration::from_millis(90)),
    );
    out.timings.init = Some(Duration::from_millis(80));
    let boot = interpret(&prepared(false), out).unwrap().boot.unwrap();
    assert_eq!(boot.setup, Some(Duration::from_millis(5)));
    assert_eq!(boot.kernel, Some(Duration::from_millis(75)));
    assert_eq!(boot.init, Some(Duration::from_millis(10)));
}

#[test]
fn output_port_stream_wins_over_console_json() {
    let mut out = outcome(VmExit::GuestExit { code: 3 }, "{\"x\":1}\n", None);
    out.output = b"hello\n".to_vec();
    let o = interpret(&prepared(false), out).unwrap();
    assert_eq!(o.stdout, b"hello\n");
    assert_eq!(o.exit, Exit::Exited { code: 3 });
    assert_eq!(o.boot, None);
}

#[test]
fn program_exit_status_comes_from_the_init_panic() {
    let serial = "hi from sh\n[    0.500000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000700\n";
    let o = interpret(&prepared(true), outcome(VmExit::Reset, serial, None)).unwrap();
    assert_eq!(o.exit, Exit::Exited { code: 7 });
    assert_eq!(o.stdout, b"hi from sh\n");
    assert!(o.results.is_empty());
}

#[test]
fn kernel_panic_and_host_limitation_are_vm_stops_with_reasons() {
    let serial = "[    0.1] Kernel panic - not syncing: No working init found.\n";
    match interpret(&prepared(false), outcome(VmExit::Reset, serial, None))
        .unwrap()
        .exit
    {
        Exit::VmStopped { detail } => assert!(detail.contains("No working init found"), "{detail}"),
        other => panic!("{other:?}"),
    }
    let o = interpret(
        &prepared(false),
        outcome(
            VmExit::HostLimitation {
                detail: "kvm_pvm".into(),
            },
            "",
            None,
        ),
    )
    .unwrap();
    assert!(matches!(&o.exit, Exit::VmStopped { detail } if detail.contains("kvm_pvm")));
    assert!(
        o.notes
            .iter()
            .any(|n| n.contains("limitation of this host"))
    );
    let o = interpret(&prepared(false), outcome(VmExit::Timeout, "", None)).unwrap();
    assert_eq!(o.exit, Exit::Timeout);
}

#[test]
fn prepare_builds_cmdline_initramfs_and_config() {
    let Ok(workload) = crate::artifacts::workload_binary() else {
        hostcaps::testing::require(
            "prepare_builds_cmdline_initramfs_and_config",
            "workload",
            Err("workload binary not built".into()),
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let kernel = tmp.path().join("vmlinux");
    std::fs::write(&kernel, b"\x7fELF").unwrap();
    let vm = VmLinux {
        kernel: Some(kernel.clone()),
        extra_cmdline: "loglevel=4".into(),
        serial_echo: false,
        quiet: true,
        ..VmLinux::default()
    };
    let limits = Limits {
        memory: Some(96 << 20),
        cpus: Some(1.5),
        ..Limits::default()
    };
    let target = tmp.path().display().to_string();
    let inv = Invocation::probes(["cpu", "io", "--io-size", "4M", "--io-target", &target]).unwrap();
    let p = prepare(&vm, &inv, &limits, &tmp.path().join("cache")).unwrap();
    assert_eq!(p.config.memory_bytes, 96 << 20);
    assert_eq!(p.config.vcpus, 2);
    assert_eq!(p.kernel_source, KernelSource::Explicit);
    let GuestImage::Linux(lb) = &p.config.image else {
        panic!("not a Linux image")
    };
    assert_eq!(lb.kernel, kernel);
    assert!(lb.cmdline.contains("loglevel=4"), "{}", lb.cmdline);
    assert!(lb.cmdline.contains(" quiet "), "{}", lb.cmdline);
    // The disk is declared by microvm's builder, which creates the device.
    assert!(p.config.disk.is_some());
    assert!(
        lb.cmdline
            .ends_with(" -- cpu io --io-size 4M --io-target /dev/vda"),
        "{}",
        lb.cmdline
    );
    let initrd = lb.initramfs.as_ref().unwrap();
    let init = std::fs::read(workload).unwrap();
    assert!(
        initrd
            .windows(init.len().min(4096))
            .any(|w| w == &init[..init.len().min(4096)])
    );
    // The disk is an unnamed file in the io target, of --io-size bytes,
    // alive as long as the run.
    let disk = p.config.disk.clone().unwrap();
    let file = std::fs::read_link(&disk).unwrap();
    assert!(file.starts_with(tmp.path()), "{}", file.display());
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 4 << 20);
    drop(p);
    assert!(
        std::fs::read_link(&disk).map_or(true, |l| !l.starts_with(tmp.path())),
        "disk still open after the run"
    );
    // The initramfs is cached by content: one entry.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("cache/initramfs"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn prepare_runs_a_program_as_pid1_with_busybox() {
    let test = "prepare_runs_a_program_as_pid1_with_busybox";
    let ok = crate::artifacts::workload_binary()
        .map(|_| ())
        .map_err(|e| e.to_string());
    if !hostcaps::testing::require(test, "workload", ok) {
        return;
    }
    if !hostcaps::testing::require(
        test,
        "busybox",
        busybox().map(|_| ()).map_err(|e| e.to_string()),
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kernel = tmp.path().join("vmlinux");
    std::fs::write(&kernel, b"\x7fELF").unwrap();
    let vm = VmLinux {
        kernel: Some(kernel),
        ..VmLinux::new()
    };
    let inv = Invocation::Program {
        program: "sh".into(),
        args: vec!["-c".into(), "exit 3".into()],
    };
    let p = prepare(&vm, &inv, &Limits::default(), &tmp.path().join("cache")).unwrap();
    assert!(p.program);
    let GuestImage::Linux(lb) = &p.config.image else {
        panic!("not a Linux image")
    };
    // The workload is init and runs the program (exec mode).
    assert!(!lb.cmdline.contains("rdinit="), "{}", lb.cmdline);
    assert!(
        lb.cmdline.ends_with(" -- exec sh -c \"exit 3\""),
        "{}",
        lb.cmdline
    );
    let initrd = String::from_utf8_lossy(lb.initramfs.as_ref().unwrap()).into_owned();
    assert!(initrd.contains("bin/busybox\0") && initrd.contains("bin/sh\0"));
    assert_eq!(p.config.memory_bytes, DEFAULT_MEMORY);
    assert_eq!(p.config.disk, None);
}
