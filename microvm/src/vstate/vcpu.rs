//! A vCPU and its run loop: `KVM_RUN`, then route the exit to a bus or turn
//! it into a [`VmExit`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use kvm_bindings::{KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd};

use super::kick;
use crate::devices::bus::{Bus, IoResult, VmAction};
use crate::outcome::{ExitStats, VmExit};

/// A vCPU: its KVM file descriptor and index.
pub struct Vcpu {
    /// The KVM vCPU fd, for direct use (see `tests/real_mode.rs`).
    pub fd: VcpuFd,
    /// The vCPU index (also its APIC id).
    pub id: u8,
}

/// Exit counters shared by all vCPU threads.
#[derive(Debug, Default)]
pub struct ExitCounters {
    io: AtomicU64,
    mmio: AtomicU64,
    stray: AtomicU64,
    hlt: AtomicU64,
    total: AtomicU64,
}

impl ExitCounters {
    /// The counts so far, in the public shape.
    pub fn snapshot(&self) -> ExitStats {
        ExitStats {
            io_exits: self.io.load(Ordering::Relaxed),
            mmio_exits: self.mmio.load(Ordering::Relaxed),
            stray_io: self.stray.load(Ordering::Relaxed),
            hlt_exits: self.hlt.load(Ordering::Relaxed),
            total_exits: self.total.load(Ordering::Relaxed),
            ..ExitStats::default()
        }
    }
}

/// What a vCPU's run loop needs from the VM.
pub struct RunContext {
    /// Port-I/O devices.
    pub io: Bus,
    /// MMIO devices.
    pub mmio: Bus,
    /// Counters.
    pub counters: ExitCounters,
    /// Set to stop every vCPU (then kick their threads).
    pub stop: AtomicBool,
    /// `hlt` exits to us (no in-kernel irqchip): a halted guest is done.
    pub halt_is_exit: bool,
    /// Set just before the first `KVM_RUN` of any vCPU.
    pub first_run: OnceLock<Instant>,
}

impl RunContext {
    /// A context over these buses.
    pub fn new(io: Bus, mmio: Bus, halt_is_exit: bool) -> RunContext {
        RunContext {
            io,
            mmio,
            counters: ExitCounters::default(),
            stop: AtomicBool::new(false),
            halt_is_exit,
            first_run: OnceLock::new(),
        }
    }
}

impl Vcpu {
    /// Runs until the guest stops, or until `ctx.stop` is set (then
    /// [`VmExit::Timeout`]). Call on the thread that will be kicked: it
    /// registers this vCPU for [`kick`].
    pub fn run_loop(&mut self, ctx: &RunContext) -> VmExit {
        let _kick = kick::Registration::new(self.fd.get_kvm_run());
        ctx.first_run.get_or_init(Instant::now);
        loop {
            if ctx.stop.load(Ordering::Acquire) {
                return VmExit::Timeout;
            }
            let exit = self.fd.run();
            ctx.counters.total.fetch_add(1, Ordering::Relaxed);
            let outcome = match exit {
                Ok(VcpuExit::IoOut(port, data)) => {
                    ctx.counters.io.fetch_add(1, Ordering::Relaxed);
                    account(ctx, ctx.io.write(u64::from(port), data))
                }
                Ok(VcpuExit::IoIn(port, data)) => {
                    ctx.counters.io.fetch_add(1, Ordering::Relaxed);
                    account(ctx, ctx.io.read(u64::from(port), data))
                }
                Ok(VcpuExit::MmioWrite(addr, data)) => {
                    ctx.counters.mmio.fetch_add(1, Ordering::Relaxed);
                    account(ctx, ctx.mmio.write(addr, data))
                }
                Ok(VcpuExit::MmioRead(addr, data)) => {
                    ctx.counters.mmio.fetch_add(1, Ordering::Relaxed);
                    account(ctx, ctx.mmio.read(addr, data))
                }
                Ok(VcpuExit::Hlt) => {
                    ctx.counters.hlt.fetch_add(1, Ordering::Relaxed);
                    ctx.halt_is_exit.then_some(VmExit::Halted)
                }
                Ok(VcpuExit::Shutdown) => Some(VmExit::Shutdown),
                Ok(VcpuExit::FailEntry(reason, _cpu)) => Some(VmExit::FailEntry { reason }),
                Ok(VcpuExit::SystemEvent(kind, _)) => match kind {
                    KVM_SYSTEM_EVENT_SHUTDOWN => Some(VmExit::Shutdown),
                    KVM_SYSTEM_EVENT_RESET => Some(VmExit::Reset),
                    other => Some(VmExit::Unhandled {
                        detail: format!("system event {other}"),
                    }),
                },
                Ok(VcpuExit::InternalError) => Some(self.internal_error()),
                Ok(VcpuExit::Intr) => None,
                Ok(other) => Some(VmExit::Unhandled {
                    detail: format!("{other:?}"),
                }),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    // Kicked (or a stray signal): clear the flag, re-check `stop`.
                    self.fd.set_kvm_immediate_exit(0);
                    None
                }
                Err(e) => Some(VmExit::Unhandled {
                    detail: format!("KVM_RUN failed: {e}"),
                }),
            };
            if let Some(exit) = outcome {
                return exit;
            }
        }
    }

    /// Reads `kvm_run.internal` into a readable exit.
    fn internal_error(&mut self) -> VmExit {
        let run = self.fd.get_kvm_run();
        // SAFETY: exit_reason is KVM_EXIT_INTERNAL_ERROR, so `internal` is the
        // union member KVM filled in.
        let internal = unsafe { run.__bindgen_anon_1.internal };
        let n = (internal.ndata as usize).min(internal.data.len());
        let data: Vec<String> = internal.data[..n]
            .iter()
            .map(|d| format!("{d:#x}"))
            .collect();
        let rip = self.fd.get_regs().map(|r| r.rip).unwrap_or(0);
        let name = match internal.suberror {
            1 => "emulation failure",
            2 => "exception during exception delivery",
            3 => "event delivery failed",
            4 => "unexpected exit reason",
            _ => "unknown",
        };
        let detail = format!(
            "KVM_EXIT_INTERNAL_ERROR suberror {} ({name}) at rip {rip:#x}, data [{}]",
            internal.suberror,
            data.join(", ")
        );
        VmExit::InternalError {
            suberror: internal.suberror,
            detail,
        }
    }
}

/// Counts stray accesses and turns device actions into exits.
fn account(ctx: &RunContext, r: IoResult) -> Option<VmExit> {
    match r {
        IoResult::Done => None,
        IoResult::Stray => {
            ctx.counters.stray.fetch_add(1, Ordering::Relaxed);
            None
        }
        IoResult::Action(VmAction::Exit(code)) => Some(VmExit::GuestExit { code }),
        IoResult::Action(VmAction::Reset) => Some(VmExit::Reset),
        IoResult::Action(VmAction::PowerOff) => Some(VmExit::PowerOff),
    }
}
