//! Supervising one child process: read its stdout and stderr, timestamp the
//! workload's `ready` line, enforce a timeout, and reap it with its resource
//! usage. Shared by the backends that run a host process (native, container).
//!
//! Single-threaded: one `poll` over both pipes and a pidfd, so a timeout or
//! exit is noticed at once and nothing is left running on any path.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How long to keep draining the pipes after the child has exited, for
/// output still buffered in them (or held open by a stray descendant).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// How the supervised process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// Everything observed about a supervised child.
#[derive(Debug, Clone)]
pub struct ChildReport {
    /// How it ended.
    pub status: ChildStatus,
    /// True when it was killed because the timeout passed.
    pub timed_out: bool,
    /// Its standard output, verbatim, at most [`super::CAPTURE_LIMIT`] bytes.
    pub stdout: Vec<u8>,
    /// Its standard error, verbatim, likewise.
    pub stderr: Vec<u8>,
    /// Bytes of output (both streams) read past the limit and dropped.
    pub dropped: u64,
    /// When its first `ready` result line arrived, if it did.
    pub ready_at: Option<Instant>,
    /// Peak resident set size of the program the child runs, bytes: the
    /// largest `VmHWM` seen in `/proc/<pid>/status` while it ran (sampled
    /// whenever it writes output), else `wait4`'s `ru_maxrss`. `ru_maxrss`
    /// alone is wrong for a forked-then-exec'd child: Linux carries the
    /// pre-exec high-water mark over `exec`, so it reports the parent's size.
    pub peak_rss_bytes: u64,
    /// User + system CPU time of the child (and its reaped descendants).
    pub cpu_time: Duration,
}

/// What to supervise.
#[derive(Debug)]
pub struct Supervise {
    /// The child's pid; it must be our child, not yet reaped.
    pub pid: i32,
    /// Read end of its stdout pipe.
    pub stdout: Option<OwnedFd>,
    /// Read end of its stderr pipe.
    pub stderr: Option<OwnedFd>,
    /// Kill it (SIGKILL) when this instant passes.
    pub deadline: Instant,
    /// The child leads its own process group: kill the whole group when it
    /// exits or times out, so no descendant outlives the run.
    pub kill_group: bool,
}

/// True for a workload result line of the `ready` probe.
pub fn is_ready_line(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let t = text.trim();
    t.starts_with('{') && t.contains("\"probe\":\"ready\"")
}

struct Pipe {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
    dropped: u64,
}

impl Pipe {
    fn open(&self) -> bool {
        self.fd.is_some()
    }

    /// Reads what is available; closes the pipe at EOF or on error.
    fn read_some(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut chunk = [0u8; 65536];
        // SAFETY: reading into a stack buffer of the given length from a fd we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if n > 0 {
            // Keep up to the limit; read and count the rest, so the child
            // never blocks on a full pipe and our memory stays bounded.
            let n = n as usize;
            let room = super::CAPTURE_LIMIT.saturating_sub(self.buf.len()).min(n);
            self.buf.extend_from_slice(&chunk[..room]);
            self.dropped += (n - room) as u64;
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            self.fd = None;
        }
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a fresh fd that we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// True once `pid` has exited (it stays a zombie: not reaped).
fn has_exited(pid: i32) -> io::Result<bool> {
    // SAFETY: a zeroed siginfo_t is valid for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with WNOWAIT only inspects the child.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info`; si_pid is 0 when the child is still running.
    Ok(unsafe { info.si_pid() } != 0)
}

fn kill(target: i32, group: bool) {
    // SAFETY: sending SIGKILL to our own un-reaped child or its process group,
    // whose id cannot be reused while the child is a zombie.
    unsafe {
        if group {
            libc::killpg(target, libc::SIGKILL);
        }
        libc::kill(target, libc::SIGKILL);
    }
}

fn reap(pid: i32) -> io::Result<(ChildStatus, libc::rusage)> {
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes the status and usage of our child.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let st = if libc::WIFSIGNALED(status) {
        ChildStatus::Signaled(libc::WTERMSIG(status))
    } else {
        ChildStatus::Exited(libc::WEXITSTATUS(status))
    };
    Ok((st, usage))
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// The `VmHWM` (peak resident set) of a live process, from `/proc/<pid>/status`.
pub fn vm_hwm_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Supervises `s` until the child has exited (or been killed at the
/// deadline) and is reaped. Returns an error only if the child could not be
/// waited for; the child is killed and reaped on every path.
pub fn supervise(s: Supervise) -> io::Result<ChildReport> {
    let pid = s.pid;
    let mut out = Pipe {
        fd: s.stdout,
        buf: Vec::new(),
        dropped: 0,
    };
    let mut err = Pipe {
        fd: s.stderr,
        buf: Vec::new(),
        dropped: 0,
    };
    let pidfd = pidfd_open(pid);
    let mut ready_at = None;
    let mut scanned = 0;
    let mut exited = false;
    let mut timed_out = false;
    let mut drain_until: Option<Instant> = None;
    let mut hwm_bytes = 0u64;

    loop {
        let now = Instant::now();
        if !exited && now >= s.deadline && !timed_out {
            timed_out = true;
            kill(pid, s.kill_group);
        }
        if !exited {
            exited = match &pidfd {
                Some(_) => false, // learned from poll below
                None => has_exited(pid).unwrap_or(true),
            };
        }
        if exited && drain_until.is_none() {
            if s.kill_group {
                // Descendants still holding the pipes would outlive the run.
                kill(pid, true);
            }
            drain_until = Some(now + DRAIN_GRACE);
        }
        if let Some(until) = drain_until
            && ((!out.open() && !err.open()) || now >= until)
        {
            break;
        }

        let mut fds = Vec::with_capacity(3);
        for pipe in [&out, &err] {
            if let Some(fd) = &pipe.fd {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let pid_slot = match (&pidfd, exited) {
            (Some(fd), false) => {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let wake = drain_until.unwrap_or(if timed_out {
            now + DRAIN_GRACE
        } else {
            s.deadline
        });
        let mut wait_ms = wake.saturating_duration_since(now).as_millis().min(60_000) as i32;
        if pidfd.is_none() && !exited {
            wait_ms = wait_ms.min(5); // no pidfd: poll for the exit
        }
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms.max(0)) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                kill(pid, s.kill_group);
                reap(pid)?;
                return Err(e);
            }
            continue;
        }
        let mut i = 0;
        let mut got_output = false;
        for pipe in [&mut out, &mut err] {
            if pipe.open() {
                if fds[i].revents != 0 {
                    pipe.read_some();
                    got_output = true;
                }
                i += 1;
            }
        }
        if got_output && !exited {
            hwm_bytes = hwm_bytes.max(vm_hwm_bytes(pid).unwrap_or(0));
        }
        if let Some(slot) = pid_slot
            && fds[slot].revents != 0
        {
            exited = true;
        }
        // Timestamp the ready line as soon as its newline arrives.
        if ready_at.is_none() {
            while let Some(pos) = out.buf[scanned..].iter().position(|&b| b == b'\n') {
                let line = &out.buf[scanned..scanned + pos];
                scanned += pos + 1;
                if is_ready_line(line) {
                    ready_at = Some(Instant::now());
                    break;
                }
            }
        }
    }
    if ready_at.is_none() && is_ready_line(&out.buf[scanned..]) {
        ready_at = Some(Instant::now());
    }
    // The loop only ends after the child exited (or was killed): reap it.
    let (status, usage) = reap(pid)?;
    Ok(ChildReport {
        status,
        timed_out,
        dropped: out.dropped + err.dropped,
        stdout: out.buf,
        stderr: err.buf,
        ready_at,
        peak_rss_bytes: if hwm_bytes > 0 {
            hwm_bytes
        } else {
            (usage.ru_maxrss as u64).saturating_mul(1024)
        },
        cpu_time: timeval(usage.ru_utime) + timeval(usage.ru_stime),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_are_recognised() {
        assert!(is_ready_line(
            br#"{"schema":1,"probe":"ready","metric":"monotonic_ns"}"#
        ));
        assert!(is_ready_line(b"  {\"probe\":\"ready\"}\r"));
        assert!(!is_ready_line(br#"{"schema":1,"probe":"cpu"}"#));
        assert!(!is_ready_line(b"probe ready"));
    }
}
