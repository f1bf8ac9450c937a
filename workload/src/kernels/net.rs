//! `net`: TCP request/response latency (one byte each way, the netperf
//! `TCP_RR` idea) and TCP stream throughput, against a peer outside the
//! isolation under test.
//!
//! The peer speaks a two-mode protocol, chosen by the first byte the probe
//! sends on a fresh connection:
//! - [`MODE_RR`]: every byte received is sent straight back;
//! - [`MODE_STREAM`]: bytes are read and counted until the probe shuts its
//!   side down, then the count goes back as 8 bytes, little endian.
//!
//! Which side opens the connection does not matter to the protocol: the probe
//! dials the peer, or (inbound, e.g. through a published port) the peer dials
//! the probe. Each target's path name becomes the result's `kind`.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::{elapsed_ns, per_second};
use crate::args::{NetEndpoint, NetTarget};
use crate::error::WorkloadError;
use crate::platform::{NetError, NetListener, NetStream, Platform};
use crate::report::Line;
use crate::stats::{median, percentile};

/// First byte of a request/response connection.
pub const MODE_RR: u8 = b'R';
/// First byte of a stream connection.
pub const MODE_STREAM: u8 = b'S';
/// Bytes per write of the stream test.
pub const STREAM_CHUNK: usize = 64 << 10;
/// Untimed round trips before the timed ones (connection and cache warm-up).
pub const WARMUP_ROUND_TRIPS: u32 = 16;

/// Parameters of the `net` kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetParams<'a> {
    /// Peers to measure against, in order.
    pub targets: &'a [NetTarget],
    /// Timed round trips per repetition.
    pub round_trips: u32,
    /// Bytes sent per stream repetition.
    pub stream_size: u64,
}

/// Where connections come from for one target.
enum Source {
    Dial(core::net::SocketAddr),
    Accept(alloc::boxed::Box<dyn NetListener>),
}

impl Source {
    fn open<P: Platform>(p: &mut P, t: &NetTarget) -> Result<Source, NetError> {
        Ok(match t.endpoint {
            NetEndpoint::Dial(a) => Source::Dial(a),
            NetEndpoint::Accept(port) => Source::Accept(p.net_listen(port)?),
        })
    }

    fn connect<P: Platform>(
        &mut self,
        p: &mut P,
    ) -> Result<alloc::boxed::Box<dyn NetStream>, NetError> {
        match self {
            Source::Dial(a) => p.net_dial(*a),
            Source::Accept(l) => l.accept(),
        }
    }
}

/// Round-trip times of one repetition, in microseconds.
fn round_trips<P: Platform>(
    p: &P,
    s: &mut dyn NetStream,
    n: u32,
    out: &mut Vec<f64>,
) -> Result<(), NetError> {
    s.write_all(&[MODE_RR])?;
    let mut b = [0u8; 1];
    for i in 0..WARMUP_ROUND_TRIPS + n {
        let sent = [i as u8];
        let t0 = p.now_ns();
        s.write_all(&sent)?;
        s.read_exact(&mut b)?;
        let t1 = p.now_ns();
        if b != sent {
            return Err(NetError::Protocol(alloc::format!(
                "round trip {i}: sent {:#04x}, got {:#04x} back",
                sent[0],
                b[0]
            )));
        }
        if i >= WARMUP_ROUND_TRIPS {
            out.push(elapsed_ns(t0, t1) as f64 / 1e3);
        }
    }
    Ok(())
}

/// One stream repetition: MB/s from the first byte sent to the peer's count.
fn stream<P: Platform>(
    p: &P,
    s: &mut dyn NetStream,
    buf: &[u8],
    size: u64,
) -> Result<f64, NetError> {
    s.write_all(&[MODE_STREAM])?;
    let t0 = p.now_ns();
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        s.write_all(&buf[..n])?;
        left -= n as u64;
    }
    s.shutdown_write()?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)?;
    let t1 = p.now_ns();
    let got = u64::from_le_bytes(count);
    if got != size {
        return Err(NetError::Protocol(alloc::format!(
            "sent {size} bytes, the peer counted {got}"
        )));
    }
    Ok(per_second(size as f64 / 1e6, elapsed_ns(t0, t1)))
}

/// Samples of one target.
#[derive(Default)]
struct Samples {
    /// Every timed round trip of every repetition (us).
    all_rtt: Vec<f64>,
    rep_p50: Vec<f64>,
    rep_p99: Vec<f64>,
    stream: Vec<f64>,
}

fn measure<P: Platform>(
    p: &mut P,
    t: &NetTarget,
    params: &NetParams<'_>,
    reps: u32,
    buf: &[u8],
) -> Result<Samples, NetError> {
    let mut src = Source::open(p, t)?;
    let mut s = Samples::default();
    for _ in 0..reps {
        let mut rep = Vec::with_capacity(params.round_trips as usize);
        let mut conn = src.connect(p)?;
        round_trips(p, &mut *conn, params.round_trips, &mut rep)?;
        drop(conn);
        s.rep_p50.push(median(&rep));
        s.rep_p99.push(percentile(&rep, 99.0));
        s.all_rtt.extend_from_slice(&rep);
        let mut conn = src.connect(p)?;
        s.stream
            .push(stream(p, &mut *conn, buf, params.stream_size)?);
    }
    Ok(s)
}

fn emit<P: Platform>(p: &mut P, t: &NetTarget, params: &NetParams<'_>, s: Samples) {
    let (direction, peer) = match t.endpoint {
        NetEndpoint::Dial(a) => ("dial", a.to_string()),
        NetEndpoint::Accept(port) => ("accept", alloc::format!("port {port}")),
    };
    let all = &s.all_rtt;
    let pct = |q| percentile(all, q);
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let common = |l: Line| {
        l.kind(&t.path)
            .extra("direction", direction)
            .extra("peer", peer.as_str())
            .extra("transport", "tcp")
    };
    let rr = |l: Line| {
        l.extra("round_trips", all.len() as u64)
            .extra("p10_us", pct(10.0))
            .extra("p90_us", pct(90.0))
            .extra("p999_us", pct(99.9))
            .extra("min_us", if min.is_finite() { min } else { 0.0 })
            .extra("max_us", pct(100.0))
    };
    let p50 = rr(common(Line::new(p, "net", "rr_p50_us", "us", s.rep_p50))).value(median(all));
    p50.emit(p);
    let p99 = rr(common(Line::new(p, "net", "rr_p99_us", "us", s.rep_p99))).value(pct(99.0));
    p99.emit(p);
    let st = common(Line::new(p, "net", "stream_mb_per_s", "MB/s", s.stream))
        .extra("bytes", params.stream_size)
        .extra("chunk_bytes", STREAM_CHUNK as u64);
    st.emit(p);
}

/// Runs the probe: for each target, `rr_p50_us` and `rr_p99_us` (value over
/// every timed round trip, samples per repetition, the distribution's other
/// percentiles in `extra`) and `stream_mb_per_s`, all with `kind` = the path.
pub fn run<P: Platform>(p: &mut P, params: NetParams<'_>, reps: u32) -> Result<(), WorkloadError> {
    if params.targets.is_empty() {
        return Err(NetError::NoPeer.into());
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(STREAM_CHUNK)
        .map_err(|_| WorkloadError::OutOfMemory {
            probe: "net",
            what: "the stream buffer",
            bytes: STREAM_CHUNK as u64,
        })?;
    buf.resize(STREAM_CHUNK, 0u8);
    let mut rng = super::XorShift::new(0x6e65_7470_726f_6265);
    for chunk in buf.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
    }
    for t in params.targets {
        let s = measure(p, t, &params, reps, &buf).map_err(|e| match e {
            NetError::Unsupported(_) | NetError::NoPeer => e,
            other => NetError::Protocol(alloc::format!("path {}: {other}", t.path)),
        })?;
        emit(p, t, &params, s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fake::FakePlatform;
    use alloc::vec;

    fn targets() -> Vec<NetTarget> {
        vec![
            NetTarget::parse("veth=10.200.0.1:7000", false).unwrap(),
            NetTarget::parse("bridge+nat=7001", true).unwrap(),
        ]
    }

    #[test]
    fn every_target_reports_latency_and_throughput_under_its_path() {
        let t = targets();
        let mut p = FakePlatform::new(1000);
        let params = NetParams {
            targets: &t,
            round_trips: 50,
            stream_size: 200_000,
        };
        run(&mut p, params, 3).unwrap();
        let r = p.results();
        let got: Vec<(&str, &str)> = r
            .iter()
            .map(|l| (l.metric.as_str(), l.kind.as_deref().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("rr_p50_us", "veth"),
                ("rr_p99_us", "veth"),
                ("stream_mb_per_s", "veth"),
                ("rr_p50_us", "bridge+nat"),
                ("rr_p99_us", "bridge+nat"),
                ("stream_mb_per_s", "bridge+nat"),
            ]
        );
        // One clock step (1 us) per reading: every round trip spans one step.
        assert_eq!(r[0].value, 1.0);
        assert_eq!(r[0].samples.len(), 3);
        assert_eq!(r[0].extra["round_trips"], 150);
        assert_eq!(r[0].extra["direction"], "dial");
        assert_eq!(r[3].extra["direction"], "accept");
        assert!(r[2].value > 0.0 && r[2].samples.len() == 3);
        // Fake peer: 3 reps x (1 mode byte + 16 warm-up + 50 timed round trips) per target.
        assert_eq!(p.net_echoed.get(), 2 * 3 * 67);
        assert_eq!(p.net_streamed.get(), 2 * 3 * 200_000);
    }

    #[test]
    fn a_wrong_echo_or_count_fails_the_probe() {
        let t = targets();
        let params = NetParams {
            targets: &t,
            round_trips: 5,
            stream_size: 100_000,
        };
        let mut p = FakePlatform::new(1);
        p.net_corrupt = true;
        let e = run(&mut p, params, 1).unwrap_err();
        assert!(e.to_string().contains("path veth"), "{e}");
        assert!(p.lines.is_empty());
    }

    #[test]
    fn no_target_and_no_network_are_explained() {
        let mut p = FakePlatform::new(1);
        let params = NetParams {
            targets: &[],
            round_trips: 1,
            stream_size: 1,
        };
        assert_eq!(run(&mut p, params, 1), Err(NetError::NoPeer.into()));
        p.net_missing = true;
        let t = targets();
        let e = run(
            &mut p,
            NetParams {
                targets: &t,
                ..params
            },
            1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no network device driver"), "{e}");
    }
}
