//! create, start, state, kill, delete, run and ps.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use container::{ContainerSpec, Lifecycle, Stdio};
use oci_spec::runtime::ContainerState;

use crate::backend::Backend;
use crate::hooks::{self, Point};
use crate::state::{GATE, Record, Store, identity};
use crate::{Error, Result, console, procfs};

/// Where containers without a `linux.cgroupsPath` get their groups, below
/// each hierarchy's root.
const DEFAULT_CGROUP_PARENT: &str = "isolab-oci";

/// What `create` (and `run`) are asked.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

pub(crate) fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io(format!("resolve {}", p.display()), e))
}

/// Reads the bundle and turns it into the spec this runtime creates (with
/// the console socket, connected, when the process has a terminal).
fn bundle_spec(args: &CreateArgs) -> Result<(container::oci::RuntimeBundle, Option<UnixStream>)> {
    let mut b = container::oci::load_runtime_bundle(&args.bundle)?;
    let spec = &mut b.spec;
    // The caller's streams are the container's (conmon passes its pipes).
    spec.stdin = Stdio::Inherit;
    spec.stdout = Stdio::Inherit;
    spec.stderr = Stdio::Inherit;
    spec.forward_signals = false;
    // Without a cgroupsPath, a name of its own that `isolab clean`'s scan
    // for dead runs' groups (`isolab-<pid>-<n>`) never takes for a leftover:
    // the container outlives the `create` whose pid would be in it.
    if spec.cgroup_path.is_none() {
        spec.cgroup_path = Some(format!("{DEFAULT_CGROUP_PARENT}/{}", args.id));
    }
    spec.timeout = None;
    let console = process_extras(spec, &b.config, args.console_socket.as_deref())?;
    Ok((b, console))
}

/// What the runtime adds to a mapped config's process, for `create` and
/// `exec` alike: the seccomp profile, and the terminal through the console
/// socket (connected; its fd is in `spec.lifecycle`).
pub(crate) fn process_extras(
    spec: &mut ContainerSpec,
    config: &oci_spec::runtime::Spec,
    console_socket: Option<&Path>,
) -> Result<Option<UnixStream>> {
    // As in runc: no profile in the config means no filter.
    let profile = config.linux().as_ref().and_then(|l| l.seccomp().clone());
    spec.seccomp = profile.is_some();
    spec.seccomp_filters = profile.as_ref().map(crate::seccomp::compile).transpose()?;
    let process = config.process().as_ref();
    let terminal = process.and_then(|p| p.terminal()).unwrap_or(false);
    let console = match (terminal, console_socket) {
        (true, Some(sock)) => {
            spec.lifecycle.console_size = process
                .and_then(|p| p.console_size())
                .map(|b| (b.height() as u16, b.width() as u16));
            Some(console::connect(sock)?)
        }
        (true, None) => {
            return Err(Error::Usage(
                "process.terminal is true: pass --console-socket to receive the terminal".into(),
            ));
        }
        (false, Some(_)) => {
            return Err(Error::Usage(
                "--console-socket is only used with process.terminal: true".into(),
            ));
        }
        (false, None) => None,
    };
    spec.lifecycle.console_socket = console.as_ref().map(AsRawFd::as_raw_fd);
    Ok(console)
}

/// Binds the start gate in the container's directory. The path is taken
/// relative to the directory (which becomes our working directory) because a
/// socket path is limited to 108 bytes and `--root`s can be deep.
fn bind_gate(dir: &Path) -> Result<UnixListener> {
    std::env::set_current_dir(dir).map_err(|e| Error::io(format!("enter {}", dir.display()), e))?;
    UnixListener::bind(GATE).map_err(|e| Error::io("bind the start gate", e))
}

/// Writes `--pid-file` atomically, as runc does (the pid, no newline).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    crate::state::write_atomic(path, pid.to_string().as_bytes())
}

/// `create`: sets everything up; the init waits for `start`.
pub(crate) fn create(store: &Store, backend: &dyn Backend, args: &CreateArgs) -> Result<Record> {
    let mut args = args.clone();
    args.bundle = absolute(&args.bundle)?;
    let pid_file = args.pid_file.as_deref().map(absolute).transpose()?;
    let reservation = store.reserve(&args.id)?;
    let (bundle, _console) = bundle_spec(&args)?;
    let (mut spec, config) = (bundle.spec, bundle.config);
    let hooks = config.hooks().clone().unwrap_or_default();
    hooks::check(&hooks)?;
    store.save_config(&args.id, &bundle.value)?;
    let gate = bind_gate(reservation.dir())?;
    spec.lifecycle = Lifecycle {
        start_gate: Some(gate.as_raw_fd()),
        preserve_fds: args.preserve_fds,
        ..spec.lifecycle
    };
    let pending = backend.create(&spec)?;
    let pid = pending.pid();
    let rec = Record {
        id: args.id.clone(),
        pid,
        pid_start: procfs::stat(pid).map_or(0, |(s, _)| s),
        bundle: args.bundle.clone(),
        created: crate::log::rfc3339(std::time::SystemTime::now()),
        cgroup_paths: pending.cgroup_paths(),
        annotations: config.annotations().clone().unwrap_or_default(),
        backend: backend.name().into(),
        owner: identity(nix::unistd::getppid().as_raw()),
    };
    let oom = config.process().as_ref().and_then(|p| p.oom_score_adj());
    // The init waits at the gate: the hooks before start run now (see hooks.rs).
    let created = oom
        .map_or(Ok(()), |adj| procfs::set_oom_score_adj(pid, adj))
        .and_then(|()| hooks::run(Point::Prestart, &hooks, &rec))
        .and_then(|()| hooks::run(Point::CreateRuntime, &hooks, &rec));
    if let Err(e) = created {
        // Not detached: dropping it kills the init and removes its cgroups.
        drop(pending);
        hooks::run_warn(Point::Poststop, &hooks, &rec);
        return Err(e);
    }
    hooks::save(reservation.dir(), &hooks)?;
    // Until detached, the init dies with us: record first, then let go.
    store.save(&rec)?;
    if let Some(p) = &pid_file {
        write_pid_file(p, pid)?;
    }
    pending.detach()?;
    reservation.commit();
    Ok(rec)
}

/// `start`: lets a created container's init execute its program.
pub(crate) fn start(store: &Store, id: &str) -> Result<()> {
    let rec = store.load(id)?;
    let status = store.status(&rec);
    if status != ContainerState::Created {
        return Err(wrong_state(
            &rec,
            status,
            "only a created container can be started",
        ));
    }
    let dir = store.dir(id);
    std::env::set_current_dir(&dir)
        .map_err(|e| Error::io(format!("enter {}", dir.display()), e))?;
    let mut conn = UnixStream::connect(GATE).map_err(|e| {
        Error::io(
            format!("container {id}: reach its init at the start gate"),
            e,
        )
    })?;
    // Started: from now on the status is running.
    let _ = std::fs::remove_file(GATE);
    let mut received = Vec::new();
    conn.read_to_end(&mut received)
        .map_err(|e| Error::io(format!("container {id}: wait for its program to start"), e))?;
    container::start_outcome(&received)?;
    hooks::run_warn(Point::Poststart, &hooks::load(&dir), &rec);
    Ok(())
}

pub(crate) fn wrong_state(rec: &Record, status: ContainerState, what: &str) -> Error {
    Error::WrongState {
        id: rec.id.clone(),
        status: status.to_string(),
        what: what.into(),
    }
}

/// `state`: the runtime spec's state JSON.
pub(crate) fn state(store: &Store, id: &str) -> Result<String> {
    let rec = store.load(id)?;
    let status = store.status(&rec);
    let pid = if status == ContainerState::Stopped {
        0
    } else {
        rec.pid
    };
    let state = serde_json::json!({
        "ociVersion": "1.0.2",
        "id": rec.id,
        "status": status.to_string(),
        "pid": pid,
        "bundle": rec.bundle,
        "annotations": rec.annotations,
        "created": rec.created,
    });
    // Checked against the runtime spec's model before it is printed.
    let _: oci_spec::runtime::State =
        serde_json::from_value(state.clone()).map_err(|e| Error::Usage(e.to_string()))?;
    serde_json::to_string_pretty(&state).map_err(|e| Error::Usage(e.to_string()))
}

/// A signal by name (`KILL`, `SIGKILL`) or number.
pub(crate) fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(Error::Usage(format!("invalid signal number {n}")))
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| Error::Usage(format!("unknown signal {s:?}")))
}

/// Signals `pid` if it is still the process that started at `start`: the
/// pidfd pins the process, then the start time is checked again.
fn signal_exact(pid: i32, start: u64, sig: i32) -> Result<bool> {
    // SAFETY: pidfd_open with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Ok(false);
    }
    // SAFETY: a fresh fd owned by nobody else.
    let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) };
    if !procfs::alive(pid, start) {
        return Ok(false);
    }
    // SAFETY: pidfd_send_signal on our pidfd; no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            0usize,
            0u32,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            format!("send signal {sig} to {pid}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(true)
}

fn cgroup_pids(rec: &Record) -> Vec<i32> {
    let mut pids: Vec<i32> = rec
        .cgroup_paths
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// `kill [--all] ID SIGNAL`.
pub(crate) fn kill(store: &Store, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let rec = store.load(id)?;
    let status = store.status(&rec);
    if status == ContainerState::Stopped {
        return Err(wrong_state(&rec, status, "container not running"));
    }
    if all {
        for pid in cgroup_pids(&rec) {
            if let Some((start, _)) = procfs::stat(pid) {
                signal_exact(pid, start, sig)?;
            }
        }
    }
    if !signal_exact(rec.pid, rec.pid_start, sig)? && !all {
        return Err(wrong_state(
            &rec,
            ContainerState::Stopped,
            "container not running",
        ));
    }
    Ok(())
}

/// Waits until the init has exited (a zombie counts), up to `limit`.
fn wait_gone(rec: &Record, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while procfs::alive(rec.pid, rec.pid_start) {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Kills whatever is left of `id` and removes its cgroups and directory.
pub(crate) fn remove(store: &Store, id: &str) -> Result<()> {
    let rec = store.load(id).ok();
    if let Some(rec) = &rec {
        let _ = signal_exact(rec.pid, rec.pid_start, libc::SIGKILL);
        if !wait_gone(rec, Duration::from_secs(5)) {
            return Err(wrong_state(
                rec,
                ContainerState::Running,
                "its init did not die after SIGKILL",
            ));
        }
        for path in &rec.cgroup_paths {
            container::cgroup::remove_group(path)?;
            // The shared parent of groups without a cgroupsPath goes with its
            // last child (busy or not empty otherwise: left to the others).
            if let Some(parent) = path.parent().filter(|p| p.ends_with(DEFAULT_CGROUP_PARENT)) {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
    let hooks = hooks::load(&store.dir(id));
    store.remove(id)?;
    if let Some(rec) = &rec {
        hooks::run_warn(Point::Poststop, &hooks, rec);
    }
    Ok(())
}

/// `delete [--force] ID`.
pub(crate) fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    crate::state::check_id(id)?;
    if !store.has_record(id) {
        if !store.dir(id).exists() {
            return Err(Error::NotFound(id.into()));
        }
        // A create that died before recording: nothing runs any more.
        if store.creator_alive(id) && !force {
            return Err(Error::Usage(format!(
                "container {id} is still being created"
            )));
        }
        return store.remove(id);
    }
    let rec = store.load(id)?;
    let status = store.status(&rec);
    if status == ContainerState::Running && !force {
        return Err(wrong_state(
            &rec,
            status,
            "cannot delete a running container (stop it, or use --force)",
        ));
    }
    remove(store, id)
}

/// `run [--detach]`: create and start; without `--detach`, wait for the
/// program to exit, delete the container and return its exit status.
pub(crate) fn run(
    store: &Store,
    backend: &dyn Backend,
    args: &CreateArgs,
    detach: bool,
) -> Result<i32> {
    let rec = create(store, backend, args)?;
    if let Err(e) = start(store, &args.id) {
        let _ = remove(store, &args.id);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    // The init is still our child: its status is ours to read.
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(rec.pid), None);
    let code = match status {
        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
        Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
        _ => 255,
    };
    remove(store, &args.id)?;
    Ok(code)
}

/// `ps [--format json] ID`.
pub(crate) fn ps(store: &Store, id: &str, json: bool) -> Result<String> {
    let rec = store.load(id)?;
    let mut pids = cgroup_pids(&rec);
    if pids.is_empty() && procfs::alive(rec.pid, rec.pid_start) {
        pids.push(rec.pid);
    }
    if json {
        return serde_json::to_string(&pids).map_err(|e| Error::Usage(e.to_string()));
    }
    let mut out = String::from("PID CMD\n");
    for pid in pids {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> = cmd
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        out.push_str(&format!("{pid} {}\n", cmd.join(" ")));
    }
    Ok(out)
}
