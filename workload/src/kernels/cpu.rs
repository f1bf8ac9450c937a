//! `cpu`: SHA-256 chained over a fixed pseudo-random buffer.
//!
//! One sample hashes `rounds` times `prev_digest || buffer`; the final digest
//! is the checksum (it depends only on `size` and `rounds`, so it must be equal
//! on every platform) and the work is counted in 64-byte compressions.

use alloc::string::String;
use alloc::vec::Vec;

use super::{XorShift, elapsed_ns, per_second};
use crate::error::WorkloadError;
use crate::platform::Platform;
use crate::report::Line;
use crate::sha256::{Sha256, hex};

const SEED: u64 = 0x1501_ab00_c0de_0001;

/// Parameters of the `cpu` kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuParams {
    /// Bytes of the hashed buffer.
    pub size: u64,
    /// Hash rounds per sample.
    pub rounds: u32,
}

/// The deterministic buffer the kernel hashes.
fn buffer(size: u64) -> Result<Vec<u8>, WorkloadError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(size as usize)
        .map_err(|_| WorkloadError::OutOfMemory {
            probe: "cpu",
            what: "the hashed buffer",
            bytes: size,
        })?;
    let mut rng = XorShift::new(SEED);
    while buf.len() < size as usize {
        let word = rng.next_u64().to_le_bytes();
        let take = (size as usize - buf.len()).min(8);
        buf.extend_from_slice(&word[..take]);
    }
    Ok(buf)
}

/// One sample's computation: returns the digest and blocks compressed.
fn chain(buf: &[u8], rounds: u32) -> ([u8; 32], u64) {
    let mut digest = [0u8; 32];
    let mut blocks = 0;
    for _ in 0..rounds {
        let mut h = Sha256::new();
        h.update(&digest);
        h.update(core::hint::black_box(buf));
        let (d, b) = h.finish();
        digest = d;
        blocks += b;
    }
    (digest, blocks)
}

/// The checksum the `cpu` probe reports for `params`, computed without timing.
/// Hosts compare a run's checksum against this.
pub fn checksum(params: CpuParams) -> Result<String, WorkloadError> {
    let buf = buffer(params.size)?;
    Ok(hex(&chain(&buf, params.rounds).0))
}

/// Runs the probe: emits `ops_per_s` (SHA-256 blocks per second) with the checksum.
pub fn run<P: Platform>(p: &mut P, params: CpuParams, reps: u32) -> Result<(), WorkloadError> {
    let buf = buffer(params.size)?;
    let mut samples = Vec::new();
    let mut bytes_per_s = Vec::new();
    let mut first: Option<String> = None;
    for _ in 0..reps {
        let t0 = p.now_ns();
        let (digest, blocks) = chain(&buf, params.rounds);
        let ns = elapsed_ns(t0, p.now_ns());
        let sum = hex(&digest);
        match &first {
            None => first = Some(sum),
            Some(f) if *f != sum => {
                return Err(WorkloadError::Unstable {
                    probe: "cpu",
                    first: f.clone(),
                    later: sum,
                });
            }
            Some(_) => {}
        }
        samples.push(per_second(blocks as f64, ns));
        bytes_per_s.push(per_second(blocks as f64 * 64.0, ns) / 1e6);
    }
    Line::new(p, "cpu", "ops_per_s", "blocks/s", samples)
        .checksum(first.unwrap_or_default())
        .kind("sha256")
        .extra("buffer_bytes", params.size)
        .extra("rounds", params.rounds)
        .extra("mb_per_s", crate::stats::median(&bytes_per_s))
        .emit(p);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fake::FakePlatform;

    #[test]
    fn checksum_is_stable_and_depends_on_parameters() {
        let a = CpuParams {
            size: 4096,
            rounds: 3,
        };
        let first = checksum(a).unwrap();
        assert_eq!(first, checksum(a).unwrap());
        assert_eq!(first.len(), 64);
        assert_ne!(
            first,
            checksum(CpuParams {
                size: 4097,
                rounds: 3
            })
            .unwrap()
        );
        assert_ne!(
            first,
            checksum(CpuParams {
                size: 4096,
                rounds: 2
            })
            .unwrap()
        );
    }

    #[test]
    fn one_round_equals_plain_sha256_of_zero_digest_and_buffer() {
        let buf = buffer(100).unwrap();
        let mut h = Sha256::new();
        h.update(&[0u8; 32]);
        h.update(&buf);
        let expected = hex(&h.finish().0);
        assert_eq!(
            checksum(CpuParams {
                size: 100,
                rounds: 1
            })
            .unwrap(),
            expected
        );
    }

    #[test]
    fn emits_rate_from_the_platform_clock() {
        // The fake clock advances 1000 ns per reading: one sample spans 1000 ns.
        let mut p = FakePlatform::new(1000);
        run(
            &mut p,
            CpuParams {
                size: 1024,
                rounds: 2,
            },
            3,
        )
        .unwrap();
        let lines = p.results();
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!((l.probe.as_str(), l.metric.as_str()), ("cpu", "ops_per_s"));
        assert_eq!(l.samples.len(), 3);
        // (32 + 1024 + 9) bytes -> 17 blocks per round, 34 per sample, in 1 us.
        assert_eq!(l.value, 34e6);
        assert_eq!(
            l.checksum.as_deref(),
            Some(
                checksum(CpuParams {
                    size: 1024,
                    rounds: 2
                })
                .unwrap()
                .as_str()
            )
        );
    }

    #[test]
    fn absurd_size_is_a_clear_error() {
        let e = checksum(CpuParams {
            size: u64::MAX / 2,
            rounds: 1,
        })
        .unwrap_err();
        assert!(
            matches!(e, WorkloadError::OutOfMemory { probe: "cpu", .. }),
            "{e}"
        );
    }
}
