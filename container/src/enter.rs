//! Enter mode: another process in a running container (what an OCI
//! runtime's `exec` does). The process joins the container's cgroups, then
//! every namespace of its init that differs from the caller's (in one
//! `setns` on a pidfd, which takes the user namespace first), and from there
//! does what init does after its mounts: terminal, limits, ids,
//! capabilities, `no_new_privs`, seccomp, `execve`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use crate::init::{self, ChildConfig};
use crate::process::{ExecStrings, ExitStatus, StdioFds, child_config, read_report};
use crate::spec::{ContainerSpec, RootSpec};
use crate::{Error, Result, rootfs};

/// `/proc/PID/ns/` names and their `setns` flags, the pid namespace last.
const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("pid", libc::CLONE_NEWPID),
];

/// A process started in a running container by [`enter`].
#[derive(Debug)]
pub struct Entered {
    pid: i32,
}

impl Entered {
    /// Its host pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for it (it is the caller's child) and returns how it ended.
    pub fn wait(self) -> Result<ExitStatus> {
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child into a local.
            if unsafe { libc::waitpid(self.pid, &mut status, 0) } == self.pid {
                return Ok(ExitStatus::from_wait(status));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::host("wait for the process", e));
            }
        }
    }
}

/// The namespaces of `pid` that the caller is not in, as `setns` flags.
fn differing_namespaces(pid: i32) -> Result<libc::c_int> {
    let mut flags = 0;
    for (name, flag) in NAMESPACES {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        match (theirs, ours) {
            (Ok(t), Ok(o)) => {
                use std::os::unix::fs::MetadataExt;
                if (t.dev(), t.ino()) != (o.dev(), o.ino()) {
                    flags |= flag;
                }
            }
            // A kernel without this namespace type: nothing to join.
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => {}
            (Err(e), _) | (_, Err(e)) => {
                return Err(Error::host(
                    format!("read the {name} namespace of {pid}"),
                    e,
                ));
            }
        }
    }
    Ok(flags)
}

fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::host(
            format!("open a pidfd for {pid}"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn setns(fd: RawFd, flags: libc::c_int) -> std::io::Result<()> {
    // SAFETY: setns on a pidfd we hold, with namespace flags.
    if unsafe { libc::setns(fd, flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Starts `spec`'s process (program, args, env, cwd, ids, capabilities,
/// rlimits, `no_new_privs`, its seccomp filters, `lifecycle.console_socket`)
/// inside the running container whose init is `init`, after writing it into
/// the `cgroup.procs` of each of `cgroups`. `spec.root` is ignored: the
/// program is looked up in the init's root. Returns once the program is
/// executing, or with the step that failed.
///
/// The caller joins the container's pid namespace for its future children
/// (a pid namespace can only be entered by a new process): call it from a
/// process that starts nothing else afterwards, like the runtime's `exec`.
pub fn enter(init: i32, cgroups: &[PathBuf], spec: &ContainerSpec) -> Result<Entered> {
    let pidfd = pidfd_open(init)?;
    let flags = differing_namespaces(init)?;
    let mut in_root = spec.clone();
    in_root.root = RootSpec::Dir(PathBuf::from(format!("/proc/{init}/root")));
    let program = rootfs::resolve_program(&in_root)?;
    let seccomp = crate::process::seccomp_programs(spec)?;
    let mut exec = ExecStrings::new(spec, &program)?;
    let (parent_sock, child_sock) = crate::process::sync_socketpair()?;
    let stdio = StdioFds::open(spec)?;
    let cgroup_files = cgroups
        .iter()
        .map(|dir| {
            let path = dir.join("cgroup.procs");
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map(OwnedFd::from)
                .map_err(|source| Error::Cgroup {
                    op: "open",
                    path,
                    source,
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let plan = rootfs::Plan {
        ops: Vec::new(),
        resolve: crate::syscall::Resolve::InRoot,
        keep_locked_flags: false,
    };
    let mut cfg = child_config(
        spec,
        plan,
        seccomp,
        &mut exec,
        child_sock.as_raw_fd(),
        stdio.fds,
        &cgroup_files,
    )?;
    cfg.pdeathsig = false;
    if flags & libc::CLONE_NEWPID != 0 {
        setns(pidfd.as_raw_fd(), libc::CLONE_NEWPID)
            .map_err(|e| Error::host(format!("join the pid namespace of {init}"), e))?;
    }
    // SAFETY: fork; the child only makes syscalls on what `cfg` prepared and
    // leaves through `_exit` or `execve`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::host("fork", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        child(&cfg, pidfd.as_raw_fd(), flags & !libc::CLONE_NEWPID);
    }
    drop(child_sock);
    drop(stdio.keep_child);
    await_exec(&parent_sock, Entered { pid }, &cfg, &program)
}

/// The entered child: cgroups first (their files are the host's), then the
/// namespaces, then the rest as init does it.
fn child(cfg: &ChildConfig, pidfd: RawFd, flags: libc::c_int) -> ! {
    let started = init::mono_ns();
    let joined = init::join_cgroup(cfg).and_then(|()| {
        if flags == 0 {
            return Ok(());
        }
        setns(pidfd, flags).map_err(|e| (init::Step::Setns as u32, e))
    });
    if let Err((step, e)) = joined.and_then(|()| init::finish_entered(cfg, started)) {
        init::send(cfg.sock, init::error_report(step, &e, started));
    }
    // SAFETY: leave without running the parent's destructors or atexit handlers.
    unsafe { libc::_exit(127) }
}

/// Reads the child's reports: an exec report then end of file is success;
/// an error report is the failed step (the child is reaped).
fn await_exec(
    sock: &OwnedFd,
    entered: Entered,
    cfg: &ChildConfig,
    program: &str,
) -> Result<Entered> {
    loop {
        match read_report(sock) {
            Ok(Some(r)) if r.kind == init::MSG_ERROR => {
                let _ = entered.wait();
                return Err(Error::Setup {
                    step: init::Step::describe(r.step, &cfg.plan, program),
                    source: std::io::Error::from_raw_os_error(r.errno),
                });
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok(entered),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::host("read the process's set-up report", e)),
        }
    }
}
