//! Functional probes of what this host's KVM can do, for `isolab doctor`.
//!
//! Static facts (modules, CPU flags) can mislead; these throwaway VMs show
//! what actually happens:
//! (a) a fixed `dec/jnz` loop timed at CPL 0 against the same loop at CPL 3
//!     (a software-assisted KVM emulates CPL-0 code, thousands of times
//!     slower; loop lengths adapt so this stays in milliseconds either way);
//! (b) an `int3` at CPL 0 through a long-mode IDT to a handler that writes a
//!     port: delivered, or refused with an internal error;
//! (c) a CPL-3 guest that reads the isolab ping port and exits with it.
//!
//! Every VM run has a deadline; a stuck probe is kicked out and reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvm_ioctls::VcpuExit;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::signal::Killable;

use crate::arch::x86_64::layout::{PAGE_SIZE, TINY_IMAGE_BASE};
use crate::arch::x86_64::regs::{self, Entry, Privilege};
use crate::arch::x86_64::{gdt, paging};
use crate::devices::bus::Bus;
use crate::devices::isolab::{self, IsolabDevice};
use crate::error::Error;
use crate::outcome::VmExit;
use crate::vstate::vcpu::{RunContext, Vcpu};
use crate::vstate::vm::Vm;
use crate::vstate::{kick, memory};

/// Guest RAM of a probe VM.
const PROBE_MEMORY: u64 = 2 << 20;
/// Where probe code goes.
const CODE: u64 = TINY_IMAGE_BASE;
/// The exception probe's IDT (vector 3 only) and handler.
const PROBE_IDT: u64 = 0x3000;
const HANDLER: u64 = CODE + 0x100;
/// Probe stack top.
const STACK: u64 = PROBE_MEMORY - PAGE_SIZE;
/// Each timed loop should run at least this long for a stable per-iteration time.
const MIN_TIMED: Duration = Duration::from_millis(3);
/// Deadline for one probe VM.
const DEADLINE: Duration = Duration::from_secs(2);
/// Exit values of the exception probe.
const DELIVERED: u8 = 0x33;
const FELL_THROUGH: u8 = 0x44;

/// What the probes found.
#[derive(Debug, Clone, PartialEq)]
pub struct KvmProbe {
    /// Nanoseconds per `dec/jnz` iteration at CPL 0.
    pub cpl0_ns_per_iter: f64,
    /// Nanoseconds per iteration at CPL 3.
    pub cpl3_ns_per_iter: f64,
    /// `cpl0_ns_per_iter / cpl3_ns_per_iter`.
    pub cpl0_slowdown: f64,
    /// The `int3` reached its handler.
    pub exceptions_delivered: bool,
    /// What happened to the `int3`, readably.
    pub exception_detail: String,
    /// A CPL-3 guest did port I/O and exited through the isolab device.
    pub cpl3_guest_ok: bool,
    /// Loop iterations timed at CPL 0 and at CPL 3.
    pub iterations: (u64, u64),
    /// Wall time of all probes.
    pub elapsed: Duration,
}

impl KvmProbe {
    /// CPL-0 code slower than this many times CPL-3 code is "emulated".
    pub const EMULATED_SLOWDOWN: f64 = 20.0;

    /// A Linux guest needs exceptions/interrupts and fast CPL-0 code.
    pub fn linux_guest_supported(&self) -> bool {
        self.exceptions_delivered && self.cpl0_slowdown < Self::EMULATED_SLOWDOWN
    }

    /// The tiny guest needs only CPL-3 code and port I/O.
    pub fn tiny_guest_supported(&self) -> bool {
        self.cpl3_guest_ok
    }

    /// Guest CPL-0 code is emulated rather than run natively.
    pub fn cpl0_emulated(&self) -> bool {
        self.cpl0_slowdown >= Self::EMULATED_SLOWDOWN
    }
}

/// Runs the three probes (typically 10–100 ms in all).
pub fn functional() -> Result<KvmProbe, Error> {
    let start = Instant::now();
    kick::install().map_err(|source| Error::Host {
        what: "vCPU kick signal handler",
        source,
    })?;
    let (cpl0, cpl3, iterations) = loop_timings()?;
    let (exceptions_delivered, exception_detail) = exception_delivery()?;
    let cpl3_guest_ok = cpl3_port_io()?;
    Ok(KvmProbe {
        cpl0_ns_per_iter: cpl0,
        cpl3_ns_per_iter: cpl3,
        cpl0_slowdown: if cpl3 > 0.0 {
            cpl0 / cpl3
        } else {
            f64::INFINITY
        },
        exceptions_delivered,
        exception_detail,
        cpl3_guest_ok,
        iterations,
        elapsed: start.elapsed(),
    })
}

/// [`functional`], run once per process: doctor, the backends and the
/// guest fallback all read this one answer.
pub fn functional_once() -> Result<KvmProbe, String> {
    static ONCE: std::sync::OnceLock<Result<KvmProbe, String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| functional().map_err(|e| e.to_string()))
        .clone()
}

/// `Ok` when this host can run a Linux guest to `/init` (KVM usable,
/// exceptions delivered, CPL-0 code at native speed); the error says why not.
pub fn linux_guest_verdict() -> Result<(), String> {
    hostcaps::kvm::device_usable()?;
    let p = functional_once().map_err(|e| format!("the KVM functional probe failed: {e}"))?;
    if p.linux_guest_supported() {
        return Ok(());
    }
    Err(format!(
        "this host's KVM cannot run a Linux guest (guest kernel code {:.0}x slower than user code, \
         exceptions delivered: {}; {}), so the kernel would stop at its first exception or interrupt; \
         `isolab doctor` shows linux_guest: unsupported. Use a host with VT-x/AMD-V, the tiny guest, \
         or the emulated test host (`isolab testhost run`)",
        p.cpl0_slowdown, p.exceptions_delivered, p.exception_detail
    ))
}

/// A probe VM with `code` at [`CODE`], long-mode tables, and one vCPU.
fn probe_vm(code: &[u8]) -> Result<(Vm, Vcpu, u64), Error> {
    let mem = memory::create(PROBE_MEMORY, false)?;
    mem.write_slice(code, GuestAddress(CODE))
        .map_err(|e| Error::GuestMemory(e.to_string()))?;
    let vm = Vm::new(mem)?;
    regs::write_descriptor_tables(vm.memory())?;
    let cr3 = paging::write(vm.memory(), true)?;
    let vcpu = vm.create_vcpu(0)?;
    Ok((vm, vcpu, cr3))
}

/// Runs `f` with `vcpu` on its own thread; after [`DEADLINE`], `on_timeout`
/// tells `f` to stop, the thread is kicked out of `KVM_RUN` until it has
/// finished, and `None` is returned.
fn with_deadline<R: Send + 'static>(
    vcpu: Vcpu,
    on_timeout: impl FnOnce(),
    f: impl FnOnce(&mut Vcpu) -> R + Send + 'static,
) -> Result<Option<R>, Error> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("kvm-probe".into())
        .spawn(move || {
            let mut vcpu = vcpu;
            let _kick = kick::Registration::new(vcpu.fd.get_kvm_run());
            let r = f(&mut vcpu);
            let _ = tx.send(r);
        })
        .map_err(|source| Error::Host {
            what: "probe thread",
            source,
        })?;
    let result = match rx.recv_timeout(DEADLINE) {
        Ok(r) => Some(r),
        Err(_) => {
            on_timeout();
            while !handle.is_finished() {
                let _ = handle.kill(kick::signal());
                std::thread::sleep(Duration::from_millis(5));
            }
            None
        }
    };
    let _ = handle.join();
    Ok(result)
}

/// Runs the vCPU until it writes port 0x501; returns the elapsed time, or
/// `None` on any other exit or when stopped.
fn time_until_exit_port(vcpu: &mut Vcpu, stop: &AtomicBool) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) {
            return None;
        }
        match vcpu.fd.run() {
            Ok(VcpuExit::IoOut(port, _)) if u64::from(port) == isolab::BASE + isolab::EXIT => {
                return Some(t.elapsed());
            }
            Ok(VcpuExit::Intr) => {}
            Err(e) if e.errno() == libc::EINTR => vcpu.fd.set_kvm_immediate_exit(0),
            _ => return None,
        }
    }
}

/// (a) ns per loop iteration at CPL 0 and at CPL 3.
fn loop_timings() -> Result<(f64, f64, (u64, u64)), Error> {
    // loop: dec rcx ; jnz loop ; mov dx, 0x501 ; out dx, al ; jmp $
    const LOOP: [u8; 12] = [
        0x48, 0xff, 0xc9, 0x75, 0xfb, 0x66, 0xba, 0x01, 0x05, 0xee, 0xeb, 0xfe,
    ];
    let (_vm, vcpu, cr3) = probe_vm(&LOOP)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let on_timeout = move || stop.store(true, Ordering::Release);
    let measured = with_deadline(vcpu, on_timeout, move |vcpu| -> Result<_, Error> {
        let stop = &*thread_stop;
        let mut per_level = Vec::new();
        for privilege in [Privilege::Kernel, Privilege::User] {
            let mut run = |n: u64| -> Result<Option<Duration>, Error> {
                let entry = Entry {
                    privilege,
                    rip: CODE,
                    rsp: STACK,
                    rdi: 0,
                    rsi: 0,
                };
                regs::enter_long_mode(&vcpu.fd, cr3, &entry)?;
                let mut r = vcpu.fd.get_regs().map_err(Error::kvm("KVM_GET_REGS"))?;
                r.rcx = n;
                vcpu.fd.set_regs(&r).map_err(Error::kvm("KVM_SET_REGS"))?;
                Ok(time_until_exit_port(vcpu, stop))
            };
            // The cost of entering and leaving the guest, to subtract.
            let Some(base) = fastest(&mut run, 1)? else {
                return Ok(None);
            };
            let mut n = 1000u64;
            loop {
                let Some(t) = run(n)? else { return Ok(None) };
                if t >= MIN_TIMED || n >= 1 << 36 {
                    // The fastest of a few runs: a vCPU thread preempted
                    // for a few ms (a busy host, an emulated one) would
                    // otherwise read as slow guest code.
                    let Some(t) = fastest(&mut run, n)? else {
                        return Ok(None);
                    };
                    let ns = t.saturating_sub(base).as_nanos() as f64 / (n - 1) as f64;
                    per_level.push((ns.max(f64::MIN_POSITIVE), n));
                    break;
                }
                // Aim for twice the minimum next time, growing at most 1000x.
                let scale =
                    (2.0 * MIN_TIMED.as_secs_f64() / t.as_secs_f64().max(1e-6)).clamp(2.0, 1000.0);
                n = (n as f64 * scale) as u64;
            }
        }
        Ok(Some((per_level[0], per_level[1])))
    })?;
    match measured {
        Some(Ok(Some(((cpl0, n0), (cpl3, n3))))) => Ok((cpl0, cpl3, (n0, n3))),
        Some(Err(e)) => Err(e),
        // A loop that cannot run or finish is as slow as can be.
        _ => Ok((f64::INFINITY, 0.0, (0, 0))),
    }
}

/// Repeats of each timed loop; the fastest counts.
const TIMING_REPEATS: usize = 5;

/// The fastest of [`TIMING_REPEATS`] runs of `run(n)`, or `None` when one
/// did not finish.
fn fastest(
    run: &mut impl FnMut(u64) -> Result<Option<Duration>, Error>,
    n: u64,
) -> Result<Option<Duration>, Error> {
    let mut best: Option<Duration> = None;
    for _ in 0..TIMING_REPEATS {
        let Some(t) = run(n)? else { return Ok(None) };
        best = Some(best.map_or(t, |b| b.min(t)));
    }
    Ok(best)
}

/// (b) Is an `int3` at CPL 0 delivered through a long-mode IDT?
fn exception_delivery() -> Result<(bool, String), Error> {
    // main:    int3 ; mov dx, 0x501 ; mov al, 0x44 ; out dx, al ; jmp $
    // handler: mov dx, 0x501 ; mov al, 0x33 ; out dx, al ; jmp $
    let mut code = vec![
        0xcc,
        0x66,
        0xba,
        0x01,
        0x05,
        0xb0,
        FELL_THROUGH,
        0xee,
        0xeb,
        0xfe,
    ];
    code.resize((HANDLER - CODE) as usize, 0x90);
    code.extend_from_slice(&[0x66, 0xba, 0x01, 0x05, 0xb0, DELIVERED, 0xee, 0xeb, 0xfe]);
    let (vm, vcpu, cr3) = probe_vm(&code)?;
    // A 64-bit interrupt gate for vector 3: kernel code, present, DPL 0.
    let mut gate = [0u8; 16];
    gate[0..2].copy_from_slice(&(HANDLER as u16).to_le_bytes());
    gate[2..4].copy_from_slice(&(gdt::KERNEL_CODE << 3).to_le_bytes());
    gate[5] = 0x8e;
    gate[6..8].copy_from_slice(&((HANDLER >> 16) as u16).to_le_bytes());
    gate[8..12].copy_from_slice(&((HANDLER >> 32) as u32).to_le_bytes());
    vm.memory()
        .write_slice(&gate, GuestAddress(PROBE_IDT + 3 * 16))
        .map_err(|e| Error::GuestMemory(e.to_string()))?;
    regs::enter_long_mode(
        &vcpu.fd,
        cr3,
        &Entry {
            privilege: Privilege::Kernel,
            rip: CODE,
            rsp: STACK,
            rdi: 0,
            rsi: 0,
        },
    )?;
    let mut sregs = vcpu.fd.get_sregs().map_err(Error::kvm("KVM_GET_SREGS"))?;
    sregs.idt.base = PROBE_IDT;
    sregs.idt.limit = 4 * 16 - 1;
    vcpu.fd
        .set_sregs(&sregs)
        .map_err(Error::kvm("KVM_SET_SREGS"))?;

    let ctx = Arc::new(probe_context());
    let thread_ctx = Arc::clone(&ctx);
    let exit = with_deadline(
        vcpu,
        || ctx.stop.store(true, Ordering::Release),
        move |vcpu| vcpu.run_loop(&thread_ctx),
    )?;
    Ok(match exit {
        Some(VmExit::GuestExit { code }) if code == u32::from(DELIVERED) => (
            true,
            "int3 at CPL 0 reached its long-mode IDT handler".into(),
        ),
        Some(VmExit::GuestExit { code }) if code == u32::from(FELL_THROUGH) => (
            false,
            "int3 at CPL 0 was skipped: the handler never ran".into(),
        ),
        Some(other) => (
            false,
            format!("int3 at CPL 0 was not delivered: {}", other.explain()),
        ),
        None => (
            false,
            format!("int3 at CPL 0 did not finish within {DEADLINE:?}"),
        ),
    })
}

/// (c) Can a CPL-3 guest do port I/O and exit?
fn cpl3_port_io() -> Result<bool, Error> {
    // mov dx, 0x503 ; in al, dx ; mov dx, 0x501 ; out dx, al ; jmp $
    const CODE_IO: [u8; 12] = [
        0x66, 0xba, 0x03, 0x05, 0xec, 0x66, 0xba, 0x01, 0x05, 0xee, 0xeb, 0xfe,
    ];
    let (_vm, vcpu, cr3) = probe_vm(&CODE_IO)?;
    regs::enter_long_mode(
        &vcpu.fd,
        cr3,
        &Entry {
            privilege: Privilege::User,
            rip: CODE,
            rsp: STACK,
            rdi: 0,
            rsi: 0,
        },
    )?;
    let ctx = Arc::new(probe_context());
    let thread_ctx = Arc::clone(&ctx);
    let exit = with_deadline(
        vcpu,
        || ctx.stop.store(true, Ordering::Release),
        move |vcpu| vcpu.run_loop(&thread_ctx),
    )?;
    Ok(exit
        == Some(VmExit::GuestExit {
            code: u32::from(isolab::PING_REPLY),
        }))
}

fn probe_context() -> RunContext {
    let mut io = Bus::new();
    let dev = Arc::new(Mutex::new(IsolabDevice::new(0)));
    io.insert(isolab::BASE, isolab::LEN, dev)
        .expect("empty bus has room");
    RunContext::new(io, Bus::new(), true)
}
