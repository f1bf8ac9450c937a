//! SIGTERM to the runtime while it waits is forwarded to the container, and
//! the run is cleaned up. Alone in its binary: it signals the test process.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::time::Duration;

use container::ExitStatus;

fn raise_later(ms: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        // SAFETY: signalling our own process; the runtime's guard catches it.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    })
}

#[test]
fn sigterm_is_forwarded_then_escalated_and_the_cgroup_removed() {
    if !common::ready("sigterm_is_forwarded_then_escalated_and_the_cgroup_removed") {
        return;
    }
    let root = common::busybox_rootfs();
    // An init that handles SIGTERM exits through its handler.
    let spec = common::sh(
        root.path(),
        "trap 'echo term; exit 7' TERM; while true; do sleep 0.1; done",
    );
    let running = container::spawn(&spec).unwrap();
    let cg = running.cgroup_paths();
    let t = raise_later(300);
    let r = running.wait().unwrap();
    t.join().unwrap();
    assert_eq!(r.interrupted, Some(libc::SIGTERM));
    assert_eq!(r.status, ExitStatus::Exited(7), "{r:?}");
    assert!(common::out(&r).contains("term"));
    assert!(cg.iter().all(|p| !p.exists()), "cgroup left: {cg:?}");

    // An init without a handler ignores SIGTERM (PID 1 semantics): killed after the grace period.
    let spec = common::sh(root.path(), "exec sleep 30");
    let running = container::spawn(&spec).unwrap();
    let t = raise_later(300);
    let start = std::time::Instant::now();
    let r = running.wait().unwrap();
    t.join().unwrap();
    assert_eq!(r.status, ExitStatus::Signaled(libc::SIGKILL), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
}
