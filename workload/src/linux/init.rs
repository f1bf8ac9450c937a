//! Duties of PID 1 (container init or a Linux guest's `/init`): reap
//! orphans, honour SIGTERM, and on a VM shut the machine down cleanly.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ports;

/// Kernel command-line flag that marks "PID 1 of an isolab VM".
pub const VM_FLAG: &str = "isolab.vm";

static IN_VM: AtomicBool = AtomicBool::new(false);

/// True when this process is PID 1 of its PID namespace.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Mounts procfs on `/proc` if it is not there (a bare initramfs has none).
pub fn ensure_proc() -> io::Result<()> {
    if Path::new("/proc/self").exists() {
        return Ok(());
    }
    std::fs::create_dir_all("/proc")?;
    // SAFETY: all pointers are NUL-terminated literals that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Gives the process a console on fds 0–2 when it has none: a guest kernel
/// whose initramfs lacks `/dev/console` starts init with no descriptors, and
/// the results would vanish. Creates the device node if needed.
pub fn ensure_console() -> io::Result<()> {
    // SAFETY: F_GETFD on fd 1 only queries its flags.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } != -1 {
        return Ok(());
    }
    if !Path::new("/dev/console").exists() {
        std::fs::create_dir_all("/dev")?;
        // SAFETY: the path is a NUL-terminated literal; 5:1 is the console device.
        let rc = unsafe {
            libc::mknod(
                c"/dev/console".as_ptr(),
                libc::S_IFCHR | 0o600,
                libc::makedev(5, 1),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: opening a NUL-terminated literal path.
    let fd = unsafe { libc::open(c"/dev/console".as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    for target in 0..3 {
        if fd != target {
            // SAFETY: dup2 onto the standard descriptors, which are free (fd 1 was not open).
            unsafe { libc::dup2(fd, target) };
        }
    }
    if fd > 2 {
        // SAFETY: closing the extra descriptor we opened above.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// True when `cmdline` (the kernel command line) carries [`VM_FLAG`] as a word.
pub fn cmdline_marks_vm(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|w| w == VM_FLAG)
}

/// True when `/proc/cmdline` carries [`VM_FLAG`].
pub fn kernel_says_vm() -> bool {
    std::fs::read_to_string("/proc/cmdline").is_ok_and(|c| cmdline_marks_vm(&c))
}

extern "C" fn on_sigchld(_: libc::c_int) {
    // Reap every exited child; waitpid is async-signal-safe.
    // SAFETY: waitpid with a null status pointer only reaps.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

extern "C" fn on_sigterm(_: libc::c_int) {
    const STATUS: i32 = 128 + libc::SIGTERM;
    if IN_VM.load(Ordering::Relaxed) {
        ports::exit_status(STATUS);
        power_off();
    }
    // SAFETY: _exit is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(STATUS) };
}

/// Installs the PID 1 signal handlers: reap children on SIGCHLD, and exit on
/// SIGTERM (the kernel ignores signals PID 1 has no handler for). With
/// `in_vm`, SIGTERM reports status 143 on the exit port and powers off.
pub fn install_handlers(in_vm: bool) -> io::Result<()> {
    IN_VM.store(in_vm, Ordering::Relaxed);
    for (sig, handler) in [
        (libc::SIGCHLD, on_sigchld as extern "C" fn(libc::c_int)),
        (libc::SIGTERM, on_sigterm as extern "C" fn(libc::c_int)),
    ] {
        // SAFETY: a zeroed sigaction is valid; the handler is an extern "C"
        // function that only calls async-signal-safe functions.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as usize;
            sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Syncs and reboots. The guest kernel runs with `reboot=k`, so this ends in
/// the i8042 reset the VMM treats as "guest done".
pub fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers; as PID 1 of the VM nothing
    // else needs to run after this.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
        // reboot only returns on failure (e.g. no CAP_SYS_BOOT): exit instead.
        libc::_exit(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_flag_must_be_a_whole_word() {
        assert!(cmdline_marks_vm("console=ttyS0 isolab.vm reboot=k -- cpu"));
        assert!(!cmdline_marks_vm("console=ttyS0 isolab.vmx"));
        assert!(!cmdline_marks_vm(""));
    }
}
