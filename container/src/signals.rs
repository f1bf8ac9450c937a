//! SIGINT/SIGTERM while the runtime waits: remembered by a tiny handler, then
//! forwarded to the container by the waiting thread, so a Ctrl-C still runs
//! the clean-up (cgroup, veth) instead of killing the runtime midway.
//!
//! Several containers may wait at once (threads): the handler only bumps a
//! counter, each waiter compares it with the value it last saw. The previous
//! handlers come back when the last waiter is done.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

static COUNT: AtomicU64 = AtomicU64::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);
static STATE: Mutex<Option<(usize, [libc::sigaction; 2])>> = Mutex::new(None);

const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

extern "C" fn remember(sig: libc::c_int) {
    // Only atomics: async-signal-safe.
    LAST.store(sig, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// While alive, SIGINT and SIGTERM are caught instead of killing the process.
#[derive(Debug)]
pub struct SignalGuard {
    seen: u64,
}

impl SignalGuard {
    /// Installs the handlers (or joins the waiters already holding them).
    pub fn install() -> SignalGuard {
        let mut st = STATE.lock().unwrap_or_else(|e| e.into_inner());
        match st.as_mut() {
            Some((n, _)) => *n += 1,
            None => {
                // SAFETY: zeroed sigaction is valid; the handler only touches atomics.
                let mut old: [libc::sigaction; 2] = unsafe { std::mem::zeroed() };
                for (i, sig) in SIGNALS.iter().enumerate() {
                    // SAFETY: as above.
                    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
                    sa.sa_sigaction = remember as *const () as libc::sighandler_t;
                    sa.sa_flags = libc::SA_RESTART;
                    // SAFETY: valid sigaction structs for a catchable signal.
                    unsafe { libc::sigaction(*sig, &sa, &mut old[i]) };
                }
                *st = Some((1, old));
            }
        }
        SignalGuard {
            seen: COUNT.load(Ordering::SeqCst),
        }
    }

    /// The signal received since the last call, if any.
    pub fn take(&mut self) -> Option<i32> {
        let now = COUNT.load(Ordering::SeqCst);
        (now != self.seen).then(|| {
            self.seen = now;
            LAST.load(Ordering::SeqCst)
        })
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        let mut st = STATE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, old)) = st.as_mut() {
            *n -= 1;
            if *n == 0 {
                for (i, sig) in SIGNALS.iter().enumerate() {
                    // SAFETY: restoring the sigaction saved at install.
                    unsafe { libc::sigaction(*sig, &old[i], std::ptr::null_mut()) };
                }
                *st = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_sigterm_is_reported_once() {
        let mut g = SignalGuard::install();
        // SAFETY: signalling ourselves; the guard's handler catches it.
        unsafe { libc::raise(libc::SIGTERM) };
        assert_eq!(g.take(), Some(libc::SIGTERM));
        assert_eq!(g.take(), None);
    }
}
