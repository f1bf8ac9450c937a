//! One-byte TCP round trip, the `net` probe's request/response measure, over
//! each path a container's traffic can take: native loopback, the
//! container's own veth, the plain bridge, and the bridge through a published
//! port (DNAT, Docker's default shape). Issue 19's target: the veth within
//! 1.2× of loopback, and NAT's extra cost over the bridge reported. The
//! networks are `container::net`'s and the echo peer is
//! `isolation::netpeer`'s; a path this host cannot build is skipped with its
//! reason. The ratios themselves come from `isolab bench` (same rounds).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use container::net::{Network, NetworkSpec};
use criterion::{Criterion, criterion_group, criterion_main};
use isolation::netpeer::Peer;
use workload::kernels::net::MODE_RR;

/// The container port the bridge paths publish.
const CONTAINER_PORT: u16 = 7000;

/// A connection in round-trip mode, with what keeps its peer alive.
struct Path {
    name: &'static str,
    stream: TcpStream,
    _peer: Peer,
    _net: Option<Network>,
}

fn rr_stream(stream: TcpStream) -> TcpStream {
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut s = stream;
    s.write_all(&[MODE_RR]).unwrap();
    s
}

/// Dials `to` until the peer answers (DNAT rules and the peer's thread may
/// take a moment).
fn dial(to: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
            Ok(s) => return rr_stream(s),
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("dialling {to}: {e}"),
        }
    }
}

fn native() -> Path {
    let peer = Peer::listen((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
    Path {
        name: "native_loopback",
        stream: dial(peer.addr()),
        _peer: peer,
        _net: None,
    }
}

/// The container's end dials the host's end of its `/30` veth.
fn veth() -> Result<Path, String> {
    let net = Network::create(&NetworkSpec {
        veth: true,
        ..NetworkSpec::default()
    })
    .map_err(|e| e.to_string())?;
    let p2p = net.p2p.clone().ok_or("no veth was made")?;
    let peer = Peer::listen((p2p.host, 0).into()).map_err(|e| e.to_string())?;
    let to = peer.addr();
    let stream = net
        .within(|| TcpStream::connect_timeout(&to, Duration::from_secs(5)))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Path {
        name: "container_veth",
        stream: rr_stream(stream),
        _peer: peer,
        _net: Some(net),
    })
}

/// The peer listens inside the container; the host dials it straight over
/// the bridge, or through the published port.
fn bridge(nat: bool) -> Result<Path, String> {
    let net = Network::create(&NetworkSpec {
        veth: false,
        bridge: true,
        publish: Some(CONTAINER_PORT),
    })
    .map_err(|e| e.to_string())?;
    let br = net.bridged.clone().ok_or("no bridge was made")?;
    let (host_port, _) = br.published.ok_or("no port was published")?;
    let peer = net
        .within(|| Peer::listen((Ipv4Addr::UNSPECIFIED, CONTAINER_PORT).into()))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let (name, to) = if nat {
        ("bridge_nat", SocketAddr::from((br.gateway, host_port)))
    } else {
        ("bridge", SocketAddr::from((br.guest, CONTAINER_PORT)))
    };
    Ok(Path {
        name,
        stream: dial(to),
        _peer: peer,
        _net: Some(net),
    })
}

fn paths() -> Vec<Path> {
    let mut out = vec![native()];
    if !nix::unistd::geteuid().is_root() {
        eprintln!("net_latency: container paths skipped: creating network namespaces needs root");
        return out;
    }
    for (name, made) in [
        ("container_veth", veth()),
        ("bridge", bridge(false)),
        ("bridge_nat", bridge(true)),
    ] {
        match made {
            Ok(p) => out.push(p),
            Err(e) => eprintln!("net_latency: {name} skipped: {e}"),
        }
    }
    out
}

fn net_latency(c: &mut Criterion) {
    let paths = paths();
    let mut group = c.benchmark_group("net_rr_1byte");
    for mut p in paths {
        let mut b = [0u8; 1];
        let mut i = 0u8;
        group.bench_function(p.name, |bench| {
            bench.iter(|| {
                i = i.wrapping_add(1);
                p.stream.write_all(&[i]).unwrap();
                p.stream.read_exact(&mut b).unwrap();
                assert_eq!(b[0], i, "{}: the echo came back wrong", p.name);
            })
        });
    }
    group.finish();
}

fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

criterion_group! { name = benches; config = criterion(); targets = net_latency }
criterion_main!(benches);
