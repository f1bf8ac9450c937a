//! Cache geometry from `cpuid`, which works unprivileged (CPL 3) on the host
//! and in a guest alike, so every platform reports the last-level cache the
//! same way.

/// Size in bytes of the highest-level data or unified cache `cpuid`
/// describes (Intel leaf 4, AMD leaf `0x8000_001d`), if it describes any.
pub fn llc_bytes() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid_count;
        let max_ext = __cpuid_count(0x8000_0000, 0).eax;
        let mut best: Option<(u32, u64)> = None;
        for leaf in [4u32, 0x8000_001d] {
            if leaf > 0x8000_0000 && max_ext < leaf {
                continue;
            }
            for sub in 0..16 {
                let r = __cpuid_count(leaf, sub);
                let kind = r.eax & 0x1f;
                if kind == 0 {
                    break;
                }
                if kind == 2 {
                    continue; // instruction cache
                }
                let level = (r.eax >> 5) & 0x7;
                let ways = u64::from((r.ebx >> 22) & 0x3ff) + 1;
                let parts = u64::from((r.ebx >> 12) & 0x3ff) + 1;
                let line = u64::from(r.ebx & 0xfff) + 1;
                let sets = u64::from(r.ecx) + 1;
                let size = ways * parts * line * sets;
                if best.is_none_or(|(l, _)| level > l) {
                    best = Some((level, size));
                }
            }
            if best.is_some() {
                break;
            }
        }
        best.map(|(_, size)| size)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn llc_is_a_plausible_cache_size() {
        // Every x86-64 CPU this project targets describes its caches.
        let llc = super::llc_bytes().expect("cpuid describes a cache");
        assert!((64 * 1024..=4 << 30).contains(&llc), "{llc}");
    }
}
