//! The isolab tiny guest: the workload core on a bare x86-64 platform.
//!
//! Entered in long mode at CPL 3 (see ARCHITECTURE.md, "Guest ABI"), it never
//! runs privileged code after its entry, never takes an exception or an
//! interrupt, and talks to the host only through port I/O and MMIO: results
//! to the isolab output port, diagnostics to the serial console, the exit
//! status to port 0x501.
#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod bootinfo;
mod clock;
mod heap;
mod hostile;
mod mem;
mod output;
mod platform;
mod port;
mod serial;
mod virtio_blk;

use alloc::vec::Vec;
use core::fmt::Write;

use workload::args::{self, Command, USAGE};

use crate::bootinfo::Loader;
use crate::output::Output;

#[global_allocator]
static HEAP: heap::Bump = heap::Bump::empty();

/// Exit status after a panic (as a Rust process would report).
const PANIC_STATUS: u32 = 101;
/// Exit status for a bad command line (as the Linux workload binary).
const USAGE_STATUS: u32 = 2;
/// Exit status for a probe that failed (as the Linux workload binary).
const PROBE_STATUS: u32 = 1;
/// Exit status for unusable boot information.
const BOOT_STATUS: u32 = 3;

/// The Rust entry, called by `_start` with the VMM's `rdi` and the PVH `ebx`.
#[unsafe(no_mangle)]
pub extern "C" fn tiny_main(tiny_info: u64, pvh_info: u64) -> ! {
    // SAFETY: these are the registers the loaders documented: `tiny_info` from
    // our VMM, or 0 and the PVH start info address from the 32-bit entry.
    let boot = match unsafe { bootinfo::read(tiny_info, pvh_info) } {
        Ok(b) => b,
        Err(msg) => {
            let mut console = Output::new(true);
            let _ = writeln!(console, "isolab-tiny: unusable boot info: {msg}");
            console.flush();
            port::exit(BOOT_STATUS);
        }
    };
    HEAP.init(boot.heap_start as usize, boot.heap_end as usize);
    let under_pvh = boot.loader == Loader::Pvh;
    let clock = clock::Clock::discover(
        boot.tsc_khz,
        if under_pvh {
            0
        } else {
            port::inl(port::TSC_KHZ)
        },
    );
    let mut console = Output::new(true);
    if clock.source == clock::ASSUMED {
        let _ = writeln!(
            console,
            "isolab-tiny: TSC frequency unknown, assuming 1 GHz: times are not calibrated"
        );
    }

    let Ok(text) = core::str::from_utf8(boot.cmdline) else {
        let _ = writeln!(console, "isolab-tiny: error: the command line is not UTF-8");
        console.flush();
        port::exit(USAGE_STATUS);
    };
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    match words.first().copied() {
        Some("hostile-io") => hostile::io_garbage(&mut console),
        Some("hostile-virtio") => {
            let failures = hostile::virtio(boot.virtio_blk_mmio, clock, &mut console);
            port::exit(failures);
        }
        _ => {}
    }
    // Without arguments (e.g. booted by QEMU with no -append) run `ready` only.
    let words = if words.is_empty() {
        alloc::vec!["ready"]
    } else {
        words
    };
    let status = match args::parse(words.iter().copied()) {
        Ok(Command::Help) => {
            console.write(USAGE.as_bytes());
            0
        }
        Ok(Command::Run(cfg)) => {
            let out = Output::new(under_pvh);
            let mut platform = platform::Bare::new(clock, out, boot.virtio_blk_mmio);
            match workload::run(&mut platform, &cfg) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(console, "isolab-tiny: error: {e}");
                    PROBE_STATUS
                }
            }
        }
        Err(e) => {
            let _ = writeln!(console, "isolab-tiny: error: {e}\n{USAGE}");
            USAGE_STATUS
        }
    };
    console.flush();
    port::exit(status)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // Both streams: the result stream is what the host parses, the console
    // is what a person reads.
    for to_serial in [false, true] {
        let mut out = Output::new(to_serial);
        let _ = writeln!(out, "isolab-tiny panic: {info}");
        out.flush();
    }
    port::exit(PANIC_STATUS)
}

/// The precompiled `alloc` keeps unwinding landing pads that name this
/// symbol. With `panic = "abort"` nothing ever unwinds, so it is never called;
/// if it were, treat it like a panic.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    port::exit(PANIC_STATUS)
}
