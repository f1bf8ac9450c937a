//! The measurement kernels: the same code on every platform.
//!
//! Each kernel runs its measurement `reps` times and emits result lines
//! through the [`Platform`](crate::Platform), every line carrying all samples
//! and their median.

pub mod cpu;
pub mod idle;
pub mod io;
pub mod mem;
pub mod net;
pub mod ready;
pub mod syscall;

#[cfg(test)]
pub(crate) mod fake;

/// Nanoseconds elapsed from `start` to `end`, at least 1 so rates stay finite.
pub(crate) fn elapsed_ns(start: u64, end: u64) -> u64 {
    end.saturating_sub(start).max(1)
}

/// `amount` per second over `ns` nanoseconds.
pub(crate) fn per_second(amount: f64, ns: u64) -> f64 {
    amount * 1e9 / ns.max(1) as f64
}

/// A small deterministic generator (xorshift64*) for buffer contents and
/// random offsets; identical on every platform.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
