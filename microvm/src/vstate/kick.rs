//! Kicking a vCPU thread out of `KVM_RUN`.
//!
//! A real-time signal is sent to the vCPU thread. Its handler sets
//! `kvm_run.immediate_exit` of the vCPU running on that thread, so even a
//! signal that lands just before the thread re-enters `KVM_RUN` makes the
//! next `KVM_RUN` return `EINTR` at once instead of running the guest again.

use std::cell::Cell;
use std::sync::OnceLock;

use kvm_bindings::kvm_run;
use vmm_sys_util::signal::{SIGRTMIN, register_signal_handler};

thread_local! {
    // The kvm_run mapping of the vCPU on this thread, or null. Const-initialised
    // with no destructor, so touching it from a signal handler is plain TLS access.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// The signal used to kick vCPU threads.
pub fn signal() -> libc::c_int {
    // SIGRTMIN itself is often taken by libraries; +4 keeps clear of them.
    SIGRTMIN() + 4
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let run = KVM_RUN.with(|c| c.get());
    if !run.is_null() {
        // SAFETY: the pointer was set by `Registration::new` on this very
        // thread and points into the vCPU's kvm_run mapping, which outlives
        // the registration (the guard is dropped before the vCPU). A volatile
        // byte store is async-signal-safe.
        unsafe { std::ptr::write_volatile(&raw mut (*run).immediate_exit, 1) };
    }
}

/// Installs the kick handler once per process.
pub fn install() -> Result<(), std::io::Error> {
    static DONE: OnceLock<Result<(), i32>> = OnceLock::new();
    match DONE.get_or_init(|| register_signal_handler(signal(), on_kick).map_err(|e| e.errno())) {
        Ok(()) => Ok(()),
        Err(errno) => Err(std::io::Error::from_raw_os_error(*errno)),
    }
}

/// While alive, kicks delivered to this thread set `immediate_exit` of the
/// given `kvm_run`.
pub struct Registration {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Registration {
    /// Registers `run` (the calling thread's vCPU) as the kick target.
    pub fn new(run: *mut kvm_run) -> Registration {
        KVM_RUN.with(|c| c.set(run));
        Registration {
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        KVM_RUN.with(|c| c.set(std::ptr::null_mut()));
    }
}
