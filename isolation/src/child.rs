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
    let mut w = Watch::new(s);
    loop {
        let now = Instant::now();
        if w.advance(now) {
            break;
        }
        let (mut fds, pid_slot) = w.poll_set();
        let wait_ms = w.wait_ms(now);
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms.max(0)) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                kill(w.pid, w.kill_group);
                reap(w.pid)?;
                return Err(e);
            }
            continue;
        }
        w.take_events(&fds, pid_slot);
        w.scan_ready();
    }
    w.finish()
}

/// The state of one supervision: the pipes, what has been seen, and where
/// the child is in its life (running, timed out, exited and draining).
struct Watch {
    pid: i32,
    deadline: Instant,
    kill_group: bool,
    out: Pipe,
    err: Pipe,
    pidfd: Option<OwnedFd>,
    ready_at: Option<Instant>,
    /// How far into `out.buf` the ready-line scan has looked.
    scanned: usize,
    exited: bool,
    timed_out: bool,
    drain_until: Option<Instant>,
    hwm_bytes: u64,
}

impl Watch {
    fn new(s: Supervise) -> Watch {
        let pipe = |fd| Pipe {
            fd,
            buf: Vec::new(),
            dropped: 0,
        };
        Watch {
            pid: s.pid,
            deadline: s.deadline,
            kill_group: s.kill_group,
            out: pipe(s.stdout),
            err: pipe(s.stderr),
            pidfd: pidfd_open(s.pid),
            ready_at: None,
            scanned: 0,
            exited: false,
            timed_out: false,
            drain_until: None,
            hwm_bytes: 0,
        }
    }

    /// Kills the child at the deadline, notices its exit where there is no
    /// pidfd, and starts the drain once it has exited. True when supervision
    /// is over: the pipes are closed or the drain grace has passed.
    fn advance(&mut self, now: Instant) -> bool {
        if !self.exited && now >= self.deadline && !self.timed_out {
            self.timed_out = true;
            kill(self.pid, self.kill_group);
        }
        if !self.exited {
            self.exited = match &self.pidfd {
                Some(_) => false, // learned from poll below
                None => has_exited(self.pid).unwrap_or(true),
            };
        }
        if self.exited && self.drain_until.is_none() {
            if self.kill_group {
                // Descendants still holding the pipes would outlive the run.
                kill(self.pid, true);
            }
            self.drain_until = Some(now + DRAIN_GRACE);
        }
        matches!(self.drain_until, Some(until)
            if (!self.out.open() && !self.err.open()) || now >= until)
    }

    /// The fds to poll: the open pipes, then the pidfd while the child runs
    /// (its index is returned alongside).
    fn poll_set(&self) -> (Vec<libc::pollfd>, Option<usize>) {
        let mut fds = Vec::with_capacity(3);
        for pipe in [&self.out, &self.err] {
            if let Some(fd) = &pipe.fd {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let pid_slot = match (&self.pidfd, self.exited) {
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
        (fds, pid_slot)
    }

    /// How long `poll` may sleep: until the drain ends, the deadline, or a
    /// grace after a kill; briefly when the exit must be polled for.
    fn wait_ms(&self, now: Instant) -> i32 {
        let wake = self.drain_until.unwrap_or(if self.timed_out {
            now + DRAIN_GRACE
        } else {
            self.deadline
        });
        let mut wait_ms = wake.saturating_duration_since(now).as_millis().min(60_000) as i32;
        if self.pidfd.is_none() && !self.exited {
            wait_ms = wait_ms.min(5); // no pidfd: poll for the exit
        }
        wait_ms
    }

    /// Reads the pipes that `poll` reported, samples the peak RSS when the
    /// child wrote something, and notes its exit from the pidfd.
    fn take_events(&mut self, fds: &[libc::pollfd], pid_slot: Option<usize>) {
        let mut i = 0;
        let mut got_output = false;
        for pipe in [&mut self.out, &mut self.err] {
            if pipe.open() {
                if fds[i].revents != 0 {
                    pipe.read_some();
                    got_output = true;
                }
                i += 1;
            }
        }
        if got_output && !self.exited {
            self.hwm_bytes = self.hwm_bytes.max(vm_hwm_bytes(self.pid).unwrap_or(0));
        }
        if let Some(slot) = pid_slot
            && fds[slot].revents != 0
        {
            self.exited = true;
        }
    }

    /// Timestamps the ready line as soon as its newline arrives.
    fn scan_ready(&mut self) {
        if self.ready_at.is_some() {
            return;
        }
        while let Some(pos) = self.out.buf[self.scanned..]
            .iter()
            .position(|&b| b == b'\n')
        {
            let line = &self.out.buf[self.scanned..self.scanned + pos];
            self.scanned += pos + 1;
            if is_ready_line(line) {
                self.ready_at = Some(Instant::now());
                break;
            }
        }
    }

    /// Reaps the child (supervision only ends once it has exited or been
    /// killed) and builds the report.
    fn finish(mut self) -> io::Result<ChildReport> {
        if self.ready_at.is_none() && is_ready_line(&self.out.buf[self.scanned..]) {
            self.ready_at = Some(Instant::now());
        }
        let (status, usage) = reap(self.pid)?;
        Ok(ChildReport {
            status,
            timed_out: self.timed_out,
            dropped: self.out.dropped + self.err.dropped,
            stdout: self.out.buf,
            stderr: self.err.buf,
            ready_at: self.ready_at,
            peak_rss_bytes: if self.hwm_bytes > 0 {
                self.hwm_bytes
            } else {
                (usage.ru_maxrss as u64).saturating_mul(1024)
            },
            cpu_time: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        })
    }
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
