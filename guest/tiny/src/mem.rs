//! The memory intrinsics the compiler calls (`memcpy`, `memset`, …).
//!
//! On the Linux host target they normally come from the C library, which the
//! guest does not link. `rep movsb`/`rep stosb` are fast on current CPUs and
//! cannot be turned back into a call to themselves by the optimiser.

use core::arch::asm;

/// Copies `n` bytes forward.
///
/// # Safety
/// The usual `memcpy` contract: valid, non-overlapping ranges.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid for `n` bytes.
    unsafe {
        asm!("rep movsb", inout("rdi") dest => _, inout("rsi") src => _, inout("rcx") n => _,
             options(nostack, preserves_flags));
    }
    dest
}

/// Copies `n` bytes, handling overlap.
///
/// # Safety
/// The usual `memmove` contract: valid ranges.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // Destination does not start inside the source: a forward copy is safe.
        // SAFETY: forwarded contract.
        return unsafe { memcpy(dest, src, n) };
    }
    // Copy backwards with the direction flag set, and clear it again.
    // SAFETY: the caller guarantees both ranges are valid; the last bytes are at +n-1.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _, inout("rcx") n => _,
             options(nostack));
    }
    dest
}

/// Fills `n` bytes with `c`.
///
/// # Safety
/// The usual `memset` contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range is valid for `n` bytes.
    unsafe {
        asm!("rep stosb", inout("rdi") dest => _, inout("rcx") n => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dest
}

/// Compares `n` bytes.
///
/// # Safety
/// The usual `memcmp` contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: `i < n` and the caller guarantees both ranges hold `n` bytes.
        // Volatile keeps the optimiser from turning this loop into a memcmp call.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// Equality-only comparison the compiler may emit.
///
/// # Safety
/// The usual `bcmp` contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { memcmp(a, b, n) }
}

/// `strlen`, which `core::ffi::CStr` may call.
///
/// # Safety
/// `s` must be NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a NUL terminator exists.
    while unsafe { core::ptr::read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}
