//! Test-only guest modes that misbehave on purpose, so the tests can check
//! that the VMM turns a hostile guest into a clean error and stays sound.
//! They are selected by the first argument (`hostile-io`, `hostile-virtio`)
//! and are not probes: nothing but the test suite should use them.

use core::arch::asm;
use core::fmt::Write;

use crate::clock::Clock;
use crate::output::Output;
use crate::port::{self, inb, inl, outb, outl, outsb, outw};
use crate::virtio_blk::{Completion, Desc, HOSTILE_TIMEOUT_MS, VirtioBlk, flags, kinds};

/// Exit status of `hostile-io` once it has written all its garbage.
pub const IO_DONE_STATUS: u32 = 0x1234;

/// Writes garbage to every isolab port with wrong widths and directions,
/// sends non-UTF-8 bytes and a malformed result line, then exits with
/// [`IO_DONE_STATUS`] through a 16-bit write. Facts go to the console.
pub fn io_garbage(console: &mut Output) -> ! {
    // Wrong widths and directions on the isolab ports and their neighbours.
    outw(port::READY, 0xffff);
    outl(port::PING, 0xdead_beef);
    outl(port::TSC_KHZ, 0);
    for p in 0x505..=0x507 {
        outb(p, 0xa5);
        outl(p, 0x5a5a_5a5a);
    }
    let reads = [
        inb(port::READY),
        inb(port::EXIT),
        inb(port::OUTPUT),
        inb(0x505),
        inb(0x507),
    ];
    let wide_ping = inl(port::PING);
    let mut sink = [0u8; 64];
    // SAFETY: `rep insb` writes exactly `sink.len()` bytes into `sink`.
    unsafe {
        asm!("rep insb", in("dx") port::OUTPUT, inout("rdi") sink.as_mut_ptr() => _,
             inout("rcx") sink.len() => _, options(nostack, preserves_flags));
    }
    // Garbage on the result stream: binary junk (never starting with '{'),
    // a 16-bit write, then a line that looks like a result but is not JSON.
    let mut junk = [0u8; 4096];
    for (i, b) in junk.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151) | 0x80;
    }
    outsb(port::OUTPUT, &junk);
    outw(port::OUTPUT, 0x0a0a);
    outsb(port::OUTPUT, b"{\"schema\":1,\"probe\":\x01garbage\n");
    let _ = writeln!(
        console,
        "hostile-io: stray reads {reads:02x?}, 32-bit ping {wide_ping:#x}, string read {:02x?}",
        &sink[..4]
    );
    console.flush();
    outw(port::EXIT, IO_DONE_STATUS as u16);
    loop {
        core::hint::spin_loop();
    }
}

/// One hand-made chain and whether the good request after it must work.
struct Case {
    name: &'static str,
    chain: [Desc; 3],
    len: usize,
    head: u16,
    advance: u16,
    /// Read from past the end of the disk instead of sector 0.
    past_end: bool,
}

impl Case {
    /// A chain of `len` descriptors posted at head 0, advancing the ring by one.
    fn new(name: &'static str, chain: [Desc; 3], len: usize) -> Case {
        Case {
            name,
            chain,
            len,
            head: 0,
            advance: 1,
            past_end: false,
        }
    }
}

/// The hostile chains, built around the device's header and status slots
/// and a guest buffer at `buf`.
fn cases(hdr: u64, status: u64, buf: u64) -> [Case; 8] {
    let h = |next| Desc {
        addr: hdr,
        len: 16,
        flags: flags::NEXT,
        next,
    };
    let st = Desc {
        addr: status,
        len: 1,
        flags: flags::WRITE,
        next: 0,
    };
    let data = |addr, len| Desc {
        addr,
        len,
        flags: flags::NEXT | flags::WRITE,
        next: 2,
    };
    let looping = Desc {
        flags: flags::WRITE | flags::NEXT,
        ..st
    };
    let outside = Desc {
        addr: 0xffff_f000_0000,
        ..st
    };
    [
        Case::new(
            "buffer-outside-ram",
            [h(1), data(0xffff_f000_0000, 4096), st],
            3,
        ),
        Case::new("huge-length", [h(1), data(0x10_0000, u32::MAX), st], 3),
        Case {
            past_end: true,
            ..Case::new("past-end-of-disk", [h(1), data(buf, 512), st], 3)
        },
        Case::new("descriptor-loop", [h(1), data(buf, 512), looping], 3),
        Case::new("next-out-of-range", [h(200), st, st], 1),
        Case {
            head: 999,
            ..Case::new("head-out-of-range", [h(1), st, st], 2)
        },
        Case::new("status-outside-ram", [h(1), outside, st], 2),
        // Last: an available index far ahead of what was posted; the device
        // may refuse the whole ring from then on.
        Case {
            advance: 1000,
            ..Case::new("avail-index-jump", [h(1), data(buf, 512), st], 3)
        },
    ]
}

/// Posts out-of-range, looping and lying descriptor chains to the
/// virtio-blk device. Returns the number of cases where the device claimed
/// success for a bad request or stopped serving good ones afterwards.
pub fn virtio(base: u64, clock: Clock, console: &mut Output) -> u32 {
    let mut dev = match VirtioBlk::new(base, clock) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(console, "hostile-virtio: {e}");
            return 1;
        }
    };
    dev.set_timeout_ms(HOSTILE_TIMEOUT_MS);
    let (hdr, status) = dev.request_slots();
    let mut page = [0u8; 512];
    let cases = cases(hdr, status, page.as_mut_ptr() as u64);
    let past_disk = dev.capacity() / 512 + 8;
    let mut failures = 0;
    for (i, case) in cases.iter().enumerate() {
        dev.set_header(kinds::IN, if case.past_end { past_disk } else { 0 });
        let answer = dev.post_raw(&case.chain[..case.len], case.head, case.advance);
        let accepted = matches!(answer, Completion::Used { status: 0, .. });
        let last = i + 1 == cases.len();
        let healthy = last || dev.read_at(0, &mut page).is_ok();
        if accepted || !healthy {
            failures += 1;
        }
        let _ = writeln!(
            console,
            "hostile-virtio: {}: {:?}, device {} it, later good request {}",
            case.name,
            answer,
            if accepted { "ACCEPTED" } else { "refused" },
            if last {
                "not tried"
            } else if healthy {
                "ok"
            } else {
                "FAILED"
            }
        );
    }
    let _ = writeln!(console, "hostile-virtio: {failures} failure(s)");
    console.flush();
    failures
}
