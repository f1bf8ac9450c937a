//! The parent side: prepare, clone, synchronise, wait, clean up.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::{CgroupManager, CgroupStats};
use crate::init::{self, ChildConfig, Go, MSG_ERROR, MSG_EXEC, MSG_READY, Report};
use crate::net::Veth;
use crate::signals::SignalGuard;
use crate::spec::{ContainerSpec, NetMode, Stdio};
use crate::{Error, Result, rootfs, security, validate};

/// Time a container gets to finish after a forwarded SIGINT/SIGTERM before it is killed.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(2);

/// How the container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    pub(crate) fn from_wait(status: libc::c_int) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }
}

/// When things happened, from the runtime's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamps {
    /// Just before `clone`.
    pub before_clone: Instant,
    /// First instruction of the child.
    pub child_started: Option<Instant>,
    /// Just before `execve` (set-up done).
    pub exec: Option<Instant>,
    /// The runtime saw init exit.
    pub exited: Option<Instant>,
}

/// What a finished run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// How init ended.
    pub status: ExitStatus,
    /// The cgroup recorded at least one OOM kill.
    pub oom_killed: bool,
    /// The run hit its timeout and was killed.
    pub timed_out: bool,
    /// A SIGINT/SIGTERM the runtime received and forwarded.
    pub interrupted: Option<i32>,
    /// Cgroup accounting.
    pub stats: CgroupStats,
    /// Timestamps.
    pub times: Timestamps,
    /// Captured standard output (when it was [`Stdio::Piped`] and not taken),
    /// at most [`ContainerSpec::capture_limit`] bytes.
    pub stdout: Vec<u8>,
    /// Captured standard error (likewise).
    pub stderr: Vec<u8>,
    /// Bytes of standard output read past the capture limit and dropped.
    pub stdout_dropped: u64,
    /// Bytes of standard error read past the capture limit and dropped.
    pub stderr_dropped: u64,
    /// Things the user should know about this run (where its cgroup went…).
    pub notes: Vec<String>,
}

impl RunReport {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Exited(0)
    }
}

/// Runs `spec` to completion, collecting piped output.
pub fn run(spec: &ContainerSpec) -> Result<RunReport> {
    spawn(spec)?.wait()
}

struct Child {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: bool,
}

impl Child {
    fn kill(&self, sig: libc::c_int) {
        // SAFETY: pidfd_send_signal on our own pidfd; no memory is passed.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                sig,
                0usize,
                0u32,
            )
        };
    }

    fn reap(&mut self) -> Option<libc::c_int> {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(self.pid, &mut st, 0) };
        self.reaped = true;
        (rc == self.pid).then_some(st)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill(libc::SIGKILL);
            self.reap();
        }
    }
}

/// The staging directory of the root; removed on drop when the runtime made it.
struct Staging {
    path: PathBuf,
    owned: bool,
}

impl Staging {
    fn borrowed(path: PathBuf) -> Staging {
        Staging { path, owned: false }
    }
    fn owned(path: PathBuf) -> Staging {
        Staging { path, owned: true }
    }
    fn remove(&mut self) {
        if std::mem::take(&mut self.owned)
            && let Err(e) = std::fs::remove_dir(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "staging directory left behind");
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A container that has started (its program is executing).
pub struct Running {
    // Drop order matters: the child dies first, then its cgroup and veth go.
    child: Child,
    stdout: Option<std::fs::File>,
    stderr: Option<std::fs::File>,
    veth: Option<Veth>,
    cgroup: Box<dyn CgroupManager>,
    staging: Staging,
    times: Timestamps,
    timeout: Option<Duration>,
    forward_signals: bool,
    capture_limit: usize,
    notes: Vec<String>,
    /// The sync socket, kept for [`Running::detach`].
    sock: OwnedFd,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("pid", &self.child.pid)
            .field("cgroup", &self.cgroup.paths())
            .finish()
    }
}

fn cstring(field: &'static str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidSpec {
        field,
        value: s.into(),
        reason: "contains a NUL byte".into(),
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::host("pipe2", io::Error::last_os_error()));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// True when this process runs as root (effective uid 0).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// How long the set-up may take: 30 s, or less when the run's timeout is shorter.
fn setup_deadline(timeout: Option<Duration>) -> Instant {
    let limit = Duration::from_secs(30);
    Instant::now() + timeout.map_or(limit, |t| t.min(limit))
}

fn staging_dir() -> Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("isolab-root-{}", crate::cgroup::unique_name()));
    std::fs::create_dir(&p)
        .map_err(|e| Error::host(format!("create staging directory {}", p.display()), e))?;
    Ok(p)
}

/// What the parent computes before it opens any fd for the child.
///
/// Field order is drop order: on an early error the staging directory goes
/// before the cgroup, as it did when these were locals of [`spawn`].
struct Prepared {
    staging: Staging,
    rootless_note: Option<String>,
    cgroup: Box<dyn CgroupManager>,
    id_maps: Option<crate::rootless::IdMaps>,
    program: String,
    plan: rootfs::Plan,
    seccomp: Vec<seccompiler::BpfProgram>,
}

/// Checks the spec and sets up what lives outside the child: its program
/// path, id maps, cgroup, root staging directory, mount plan and seccomp filters.
fn prepare(spec: &ContainerSpec) -> Result<Prepared> {
    validate::spec(spec)?;
    let program = rootfs::resolve_program(spec)?;
    let id_maps = spec
        .user_namespace
        .then(crate::rootless::IdMaps::for_caller);
    let (cgroup, rootless_note) = if spec.user_namespace {
        crate::rootless::cgroup(spec)?
    } else {
        let mut m = match &spec.cgroup_path {
            Some(path) => crate::cgroup::manager_named(
                &spec.cgroup,
                crate::cgroup::CgroupPlacement::HierarchyRoot,
                path.trim_start_matches('/'),
            )?,
            None => crate::cgroup::manager_for(&spec.cgroup, spec.cgroup_placement)?,
        };
        m.create(&spec.resources, spec.devices.as_deref())?;
        (m, None)
    };
    // A given rootfs is bound onto itself; only the minimal root needs a
    // mount point, removed after the run (removing it while the container's
    // mount namespace still has it mounted would cost an RCU grace period).
    let staging = match &spec.root {
        crate::spec::RootSpec::Dir(dir) => Staging::borrowed(dir.clone()),
        crate::spec::RootSpec::Minimal { .. } => Staging::owned(staging_dir()?),
    };
    let cgroup_mounts = hostcaps::cgroup::mounts();
    let cgroup_dirs = cgroup.paths();
    let view = rootfs::CgroupView {
        mounts: &cgroup_mounts,
        dirs: &cgroup_dirs,
        namespace: spec.namespaces.cgroup,
    };
    let plan = rootfs::plan_with_cgroups(spec, &staging.path, &view)?;
    let seccomp = seccomp_programs(spec)?;
    Ok(Prepared {
        staging,
        rootless_note,
        cgroup,
        id_maps,
        program,
        plan,
        seccomp,
    })
}

/// The filters `spec` asks for: none, the caller's, or the default policy.
pub(crate) fn seccomp_programs(spec: &ContainerSpec) -> Result<Vec<seccompiler::BpfProgram>> {
    Ok(match (&spec.seccomp_filters, spec.seccomp) {
        (_, false) => Vec::new(),
        (Some(custom), true) => custom.0.clone(),
        (None, true) => security::seccomp::default_filters()?,
    })
}

/// The program, its arguments and the environment as C strings, converted
/// before the clone because the child may not allocate.
pub(crate) struct ExecStrings {
    /// Moved into the child config by [`child_config`].
    program: CString,
    /// argv\[0\] is the program again; the child config's `argv` points in here.
    argv: Vec<CString>,
    /// The child config's `envp` points in here.
    env: Vec<CString>,
}

impl ExecStrings {
    pub(crate) fn new(spec: &ContainerSpec, program: &str) -> Result<ExecStrings> {
        let program_c = cstring("program", program)?;
        let mut argv = vec![cstring("program", program)?];
        for a in &spec.args {
            argv.push(cstring("args", a)?);
        }
        let env = spec
            .env
            .iter()
            .map(|e| cstring("env", e))
            .collect::<Result<Vec<_>>>()?;
        Ok(ExecStrings {
            program: program_c,
            argv,
            env,
        })
    }
}

/// A null-terminated array of pointers into `v`, as `execve` takes it.
fn c_ptrs(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The sync socket pair: (parent end, child end).
pub(crate) fn sync_socketpair() -> Result<(OwnedFd, OwnedFd)> {
    // SOCK_SEQPACKET keeps each report a separate message.
    let mut sv = [0; 2];
    // SAFETY: sv is a valid out array.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    } != 0
    {
        return Err(Error::host("socketpair", io::Error::last_os_error()));
    }
    // SAFETY: fresh fds owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) })
}

/// The child's standard streams.
///
/// Field order is drop order: the parent's pipe ends close before the child's
/// ends, as they did when these were locals of [`spawn`].
pub(crate) struct StdioFds {
    /// The fds the child dups onto 0, 1 and 2.
    pub(crate) fds: [RawFd; 3],
    /// The parent's ends of piped streams, by stream.
    parent_ends: [Option<OwnedFd>; 3],
    /// Fds opened for the child, closed in the parent once it is cloned.
    pub(crate) keep_child: Vec<OwnedFd>,
}

impl StdioFds {
    pub(crate) fn open(spec: &ContainerSpec) -> Result<StdioFds> {
        let mut keep_child: Vec<OwnedFd> = Vec::new();
        let mut parent_ends: [Option<OwnedFd>; 3] = [None, None, None];
        let mut stdio = [0 as RawFd, 1, 2];
        for (i, mode) in [spec.stdin, spec.stdout, spec.stderr]
            .into_iter()
            .enumerate()
        {
            match mode {
                Stdio::Inherit => {}
                Stdio::Fd(fd) => stdio[i] = fd,
                Stdio::Null => {
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open("/dev/null")
                        .map_err(|e| Error::host("open /dev/null", e))?;
                    stdio[i] = f.as_raw_fd();
                    keep_child.push(f.into());
                }
                Stdio::Piped => {
                    let (r, w) = pipe()?;
                    let (parent, child) = if i == 0 { (w, r) } else { (r, w) };
                    stdio[i] = child.as_raw_fd();
                    keep_child.push(child);
                    parent_ends[i] = Some(parent);
                }
            }
        }
        Ok(StdioFds {
            fds: stdio,
            parent_ends,
            keep_child,
        })
    }
}

/// Opens the cgroup files the child writes `0` to when it has to join its
/// cgroup itself.
fn open_attach_files(cgroup: &dyn CgroupManager) -> Result<Vec<OwnedFd>> {
    cgroup
        .self_attach_files()
        .iter()
        .map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .map(OwnedFd::from)
                .map_err(|source| Error::Cgroup {
                    op: "open",
                    path: p.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>>>()
}

/// `--preserve-fds n`: descriptors 3 to 3 + n − 1 must be open; they lose
/// close-on-exec so the program inherits them. A runtime calls this first
/// thing, before it opens anything of its own that could take those numbers.
pub fn preserve_fds(n: u32) -> Result<()> {
    for fd in 3..3u32.saturating_add(n) {
        let fd = fd as RawFd;
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(Error::InvalidSpec {
                field: "--preserve-fds",
                value: n.to_string(),
                reason: format!("descriptor {fd} is not open (3 to {} must be)", 2 + n),
            });
        }
        // SAFETY: F_SETFD only changes the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(Error::host(
                format!("keep descriptor {fd} open"),
                io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// Everything the child needs, so that it never allocates.
pub(crate) fn child_config(
    spec: &ContainerSpec,
    plan: rootfs::Plan,
    seccomp: Vec<seccompiler::BpfProgram>,
    exec: &mut ExecStrings,
    sock: RawFd,
    stdio: [RawFd; 3],
    cgroup_files: &[OwnedFd],
) -> Result<ChildConfig> {
    preserve_fds(spec.lifecycle.preserve_fds)?;
    let cfg = ChildConfig {
        sock,
        stdio,
        plan,
        hostname: if spec.namespaces.uts {
            Some(cstring("hostname", &spec.hostname)?)
        } else {
            None
        },
        unshare_cgroup: spec.namespaces.cgroup,
        wait_for_id_maps: spec.user_namespace,
        cgroup_files: cgroup_files.iter().map(AsRawFd::as_raw_fd).collect(),
        loopback: spec.net != NetMode::Host,
        rlimits: spec.rlimits.clone(),
        uid: spec.uid,
        gid: spec.gid,
        groups: spec.additional_gids.clone(),
        set_ids: spec.uid != 0 || spec.gid != 0 || !spec.additional_gids.is_empty(),
        caps: spec.capabilities,
        last_cap: security::capabilities::last_cap(),
        no_new_privs: spec.no_new_privs,
        seccomp,
        cwd: cstring("cwd", &spec.cwd)?,
        // Moved, not copied: `argv` and `envp` keep pointing into `exec`.
        program: std::mem::take(&mut exec.program),
        argv: c_ptrs(&exec.argv),
        envp: c_ptrs(&exec.env),
        umask: spec.umask,
        console_socket: spec.lifecycle.console_socket.unwrap_or(-1),
        console_size: spec.lifecycle.console_size.unwrap_or((0, 0)),
        start_gate: spec.lifecycle.start_gate.unwrap_or(-1),
        pdeathsig: spec.lifecycle.start_gate.is_none(),
        join_ns: Vec::new(),
        preserve_fds: spec.lifecycle.preserve_fds,
    };
    // The sync socket and the start gate must not land on 0..2, where stdio
    // goes, nor among the preserved descriptors.
    let kept = 0..RawFd::try_from(cfg.preserve_fds).map_or(RawFd::MAX, |n| n.saturating_add(3));
    if kept.contains(&cfg.sock)
        || kept.contains(&cfg.start_gate)
        || kept.contains(&cfg.console_socket)
    {
        return Err(Error::host(
            "sync socket",
            io::Error::from_raw_os_error(libc::EBADF),
        ));
    }
    Ok(cfg)
}

/// Starts `spec`: returns once the program is executing (or with the reason it could not).
pub fn spawn(spec: &ContainerSpec) -> Result<Running> {
    // The order of these locals is the order resources are released on an
    // error: the child is killed first, then its fds close, then the staging
    // directory and the cgroup go.
    let prep = prepare(spec)?;
    let mut exec = ExecStrings::new(spec, &prep.program)?;
    let (parent_sock, child_sock) = sync_socketpair()?;
    let stdio = StdioFds::open(spec)?;
    let cgroup_files = open_attach_files(prep.cgroup.as_ref())?;
    let ns_files = spec
        .join_namespaces
        .iter()
        .map(|(flag, path)| {
            std::fs::File::open(path)
                .map(|f| (OwnedFd::from(f), *flag))
                .map_err(|e| Error::host(format!("open the namespace {}", path.display()), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut cfg = child_config(
        spec,
        prep.plan,
        prep.seccomp,
        &mut exec,
        child_sock.as_raw_fd(),
        stdio.fds,
        &cgroup_files,
    )?;
    cfg.join_ns = ns_files
        .iter()
        .map(|(f, flag)| (f.as_raw_fd(), *flag))
        .collect();
    let (mut child, before_clone) = clone_child(spec, &mut cfg, prep.cgroup.as_ref())?;
    drop(child_sock);
    drop(stdio.keep_child);
    if let Some(maps) = &prep.id_maps {
        map_ids(child.pid, maps, &parent_sock)?;
    }
    cfg.argv.clear();
    cfg.envp.clear();
    crate::sysctl::write(child.pid, &spec.sysctls)?;

    drop(cgroup_files);
    let veth = (spec.net == NetMode::Veth)
        .then(|| Veth::create(child.pid))
        .transpose()?;
    release(&parent_sock, veth.as_ref())?;
    let times = await_exec(
        spec,
        &parent_sock,
        &mut child,
        &cfg.plan,
        &prep.program,
        before_clone,
    )?;
    let file = |fd: Option<OwnedFd>| fd.map(std::fs::File::from);
    let [_stdin, out, err] = stdio.parent_ends;
    let mut cgroup_notes = prep.cgroup.notes();
    cgroup_notes.extend(prep.id_maps.and_then(|m| m.note()));
    cgroup_notes.extend(prep.rootless_note);
    Ok(Running {
        child,
        stdout: file(out),
        stderr: file(err),
        veth,
        cgroup: prep.cgroup,
        staging: prep.staging,
        times,
        timeout: spec.timeout,
        forward_signals: spec.forward_signals,
        capture_limit: spec.capture_limit,
        notes: cgroup_notes,
        sock: parent_sock,
    })
}

/// The namespaces every container gets, and those `spec` asks for.
fn clone_flags(spec: &ContainerSpec) -> libc::c_int {
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_PIDFD;
    if spec.user_namespace {
        flags |= libc::CLONE_NEWUSER;
    }
    if spec.namespaces.uts {
        flags |= libc::CLONE_NEWUTS;
    }
    if spec.namespaces.ipc {
        flags |= libc::CLONE_NEWIPC;
    }
    if spec.net != NetMode::Host {
        flags |= libc::CLONE_NEWNET;
    }
    flags
}

/// Clones the child, which runs [`init::child_main`] and never comes back
/// here. Returns its handle and the time just before the clone.
fn clone_child(
    spec: &ContainerSpec,
    cfg: &mut ChildConfig,
    cgroup: &dyn CgroupManager,
) -> Result<(Child, Instant)> {
    let flags = clone_flags(spec);
    // On cgroup v2, clone3(CLONE_INTO_CGROUP) starts the child inside its
    // group; where that is missing (Linux < 5.7) the child joins it itself.
    let into_dir = cgroup
        .clone_into_dir()
        .map(|d| {
            std::fs::File::open(&d)
                .map(OwnedFd::from)
                .map_err(|source| Error::Cgroup {
                    op: "open",
                    path: d,
                    source,
                })
        })
        .transpose()?;
    let attach_fds = cfg.cgroup_files.clone();
    // A time namespace needs clone3 (its flag collides with clone's signal byte).
    let time_ns = spec.namespaces.time && std::path::Path::new("/proc/self/ns/time").exists();
    let before_clone = Instant::now();
    let mut pidfd: libc::c_int = -1;
    let mut pid = -1;
    if into_dir.is_some() || time_ns {
        pid = try_clone3(
            flags,
            time_ns,
            into_dir.as_ref(),
            attach_fds,
            cfg,
            &mut pidfd,
        )?;
    }
    if pid < 0 {
        pid = clone_classic(flags, cfg, &mut pidfd)?;
    }
    drop(into_dir);
    let pid = pid as libc::pid_t;
    // SAFETY: CLONE_PIDFD gave us this fd; nobody else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let child = Child {
        pid,
        pidfd,
        reaped: false,
    };
    Ok((child, before_clone))
}

/// Clones with `clone3`, for a time namespace or to start inside the cgroup
/// directory `into_dir`. Returns -1 when the kernel lacks either (the caller
/// then falls back to `clone`, and the child joins its cgroup through
/// `attach_fds` itself).
fn try_clone3(
    flags: libc::c_int,
    time_ns: bool,
    into_dir: Option<&OwnedFd>,
    attach_fds: Vec<RawFd>,
    cfg: &mut ChildConfig,
    pidfd: &mut libc::c_int,
) -> Result<i64> {
    let mut extra = if time_ns {
        libc::CLONE_NEWTIME as u64
    } else {
        0
    };
    if into_dir.is_some() {
        extra |= CLONE_INTO_CGROUP;
        cfg.cgroup_files.clear();
    }
    let dir_fd = into_dir.map_or(-1, AsRawFd::as_raw_fd);
    let pid = clone3(flags as u64 | extra, pidfd, dir_fd);
    if pid == 0 {
        init::child_main(cfg);
    }
    if pid < 0 {
        let e = io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL)
        ) {
            return Err(Error::host("clone3", e));
        }
        // Old kernels: no time namespace, and the child joins its cgroup itself.
        tracing::debug!(error = %e, "clone3 with CLONE_INTO_CGROUP/CLONE_NEWTIME unavailable");
        cfg.cgroup_files = attach_fds;
    }
    Ok(pid)
}

/// Clones with `clone`: the path when `clone3` is not needed or not there.
fn clone_classic(flags: libc::c_int, cfg: &ChildConfig, pidfd: &mut libc::c_int) -> Result<i64> {
    // SAFETY: fork-like clone (no new stack: the child continues on a copy of
    // ours). The child only runs `child_main`, which never returns and never
    // allocates; CLONE_PIDFD stores the pidfd through the third argument.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            pidfd as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_int>(),
            0usize,
        )
    };
    if pid == 0 {
        init::child_main(cfg);
    }
    if pid < 0 {
        return Err(Error::host("clone", io::Error::last_os_error()));
    }
    Ok(pid)
}

/// Sends the go-ahead (with the veth address, if any) the child waits for
/// before its last set-up steps.
fn release(sock: &OwnedFd, veth: Option<&Veth>) -> Result<()> {
    let go = match veth {
        Some(v) => Go {
            veth_addr: u32::from(v.addrs.guest),
            veth_mask: 0xffff_fffc,
        },
        None => Go::default(),
    };
    // SAFETY: sending a plain-data struct; MSG_NOSIGNAL: no SIGPIPE.
    let n = unsafe {
        libc::send(
            sock.as_raw_fd(),
            (&go as *const Go).cast(),
            std::mem::size_of::<Go>(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n != std::mem::size_of::<Go>() as isize {
        let e = io::Error::last_os_error();
        // An init that failed its set-up before waiting for the go-ahead has
        // closed its end: its report is still queued below, so read it.
        if !matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET)) {
            return Err(Error::host("release the container init", e));
        }
    }
    Ok(())
}

/// What a created container's init sent over the start connection before
/// closing it: nothing when the program is executing, otherwise the report
/// of the step that failed (its seccomp filters or the `execve`).
pub fn start_outcome(received: &[u8]) -> Result<()> {
    if received.len() < std::mem::size_of::<Report>() {
        return Ok(());
    }
    // SAFETY: Report is plain data of this size; read_unaligned copes with any alignment.
    let r: Report = unsafe { std::ptr::read_unaligned(received.as_ptr().cast()) };
    let step = if r.step == init::Step::Exec as u32 {
        "execute the program"
    } else {
        "install the seccomp filter"
    };
    Err(Error::Setup {
        step: step.into(),
        source: io::Error::from_raw_os_error(r.errno),
    })
}

/// Reads one report from the sync socket; `None` when the child closed it.
pub(crate) fn read_report(sock: &OwnedFd) -> io::Result<Option<Report>> {
    let mut r = Report::default();
    // SAFETY: reading into a plain-data struct of the size we pass.
    let n = unsafe {
        libc::read(
            sock.as_raw_fd(),
            (&mut r as *mut Report).cast(),
            std::mem::size_of::<Report>(),
        )
    };
    if n == 0 {
        return Ok(None);
    }
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some(r))
}

/// Child timestamps are CLOCK_MONOTONIC, like `Instant`: one reading of both
/// clocks shifts them onto `base`.
struct ChildClock {
    base_ns: u64,
    base: Instant,
}

impl ChildClock {
    fn now() -> ChildClock {
        ChildClock {
            base_ns: init::mono_ns(),
            base: Instant::now(),
        }
    }

    fn at(&self, ns: u64) -> Instant {
        if ns >= self.base_ns {
            self.base + Duration::from_nanos(ns - self.base_ns)
        } else {
            self.base
                .checked_sub(Duration::from_nanos(self.base_ns - ns))
                .unwrap_or(self.base)
        }
    }
}

/// Waits (within the set-up deadline) until the child reports its `execve`,
/// and returns the run's timestamps; or the reason the set-up failed.
fn await_exec(
    spec: &ContainerSpec,
    sock: &OwnedFd,
    child: &mut Child,
    plan: &rootfs::Plan,
    program: &str,
    before_clone: Instant,
) -> Result<Timestamps> {
    let clock = ChildClock::now();
    let mut times = Timestamps {
        before_clone,
        child_started: None,
        exec: None,
        exited: None,
    };
    let deadline = setup_deadline(spec.timeout);
    let setup_started = Instant::now();
    loop {
        if !wait_readable(sock.as_raw_fd(), deadline) {
            return Err(Error::ChildVanished {
                status: format!(
                    "set-up did not finish within {:.1} s",
                    setup_started.elapsed().as_secs_f64()
                ),
            });
        }
        let r = match read_report(sock) {
            Ok(Some(r)) => r,
            Ok(None) => break,
            // ECONNRESET: the init closed its end with our go-ahead unread.
            // The error is reported once, ahead of the messages still queued.
            Err(e)
                if e.kind() == io::ErrorKind::Interrupted
                    || e.raw_os_error() == Some(libc::ECONNRESET) =>
            {
                continue;
            }
            Err(e) => return Err(Error::host("read from the container init", e)),
        };
        match r.kind {
            MSG_EXEC => {
                times.child_started = Some(clock.at(r.started_ns));
                times.exec = Some(clock.at(r.mono_ns));
            }
            // Create mode: init waits for start; `exec` stays unset.
            MSG_READY => {
                times.child_started = Some(clock.at(r.started_ns));
                return Ok(times);
            }
            MSG_ERROR => return Err(setup_failed(spec, child, &r, plan, program)),
            _ => {}
        }
    }
    if times.exec.is_none() {
        let status = child.reap().map_or("unknown".to_string(), |s| {
            format!("{:?}", ExitStatus::from_wait(s))
        });
        return Err(Error::ChildVanished { status });
    }
    Ok(times)
}

/// Reaps a child that reported a failed set-up step and turns the report into an error.
fn setup_failed(
    spec: &ContainerSpec,
    child: &mut Child,
    r: &Report,
    plan: &rootfs::Plan,
    program: &str,
) -> Error {
    let status = child.reap();
    tracing::debug!(?status, "container init failed during set-up");
    if r.step == init::Step::Exec as u32
        && r.errno == libc::ENOENT
        && let Some(e) = rootfs::missing_interpreter(spec, program)
    {
        return e;
    }
    Error::Setup {
        step: init::Step::describe(r.step, plan, program),
        source: io::Error::from_raw_os_error(r.errno),
    }
}

/// Writes the id maps of the user namespace of `pid`, then tells the child,
/// which waits for them before its set-up.
fn map_ids(pid: libc::pid_t, maps: &crate::rootless::IdMaps, sock: &OwnedFd) -> Result<()> {
    crate::rootless::write_id_maps(pid, maps)?;
    // SAFETY: one byte from a static buffer; MSG_NOSIGNAL: no SIGPIPE.
    let n = unsafe {
        libc::send(
            sock.as_raw_fd(),
            b"m".as_ptr().cast(),
            1,
            libc::MSG_NOSIGNAL,
        )
    };
    if n != 1 {
        return Err(Error::host(
            "tell the container init its ids are mapped",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// `clone3` arguments (the kernel's `struct clone_args`, version 2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork-like `clone3` with `flags` (and, with `CLONE_INTO_CGROUP`, the cgroup
/// directory `cgroup_fd`). Returns the child's pid (0 in the child), or -1 with errno set.
fn clone3(flags: u64, pidfd: &mut libc::c_int, cgroup_fd: RawFd) -> i64 {
    let args = CloneArgs {
        flags,
        pidfd: pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_fd.max(0) as u64,
        ..CloneArgs::default()
    };
    // SAFETY: args is a valid clone_args of the size passed; stack 0 makes the
    // child continue on a copy of our stack, like fork. The caller sends the
    // child straight into `child_main`, which never returns.
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    }
}

fn wait_readable(fd: RawFd, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if rc > 0 {
            return true;
        }
        if rc == 0 {
            return false;
        }
    }
}

/// A created container let go by [`Running::detach`]: its init waits for
/// `start` and outlives this process; its cgroup stays until it is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// Host pid of the container's init.
    pub pid: i32,
    /// Its cgroup directories, to remove when the container is deleted.
    pub cgroup_paths: Vec<PathBuf>,
}

impl Running {
    /// Lets go of a container spawned with a start gate
    /// ([`crate::spec::Lifecycle::start_gate`]): init stops watching for this
    /// process's exit and waits for `start`; nothing is removed on drop.
    pub fn detach(mut self) -> Result<Detached> {
        // SAFETY: one byte from a static buffer; MSG_NOSIGNAL: no SIGPIPE.
        let n = unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                b"d".as_ptr().cast(),
                1,
                libc::MSG_NOSIGNAL,
            )
        };
        if n != 1 {
            return Err(Error::host(
                "let the created container go",
                io::Error::last_os_error(),
            ));
        }
        // Nobody here waits for init any more: its reaper is our subreaper.
        self.child.reaped = true;
        let detached = Detached {
            pid: self.child.pid,
            cgroup_paths: self.cgroup.paths(),
        };
        // The cgroup belongs to the container now (`delete` removes it); the
        // manager's drop would remove it with this process's exit.
        std::mem::forget(std::mem::replace(
            &mut self.cgroup,
            Box::new(crate::cgroup::NoCgroup),
        ));
        Ok(detached)
    }

    /// Host pid of the container's init.
    pub fn pid(&self) -> i32 {
        self.child.pid
    }

    /// Timestamps so far (`child_started`, `exec`).
    pub fn times(&self) -> Timestamps {
        self.times
    }

    /// The cgroup directories of this container.
    pub fn cgroup_paths(&self) -> Vec<PathBuf> {
        self.cgroup.paths()
    }

    /// Takes the read end of a piped standard output, to stream it; [`Running::wait`]
    /// then no longer collects it.
    pub fn take_stdout(&mut self) -> Option<std::fs::File> {
        self.stdout.take()
    }

    /// Like [`Running::take_stdout`], for standard error.
    pub fn take_stderr(&mut self) -> Option<std::fs::File> {
        self.stderr.take()
    }

    /// Sends `signal` to the container's init.
    pub fn signal(&self, signal: i32) {
        self.child.kill(signal);
    }

    /// Notes gathered while starting (where the cgroup went…).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Waits for the container to exit (enforcing the timeout, forwarding
    /// SIGINT/SIGTERM), reads its accounting and removes its cgroup and veth.
    pub fn wait(mut self) -> Result<RunReport> {
        let mut guard = self.forward_signals.then(SignalGuard::install);
        let limit = self.capture_limit;
        let mut streams: Vec<Capture> = [self.stdout.take(), self.stderr.take()]
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| f.map(|f| Capture::new(f, i == 0, limit)))
            .collect();
        let mut done: Vec<Capture> = Vec::new();
        let end = self.supervise(&mut guard, &mut streams, &mut done);
        done.append(&mut streams);
        let stats = self.cgroup.stats();
        self.cgroup.remove()?;
        drop(self.veth.take());
        self.staging.remove();
        drop(guard.take());
        let status = end
            .status
            .map(ExitStatus::from_wait)
            .unwrap_or(ExitStatus::Signaled(libc::SIGKILL));
        let (out, err) = split_captures(done);
        Ok(RunReport {
            status,
            oom_killed: stats.oom_kills.unwrap_or(0) > 0,
            timed_out: end.timed_out,
            interrupted: end.interrupted,
            stats,
            times: self.times,
            stdout: out.kept,
            stderr: err.kept,
            stdout_dropped: out.dropped,
            stderr_dropped: err.dropped,
            notes: self.notes,
        })
    }

    /// Collects the streams until init has exited and they are drained (at
    /// most a second after the exit), enforcing the timeout and forwarding
    /// signals meanwhile.
    fn supervise(
        &mut self,
        guard: &mut Option<SignalGuard>,
        streams: &mut Vec<Capture>,
        done: &mut Vec<Capture>,
    ) -> Ending {
        let deadline = self
            .timeout
            .map(|t| self.times.exec.unwrap_or(self.times.before_clone) + t);
        let mut end = Ending {
            status: None,
            timed_out: false,
            interrupted: None,
        };
        let mut kill_at: Option<Instant> = None;
        let mut drain_until: Option<Instant> = None;
        loop {
            let child_fd = end.status.is_none().then(|| self.child.pidfd.as_raw_fd());
            let mut tick = Duration::from_millis(50);
            for d in [deadline, kill_at, drain_until].into_iter().flatten() {
                tick = tick.min(d.saturating_duration_since(Instant::now()));
            }
            let child_ready = poll_streams(child_fd, streams, done, tick);
            if child_ready {
                end.status = self.child.reap();
                self.times.exited = Some(Instant::now());
                drain_until = Some(Instant::now() + Duration::from_secs(1));
            }
            if end.status.is_some() {
                if streams.is_empty() || drain_until.is_some_and(|d| Instant::now() >= d) {
                    return end;
                }
                continue;
            }
            if let Some(sig) = guard.as_mut().and_then(SignalGuard::take) {
                tracing::info!(signal = sig, "forwarding signal to the container");
                if end.interrupted.is_some() {
                    self.child.kill(libc::SIGKILL);
                }
                end.interrupted = Some(sig);
                self.child.kill(sig);
                kill_at.get_or_insert(Instant::now() + SIGNAL_GRACE);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) && !end.timed_out {
                end.timed_out = true;
                self.child.kill(libc::SIGKILL);
            }
            if kill_at.is_some_and(|k| now >= k) {
                self.child.kill(libc::SIGKILL);
            }
        }
    }
}

/// How the supervision of a running container ended.
struct Ending {
    /// The wait status of init, when it was reaped.
    status: Option<libc::c_int>,
    /// The timeout fired and init was killed.
    timed_out: bool,
    /// The last SIGINT/SIGTERM forwarded.
    interrupted: Option<i32>,
}

/// Sorts finished captures into (stdout, stderr), empty where not captured.
fn split_captures(done: Vec<Capture>) -> (Capture, Capture) {
    let (mut out, mut err) = (Capture::empty(), Capture::empty());
    for c in done {
        if c.is_out {
            out = c;
        } else {
            err = c;
        }
    }
    (out, err)
}

/// One piped stream being collected: up to `limit` bytes kept, the rest
/// read (so the container never blocks on a full pipe) and counted.
struct Capture {
    file: Option<std::fs::File>,
    is_out: bool,
    limit: usize,
    kept: Vec<u8>,
    dropped: u64,
}

impl Capture {
    fn new(file: std::fs::File, is_out: bool, limit: usize) -> Capture {
        Capture {
            file: Some(file),
            is_out,
            limit,
            kept: Vec::new(),
            dropped: 0,
        }
    }

    fn empty() -> Capture {
        Capture {
            file: None,
            is_out: false,
            limit: 0,
            kept: Vec::new(),
            dropped: 0,
        }
    }

    /// Reads what is there; false at end of stream.
    fn read_some(&mut self, buf: &mut [u8]) -> bool {
        let Some(f) = self.file.as_mut() else {
            return false;
        };
        match f.read(buf) {
            Ok(0) => false,
            Ok(n) => {
                let room = self.limit.saturating_sub(self.kept.len()).min(n);
                self.kept.extend_from_slice(&buf[..room]);
                self.dropped += (n - room) as u64;
                true
            }
            Err(e) => e.kind() == io::ErrorKind::Interrupted,
        }
    }
}

/// Polls the child's pidfd (if given) and the open streams for up to `tick`,
/// reading what arrived; streams at their end move to `done`. True when the
/// child has exited.
fn poll_streams(
    child: Option<RawFd>,
    streams: &mut Vec<Capture>,
    done: &mut Vec<Capture>,
    tick: Duration,
) -> bool {
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
    fds.push(libc::pollfd {
        fd: child.unwrap_or(-1),
        events: libc::POLLIN,
        revents: 0,
    });
    fds.extend(streams.iter().map(|c| libc::pollfd {
        fd: c.file.as_ref().map_or(-1, AsRawFd::as_raw_fd),
        events: libc::POLLIN,
        revents: 0,
    }));
    // SAFETY: fds is a valid array of pollfd (negative fds are ignored by poll).
    unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            tick.as_millis() as i32,
        )
    };
    let mut buf = [0u8; 65536];
    for i in (0..streams.len()).rev() {
        if fds[i + 1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
            && !streams[i].read_some(&mut buf)
        {
            done.push(streams.remove(i));
        }
    }
    child.is_some() && fds[0].revents & libc::POLLIN != 0
}
