//! The VM route of an OCI bundle (`isolab run --isolation vm --bundle`),
//! in phases: on the host, reading the config, building the rootfs image
//! (ext4 by `mkfs.ext4 -d`, the route taken, beside an initramfs holding
//! the rootfs, the route not taken) and the initramfs with the process;
//! in the guest, VMM set-up, kernel (to `/init`), init (mounting the image
//! and switching root, to the ready marker) and exec (starting `true` and
//! its exit reaching the VMM). The guest phases run only where a Linux guest
//! boots; their names end in `-emulated` in the emulated test host.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use isolation::vm_linux::{self, VmLinux, bundle, rootfs_image};
use isolation::{Invocation, Limits};

/// A busybox bundle running `true`, as the tests use.
fn busybox_bundle() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in ["sh", "true", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    for dir in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
                    "args": ["true"], "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "hostname": "bench",
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
    });
    std::fs::write(d.path().join("config.json"), config.to_string()).unwrap();
    d
}

fn own_program() -> Invocation {
    Invocation::Program {
        program: String::new(),
        args: Vec::new(),
    }
}

/// Times `f` over criterion's iterations, `f` returning the measured span.
fn custom(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    f: impl Fn() -> Duration,
) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f()).sum())
    });
}

fn host_phases(c: &mut Criterion, dir: &Path) {
    let rootfs = dir.join("rootfs");
    let cache = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("vm_bundle/host");
    g.sampling_mode(SamplingMode::Flat);
    custom(&mut g, "config", || {
        let t = Instant::now();
        bundle::load(dir, &own_program()).unwrap();
        t.elapsed()
    });
    custom(&mut g, "image-ext4", || {
        let t = Instant::now();
        drop(rootfs_image::build(&rootfs).unwrap());
        t.elapsed()
    });
    custom(&mut g, "image-initramfs-alternative", || {
        let t = Instant::now();
        drop(rootfs_image::initramfs_of(&rootfs).unwrap());
        t.elapsed()
    });
    let (_, _, process) = bundle::load(dir, &own_program()).unwrap();
    let description = process.to_bytes().unwrap();
    custom(&mut g, "initramfs-with-process", || {
        let t = Instant::now();
        drop(bundle::initramfs_with(&description, cache.path()).unwrap());
        t.elapsed()
    });
    g.finish();
}

/// The guest phases of one boot: set-up, kernel, init, exec.
fn guest_run(vm: &VmLinux, dir: &Path, cache: &Path) -> [Duration; 4] {
    let limits = Limits {
        timeout: Duration::from_secs(240),
        ..Limits::default()
    };
    let (p, _) = bundle::prepare(vm, dir, &own_program(), &limits, cache).unwrap();
    let t = Instant::now();
    let out = microvm::run(&p.config).unwrap();
    let wall = t.elapsed();
    let o = vm_linux::interpret(&p, out).unwrap();
    assert!(o.exit.success(), "{:?}", o.exit);
    let boot = o.boot.unwrap();
    [
        boot.setup.unwrap(),
        boot.kernel.unwrap(),
        boot.init.unwrap(),
        wall.saturating_sub(boot.total),
    ]
}

fn guest_phases(c: &mut Criterion, dir: &Path) {
    if let Err(why) = vm_linux::linux_guest_support() {
        eprintln!("vm_bundle: guest phases skipped: {why}");
        return;
    }
    let suffix = if hostcaps::emulation::detect().is_some() {
        "-emulated"
    } else {
        ""
    };
    let cache = tempfile::tempdir().unwrap();
    let vm = VmLinux {
        bundle: Some(dir.into()),
        quiet: true,
        ..VmLinux::new()
    };
    let mut g = c.benchmark_group("vm_bundle/guest");
    g.sampling_mode(SamplingMode::Flat);
    for (i, phase) in ["setup", "kernel", "init", "exec"].into_iter().enumerate() {
        custom(&mut g, &format!("{phase}{suffix}"), || {
            guest_run(&vm, dir, cache.path())[i]
        });
    }
    g.finish();
}

fn vm_bundle(c: &mut Criterion) {
    let b = busybox_bundle();
    host_phases(c, b.path());
    guest_phases(c, b.path());
}

criterion_group! { name = benches; config = common::criterion(); targets = vm_bundle }
criterion_main!(benches);
