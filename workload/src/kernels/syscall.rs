//! `syscall`: round-trip cost of the cheapest kernel entry.
//!
//! `getppid(2)` on Linux; on the bare guest an `in` from the VMM's ping port,
//! i.e. one VM exit (`kind: "vmexit"`). An empty loop of the same length is
//! timed too and subtracted, and the clock's resolution and read cost are
//! reported, so the probe's own overhead is visible.

use alloc::vec::Vec;
use core::hint::black_box;

use super::elapsed_ns;
use crate::error::WorkloadError;
use crate::platform::Platform;
use crate::report::Line;
use crate::stats::median;

/// Clock facts measured by reading it back to back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockFacts {
    /// Smallest non-zero difference between two consecutive readings, in ns.
    pub observed_step_ns: u64,
    /// Average cost of one reading, in ns.
    pub read_ns: f64,
}

/// Measures the clock's observable step and read cost.
pub fn clock_facts<P: Platform>(p: &P) -> ClockFacts {
    const READS: u64 = 1000;
    let mut step = u64::MAX;
    let t0 = p.now_ns();
    let mut prev = t0;
    for _ in 0..READS {
        let t = p.now_ns();
        if t > prev {
            step = step.min(t - prev);
        }
        prev = t;
    }
    let read_ns = elapsed_ns(t0, prev) as f64 / READS as f64;
    ClockFacts {
        observed_step_ns: if step == u64::MAX { 0 } else { step },
        read_ns,
    }
}

/// Runs the probe: emits `round_trip_ns` (loop overhead subtracted).
pub fn run<P: Platform>(p: &mut P, iters: u32, reps: u32) -> Result<(), WorkloadError> {
    let clock = clock_facts(p);
    let mut net = Vec::new();
    let mut overhead = Vec::new();
    for _ in 0..reps {
        let t0 = p.now_ns();
        for i in 0..iters {
            black_box(i);
        }
        let t1 = p.now_ns();
        for i in 0..iters {
            black_box(i);
            p.kernel_entry();
        }
        let t2 = p.now_ns();
        let empty = elapsed_ns(t0, t1) as f64 / f64::from(iters);
        let full = elapsed_ns(t1, t2) as f64 / f64::from(iters);
        overhead.push(empty);
        net.push((full - empty).max(0.0));
    }
    let kind = p.kernel_entry_kind();
    Line::new(p, "syscall", "round_trip_ns", "ns", net)
        .kind(kind)
        .extra("iters", iters)
        .extra("loop_overhead_ns", median(&overhead))
        .extra("timer_resolution_ns", p.clock_resolution_ns())
        .extra("timer_observed_step_ns", clock.observed_step_ns)
        .extra("clock_read_ns", clock.read_ns)
        .emit(p);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fake::FakePlatform;

    #[test]
    fn subtracts_loop_overhead_and_counts_entries() {
        // Every clock read advances 50 ns, so the empty loop spans 50 ns.
        // Each entry costs 7 ns on top of the loop.
        let mut p = FakePlatform::new(50);
        p.entry_cost = 7;
        run(&mut p, 10, 3).unwrap();
        assert_eq!(p.entries.get(), 30);
        let r = p.results();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind.as_deref(), Some("vmexit"));
        assert_eq!(r[0].samples, [7.0, 7.0, 7.0]);
        assert_eq!(r[0].value, 7.0);
        assert_eq!(r[0].extra["loop_overhead_ns"], 5.0);
        assert_eq!(r[0].extra["timer_resolution_ns"], 50);
        assert_eq!(r[0].extra["timer_observed_step_ns"], 50);
        assert_eq!(r[0].extra["clock_read_ns"], 50.0);
    }
}
