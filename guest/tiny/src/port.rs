//! Port I/O and the isolab device (ports 0x500..0x507, see ARCHITECTURE.md).
//!
//! The guest runs at CPL 3 with IOPL 3, so `in`/`out` are allowed and each
//! one is a VM exit handled by the VMM.

use core::arch::asm;

use guest_abi::port::{self as abi, at};

/// Ready marker: the VMM timestamps the first write.
pub const READY: u16 = at(abi::READY);
/// Exit status: the VMM stops the guest on a write.
pub const EXIT: u16 = at(abi::EXIT);
/// Result stream output: every byte of an 8-, 16- or 32-bit write.
pub const OUTPUT: u16 = at(abi::OUTPUT);
/// Ping: reads [`abi::PING_REPLY`], one VM-exit round trip.
pub const PING: u16 = at(abi::PING);
/// TSC frequency in kHz (32-bit read).
pub const TSC_KHZ: u16 = at(abi::TSC_KHZ);

/// Writes one byte to a port.
#[inline(always)]
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O has no memory effects on the guest; IOPL 3 makes it legal at CPL 3.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Writes a 16-bit value to a port.
#[inline(always)]
pub fn outw(port: u16, value: u16) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Writes a 32-bit value to a port.
#[inline(always)]
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Reads one byte from a port.
#[inline(always)]
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`; the read has no memory effects on the guest.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Reads a 32-bit value from a port.
#[inline(always)]
pub fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: as for `inb`.
    unsafe {
        asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Writes a byte string to one port with `rep outsb` (KVM still exits once
/// per byte; the hostile test mode uses it to exercise string I/O).
#[inline]
pub fn outsb(port: u16, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // SAFETY: reads exactly `bytes.len()` bytes from `bytes` (rsi/rcx), which
    // is a valid slice; the direction flag is clear per the ABI.
    unsafe {
        asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(readonly, nostack, preserves_flags)
        )
    }
}

/// Tells the VMM the guest is done and waits for it to stop the vCPU. A
/// CPL-3 guest cannot `hlt`, so it spins if the VMM ever returns.
pub fn exit(status: u32) -> ! {
    outl(EXIT, status);
    loop {
        core::hint::spin_loop();
    }
}
