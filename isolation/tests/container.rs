//! End-to-end tests of the container isolation with the real static workload.
//! Root is required (skip otherwise, or fail under CI with ISOLAB_REQUIRE=root).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use common::{assert_io_size, probes};
use std::time::Duration;

use isolation::container::Container;
use isolation::{Exit, Invocation, Isolation, IsolationKind, Limits};

fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(120),
        ..Limits::default()
    }
}

#[test]
fn probes_run_in_the_container_with_boot_time_and_accounting() {
    if !hostcaps::testing::require_root("probes_run_in_the_container_with_boot_time_and_accounting")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inv = probes(&[
        "cpu",
        "io",
        "--reps",
        "2",
        "--cpu-size",
        "64K",
        "--cpu-rounds",
        "4",
        "--io-size",
        "2M",
        "--io-rand-ops",
        "64",
        "--fsync-ops",
        "4",
    ]);
    let Invocation::Probes(mut cfg) = inv else {
        unreachable!()
    };
    cfg.io_target = Some(dir.path().display().to_string());
    let inv = Invocation::Probes(cfg);
    let lim = Limits {
        memory: Some(256 << 20),
        ..limits()
    };
    let o = Container::new().run(&inv, &lim).unwrap();
    let console = String::from_utf8_lossy(&o.console);
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "console: {console}");
    assert_eq!(o.kind, IsolationKind::Container);
    // --io-size honoured: every io line moved 2 MiB.
    assert_io_size(&o, 2 << 20);
    let seen: Vec<&str> = o.results.iter().map(|r| r.probe.as_str()).collect();
    assert!(
        seen.contains(&"ready") && seen.contains(&"cpu") && seen.contains(&"io"),
        "{seen:?}"
    );
    let boot = o.boot.expect("ready line seen");
    let setup = boot.setup.expect("setup time");
    assert!(setup > Duration::ZERO && setup < boot.total, "{boot:?}");
    let peak = o.accounting.cgroup_peak_bytes.expect("cgroup peak");
    assert!(peak > 0 && peak <= 256 << 20, "{peak}");
    assert!(o.accounting.cpu_time.expect("cpu time") > Duration::ZERO);
    // The io probe wrote through the bind mount, and cleaned up after itself or left its file here.
    assert!(dir.path().exists());
}

#[test]
fn program_runs_isolated_from_the_host() {
    if !hostcaps::testing::require_root("program_runs_isolated_from_the_host") {
        return;
    }
    let inv = Invocation::Program {
        program: "sh".into(),
        args: vec!["-c".into(), "echo $$; hostname".into()],
    };
    let o = Container::new().run(&inv, &limits()).unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.exit,
        Exit::Exited { code: 0 },
        "{}",
        String::from_utf8_lossy(&o.console)
    );
    assert_eq!(out.lines().next(), Some("1"), "{out}");
    assert!(o.results.is_empty());
}

#[test]
fn memory_hog_is_reported_as_oom_killed() {
    if !hostcaps::testing::require_root("memory_hog_is_reported_as_oom_killed") {
        return;
    }
    if !hostcaps::testing::require(
        "memory_hog_is_reported_as_oom_killed",
        "cgroup-memory",
        hostcaps::cgroup::memory_controller_usable(),
    ) {
        return;
    }
    let inv = Invocation::Program {
        program: "dd".into(),
        args: ["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
            .map(String::from)
            .to_vec(),
    };
    let o = Container::new()
        .run(
            &inv,
            &Limits {
                memory: Some(16 << 20),
                ..limits()
            },
        )
        .unwrap();
    assert_eq!(o.exit, Exit::OomKilled);
    assert!(o.accounting.oom_kills.unwrap() >= 1);
}

#[test]
fn timeout_is_reported() {
    if !hostcaps::testing::require_root("timeout_is_reported") {
        return;
    }
    let inv = Invocation::Program {
        program: "sleep".into(),
        args: vec!["30".into()],
    };
    let t = std::time::Instant::now();
    let o = Container::new()
        .run(
            &inv,
            &Limits {
                timeout: Duration::from_millis(300),
                ..Limits::default()
            },
        )
        .unwrap();
    assert_eq!(o.exit, Exit::Timeout);
    assert!(t.elapsed() < Duration::from_secs(10));
}
