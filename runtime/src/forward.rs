//! `exec` without `--detach` stands for its process, as runc's does: the
//! signals a supervisor sends it (SIGTERM from `podman stop`'s exec session,
//! Ctrl-C's SIGINT…) are passed on to the process, and its status becomes
//! the runtime's exit status.
//!
//! The signals are blocked before the process is started (the process resets
//! its mask before `execve`), so none can kill the runtime in between, and
//! read from a `signalfd` while waiting on the process's pidfd: the wait ends
//! exactly when the process does, with no timing involved.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::{Error, Result};

/// The signals passed on: everything a supervisor or a terminal sends,
/// except those about the runtime itself (SIGCHLD, SIGWINCH, SIGPIPE) and
/// the uncatchable ones.
pub(crate) const FORWARDED: [Signal; 10] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
];

fn set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in FORWARDED {
        s.add(sig);
    }
    s
}

/// While alive, the forwarded signals are blocked (queued for [`wait`]);
/// dropping it restores the previous mask.
#[derive(Debug)]
pub(crate) struct Blocked {
    old: SigSet,
}

impl Blocked {
    /// Blocks [`FORWARDED`] in this thread (the runtime has no others).
    pub(crate) fn new() -> Result<Blocked> {
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set()), Some(&mut old))
            .map_err(|e| Error::io("block signals", e.into()))?;
        Ok(Blocked { old })
    }

    /// Waits for `pid` (our child) to end, passing every forwarded signal
    /// received meanwhile on to it; returns its `waitpid` status.
    pub(crate) fn wait(&self, pid: i32) -> Result<libc::c_int> {
        let sfd = SignalFd::with_flags(&set(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::io("signalfd", e.into()))?;
        let pidfd = pidfd_open(pid)?;
        loop {
            let mut fds = [
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::io("wait for the process", e.into())),
                Ok(_) => {}
            }
            let exited = fds[1].any().unwrap_or(false);
            while let Ok(Some(info)) = sfd.read_signal() {
                if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                    // The process may be gone already: ESRCH is no error here.
                    let _ = kill(Pid::from_raw(pid), sig);
                }
            }
            if exited {
                return reap(pid);
            }
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::io(
            format!("pidfd_open {pid}"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a descriptor pidfd_open just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn reap(pid: i32) -> Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child into a local.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io("wait for the process", e));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by `Blocked::wait`
    fn a_blocked_signal_reaches_the_child_and_its_status_comes_back() {
        let blocked = Blocked::new().unwrap();
        // The child unblocks, waits for SIGUSR1 and exits 7 when it comes.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "trap 'exit 7' USR1; echo ready; while :; do sleep 0.05; done",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let pid = child.id() as i32;
        // SAFETY: signalling ourselves; the signal is blocked and queued.
        unsafe { libc::raise(libc::SIGUSR1) };
        let status = blocked.wait(pid).unwrap();
        assert!(libc::WIFEXITED(status), "{status}");
        assert_eq!(libc::WEXITSTATUS(status), 7);
    }
}
