//! `isolab compare`'s pipeline end to end where a Linux guest can boot (in
//! CI: the emulated test host).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

fn linux_guest_with_kernel(test: &str) -> bool {
    let guest = isolation::vm_linux::linux_guest_support();
    let kernel = isolation::kernel::resolve(None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    hostcaps::testing::require(test, "linux-guest", guest)
        && hostcaps::testing::require(test, "guest-kernel", kernel)
}

/// `isolab compare`'s pipeline (matrix → results → table and report) with
/// the Linux guest beside native: the table and the report have a
/// `vm-linux` column, and on an emulated host every time says so.
#[test]
fn comparison_has_a_vm_linux_column_marked_emulated_when_emulated() {
    let test = "comparison_has_a_vm_linux_column_marked_emulated_when_emulated";
    if !linux_guest_with_kernel(test) {
        return;
    }
    let opts = bench::matrix::BenchOptions {
        rounds: 1,
        warmup: 0,
        workload: workload::args::Config::from_args(["cpu", "--reps", "1", "--cpu-rounds", "1"])
            .unwrap(),
        isolations: vec![
            isolation::IsolationKind::Native,
            isolation::IsolationKind::VmLinux,
        ],
        peers: false,
        ..bench::matrix::BenchOptions::quick()
    };
    let results = bench::matrix::run(&opts, &isolation::progress::Silent).unwrap();
    let out = tempfile::tempdir().unwrap();
    let c = report::compare::write(&results, out.path()).unwrap();
    let table = c.render_table(160);
    assert!(table.contains("vm-linux"), "{table}");
    assert!(!table.contains("Not measured: vm-linux"), "{table}");
    let md = std::fs::read_to_string(&c.report_markdown).unwrap();
    assert!(md.contains("vm-linux"), "{md}");
    let emulated = hostcaps::emulation::detect();
    assert_eq!(results.environment.emulated, emulated);
    if emulated.is_some() {
        assert!(table.contains("(emulated)"), "{table}");
        assert!(table.contains("EMULATED HOST"), "{table}");
        assert!(md.contains("emulated"), "{md}");
    } else {
        assert!(!table.contains("(emulated)"), "{table}");
    }
}

/// The `net` probe through `isolab compare`'s pipeline with the Linux
/// guest: the native and the VM path are named in the results and in the
/// report (loopback, virtio-net + tap), and the run's tap is gone
/// afterwards. (The container's paths are tested on the project's machines,
/// `container/tests/net.rs` and the bench matrix.)
#[test]
fn comparison_names_each_network_path() {
    let test = "comparison_names_each_network_path";
    if !linux_guest_with_kernel(test) || !hostcaps::testing::require_root(test) {
        return;
    }
    let workload = workload::args::Config::from_args([
        "net",
        "--reps",
        "1",
        "--net-round-trips",
        "200",
        "--net-stream-size",
        "1M",
    ])
    .unwrap();
    let opts = bench::matrix::BenchOptions {
        rounds: 1,
        warmup: 0,
        workload,
        isolations: vec![
            isolation::IsolationKind::Native,
            isolation::IsolationKind::VmLinux,
        ],
        peers: false,
        ..bench::matrix::BenchOptions::quick()
    };
    let results = bench::matrix::run(&opts, &isolation::progress::Silent).unwrap();
    for (subject, kind) in [("native", "loopback"), ("vm-linux", "virtio-net+tap")] {
        let m = results.metrics.iter().find(|m| {
            m.subject == subject
                && m.probe == "net"
                && m.metric == "rr_p50_us"
                && m.kind.as_deref() == Some(kind)
        });
        let m =
            m.unwrap_or_else(|| panic!("no {subject} {kind} round trip: {:?}", results.metrics));
        assert!(m.summary.median > 0.0, "{subject} {kind}: {:?}", m.summary);
    }
    let out = tempfile::tempdir().unwrap();
    let c = report::compare::write(&results, out.path()).unwrap();
    let md = std::fs::read_to_string(&c.report_markdown).unwrap();
    for kind in ["loopback", "virtio-net+tap"] {
        assert!(md.contains(kind), "the report does not name {kind}");
    }
    let me = format!("il{}", std::process::id());
    let left: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&me))
        .collect();
    assert!(left.is_empty(), "links left: {left:?}");
}
