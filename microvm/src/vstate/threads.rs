//! The vCPU threads. They are started before the VM is set up, so that
//! creating them overlaps with the set-up instead of delaying the first
//! `KVM_RUN`; each then waits for its vCPU. Whatever happens — set-up fails,
//! the guest exits, the timeout passes — every thread is stopped and joined
//! before the owner goes away.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmm_sys_util::signal::Killable;

use super::kick;
use super::vcpu::{RunContext, Vcpu};
use crate::error::Error;
use crate::outcome::VmExit;

type Start = (Vcpu, Arc<RunContext>);

/// Started vCPU threads, waiting for their vCPUs.
pub struct VcpuThreads {
    starts: Vec<mpsc::Sender<Start>>,
    handles: Vec<JoinHandle<()>>,
    exits: mpsc::Receiver<VmExit>,
}

impl VcpuThreads {
    /// Starts `count` idle vCPU threads.
    pub fn spawn(count: u8) -> Result<VcpuThreads, Error> {
        let (exit_tx, exits) = mpsc::channel();
        let mut threads = VcpuThreads {
            starts: Vec::new(),
            handles: Vec::new(),
            exits,
        };
        for id in 0..count {
            let (start_tx, start_rx) = mpsc::channel::<Start>();
            let exit_tx = exit_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("vcpu{id}"))
                .spawn(move || {
                    // No vCPU comes when set-up failed: nothing to do.
                    let Ok((mut vcpu, ctx)) = start_rx.recv() else {
                        return;
                    };
                    let exit = vcpu.run_loop(&ctx);
                    let _ = exit_tx.send(exit);
                })
                // On error, `threads` is dropped: the ones already started are joined.
                .map_err(|source| Error::Host {
                    what: "vCPU thread",
                    source,
                })?;
            threads.starts.push(start_tx);
            threads.handles.push(handle);
        }
        Ok(threads)
    }

    /// Hands each thread its vCPU and waits until the first one stops the VM
    /// or `deadline` passes; then stops, kicks and joins them all. Returns the
    /// exit and the moment the VM stopped.
    pub fn run(
        mut self,
        vcpus: Vec<Vcpu>,
        ctx: &Arc<RunContext>,
        deadline: Instant,
    ) -> (VmExit, Instant) {
        let mut started = 0usize;
        for (tx, vcpu) in self.starts.drain(..).zip(vcpus) {
            if tx.send((vcpu, Arc::clone(ctx))).is_ok() {
                started += 1;
            }
        }
        let mut reported = 0usize;
        let exit = match self
            .exits
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(exit) => {
                reported += 1;
                exit
            }
            Err(mpsc::RecvTimeoutError::Timeout) => VmExit::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => VmExit::Unhandled {
                detail: "every vCPU thread ended without an exit".into(),
            },
        };
        let stopped_at = Instant::now();

        // Stop the others: raise the flag, kick until each has reported.
        ctx.stop.store(true, Ordering::Release);
        while reported < started {
            for h in self.handles.iter().filter(|h| !h.is_finished()) {
                if let Err(e) = h.kill(kick::signal()) {
                    tracing::debug!(%e, "kicking a vCPU thread failed");
                }
            }
            match self.exits.recv_timeout(Duration::from_millis(20)) {
                Ok(_) => reported += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.join() {
            let detail = "a vCPU thread panicked".to_string();
            return (VmExit::Unhandled { detail }, stopped_at);
        }
        (exit, stopped_at)
    }

    /// Releases idle threads and joins all; `true` if one panicked.
    fn join(&mut self) -> bool {
        self.starts.clear();
        // Join every thread, even after a panic (no short-circuit).
        let mut panicked = false;
        for h in self.handles.drain(..) {
            panicked |= h.join().is_err();
        }
        panicked
    }
}

impl Drop for VcpuThreads {
    fn drop(&mut self) {
        self.join();
    }
}
