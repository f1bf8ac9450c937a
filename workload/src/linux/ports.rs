//! The isolab device's ports (see ARCHITECTURE.md, "isolab device"), used
//! when the workload is PID 1 of a Linux guest.

use std::io;

use guest_abi::port;

/// Ready marker: the VMM timestamps the first write.
pub const READY_PORT: u16 = port::at(port::READY);
/// Exit status: the guest is done.
pub const EXIT_PORT: u16 = port::at(port::EXIT);
/// Init marker: the VMM timestamps the first write (kernel/init boot split).
pub const INIT_PORT: u16 = port::at(port::INIT);

/// Grants this process access to ports `0x500..0x507` (needs CAP_SYS_RAWIO).
pub fn enable() -> io::Result<()> {
    // SAFETY: ioperm only changes this process's I/O permission bitmap.
    let rc = unsafe { libc::ioperm(port::BASE.into(), port::LEN.into(), 1) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn outb(port: u16, value: u8) {
    // SAFETY: only called after `enable` granted these ports; an `out` to the
    // isolab device has no effect on this process's memory.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack))
    };
}

/// Writes the init marker: the guest kernel has started us.
pub fn init_started() {
    outb(INIT_PORT, 1);
}

/// Writes the ready marker.
pub fn ready() {
    outb(READY_PORT, 1);
}

/// Reports the exit status to the VMM (low 8 bits).
pub fn exit_status(status: i32) {
    outb(EXIT_PORT, status as u8);
}
