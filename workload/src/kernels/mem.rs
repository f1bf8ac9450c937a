//! `mem`: first-touch cost and STREAM-style bandwidth.
//!
//! First touch writes one byte per 4 KiB page of a fresh allocation, so each
//! write takes a page fault (Linux) or a second-level fault in the VMM's
//! memory (EPT/shadow paging). STREAM copy (`c = a`) and triad
//! (`a = b + s·c`) sweep three `f64` arrays.

use alloc::vec::Vec;
use core::hint::black_box;

use super::{elapsed_ns, per_second};
use crate::error::WorkloadError;
use crate::platform::Platform;
use crate::report::Line;

/// Bytes per page touched by the first-touch test.
pub const PAGE: usize = 4096;

/// Parameters of the `mem` kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemParams {
    /// Bytes touched page by page.
    pub touch_size: u64,
    /// Bytes of each STREAM array.
    pub stream_size: u64,
}

fn oom(what: &'static str, bytes: u64) -> WorkloadError {
    WorkloadError::OutOfMemory {
        probe: "mem",
        what,
        bytes,
    }
}

/// Touches `bytes` of fresh memory page by page; returns (ns, pages).
fn first_touch<P: Platform>(p: &P, bytes: u64) -> Result<(u64, u64), WorkloadError> {
    let mut region: Vec<u8> = Vec::new();
    region
        .try_reserve_exact(bytes as usize)
        .map_err(|_| oom("the first-touch region", bytes))?;
    let spare = region.spare_capacity_mut();
    let len = (bytes as usize).min(spare.len());
    let t0 = p.now_ns();
    for i in (0..len).step_by(PAGE) {
        spare[i].write(1);
    }
    let ns = elapsed_ns(t0, p.now_ns());
    black_box(&mut *spare);
    Ok((ns, len.div_ceil(PAGE) as u64))
}

fn array(n: usize, value: f64, bytes: u64) -> Result<Vec<f64>, WorkloadError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| oom("a STREAM array", bytes))?;
    v.resize(n, value);
    Ok(v)
}

/// Runs the probe: emits `first_touch_ns_per_page`, `copy_gb_per_s`, `triad_gb_per_s`.
pub fn run<P: Platform>(p: &mut P, params: MemParams, reps: u32) -> Result<(), WorkloadError> {
    let mut touch = Vec::new();
    let mut pages = 0;
    for _ in 0..reps {
        let (ns, n) = first_touch(p, params.touch_size)?;
        pages = n;
        touch.push(ns as f64 / n.max(1) as f64);
    }
    Line::new(p, "mem", "first_touch_ns_per_page", "ns", touch)
        .extra("bytes", params.touch_size)
        .extra("pages", pages)
        .emit(p);

    let n = (params.stream_size / 8) as usize;
    let a_bytes = params.stream_size;
    // Initialising the arrays also faults them in, so the timed sweeps below
    // measure bandwidth, not page faults.
    let mut a = array(n, 1.0, a_bytes)?;
    let b = array(n, 2.0, a_bytes)?;
    let mut c = array(n, 0.0, a_bytes)?;
    let scalar = black_box(3.0);
    let (mut copy, mut triad) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t0 = p.now_ns();
        for (ci, ai) in c.iter_mut().zip(&a) {
            *ci = *ai;
        }
        let t1 = p.now_ns();
        black_box(&mut c);
        let t2 = p.now_ns();
        for ((ai, bi), ci) in a.iter_mut().zip(&b).zip(&c) {
            *ai = *bi + scalar * *ci;
        }
        let t3 = p.now_ns();
        black_box(&mut a);
        copy.push(per_second((16 * n) as f64, elapsed_ns(t0, t1)) / 1e9);
        triad.push(per_second((24 * n) as f64, elapsed_ns(t2, t3)) / 1e9);
    }
    let llc = p.llc_bytes();
    for (metric, samples) in [("copy_gb_per_s", copy), ("triad_gb_per_s", triad)] {
        let mut line = Line::new(p, "mem", metric, "GB/s", samples).extra("array_bytes", a_bytes);
        if let Some(llc) = llc {
            // STREAM wants each array >= 4x the last-level cache; say how far off we are.
            line = line
                .extra("llc_bytes", llc)
                .extra("array_over_llc", a_bytes as f64 / llc as f64);
        }
        line.emit(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fake::FakePlatform;

    #[test]
    fn reports_per_page_cost_and_bandwidth_from_the_clock() {
        let mut p = FakePlatform::new(100);
        run(
            &mut p,
            MemParams {
                touch_size: 10 * 4096,
                stream_size: 8192,
            },
            2,
        )
        .unwrap();
        let r = p.results();
        let metrics: Vec<&str> = r.iter().map(|l| l.metric.as_str()).collect();
        assert_eq!(
            metrics,
            ["first_touch_ns_per_page", "copy_gb_per_s", "triad_gb_per_s"]
        );
        // 10 pages in one 100 ns clock step.
        assert_eq!(r[0].value, 10.0);
        assert_eq!(r[0].extra["pages"], 10);
        // copy: 16 B x 1024 elements in 100 ns = 163.84 GB/s; triad 24 B -> 245.76.
        assert!((r[1].value - 163.84).abs() < 1e-9, "{}", r[1].value);
        assert!((r[2].value - 245.76).abs() < 1e-9, "{}", r[2].value);
        assert!(r.iter().all(|l| l.samples.len() == 2));
    }

    #[test]
    fn partial_last_page_counts() {
        let p = FakePlatform::new(1);
        assert_eq!(first_touch(&p, 4097).unwrap().1, 2);
    }

    #[test]
    fn size_that_does_not_fit_is_an_error_not_an_abort() {
        let mut p = FakePlatform::new(1);
        let e = run(
            &mut p,
            MemParams {
                touch_size: u64::MAX / 2,
                stream_size: 8,
            },
            1,
        )
        .unwrap_err();
        assert!(
            matches!(e, WorkloadError::OutOfMemory { probe: "mem", .. }),
            "{e}"
        );
    }
}
