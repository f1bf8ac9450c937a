//! The `net` probe end to end: native over loopback, the container over its
//! veth, bridge and published port; every number checked against a loopback
//! measurement this test makes itself with `std::net`, and nothing left.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use isolation::{BackendOptions, Invocation, IsolationKind, Limits, Outcome};
use workload::args::{Config, Probe};
use workload::schema::ResultLine;
use workload::stats::median;

/// What this test measures itself: loopback round-trip median (us) and
/// stream MB/s, with a plain echo/sink thread.
fn own_loopback() -> (f64, f64) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        // First connection: echo; second: count, then send the count.
        for echo in [true, false] {
            let (mut s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = vec![0u8; 64 << 10];
            let mut total = 0u64;
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n as u64;
                if echo {
                    s.write_all(&buf[..n]).unwrap();
                }
            }
            if !echo {
                s.write_all(&total.to_le_bytes()).unwrap();
            }
        }
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut rtt = Vec::new();
    let mut b = [0u8; 1];
    for i in 0..2000u32 {
        let t0 = Instant::now();
        s.write_all(&[i as u8]).unwrap();
        s.read_exact(&mut b).unwrap();
        rtt.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    drop(s);
    let mut s = TcpStream::connect(addr).unwrap();
    let chunk = vec![7u8; 64 << 10];
    let size = 32u64 << 20;
    let t0 = Instant::now();
    for _ in 0..size / chunk.len() as u64 {
        s.write_all(&chunk).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut c = [0u8; 8];
    s.read_exact(&mut c).unwrap();
    let mbps = size as f64 / 1e6 / t0.elapsed().as_secs_f64();
    server.join().unwrap();
    (median(&rtt), mbps)
}

fn run(kind: IsolationKind) -> Outcome {
    let cfg = Config {
        probes: vec![Probe::Net],
        reps: 3,
        net_round_trips: 1000,
        ..Config::default()
    };
    let backend = isolation::backend_with(kind, &BackendOptions::default()).unwrap();
    let o = backend
        .run(
            &Invocation::Probes(cfg),
            &Limits {
                timeout: Duration::from_secs(60),
                ..Limits::default()
            },
        )
        .unwrap();
    assert!(
        o.exit.success(),
        "{:?}: {}",
        o.exit,
        String::from_utf8_lossy(&o.console)
    );
    o
}

fn line<'a>(o: &'a Outcome, metric: &str, path: &str) -> &'a ResultLine {
    o.results
        .iter()
        .find(|l| l.probe == "net" && l.metric == metric && l.kind.as_deref() == Some(path))
        .unwrap_or_else(|| panic!("no {metric} for path {path} in {:?}", o.results))
}

/// Non-zero, bounded, and within a factor of 10 of this test's own loopback
/// measurement (same order of magnitude; times on a shared host vary).
fn sane(o: &Outcome, path: &str, own: (f64, f64)) {
    let p50 = line(o, "rr_p50_us", path);
    let p99 = line(o, "rr_p99_us", path);
    let mbps = line(o, "stream_mb_per_s", path);
    assert_eq!(p50.samples.len(), 3);
    assert_eq!(p50.extra["round_trips"], 3000);
    assert!(p50.value > 0.0 && p50.value < 100_000.0, "{path}: {p50:?}");
    assert!(
        p99.value >= p50.value,
        "{path}: p99 {} < p50 {}",
        p99.value,
        p50.value
    );
    assert!(
        p50.value > own.0 / 10.0 && p50.value < own.0 * 10.0,
        "{path}: p50 {} us vs own loopback {} us",
        p50.value,
        own.0
    );
    assert!(
        mbps.value > own.1 / 10.0 && mbps.value < own.1 * 10.0,
        "{path}: {} MB/s vs own loopback {} MB/s",
        mbps.value,
        own.1
    );
}

#[test]
fn native_loopback_is_sane() {
    let own = own_loopback();
    let o = run(IsolationKind::Native);
    sane(&o, "loopback", own);
    println!(
        "native loopback p50 {:.1} us (own {:.1} us)",
        line(&o, "rr_p50_us", "loopback").value,
        own.0
    );
}

/// Everything on the host named for this process's networks.
fn our_network_things() -> Vec<String> {
    let pid = std::process::id() as i32;
    container::net::leftovers::scan(|p| p != pid)
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn container_veth_bridge_and_nat_are_sane_and_leave_nothing() {
    let test = "container_veth_bridge_and_nat_are_sane_and_leave_nothing";
    if !hostcaps::testing::require_root(test) {
        return;
    }
    let tools = std::process::Command::new("iptables")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    let why = (!tools).then(|| "needs iptables".to_string());
    if !hostcaps::testing::require(test, "iptables", why.map_or(Ok(()), Err)) {
        return;
    }
    let own = own_loopback();
    let o = run(IsolationKind::Container);
    for path in ["veth", "bridge", "bridge+nat"] {
        sane(&o, path, own);
    }
    assert_eq!(
        line(&o, "rr_p50_us", "bridge+nat").extra["direction"],
        "accept"
    );
    assert!(
        o.notes
            .iter()
            .any(|n| n.contains("published") && n.contains("DNAT")),
        "{:?}",
        o.notes
    );
    assert_eq!(our_network_things(), Vec::<String>::new());
}
