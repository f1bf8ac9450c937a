//! The guest clock: the TSC, scaled by the frequency the VMM reports.

use core::arch::x86_64::{__cpuid, _rdtsc};

/// [`Clock::source`] when no frequency was found and 1 GHz is assumed.
pub const ASSUMED: &str = "assumed-1GHz";

/// A TSC-based monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// TSC ticks per millisecond.
    khz: u64,
    /// Nanoseconds per tick as a 32.32 fixed-point factor.
    ns_per_tick_q32: u128,
    /// Where the frequency came from (reported as a fact in results).
    pub source: &'static str,
}

impl Clock {
    /// A clock from a known TSC frequency in kHz (non-zero).
    pub fn new(khz: u64, source: &'static str) -> Self {
        let khz = khz.max(1);
        Clock {
            khz,
            ns_per_tick_q32: (1_000_000u128 << 32) / khz as u128,
            source,
        }
    }

    /// Finds the TSC frequency: boot info, then the isolab port, then CPUID
    /// (leaf 0x15/0x16, the hypervisor timing leaf); the fallback is flagged.
    pub fn discover(boot_khz: u64, port_khz: u32) -> Self {
        if boot_khz != 0 {
            return Clock::new(boot_khz, "boot-info");
        }
        if port_khz != 0 && port_khz != u32::MAX {
            return Clock::new(port_khz as u64, "isolab-port");
        }
        if let Some(khz) = cpuid_khz() {
            return Clock::new(khz, "cpuid");
        }
        Clock::new(1_000_000, ASSUMED)
    }

    /// TSC ticks per millisecond.
    pub fn khz(&self) -> u64 {
        self.khz
    }

    /// Nanoseconds since an arbitrary origin (the TSC reset).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        ((ticks() as u128 * self.ns_per_tick_q32) >> 32) as u64
    }
}

/// Reads the TSC. CPL-3 `rdtsc` is allowed (CR4.TSD clear) and never exits.
#[inline(always)]
pub fn ticks() -> u64 {
    // SAFETY: rdtsc has no memory effects; it is always present on x86-64.
    unsafe { _rdtsc() }
}

/// The TSC frequency from CPUID, if the CPU or hypervisor tells it.
fn cpuid_khz() -> Option<u64> {
    let max = __cpuid(0).eax;
    if max >= 0x15 {
        let l = __cpuid(0x15);
        if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
            return Some(l.ecx as u64 * l.ebx as u64 / l.eax as u64 / 1000);
        }
    }
    if max >= 0x16 {
        let mhz = __cpuid(0x16).eax & 0xffff;
        if mhz != 0 {
            return Some(mhz as u64 * 1000);
        }
    }
    let hv_max = __cpuid(0x4000_0000).eax;
    if hv_max >= 0x4000_0010 {
        let khz = __cpuid(0x4000_0010).eax;
        if khz != 0 {
            return Some(khz as u64);
        }
    }
    None
}
