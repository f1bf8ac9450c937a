//! The child side: from `clone` to `execve`.
//!
//! Runs in a copy of a possibly multi-threaded parent, so it never allocates:
//! everything it needs was prepared by the parent in [`ChildConfig`]. Each
//! step that fails is reported over the sync socket as (step, errno) and the
//! parent turns it into a message.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use seccompiler::BpfProgram;

use crate::rootfs::{self, Plan};
use crate::security::capabilities::{self, CapabilitySet};
use crate::spec::Rlimit;
use crate::syscall::Linux;

/// Message kinds from child to parent.
pub(crate) const MSG_ERROR: u32 = 2;
pub(crate) const MSG_EXEC: u32 = 3;
/// Create mode: set-up done, waiting to be detached and started.
pub(crate) const MSG_READY: u32 = 4;

/// Steps of the child, as reported in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Step {
    Stdio = 1,
    JoinCgroup = 2,
    // 2 was "wait for the runtime", which has nothing to report to.
    Setsid = 3,
    CgroupNs,
    Hostname,
    Loopback,
    Veth,
    Rlimit,
    Bounding,
    Groups,
    Gid,
    Uid,
    Capabilities,
    Cwd,
    NoNewPrivs,
    Signals,
    Seccomp,
    Exec,
    Terminal,
    AwaitStart,
    /// Enter mode: joining a running container's namespaces.
    Setns,
}

/// Mount steps are reported as `MOUNT_BASE + index into the plan`.
pub(crate) const MOUNT_BASE: u32 = 1000;

impl Step {
    pub(crate) fn describe(code: u32, plan: &Plan, program: &str) -> String {
        if code >= MOUNT_BASE {
            return plan
                .ops
                .get((code - MOUNT_BASE) as usize)
                .map_or("a mount".into(), |op| op.to_string());
        }
        let s = match code {
            1 => "connect standard streams",
            2 => "join the cgroup",
            3 => "setsid",
            4 => "enter a new cgroup namespace",
            5 => "set the hostname",
            6 => "bring up lo",
            7 => "configure eth0",
            8 => "set resource limits",
            9 => "drop the capability bounding set",
            10 => "set supplementary groups",
            11 => "set gid",
            12 => "set uid",
            13 => "set capabilities",
            14 => "change to the working directory",
            15 => "set no_new_privs",
            16 => "reset signal handlers",
            17 => "install the seccomp filter",
            18 => return format!("execute {program}"),
            19 => "set up the terminal (pty, console socket, controlling terminal)",
            20 => "wait for start",
            21 => "join the container's namespaces",
            _ => "an unknown step",
        };
        s.to_string()
    }
}

/// One fixed-size record on the sync socket.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Report {
    pub kind: u32,
    pub step: u32,
    pub errno: i32,
    pub _pad: u32,
    /// CLOCK_MONOTONIC when the report was sent, nanoseconds.
    pub mono_ns: u64,
    /// CLOCK_MONOTONIC at the child's first instruction.
    pub started_ns: u64,
}

/// Parent → child: go ahead, with the veth address if there is one.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Go {
    pub veth_addr: u32,
    pub veth_mask: u32,
}

/// Everything the child needs, prepared by the parent.
pub(crate) struct ChildConfig {
    pub sock: RawFd,
    pub stdio: [RawFd; 3],
    pub plan: Plan,
    pub hostname: Option<CString>,
    pub unshare_cgroup: bool,
    /// In a new user namespace: wait for the runtime to write the id maps.
    pub wait_for_id_maps: bool,
    /// Open cgroup `tasks`/`cgroup.procs` files to write `0` to.
    pub cgroup_files: Vec<RawFd>,
    pub loopback: bool,
    pub rlimits: Vec<Rlimit>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub set_ids: bool,
    pub caps: CapabilitySet,
    pub last_cap: u32,
    pub no_new_privs: bool,
    pub seccomp: Vec<BpfProgram>,
    pub cwd: CString,
    pub program: CString,
    pub argv: Vec<*const libc::c_char>,
    pub envp: Vec<*const libc::c_char>,
    pub umask: Option<u32>,
    /// Where to send a new pty's master (-1: no terminal).
    pub console_socket: RawFd,
    /// (rows, columns) of the terminal; (0, 0) leaves the default.
    pub console_size: (u16, u16),
    /// Create mode: the listening socket `start` connects to (-1: none).
    pub start_gate: RawFd,
    /// Namespace files to `setns` into (fd, `CLONE_NEW*`), first thing.
    pub join_ns: Vec<(RawFd, libc::c_int)>,
    /// Descriptors 3 to 3 + this − 1 are kept open (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Die with the runtime (`PR_SET_PDEATHSIG`): off for a created
    /// container and for a process entered into one, which outlive it.
    pub pdeathsig: bool,
}

pub(crate) fn mono_ns() -> u64 {
    // SAFETY: all-zero timespec is valid, and clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(crate) fn send(sock: RawFd, r: Report) {
    // SAFETY: Report is plain data; a short or failed send only loses the
    // report (MSG_NOSIGNAL: a peer that went away raises no SIGPIPE).
    unsafe {
        libc::send(
            sock,
            (&r as *const Report).cast(),
            std::mem::size_of::<Report>(),
            libc::MSG_NOSIGNAL,
        )
    };
}

fn os(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(crate) type StepResult = Result<(), (u32, io::Error)>;

fn at(step: Step) -> impl Fn(io::Error) -> (u32, io::Error) {
    move |e| (step as u32, e)
}

/// Entry of the cloned child. Never returns.
pub(crate) fn child_main(cfg: &ChildConfig) -> ! {
    // One report per run (exec or error), carrying the start time too: every
    // message wakes the runtime, which competes with us for a CPU.
    let started_ns = mono_ns();
    if let Err((step, e)) = setup_and_exec(cfg, started_ns) {
        send(cfg.sock, error_report(step, &e, started_ns));
    }
    // SAFETY: leave without running any destructor or atexit handler of the parent's copy.
    unsafe { libc::_exit(127) }
}

/// What the child does between `clone` and `execve`, in this order.
fn setup_and_exec(cfg: &ChildConfig, started_ns: u64) -> StepResult {
    wait_for_id_maps(cfg);
    join_cgroup(cfg)?;
    for (fd, flag) in &cfg.join_ns {
        // SAFETY: setns on an fd the parent opened; the type is checked by the kernel.
        os(unsafe { libc::setns(*fd, *flag) } as libc::c_long).map_err(at(Step::Setns))?;
    }
    connect_stdio(cfg)?;
    isolate(cfg)?;
    let go = wait_for_go(cfg);
    configure_veth(&go)?;
    set_limits_and_ids(cfg)?;
    lock_down(cfg)?;
    if cfg.start_gate >= 0 {
        let conn = await_start(cfg, started_ns)?;
        install_seccomp(cfg)?;
        let err = exec(cfg, started_ns);
        // Nobody reads the sync socket any more: `start` learns of the failure.
        if let Err((step, e)) = &err {
            send(conn, error_report(*step, e, started_ns));
        }
        return err;
    }
    install_seccomp(cfg)?;
    exec(cfg, started_ns)
}

/// Enter mode (see `crate::enter`): the process already joined the
/// container's cgroup and namespaces; the rest is what init does after its
/// mounts, in the same order.
pub(crate) fn finish_entered(cfg: &ChildConfig, started_ns: u64) -> StepResult {
    connect_stdio(cfg)?;
    // SAFETY: no arguments.
    os(unsafe { libc::setsid() } as libc::c_long).map_err(at(Step::Setsid))?;
    if cfg.console_socket >= 0 {
        crate::console::attach(cfg.console_socket, cfg.console_size).map_err(at(Step::Terminal))?;
    }
    set_limits_and_ids(cfg)?;
    lock_down(cfg)?;
    install_seccomp(cfg)?;
    exec(cfg, started_ns)
}

pub(crate) fn error_report(step: u32, e: &io::Error, started_ns: u64) -> Report {
    Report {
        kind: MSG_ERROR,
        step,
        errno: e.raw_os_error().unwrap_or(0),
        mono_ns: mono_ns(),
        started_ns,
        _pad: 0,
    }
}

/// Create mode: reports ready, waits until the runtime has recorded the
/// container and let go of it (or died: then init exits, leaving nothing),
/// then blocks until `start` connects. Returns the connection.
fn await_start(cfg: &ChildConfig, started_ns: u64) -> Result<RawFd, (u32, io::Error)> {
    send(
        cfg.sock,
        Report {
            kind: MSG_READY,
            mono_ns: mono_ns(),
            started_ns,
            ..Report::default()
        },
    );
    let mut b = 0u8;
    // SAFETY: reading one byte into a local.
    if unsafe { libc::read(cfg.sock, (&mut b as *mut u8).cast(), 1) } != 1 {
        // SAFETY: as in child_main.
        unsafe { libc::_exit(126) };
    }
    loop {
        // SAFETY: accept4 on our listening socket; no peer address wanted.
        let fd = unsafe {
            libc::accept4(
                cfg.start_gate,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: closing our own listening socket: one start only.
            unsafe { libc::close(cfg.start_gate) };
            return Ok(fd);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err((Step::AwaitStart as u32, e));
        }
    }
}

/// In a new user namespace, waits until the runtime has written the id maps.
fn wait_for_id_maps(cfg: &ChildConfig) {
    if cfg.wait_for_id_maps {
        let mut b = 0u8;
        // SAFETY: reading one byte into a local.
        if unsafe { libc::read(cfg.sock, (&mut b as *mut u8).cast(), 1) } != 1 {
            // The runtime went away or could not map our ids.
            // SAFETY: as in child_main.
            unsafe { libc::_exit(126) };
        }
    }
}

/// Into the cgroup first, so everything after is limited and accounted.
pub(crate) fn join_cgroup(cfg: &ChildConfig) -> StepResult {
    for fd in &cfg.cgroup_files {
        // SAFETY: writing one byte from a static buffer to a fd the parent opened.
        let n = unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) };
        os(n as libc::c_long).map_err(at(Step::JoinCgroup))?;
    }
    Ok(())
}

/// Standard streams, then close every inherited fd but the sync socket
/// (fds of other containers being spawned concurrently included).
fn connect_stdio(cfg: &ChildConfig) -> StepResult {
    for (target, src) in cfg.stdio.iter().enumerate() {
        if *src != target as RawFd {
            // SAFETY: dup2 on fds the parent opened for us.
            os(unsafe { libc::dup2(*src, target as RawFd) } as libc::c_long)
                .map_err(at(Step::Stdio))?;
        }
    }
    close_all_but(
        3u32.saturating_add(cfg.preserve_fds),
        [cfg.sock, cfg.start_gate, cfg.console_socket],
    );
    Ok(())
}

/// Closes every fd from `first` up except those in `keep` (entries below
/// `first` are ignored).
fn close_all_but(first: u32, mut keep: [RawFd; 3]) {
    keep.sort_unstable();
    let mut from = first;
    for k in keep.into_iter().filter(|k| *k >= 0 && *k as u32 >= first) {
        if (k as u32) > from {
            // SAFETY: close_range only closes fds.
            unsafe { libc::syscall(libc::SYS_close_range, from, k as u32 - 1, 0u32) };
        }
        from = k as u32 + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

/// Session, hostname, filesystem, loopback and cgroup namespace.
fn isolate(cfg: &ChildConfig) -> StepResult {
    // Own session: a terminal's Ctrl-C reaches the runtime, which forwards it.
    // SAFETY: no arguments.
    os(unsafe { libc::setsid() } as libc::c_long).map_err(at(Step::Setsid))?;

    if let Some(h) = &cfg.hostname {
        let b = h.as_bytes();
        // SAFETY: pointer and length of a live buffer.
        os(unsafe { libc::sethostname(b.as_ptr().cast(), b.len()) } as libc::c_long)
            .map_err(at(Step::Hostname))?;
    }
    // Before the mounts: a cgroup2 mount then shows the namespace's root,
    // the container's own group.
    if cfg.unshare_cgroup {
        // SAFETY: flag-only syscall; we are already inside our cgroup.
        os(unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } as libc::c_long)
            .map_err(at(Step::CgroupNs))?;
    }
    rootfs::execute(&Linux, &cfg.plan).map_err(|(i, e)| (MOUNT_BASE + i as u32, e))?;
    if cfg.console_socket >= 0 {
        crate::console::attach(cfg.console_socket, cfg.console_size).map_err(at(Step::Terminal))?;
    }
    if cfg.loopback {
        crate::net::link_up(b"lo").map_err(at(Step::Loopback))?;
    }
    Ok(())
}

/// Waits for the runtime's go-ahead: it may be creating our veth meanwhile.
fn wait_for_go(cfg: &ChildConfig) -> Go {
    let mut go = Go::default();
    // SAFETY: reading into a plain-data struct of the size we pass.
    let n = unsafe {
        libc::read(
            cfg.sock,
            (&mut go as *mut Go).cast(),
            std::mem::size_of::<Go>(),
        )
    };
    if n != std::mem::size_of::<Go>() as isize {
        // The runtime went away (or refused): nothing to report to.
        // SAFETY: as in child_main.
        unsafe { libc::_exit(126) };
    }
    go
}

/// Gives eth0 the address the runtime sent, if it made a veth.
fn configure_veth(go: &Go) -> StepResult {
    if go.veth_addr != 0 {
        let addr = std::net::Ipv4Addr::from(go.veth_addr);
        let mask = std::net::Ipv4Addr::from(go.veth_mask);
        crate::net::configure(crate::net::GUEST_IF, addr, mask).map_err(at(Step::Veth))?;
    }
    Ok(())
}

/// Resource limits, the bounding set, then groups, gid and uid.
fn set_limits_and_ids(cfg: &ChildConfig) -> StepResult {
    for r in &cfg.rlimits {
        let lim = libc::rlimit {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        // SAFETY: valid rlimit struct.
        os(unsafe { libc::setrlimit(r.resource as _, &lim) } as libc::c_long)
            .map_err(at(Step::Rlimit))?;
    }
    capabilities::drop_bounding(&cfg.caps, cfg.last_cap).map_err(at(Step::Bounding))?;
    if cfg.set_ids {
        // Keep the permitted set across setuid; capset below trims it.
        // SAFETY: prctl with integers.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
        // SAFETY: pointer/length of a live vector.
        os(unsafe { libc::setgroups(cfg.groups.len(), cfg.groups.as_ptr()) } as libc::c_long)
            .map_err(at(Step::Groups))?;
        // SAFETY: integer arguments.
        os(unsafe { libc::setresgid(cfg.gid, cfg.gid, cfg.gid) } as libc::c_long)
            .map_err(at(Step::Gid))?;
        // SAFETY: integer arguments.
        os(unsafe { libc::setresuid(cfg.uid, cfg.uid, cfg.uid) } as libc::c_long)
            .map_err(at(Step::Uid))?;
    }
    Ok(())
}

/// Parent-death signal, capabilities, working directory, umask,
/// no_new_privs and signal dispositions.
fn lock_down(cfg: &ChildConfig) -> StepResult {
    // If the runtime is killed outright, the container dies with it instead of
    // running on unsupervised (set after the uid change, which would clear it).
    // A created container outlives its runtime by design: until it is let go
    // it exits when the sync socket closes instead.
    if cfg.pdeathsig {
        // SAFETY: prctl with integers.
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
    }
    if let Some(mask) = cfg.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    capabilities::apply_sets(&cfg.caps).map_err(at(Step::Capabilities))?;
    // SAFETY: valid C string.
    os(unsafe { libc::chdir(cfg.cwd.as_ptr()) } as libc::c_long).map_err(at(Step::Cwd))?;
    if cfg.no_new_privs {
        crate::security::set_no_new_privs().map_err(at(Step::NoNewPrivs))?;
    }
    reset_signals().map_err(at(Step::Signals))
}

/// The seccomp filters, last before exec.
fn install_seccomp(cfg: &ChildConfig) -> StepResult {
    for f in &cfg.seccomp {
        seccompiler::apply_filter(f).map_err(|e| {
            let errno = match e {
                seccompiler::Error::Seccomp(io) | seccompiler::Error::Prctl(io) => {
                    io.raw_os_error().unwrap_or(libc::EINVAL)
                }
                _ => libc::EINVAL,
            };
            (Step::Seccomp as u32, io::Error::from_raw_os_error(errno))
        })?;
    }
    Ok(())
}

/// Reports the exec to the runtime and executes the program; returns only on failure.
fn exec(cfg: &ChildConfig, started_ns: u64) -> StepResult {
    send(
        cfg.sock,
        Report {
            kind: MSG_EXEC,
            mono_ns: mono_ns(),
            started_ns,
            ..Report::default()
        },
    );
    // SAFETY: program, argv and envp are NUL-terminated and null-terminated arrays built by the parent.
    unsafe { libc::execve(cfg.program.as_ptr(), cfg.argv.as_ptr(), cfg.envp.as_ptr()) };
    Err((Step::Exec as u32, io::Error::last_os_error()))
}

/// Default dispositions and an empty mask: the runtime ignores SIGPIPE (Rust
/// does) and may block signals; the workload must not inherit either.
fn reset_signals() -> io::Result<()> {
    for sig in 1..libc::SIGRTMIN() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: restoring the default disposition of a valid signal.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty set built by sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    unsafe {
        libc::sigemptyset(&mut set);
        os(libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) as libc::c_long)
    }
}
