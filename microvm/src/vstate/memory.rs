//! Guest RAM: one anonymous mapping at GPA 0.
//!
//! The mapping is `MAP_NORESERVE` and never pre-faulted: pages become
//! resident only when the VMM writes boot data or the guest touches them,
//! which keeps set-up at a few microseconds whatever the size.

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::arch::x86_64::layout;
use crate::error::Error;

/// Checks a requested guest RAM size against the guest ABI and the host.
pub fn check_size(bytes: u64) -> Result<(), Error> {
    check_size_against(bytes, host_available_bytes())
}

/// As [`check_size`], with the host's available memory given.
pub fn check_size_against(bytes: u64, available: Option<u64>) -> Result<(), Error> {
    if bytes == 0 {
        return Err(Error::MemoryZero);
    }
    if !bytes.is_multiple_of(layout::PAGE_SIZE) {
        return Err(Error::MemoryUnaligned { requested: bytes });
    }
    if let Some(available) = available
        && bytes > available
    {
        return Err(Error::MemoryTooLarge {
            requested: bytes,
            available,
        });
    }
    if bytes > layout::MMIO_HOLE_START {
        return Err(Error::MemoryAboveMmioHole {
            requested: bytes,
            limit: layout::MMIO_HOLE_START,
        });
    }
    Ok(())
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub fn host_available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

/// Parses `MemAvailable:  N kB` out of a `/proc/meminfo` text.
pub fn parse_mem_available(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Creates guest RAM of `bytes` at GPA 0 (size already checked).
///
/// With `hugepages`, the mapping is advised as a transparent-huge-page
/// candidate (THP `madvise` mode is the common default); where THP is off the
/// advice is harmlessly ignored.
pub fn create(bytes: u64, hugepages: bool) -> Result<GuestMemoryMmap, Error> {
    let len = usize::try_from(bytes)
        .map_err(|_| Error::GuestMemory(format!("{bytes} bytes does not fit usize")))?;
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), len)])
        .map_err(|e| Error::GuestMemory(e.to_string()))?;
    if hugepages {
        for region in mem.iter() {
            let (ptr, size) = host_range(region);
            // SAFETY: ptr/size describe a mapping owned by `mem`; madvise only
            // changes paging advice for it.
            let rc = unsafe { libc::madvise(ptr as *mut libc::c_void, size, libc::MADV_HUGEPAGE) };
            if rc != 0 {
                tracing::debug!(err = %std::io::Error::last_os_error(), "MADV_HUGEPAGE refused; using small pages");
            }
        }
    }
    Ok(mem)
}

/// The host virtual address range backing a region.
pub fn host_range(region: &vm_memory::GuestRegionMmap) -> (*mut u8, usize) {
    (region.as_ptr(), region.len() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_unaligned_sizes_are_refused() {
        assert!(matches!(check_size(0), Err(Error::MemoryZero)));
        assert!(matches!(
            check_size(4097),
            Err(Error::MemoryUnaligned { requested: 4097 })
        ));
    }

    #[test]
    fn sizes_over_the_mmio_hole_are_refused() {
        let e = check_size_against(4 << 30, Some(64 << 30)).unwrap_err();
        assert!(matches!(e, Error::MemoryAboveMmioHole { .. }), "{e}");
    }

    #[test]
    fn sizes_over_what_the_host_has_are_refused() {
        let e = check_size_against(2 << 30, Some(1 << 30)).unwrap_err();
        assert!(
            matches!(e, Error::MemoryTooLarge { requested, available } if requested == 2 << 30 && available == 1 << 30)
        );
        assert!(e.to_string().contains("MemAvailable"), "{e}");
        assert!(check_size_against(1 << 30, Some(1 << 30)).is_ok());
    }

    #[test]
    fn meminfo_parsing() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_mem_available(text), Some(2048 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn creating_memory_does_not_fault_it_in() {
        let mem = create(64 << 20, false).unwrap();
        let region = mem.iter().next().unwrap();
        assert_eq!(region.len(), 64 << 20);
        let touched =
            crate::accounting::resident_bytes(region.as_ptr(), region.len() as usize).unwrap();
        assert_eq!(touched, 0, "fresh guest RAM must not be resident");
    }
}
