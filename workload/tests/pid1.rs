//! The binary as PID 1 of a PID namespace (what it is as a container's init).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_isolab-workload");

fn pid1_available(test: &str) -> bool {
    hostcaps::testing::require_root(test)
        && hostcaps::testing::require(
            test,
            "root",
            hostcaps::namespaces::can_create(hostcaps::namespaces::Namespace::Pid),
        )
}

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<i32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn runs_probes_as_pid1_and_exits_cleanly() {
    if !pid1_available("runs_probes_as_pid1_and_exits_cleanly") {
        return;
    }
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            BIN,
            "syscall",
            "--reps",
            "2",
            "--syscall-iters",
            "100",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().unwrap().contains(r#""probe":"ready""#),
        "{text}"
    );
    assert!(text.contains(r#""probe":"syscall""#), "{text}");
}

#[test]
fn pid1_exits_on_sigterm() {
    if !pid1_available("pid1_exits_on_sigterm") {
        return;
    }
    // Without a handler the kernel drops SIGTERM sent to a namespace's init,
    // and this would idle for a minute.
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", BIN, "idle", "--idle-ms", "60000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains(r#""probe":"ready""#), "{first}");
    let init = children(child.id());
    assert_eq!(
        init.len(),
        1,
        "unshare should have forked exactly the workload"
    );
    let t0 = Instant::now();
    // SAFETY: sending SIGTERM to the workload process we just started.
    assert_eq!(unsafe { libc::kill(init[0], libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    // unshare --fork exits with its child's status: 128 + SIGTERM.
    assert_eq!(status.code(), Some(143), "{status:?}");
}
