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
