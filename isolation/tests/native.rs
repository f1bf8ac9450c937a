//! End-to-end tests of the native isolation with the real static workload.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use common::{assert_io_size, console, limits_s, probes};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use isolation::native::Native;
use isolation::{Exit, Invocation, Isolation, IsolationKind, Limits};
use workload::kernels::cpu::{CpuParams, checksum};

fn with_io_target(inv: Invocation, target: &std::path::Path) -> Invocation {
    let Invocation::Probes(mut cfg) = inv else {
        panic!("not probes")
    };
    cfg.io_target = Some(target.display().to_string());
    Invocation::Probes(cfg)
}

#[test]
fn all_probes_run_end_to_end_with_the_in_process_checksum() {
    let dir = tempfile::tempdir().unwrap();
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
        "1000",
        "--io-size",
        "2M",
        "--io-rand-ops",
        "64",
        "--fsync-ops",
        "4",
        "--idle-ms",
        "50",
    ]);
    let inv = with_io_target(inv, dir.path());
    let o = Native::new().run(&inv, &limits_s(120)).unwrap();
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "console: {}", console(&o));
    // --io-size honoured: every io line moved 2 MiB.
    assert_io_size(&o, 2 << 20);
    assert_eq!(o.kind, IsolationKind::Native);

    let mut seen: Vec<&str> = o.results.iter().map(|r| r.probe.as_str()).collect();
    seen.dedup();
    assert_eq!(seen, ["ready", "cpu", "mem", "syscall", "io", "idle"]);
    for metric in ["first_touch_ns_per_page", "copy_gb_per_s", "triad_gb_per_s"] {
        assert!(
            o.results.iter().any(|r| r.metric == metric),
            "missing mem metric {metric}"
        );
    }
    for r in o
        .results
        .iter()
        .filter(|r| r.probe != "ready" && r.probe != "idle")
    {
        assert!(
            r.samples.len() >= 2,
            "{} {} has {} samples",
            r.probe,
            r.metric,
            r.samples.len()
        );
        assert!(
            r.value.is_finite() && r.value >= 0.0,
            "{} {} = {}",
            r.probe,
            r.metric,
            r.value
        );
    }

    let cpu = o.results.iter().find(|r| r.probe == "cpu").unwrap();
    let expected = checksum(CpuParams {
        size: 64 * 1024,
        rounds: 4,
    })
    .unwrap();
    assert_eq!(cpu.checksum.as_deref(), Some(expected.as_str()));

    let io = o.results.iter().find(|r| r.probe == "io").unwrap();
    assert!(matches!(io.kind.as_deref(), Some("direct" | "buffered")));
    let boot = o.boot.expect("ready line seen");
    assert!(boot.total > Duration::ZERO && boot.total < Duration::from_secs(120));
    assert!(o.accounting.host_peak_rss_bytes.unwrap() > 1 << 20);
    assert!(o.accounting.cpu_time.unwrap() > Duration::ZERO);
    // The temporary I/O file is gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bad_probe_name_exits_non_zero_with_a_clear_message() {
    // A typed invocation cannot carry a bad probe name; the workload's own
    // refusal is checked by running it as a program.
    let e = Invocation::probes(["cpu", "frobnicate"]).unwrap_err();
    assert!(e.to_string().contains("frobnicate"), "{e}");
    let workload = isolation::artifacts::workload_binary().unwrap();
    let inv = Invocation::Program {
        program: workload.display().to_string(),
        args: vec!["cpu".into(), "frobnicate".into()],
    };
    let o = Native::new().run(&inv, &limits_s(30)).unwrap();
    assert_eq!(o.exit, Exit::Exited { code: 2 });
    assert!(
        console(&o).contains("unknown probe \"frobnicate\""),
        "{}",
        console(&o)
    );
    assert!(o.results.is_empty());
    assert!(o.boot.is_none());
}

#[test]
fn unwritable_io_target_is_a_clear_error() {
    let target = PathBuf::from("/proc/isolab-no-such-target");
    let inv = with_io_target(probes(&["io", "--io-size", "1M"]), &target);
    let o = Native::new().run(&inv, &limits_s(30)).unwrap();
    assert_eq!(o.exit, Exit::Exited { code: 1 });
    let msg = console(&o);
    assert!(
        msg.contains("cannot use I/O target") && msg.contains(target.to_str().unwrap()),
        "{msg}"
    );
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // The shell starts a grandchild, records its pid, and waits on it forever.
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let inv = Invocation::Program {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script],
    };
    let lim = Limits {
        // Long enough for a loaded host to start the shell and its grandchild.
        timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let t0 = Instant::now();
    let o = Native::new().run(&inv, &lim).unwrap();
    assert_eq!(o.exit, Exit::Timeout);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SIGKILL is sent to the group before `run` returns, but a loaded host
    // may take a moment to schedule the grandchild's death.
    assert!(
        gone_within(grandchild, Duration::from_secs(5)),
        "grandchild {grandchild} outlived the run"
    );
}

/// Waits, bounded, for `pid` to stop running.
fn gone_within(pid: i32, limit: Duration) -> bool {
    let t0 = Instant::now();
    while running(pid) {
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// True when `pid` exists and is not a zombie waiting for its (new) parent
/// to reap it.
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

#[test]
fn workload_timeout_reports_timeout_and_keeps_partial_output() {
    let o = Native::new()
        .run(
            &probes(&["idle", "--idle-ms", "60000"]),
            &Limits {
                timeout: Duration::from_millis(800),
                ..Limits::default()
            },
        )
        .unwrap();
    assert_eq!(o.exit, Exit::Timeout);
    // The ready line came out before the idle wait.
    assert!(o.boot.is_some());
    assert_eq!(o.results.len(), 1);
}

#[test]
fn arbitrary_program_exit_code_and_output() {
    let inv = Invocation::Program {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "echo hello; echo oops >&2; exit 3".into()],
    };
    let o = Native::new().run(&inv, &limits_s(30)).unwrap();
    assert_eq!(o.exit, Exit::Exited { code: 3 });
    assert_eq!(o.stdout, b"hello\n");
    assert_eq!(o.console, b"oops\n");
    assert!(o.boot.is_none() && o.results.is_empty());
}

#[test]
fn missing_program_is_an_error_naming_it() {
    let inv = Invocation::Program {
        program: "/nonexistent/isolab-prog".into(),
        args: vec![],
    };
    let e = Native::new().run(&inv, &limits_s(30)).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/isolab-prog"), "{e}");
}

#[test]
fn signaled_program_is_reported_as_such() {
    let inv = Invocation::Program {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "kill -9 $$".into()],
    };
    let o = Native::new().run(&inv, &limits_s(30)).unwrap();
    assert_eq!(o.exit, Exit::Signaled { signal: 9 });
}
