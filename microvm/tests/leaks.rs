//! 200 consecutive VM runs leave no fd, thread or mapping behind. (The VMM
//! creates no files at all: guest RAM is anonymous memory.) Alone in its
//! test binary so no other test's threads or fds disturb the counts.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::time::Duration;

use common::asm;
use microvm::VmExit;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn two_hundred_runs_leave_nothing_behind() {
    if !common::kvm("two_hundred_runs_leave_nothing_behind") {
        return;
    }
    let mut code = asm::outb(0x500, 1);
    code.extend(asm::outb(0x3f8, b'x'));
    code.extend(asm::exit(0));
    let ok = common::image(&code);
    let spin = common::image(&asm::SPIN);
    let disk = tempfile::NamedTempFile::new().unwrap();
    disk.as_file().set_len(1 << 20).unwrap();

    let not_elf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_elf.path(), b"not an ELF").unwrap();
    let run = |i: usize| {
        if i % 10 == 5 {
            // A run that fails after its vCPU thread was started.
            let mut cfg = common::config(&not_elf);
            cfg.disk = Some(disk.path().into());
            let e = microvm::run(&cfg).unwrap_err();
            assert!(matches!(e, microvm::Error::ImageNotElf { .. }), "{e}");
            return;
        }
        let (img, timeout) = if i.is_multiple_of(25) {
            (&spin, true)
        } else {
            (&ok, false)
        };
        let mut cfg = common::config(img);
        if timeout {
            cfg.timeout = Duration::from_millis(30);
        }
        if i.is_multiple_of(2) {
            cfg.disk = Some(disk.path().into());
        }
        let out = microvm::run(&cfg).unwrap();
        let want = if timeout {
            VmExit::Timeout
        } else {
            VmExit::GuestExit { code: 0 }
        };
        assert_eq!(out.exit, want, "run {i}");
    };
    // Warm up: the signal handler and the allocator's per-thread arenas are
    // set up once per process, not per run.
    for i in 0..5 {
        run(i);
    }
    let before = (count("/proc/self/fd"), count("/proc/self/task"), maps());
    for i in 0..200 {
        run(i);
    }
    let after = (count("/proc/self/fd"), count("/proc/self/task"), maps());
    assert_eq!(before.0, after.0, "fds before/after");
    assert_eq!(before.1, after.1, "threads before/after");
    assert!(
        after.2 <= before.2 + 2,
        "mappings grew from {} to {}",
        before.2,
        after.2
    );
}
