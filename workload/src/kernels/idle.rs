//! `idle`: does nothing for a while, so the host can read the instance's
//! resident memory while it is idle.

use crate::platform::Platform;
use crate::report::Line;

/// Idles `ms` milliseconds; emits `slept_ms`, the time actually spent.
pub fn run<P: Platform>(p: &mut P, ms: u64) {
    let t0 = p.now_ns();
    p.idle(ms);
    let slept = p.now_ns().saturating_sub(t0) as f64 / 1e6;
    Line::new(p, "idle", "slept_ms", "ms", alloc::vec![slept])
        .extra("requested_ms", ms)
        .emit(p);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fake::FakePlatform;

    #[test]
    fn default_idle_polls_until_the_time_has_passed() {
        let mut p = FakePlatform::new(250_000);
        run(&mut p, 2);
        let r = p.results();
        assert_eq!(r[0].extra["requested_ms"], 2);
        assert!(r[0].value >= 2.0, "{}", r[0].value);
        assert!(r[0].value < 3.0, "{}", r[0].value);
    }
}
