//! Hostile guests, hand-assembled, run through `microvm::run`: they hammer
//! every exit type with garbage and the VMM must report each run cleanly —
//! a distinct [`VmExit`], never a panic or a hang — and keep guest-facing
//! state (the disk, the output stream) exactly as the guest ABI says.
//!
//! What `exits.rs`, `virtio_blk.rs` and the tiny guest's `hostile-io` /
//! `hostile-virtio` modes already cover is not repeated: here are a sweep of
//! all 65536 ports in every width, a sweep of the virtio-mmio window and of
//! unbacked guest-physical space, driver-side queue misconfiguration (sizes
//! that are zero or not powers of two, rings outside RAM, across its end or
//! in the MMIO hole, buffers across the end of RAM, zero lengths, wrong
//! direction flags), faults of several kinds, exit storms, and output floods.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hostcaps::kvm::KvmKind;
use microvm::VmExit;

/// Guest RAM of every VM here (the common config's size).
const MEM: u64 = 32 << 20;
const VIRTIO: u64 = 0xd000_0000;

/// A tiny x86-64 assembler: just the instructions these guests use, with
/// labels for short and near jumps.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    labels: HashMap<&'static str, usize>,
    /// (position of a rel32, label).
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    fn b(&mut self, bytes: &[u8]) -> &mut Self {
        self.code.extend_from_slice(bytes);
        self
    }
    fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.insert(name, self.code.len());
        self
    }
    fn rel32(&mut self, op: &[u8], target: &'static str) -> &mut Self {
        self.b(op);
        self.fixups.push((self.code.len(), target));
        self.b(&[0; 4])
    }
    /// `jmp label`
    fn jmp(&mut self, l: &'static str) -> &mut Self {
        self.rel32(&[0xe9], l)
    }
    /// `jne label`
    fn jne(&mut self, l: &'static str) -> &mut Self {
        self.rel32(&[0x0f, 0x85], l)
    }
    /// `je label`
    fn je(&mut self, l: &'static str) -> &mut Self {
        self.rel32(&[0x0f, 0x84], l)
    }
    /// `mov r64, imm64` (rax=0, rcx=1, rdx=2, rbx=3, rsi=6, rdi=7)
    fn mov64(&mut self, reg: u8, v: u64) -> &mut Self {
        self.b(&[0x48, 0xb8 + reg]).b(&v.to_le_bytes())
    }
    /// `mov eax, imm32`
    fn mov_eax(&mut self, v: u32) -> &mut Self {
        self.b(&[0xb8]).b(&v.to_le_bytes())
    }
    /// `mov dx, imm16`
    fn mov_dx(&mut self, port: u16) -> &mut Self {
        self.b(&[0x66, 0xba]).b(&port.to_le_bytes())
    }
    /// `mov dword [rbx + disp], imm32`
    fn store_rbx(&mut self, disp: u32, v: u32) -> &mut Self {
        self.b(&[0xc7, 0x83])
            .b(&disp.to_le_bytes())
            .b(&v.to_le_bytes())
    }
    /// `mov eax, [rbx + disp]`
    fn load_rbx(&mut self, disp: u32) -> &mut Self {
        self.b(&[0x8b, 0x83]).b(&disp.to_le_bytes())
    }
    /// `mov eax, [rsi + disp]; mov [rbx + reg], eax`: a parameter into a register.
    fn param_to_reg(&mut self, param: u32, reg: u32) -> &mut Self {
        self.b(&[0x8b, 0x86])
            .b(&param.to_le_bytes())
            .b(&[0x89, 0x83])
            .b(&reg.to_le_bytes())
    }
    /// `out 0x502, eax` (clobbers dx): four bytes of output.
    fn emit_eax(&mut self) -> &mut Self {
        self.mov_dx(0x502).b(&[0xef])
    }
    /// `out 0x501, eax` with `code`, then spin.
    fn exit(&mut self, code: u32) -> &mut Self {
        self.mov_dx(0x501)
            .mov_eax(code)
            .b(&[0xef])
            .label("__spin")
            .jmp("__spin")
    }
    fn finish(&mut self) -> Vec<u8> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l] as i64;
            let rel = (target - (at as i64 + 4)) as i32;
            self.code[at..at + 4].copy_from_slice(&rel.to_le_bytes());
        }
        std::mem::take(&mut self.code)
    }
}

fn run(code: &[u8], timeout: Duration, disk: Option<&std::path::Path>) -> microvm::VmOutcome {
    let img = common::image(code);
    let mut cfg = common::config(&img);
    assert_eq!(cfg.memory_bytes, MEM);
    cfg.timeout = timeout;
    cfg.disk = disk.map(Into::into);
    microvm::run(&cfg).expect("the VMM must report a hostile guest as an outcome, not fail")
}

fn disk_with_pattern(bytes: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
    let pattern: Vec<u8> = (0..bytes).map(|i| (i * 7 + i / 512) as u8).collect();
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), &pattern).unwrap();
    (f, pattern)
}

/// Ports that get all six accesses in the sweep (the others get one byte
/// written): the low eight of every 256 and the whole legacy device area.
/// Wide accesses stop before 0xfffc: an access past port 0xffff is a #GP by
/// the I/O permission bitmap, i.e. the guest's own triple fault.
fn sweep_full(p: u32) -> bool {
    p < 0xfffc && ((p & 0xff) < 8 || (0x3f0..0x600).contains(&p))
}

#[test]
fn every_port_is_survived() {
    if !common::kvm("every_port_is_survived") {
        return;
    }
    // for edx in 0..=0xffff, except the exit port 0x501:
    //   eax = edx ^ 0xa5a5a5a5; out al; and where sweep_full: out ax/eax, in al/ax/eax
    let mut a = Asm::default();
    a.b(&[0x31, 0xd2]) // xor edx, edx
        .label("top")
        .b(&[0x81, 0xfa]) // cmp edx, 0x501
        .b(&0x501u32.to_le_bytes())
        .je("next")
        .b(&[0x89, 0xd0]) // mov eax, edx
        .b(&[0x35]) // xor eax, imm32
        .b(&0xa5a5_a5a5u32.to_le_bytes())
        .b(&[0xee]) // out dx, al
        .b(&[0x81, 0xfa]) // cmp edx, 0xfffc
        .b(&0xfffcu32.to_le_bytes())
        .rel32(&[0x0f, 0x83], "next") // jae next
        .b(&[0xf6, 0xc2, 0xf8]) // test dl, 0xf8
        .je("full")
        .b(&[0x81, 0xfa]) // cmp edx, 0x3f0
        .b(&0x3f0u32.to_le_bytes())
        .rel32(&[0x0f, 0x82], "next") // jb next
        .b(&[0x81, 0xfa]) // cmp edx, 0x600
        .b(&0x600u32.to_le_bytes())
        .rel32(&[0x0f, 0x83], "next") // jae next
        .label("full")
        .b(&[0x66, 0xef, 0xef]) // out dx, ax ; out dx, eax
        .b(&[0xec, 0x66, 0xed, 0xed]) // in al, dx ; in ax, dx ; in eax, dx
        .label("next")
        .b(&[0xff, 0xc2]) // inc edx
        .b(&[0x81, 0xfa]) // cmp edx, 0x10000
        .b(&0x1_0000u32.to_le_bytes())
        .jne("top")
        .exit(0x600d);
    let full = (0..0x1_0000u32)
        .filter(|p| *p != 0x501 && sweep_full(*p))
        .count() as u64;
    let t = Instant::now();
    let out = run(&a.finish(), Duration::from_secs(120), None);
    println!(
        "port sweep: {:?} in {:?}, {:?}",
        out.exit,
        t.elapsed(),
        out.stats
    );
    assert_eq!(
        out.exit,
        VmExit::GuestExit { code: 0x600d },
        "{}",
        out.exit.explain()
    );
    // One exit per access, plus the exit write.
    assert_eq!(out.stats.io_exits, 65535 + 5 * full + 1, "{:?}", out.stats);
    assert!(out.stats.stray_io > 65000, "{:?}", out.stats);
    // Only the three writes to 0x502 reach the output: 1 + 2 + 4 bytes of 0x502 ^ 0xa5a5a5a5.
    let v = (0x502u32 ^ 0xa5a5_a5a5).to_le_bytes();
    let expected = [&v[..1], &v[..2], &v[..4]].concat();
    assert_eq!(out.output, expected);
    assert!(out.timings.ready.is_some(), "writes to 0x500 mark ready");
}

#[test]
fn garbage_all_over_the_mmio_window_and_unbacked_space() {
    if !common::kvm("garbage_all_over_the_mmio_window_and_unbacked_space") {
        return;
    }
    let (disk, pattern) = disk_with_pattern(64 << 10);
    // Every dword register of the window gets 0xfff0_0000 | offset (addresses
    // far outside RAM, sizes that are invalid), then every byte and word is
    // written, then everything is read back; then unbacked guest-physical
    // addresses between RAM and the hole, past the window and near 4 GiB.
    let mut a = Asm::default();
    a.mov64(3, VIRTIO) // rbx = window
        .b(&[0x31, 0xc9]) // xor ecx, ecx
        .label("dwords")
        .b(&[0x89, 0xc8]) // mov eax, ecx
        .b(&[0x0d]) // or eax, 0xfff00000
        .b(&0xfff0_0000u32.to_le_bytes())
        .b(&[0x89, 0x04, 0x0b]) // mov [rbx + rcx], eax
        .b(&[0x83, 0xc1, 0x04]) // add ecx, 4
        .b(&[0x81, 0xf9]) // cmp ecx, 0x1000
        .b(&0x1000u32.to_le_bytes())
        .jne("dwords")
        .b(&[0x31, 0xc9]) // xor ecx, ecx
        .label("small")
        .b(&[0x88, 0x0c, 0x0b]) // mov [rbx + rcx], cl
        .b(&[0x66, 0x89, 0x0c, 0x0b]) // mov [rbx + rcx], cx
        .b(&[0x8b, 0x04, 0x0b]) // mov eax, [rbx + rcx]
        .b(&[0x0f, 0xb6, 0x04, 0x0b]) // movzx eax, byte [rbx + rcx]
        .b(&[0xff, 0xc1]) // inc ecx
        .b(&[0x81, 0xf9]) // cmp ecx, 0xffc
        .b(&0xffcu32.to_le_bytes())
        .jne("small");
    for addr in [
        MEM,             // first byte past RAM
        0x4000_0000,     // 1 GiB: nothing there
        VIRTIO + 0x1000, // just past the window
        0xfec0_0000,     // where an IOAPIC would be
        0xfee0_0000,     // where a local APIC would be
        0xffff_fff0,     // the reset vector region
    ] {
        a.mov64(3, addr)
            .b(&[0xc7, 0x03]) // mov dword [rbx], 0xdeadbeef
            .b(&0xdead_beefu32.to_le_bytes())
            .b(&[0x8b, 0x03]) // mov eax, [rbx]
            .emit_eax();
    }
    a.exit(0x3313);
    let out = run(&a.finish(), Duration::from_secs(60), Some(disk.path()));
    assert_eq!(
        out.exit,
        VmExit::GuestExit { code: 0x3313 },
        "{}",
        out.exit.explain()
    );
    assert!(out.stats.mmio_exits >= 1024 + 4 * 0xffc, "{:?}", out.stats);
    // Unbacked reads return all ones, six times.
    assert_eq!(out.output, [0xff; 24].to_vec());
    assert_eq!(
        out.stats.blk_requests, 0,
        "garbage made a request: {:?}",
        out.stats
    );
    assert_eq!(
        std::fs::read(disk.path()).unwrap(),
        pattern,
        "the disk changed"
    );
}

/// Where the driver guest keeps things (all inside its image, which is
/// loaded at `common::BASE` and is RAM).
mod layout {
    pub const PARAMS: u64 = super::common::BASE + 0x1000;
    pub const DESC: u64 = super::common::BASE + 0x2000;
    pub const AVAIL: u64 = super::common::BASE + 0x3000;
    pub const USED: u64 = super::common::BASE + 0x4000;
    pub const HEADER: u64 = super::common::BASE + 0x5000;
    pub const STATUS: u64 = super::common::BASE + 0x5100;
    pub const DATA: u64 = super::common::BASE + 0x6000;
    pub const END: u64 = super::common::BASE + 0x7000;
}

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

/// One driver-side misconfiguration.
#[derive(Clone)]
struct Queue {
    num: u32,
    desc: u64,
    avail: u64,
    used: u64,
    /// (addr, len, flags) of the data descriptor of an IN request for sector 0.
    data: (u64, u32, u16),
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            num: 16,
            desc: layout::DESC,
            avail: layout::AVAIL,
            used: layout::USED,
            data: (layout::DATA, 512, F_WRITE),
        }
    }
}

/// A guest that initialises the virtio-blk device properly, configures queue
/// 0 as `q` says, posts one read of sector 0 (three descriptors), notifies,
/// and reports the device status, interrupt status, queue-ready, the status
/// byte of the request and the used index (all as u32 output).
fn driver_guest(q: &Queue) -> Vec<u8> {
    let p = |i: u32| i * 4;
    let mut a = Asm::default();
    a.mov64(3, VIRTIO).mov64(6, layout::PARAMS);
    a.store_rbx(0x70, 0) // reset
        .store_rbx(0x70, 1) // ACKNOWLEDGE
        .store_rbx(0x70, 3) // DRIVER
        .store_rbx(0x24, 1) // DRIVER_FEATURES_SEL = 1
        .store_rbx(0x20, 1) // VIRTIO_F_VERSION_1 (bit 32)
        .store_rbx(0x70, 0xb) // FEATURES_OK
        .store_rbx(0x30, 0) // QUEUE_SEL = 0
        .param_to_reg(p(0), 0x38) // QUEUE_NUM
        .param_to_reg(p(1), 0x80)
        .param_to_reg(p(2), 0x84)
        .param_to_reg(p(3), 0x90)
        .param_to_reg(p(4), 0x94)
        .param_to_reg(p(5), 0xa0)
        .param_to_reg(p(6), 0xa4)
        .store_rbx(0x44, 1) // QUEUE_READY
        .store_rbx(0x70, 0xf) // DRIVER_OK
        .store_rbx(0x50, 0) // QUEUE_NOTIFY
        .load_rbx(0x70)
        .emit_eax()
        .load_rbx(0x60)
        .emit_eax()
        .load_rbx(0x44)
        .emit_eax();
    a.mov64(7, layout::STATUS)
        .b(&[0x0f, 0xb6, 0x07]) // movzx eax, byte [rdi]
        .emit_eax()
        .mov64(7, layout::USED + 2)
        .b(&[0x0f, 0xb7, 0x07]) // movzx eax, word [rdi]
        .emit_eax()
        .exit(0xd1);
    let code = a.finish();
    assert!(code.len() < 0x1000);

    // The image: code, then the parameter block, rings and request in RAM.
    let mut img = vec![0u8; (layout::END - common::BASE) as usize];
    img[..code.len()].copy_from_slice(&code);
    let at = |a: u64| (a - common::BASE) as usize;
    let mut put = |a: u64, bytes: &[u8]| {
        if a >= common::BASE && a + bytes.len() as u64 <= layout::END {
            img[at(a)..at(a) + bytes.len()].copy_from_slice(bytes);
        }
    };
    let params = [
        q.num,
        q.desc as u32,
        (q.desc >> 32) as u32,
        q.avail as u32,
        (q.avail >> 32) as u32,
        q.used as u32,
        (q.used >> 32) as u32,
    ];
    for (i, v) in params.iter().enumerate() {
        put(layout::PARAMS + 4 * i as u64, &v.to_le_bytes());
    }
    let desc = |addr: u64, len: u32, flags: u16, next: u16| {
        [
            &addr.to_le_bytes()[..],
            &len.to_le_bytes(),
            &flags.to_le_bytes(),
            &next.to_le_bytes(),
        ]
        .concat()
    };
    put(q.desc, &desc(layout::HEADER, 16, F_NEXT, 1));
    put(q.desc + 16, &desc(q.data.0, q.data.1, q.data.2 | F_NEXT, 2));
    put(q.desc + 32, &desc(layout::STATUS, 1, F_WRITE, 0));
    // avail: flags 0, idx 1, ring[0] = 0.
    put(q.avail, &[0, 0, 1, 0, 0, 0]);
    // Header: VIRTIO_BLK_T_IN, sector 0.
    put(layout::HEADER, &[0; 16]);
    put(layout::STATUS, &[0xee]);
    put(layout::DATA, &[0x55; 512]);
    img
}

struct DriverReport {
    exit: VmExit,
    device_status: u32,
    queue_ready: u32,
    request_status: u8,
    used_idx: u32,
    blk_requests: u64,
    blk_bad_requests: u64,
}

fn drive(q: &Queue) -> (DriverReport, Vec<u8>) {
    let (disk, pattern) = disk_with_pattern(64 << 10);
    let out = run(&driver_guest(q), Duration::from_secs(30), Some(disk.path()));
    assert_eq!(
        std::fs::read(disk.path()).unwrap(),
        pattern,
        "a read request changed the disk"
    );
    let words: Vec<u32> = out
        .output
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(words.len(), 5, "{:?} {}", out.output, out.exit.explain());
    (
        DriverReport {
            exit: out.exit,
            device_status: words[0],
            queue_ready: words[2],
            request_status: words[3] as u8,
            used_idx: words[4],
            blk_requests: out.stats.blk_requests,
            blk_bad_requests: out.stats.blk_bad_requests,
        },
        pattern,
    )
}

#[test]
fn a_well_formed_driver_is_served() {
    // The control case: without it the refusals below could be a broken guest.
    if !common::kvm("a_well_formed_driver_is_served") {
        return;
    }
    let (r, _) = drive(&Queue::default());
    assert_eq!(r.exit, VmExit::GuestExit { code: 0xd1 });
    assert_eq!(r.device_status, 0xf, "DRIVER_OK without NEEDS_RESET");
    assert_eq!((r.queue_ready, r.request_status, r.used_idx), (1, 0, 1));
    assert_eq!((r.blk_requests, r.blk_bad_requests), (1, 0));
}

#[test]
fn queue_sizes_that_are_zero_odd_or_too_big_are_not_taken() {
    if !common::kvm("queue_sizes_that_are_zero_odd_or_too_big_are_not_taken") {
        return;
    }
    for num in [0, 3, 100, 257, 0xffff, 0xffff_ffff] {
        let (r, _) = drive(&Queue {
            num,
            ..Queue::default()
        });
        assert_eq!(r.exit, VmExit::GuestExit { code: 0xd1 }, "size {num}");
        // The bad size is ignored: the queue keeps its maximum size, whose
        // rings start where the guest put them, so the request is served
        // consistently — or, if not, refused without a status written.
        match r.request_status {
            0 => assert_eq!((r.used_idx, r.blk_requests), (1, 1), "size {num}"),
            0xee => assert_eq!(r.used_idx, 0, "size {num}"),
            s => panic!("size {num}: status byte {s:#x}"),
        }
    }
}

#[test]
fn rings_outside_ram_across_its_end_or_in_the_hole_are_refused() {
    if !common::kvm("rings_outside_ram_across_its_end_or_in_the_hole_are_refused") {
        return;
    }
    let cases = [
        (
            "desc above 4 GiB",
            Queue {
                desc: 1 << 32,
                ..Queue::default()
            },
        ),
        (
            "desc across the end of RAM",
            Queue {
                desc: MEM - 64,
                ..Queue::default()
            },
        ),
        (
            "avail in the MMIO window",
            Queue {
                avail: VIRTIO,
                ..Queue::default()
            },
        ),
        (
            "avail past RAM",
            Queue {
                avail: MEM + 0x1000,
                ..Queue::default()
            },
        ),
        (
            "used across the end of RAM",
            Queue {
                used: MEM - 8,
                ..Queue::default()
            },
        ),
        (
            "used at the top of the address space",
            Queue {
                used: u64::MAX - 3,
                ..Queue::default()
            },
        ),
    ];
    for (name, q) in cases {
        let (r, _) = drive(&q);
        assert_eq!(
            r.exit,
            VmExit::GuestExit { code: 0xd1 },
            "{name}: {}",
            r.exit.explain()
        );
        assert_eq!(r.request_status, 0xee, "{name}: a status was written");
        assert_eq!(r.used_idx, 0, "{name}: the used ring in RAM moved");
        assert_eq!(r.blk_requests, 0, "{name}");
        assert!(r.blk_bad_requests >= 1, "{name}: not counted as bad");
    }
    // A misaligned descriptor table address is ignored (virtio-queue keeps
    // the previous one, 0 after the reset): the device then walks whatever
    // is at GPA 0 — in RAM — and never the guest's request.
    let (r, _) = drive(&Queue {
        desc: layout::DESC + 1,
        ..Queue::default()
    });
    assert_eq!(
        r.exit,
        VmExit::GuestExit { code: 0xd1 },
        "{}",
        r.exit.explain()
    );
    assert_eq!((r.request_status, r.blk_requests), (0xee, 0));
}

#[test]
fn buffers_across_the_end_of_ram_zero_length_or_wrong_direction_get_ioerr() {
    if !common::kvm("buffers_across_the_end_of_ram_zero_length_or_wrong_direction_get_ioerr") {
        return;
    }
    // (name, data descriptor, acceptable status bytes)
    type Case = (&'static str, (u64, u32, u16), &'static [u8]);
    let cases: [Case; 5] = [
        (
            "buffer across the end of RAM",
            (MEM - 256, 512, F_WRITE),
            &[1],
        ),
        ("buffer in the MMIO window", (VIRTIO, 512, F_WRITE), &[1]),
        ("buffer above 4 GiB", (1 << 32, 512, F_WRITE), &[1]),
        (
            "device-readable buffer for a read",
            (layout::DATA, 512, 0),
            &[1],
        ),
        // Zero bytes to read: nothing to transfer, so success is as right as an error.
        ("zero-length buffer", (layout::DATA, 0, F_WRITE), &[0, 1]),
    ];
    for (name, data, ok) in cases {
        let (r, _) = drive(&Queue {
            data,
            ..Queue::default()
        });
        assert_eq!(
            r.exit,
            VmExit::GuestExit { code: 0xd1 },
            "{name}: {}",
            r.exit.explain()
        );
        // The chain is returned (used index 1) with a status (1 = VIRTIO_BLK_S_IOERR).
        assert_eq!(r.used_idx, 1, "{name}");
        assert!(
            ok.contains(&r.request_status),
            "{name}: status {:#x}",
            r.request_status
        );
        assert_eq!(
            r.device_status & 0x40,
            0,
            "{name}: one bad request is no reason to reset"
        );
    }
}

#[test]
fn faults_of_every_kind_end_the_run_cleanly() {
    if !common::kvm("faults_of_every_kind_end_the_run_cleanly") {
        return;
    }
    let kind = hostcaps::kvm::facts().kind;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("int3", vec![0xcc]),
        ("divide by zero", vec![0x31, 0xc9, 0xf7, 0xf1]), // xor ecx, ecx ; div ecx
        ("hlt at CPL 3", vec![0xf4]),
        ("syscall without EFER.SCE", vec![0x0f, 0x05]),
        ("wrmsr at CPL 3", vec![0x0f, 0x30]),
        ("load from above 4 GiB (unmapped)", {
            let mut c = vec![0x48, 0xa1]; // mov rax, [moffs64]
            c.extend((1u64 << 40).to_le_bytes());
            c
        }),
        ("jump into the MMIO window", {
            let mut c = vec![0x48, 0xb8]; // mov rax, VIRTIO ; jmp rax
            c.extend(VIRTIO.to_le_bytes());
            c.extend([0xff, 0xe0]);
            c
        }),
        ("non-canonical jump", {
            let mut c = vec![0x48, 0xb8];
            c.extend(0x8000_0000_0000u64.to_le_bytes());
            c.extend([0xff, 0xe0]);
            c
        }),
        ("stack pointer into nothing, then push", {
            let mut c = vec![0x48, 0xbc]; // mov rsp, 1 << 40 ; push rax
            c.extend((1u64 << 40).to_le_bytes());
            c.push(0x50);
            c
        }),
    ];
    for (name, mut code) in cases {
        let mut a = Asm::default();
        code.extend(a.exit(99).finish());
        let t = Instant::now();
        let out = run(&code, Duration::from_secs(10), None);
        let took = t.elapsed();
        match (&out.exit, kind) {
            (VmExit::Shutdown, _) => {}
            (VmExit::HostLimitation { .. }, KvmKind::SoftwareAssisted) => {}
            (VmExit::InternalError { .. }, _) if name.contains("MMIO") => {}
            (other, _) => panic!("{name}: expected a fault outcome, got {}", other.explain()),
        }
        assert!(took < Duration::from_secs(8), "{name}: took {took:?}");
        assert!(out.output.is_empty(), "{name}");
    }
}

#[test]
fn an_exit_storm_is_stopped_by_the_timeout() {
    if !common::kvm("an_exit_storm_is_stopped_by_the_timeout") {
        return;
    }
    // Ping the VMM forever: every instruction is a VM exit, so the timeout
    // must get through a vCPU that is almost never in the guest.
    let mut a = Asm::default();
    a.mov_dx(0x503).label("l").b(&[0xec]).jmp("l");
    let t = Instant::now();
    let out = run(&a.finish(), Duration::from_millis(500), None);
    let took = t.elapsed();
    assert_eq!(out.exit, VmExit::Timeout);
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(out.stats.io_exits > 1000, "{:?}", out.stats);
    assert_eq!(out.stats.stray_io, 0);
}

#[test]
fn a_string_write_appends_every_byte_to_the_output() {
    if !common::kvm("a_string_write_appends_every_byte_to_the_output") {
        return;
    }
    // rep outsb of 16 bytes of the code itself to 0x502: the ABI says the
    // output stream gets every byte, however KVM batches the string.
    let mut a = Asm::default();
    a.mov64(6, common::BASE) // rsi = start of the image
        .b(&[0x48, 0xc7, 0xc1, 16, 0, 0, 0]) // mov rcx, 16
        .mov_dx(0x502)
        .b(&[0xf3, 0x6e]) // rep outsb
        .exit(0x5);
    let code = a.finish();
    let out = run(&code, Duration::from_secs(10), None);
    assert_eq!(out.exit, VmExit::GuestExit { code: 5 });
    assert_eq!(out.output, code[..16].to_vec());
}

#[test]
fn output_floods_are_capped_and_stopped() {
    if !common::kvm("output_floods_are_capped_and_stopped") {
        return;
    }
    // Both capture streams flooded forever: 0x502 with 32-bit writes and the
    // serial port with bytes. Memory stays bounded and the timeout ends it.
    let mut a = Asm::default();
    a.mov_eax(0x4141_4141)
        .label("l")
        .mov_dx(0x502)
        .b(&[0xef])
        .mov_dx(0x3f8)
        .b(&[0xee])
        .jmp("l");
    let out = run(&a.finish(), Duration::from_secs(1), None);
    assert_eq!(out.exit, VmExit::Timeout);
    let cap = microvm::devices::legacy::serial::CAPTURE_LIMIT;
    assert!(out.output.len() <= cap && out.serial.len() <= cap);
    assert!(out.output.len() > 1000, "{}", out.output.len());
    assert!(out.output.iter().all(|b| *b == 0x41));
    assert!(out.serial.iter().all(|b| *b == 0x41));
    let words = out.output.len() / 4;
    assert!(
        words.abs_diff(out.serial.len()) <= 1,
        "one serial byte per output word: {words} words, {} bytes",
        out.serial.len()
    );
}
