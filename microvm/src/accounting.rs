//! Memory accounting, the way Firecracker states its overhead: resident
//! memory of the VMM process that is not guest RAM, from `/proc/self/smaps`;
//! and guest RAM actually resident, from `mincore(2)`.

/// Resident bytes of the mapping `ptr..ptr+len` (page aligned).
pub fn resident_bytes(ptr: *mut u8, len: usize) -> std::io::Result<u64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: ptr..ptr+len is a live mapping owned by the caller's guest
    // memory; `vec` has one byte per page of it.
    let rc = unsafe { libc::mincore(ptr.cast(), len, vec.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(vec.iter().filter(|b| **b & 1 == 1).count() as u64 * page as u64)
}

/// Sum of `Rss:` over all mappings in an smaps text that do not overlap any
/// of `exclude` (host virtual address ranges `[start, end)`).
pub fn rss_excluding(smaps: &str, exclude: &[(u64, u64)]) -> u64 {
    let mut total_kb = 0u64;
    let mut current_excluded = false;
    for line in smaps.lines() {
        // A mapping header: "start-end perms offset dev inode [path]".
        if let Some((range, _)) = line.split_once(' ')
            && let Some((start, end)) = range.split_once('-')
            && let (Ok(s), Ok(e)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            current_excluded = exclude.iter().any(|(xs, xe)| s < *xe && *xs < e);
            continue;
        }
        if let Some(rest) = line.strip_prefix("Rss:")
            && !current_excluded
        {
            total_kb += rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total_kb * 1024
}

/// This process's resident memory outside `exclude`.
pub fn vmm_overhead_bytes(exclude: &[(u64, u64)]) -> std::io::Result<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    Ok(rss_excluding(&smaps, exclude))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/isolab
Size:                  4 kB
Rss:                   4 kB
7f0000000000-7f0008000000 rw-p 00000000 00:00 0
Size:             131072 kB
Rss:                2048 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Rss:                  12 kB
";

    #[test]
    fn guest_ram_is_excluded() {
        assert_eq!(rss_excluding(SMAPS, &[]), (4 + 2048 + 12) * 1024);
        assert_eq!(
            rss_excluding(SMAPS, &[(0x7f00_0000_0000, 0x7f00_0800_0000)]),
            16 * 1024
        );
    }

    #[test]
    fn touched_pages_are_resident() {
        let mut v = vec![0u8; 1 << 20];
        v.iter_mut().step_by(4096).for_each(|b| *b = 1);
        // The Vec's buffer may not be page aligned: round inwards.
        let start = (v.as_ptr() as usize).div_ceil(4096) * 4096;
        let len = 512 * 1024;
        let r = resident_bytes(start as *mut u8, len).unwrap();
        assert_eq!(r, len as u64);
    }
}
