//! The Linux platform: a process on Linux, whether native, in a container or
//! as a Linux guest's `/init`.

pub mod block;
pub mod bundle;
pub mod exec;
pub mod guest_process;
pub mod init;
pub mod net;
pub mod ports;

use std::io::Write;
use std::time::Duration;

use crate::platform::{BlockError, NetError, NetListener, NetStream, Platform};
use crate::schema::PlatformKind;

pub use block::FileBlock;

/// Linux implementation of [`Platform`].
pub struct LinuxPlatform {
    in_vm: bool,
}

impl LinuxPlatform {
    /// A platform writing results to stdout. `in_vm` means this process is a
    /// VM's `/init` with the isolab ports enabled ([`ports::enable`]), so the
    /// ready marker also goes to port `0x500`.
    pub fn new(in_vm: bool) -> LinuxPlatform {
        // A fixed mmap threshold stops glibc from raising it after a large
        // free, so every large allocation is a fresh mapping and the `mem`
        // probe's first touch really faults each page in every repetition.
        // SAFETY: mallopt only adjusts allocator parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
        LinuxPlatform { in_vm }
    }
}

fn clock(f: unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { f(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

impl Platform for LinuxPlatform {
    type Block = FileBlock;

    fn kind(&self) -> PlatformKind {
        PlatformKind::Linux
    }

    fn now_ns(&self) -> u64 {
        clock(libc::clock_gettime)
    }

    fn clock_resolution_ns(&self) -> u64 {
        clock(libc::clock_getres).max(1)
    }

    fn emit(&mut self, line: &str) {
        let mut out = std::io::stdout().lock();
        // Nothing useful can be done if stdout is gone; the host notices the
        // missing lines.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }

    fn kernel_entry(&self) {
        // SAFETY: getppid takes no arguments and cannot fail.
        let ppid = unsafe { libc::syscall(libc::SYS_getppid) };
        std::hint::black_box(ppid);
    }

    fn kernel_entry_kind(&self) -> &'static str {
        "syscall"
    }

    fn open_block(&mut self, target: Option<&str>, size: u64) -> Result<FileBlock, BlockError> {
        FileBlock::open(target, size)
    }

    fn mark_ready(&mut self) {
        if self.in_vm {
            ports::ready();
        }
    }

    fn idle(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    fn llc_bytes(&self) -> Option<u64> {
        // Same source as the bare platform, so both report the same number;
        // sysfs only where cpuid says nothing.
        crate::cpuid::llc_bytes().or_else(llc_from_sysfs)
    }

    fn net_dial(&mut self, addr: std::net::SocketAddr) -> Result<Box<dyn NetStream>, NetError> {
        net::dial(addr)
    }

    fn net_listen(&mut self, port: u16) -> Result<Box<dyn NetListener>, NetError> {
        net::listen(port)
    }
}

/// Size of CPU 0's highest-level cache from sysfs, e.g. `"107520K"`.
fn llc_from_sysfs() -> Option<u64> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    let mut best: Option<(u32, u64)> = None;
    for entry in dir.flatten() {
        let read = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
        let (Some(level), Some(size)) = (read("level"), read("size")) else {
            continue;
        };
        let Ok(level) = level.trim().parse::<u32>() else {
            continue;
        };
        let Ok(bytes) = crate::args::parse_size(size.trim()) else {
            continue;
        };
        if best.is_none_or(|(l, _)| level > l) {
            best = Some((level, bytes));
        }
    }
    best.map(|(_, bytes)| bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_resolution_positive() {
        let p = LinuxPlatform::new(false);
        let a = p.now_ns();
        std::thread::sleep(Duration::from_millis(2));
        let b = p.now_ns();
        assert!(b >= a + 2_000_000, "{a} -> {b}");
        assert!(p.clock_resolution_ns() >= 1);
        assert_eq!(p.kernel_entry_kind(), "syscall");
    }

    #[test]
    fn cpuid_and_sysfs_agree_on_the_llc() {
        let (Some(sysfs), Some(cpuid)) = (llc_from_sysfs(), crate::cpuid::llc_bytes()) else {
            return; // no sysfs cache information (e.g. inside a bare guest image)
        };
        assert_eq!(sysfs, cpuid);
    }
}
