//! The `net` probe through the Linux guest: virtio-net on a tap, the peer
//! on the tap's host address. Gated on the `linux-guest` capability (the
//! emulated test host has it); there, only function is claimed — the
//! numbers are checked for sanity, not speed — and no tap may be left.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::time::Duration;

use isolation::vm_linux::{self, VmLinux};
use isolation::{Invocation, Isolation, Limits, Outcome};
use workload::args::{Config, Probe};
use workload::schema::ResultLine;

fn line<'a>(o: &'a Outcome, metric: &str, path: &str) -> &'a ResultLine {
    o.results
        .iter()
        .find(|l| l.probe == "net" && l.metric == metric && l.kind.as_deref() == Some(path))
        .unwrap_or_else(|| panic!("no {metric} for path {path} in {:?}", o.results))
}

fn net_probe() -> Invocation {
    Invocation::Probes(Config {
        probes: vec![Probe::Net],
        reps: 3,
        net_round_trips: 500,
        net_stream_size: 4 << 20,
        ..Config::default()
    })
}

/// This process's taps (`il<pid>t<seq>`) on the host.
fn our_taps() -> Vec<String> {
    let prefix = format!("il{}t", std::process::id());
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn the_linux_guest_reaches_its_peer_through_virtio_net_and_leaves_no_tap() {
    let test = "the_linux_guest_reaches_its_peer_through_virtio_net_and_leaves_no_tap";
    if !hostcaps::testing::require(test, "linux-guest", vm_linux::linux_guest_support())
        || !hostcaps::testing::require_root(test)
    {
        return;
    }
    let limits = Limits {
        timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let o = VmLinux::new().run(&net_probe(), &limits).unwrap();
    let console = String::from_utf8_lossy(&o.console);
    assert!(o.exit.success(), "{:?}: {console}", o.exit);
    let path = isolation::net::VM_PATH;
    let p50 = line(&o, "rr_p50_us", path);
    let p99 = line(&o, "rr_p99_us", path);
    let mbps = line(&o, "stream_mb_per_s", path);
    assert_eq!(p50.samples.len(), 3);
    assert_eq!(p50.extra["round_trips"], 1500);
    // Bounded: even an emulated host answers a byte within a second.
    assert!(p50.value > 0.0 && p50.value < 1e6, "{p50:?}");
    assert!(p99.value >= p50.value, "{p99:?} < {p50:?}");
    assert!(mbps.value > 0.0, "{mbps:?}");
    assert_eq!(mbps.extra["bytes"], 4 << 20);
    assert!(
        o.notes.iter().any(|n| n.contains("virtio-net + tap")),
        "{:?}",
        o.notes
    );
    assert!(
        !o.notes.iter().any(|n| n.contains("left behind")),
        "{:?}",
        o.notes
    );
    assert_eq!(our_taps(), Vec::<String>::new(), "tap left after the run");
    println!(
        "virtio-net+tap p50 {:.1} us, p99 {:.1} us, stream {:.2} MB/s",
        p50.value, p99.value, mbps.value
    );
}

#[test]
fn a_failed_guest_run_still_removes_its_tap() {
    let test = "a_failed_guest_run_still_removes_its_tap";
    if !hostcaps::testing::require(test, "linux-guest", vm_linux::linux_guest_support())
        || !hostcaps::testing::require_root(test)
    {
        return;
    }
    // A kernel that is not a kernel: the run fails after the tap is made.
    let bogus = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bogus.path(), b"not a kernel").unwrap();
    let vm = VmLinux {
        kernel: Some(bogus.path().into()),
        ..VmLinux::new()
    };
    let r = vm.run(&net_probe(), &Limits::default());
    assert!(r.is_err(), "a bogus kernel booted: {r:?}");
    assert_eq!(our_taps(), Vec::<String>::new(), "tap left after a failure");
}
