//! 200 consecutive runs (successes and set-up failures) leave no cgroup,
//! mount, process, fd, staging directory or network interface behind.
//! One test in its own binary, so no concurrent test disturbs the counts.
//! `ISOLAB_LEAK_RUNS` lowers the count (a multiple of 10) where runs are
//! slow, as in the emulated test host; the checks stay the same.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::path::Path;

use container::{ContainerSpec, Stdio};

#[derive(Debug, PartialEq, Eq)]
struct Counts {
    cgroups: usize,
    mounts: usize,
    children: usize,
    fds: usize,
    staging_dirs: usize,
    net_ifs: usize,
}

fn count_dir(dir: &Path, pred: impl Fn(&str) -> bool) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| pred(&e.file_name().to_string_lossy()))
                .count()
        })
        .unwrap_or(0)
}

fn counts() -> Counts {
    let me = std::process::id();
    let prefix = format!("isolab-{me}-");
    // Groups go below this process's own cgroup in each hierarchy.
    let cgroups = container::cgroup::parent_dirs()
        .iter()
        .map(|d| count_dir(d, |n| n.starts_with(&prefix)))
        .sum();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let children = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // Field 4 (after the parenthesised command) is the parent pid.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .map(str::to_string)
                == Some(me.to_string())
        })
        .count();
    let fds = count_dir(Path::new("/proc/self/fd"), |_| true);
    let staging_dirs = count_dir(&std::env::temp_dir(), |n| {
        n.starts_with(&format!("isolab-root-{prefix}"))
    });
    let net_ifs = count_dir(Path::new("/sys/class/net"), |_| true);
    Counts {
        cgroups,
        mounts,
        children,
        fds,
        staging_dirs,
        net_ifs,
    }
}

#[test]
fn two_hundred_runs_leave_nothing_behind() {
    if !common::ready("two_hundred_runs_leave_nothing_behind") {
        return;
    }
    let root = common::busybox_rootfs();
    let ok = ContainerSpec::with_rootfs(root.path(), "/bin/true")
        .stdout(Stdio::Null)
        .memory(64 << 20);
    let minimal = ContainerSpec::minimal("/bin/busybox")
        .program("true")
        .stdout(Stdio::Piped);
    let mut failing = ContainerSpec::with_rootfs(root.path(), "/bin/true");
    failing.cwd = "/missing".into();
    let runs: u32 = std::env::var("ISOLAB_LEAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(200, |n: u32| n.max(10) / 10 * 10);
    let before = counts();
    let (mut succeeded, mut failed) = (0, 0);
    for i in 0..runs {
        match i % 10 {
            0 => {
                assert!(matches!(
                    container::run(&failing),
                    Err(container::Error::Setup { .. })
                ));
                failed += 1;
            }
            5 => {
                assert!(container::run(&minimal).unwrap().success());
                succeeded += 1;
            }
            _ => {
                assert!(container::run(&ok).unwrap().success());
                succeeded += 1;
            }
        }
    }
    let after = counts();
    assert_eq!((succeeded, failed), (runs / 10 * 9, runs / 10));
    assert_eq!(before, after, "something was left behind");
    assert_eq!(after.cgroups, 0);
    assert_eq!(after.children, 0);
}
