//! Attempts made by a hostile root filesystem or config rather than by the
//! program inside: the runtime itself must not be led out of the root,
//! stalled, or made to run the program with more than was asked for. Each
//! is judged from the host.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use container::mounts::MountSpec;
use container::{ContainerSpec, Error};

use super::{Env, Verdict};

/// A host directory the hostile root's links point at; removed on drop.
fn host_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("escape-host-")
        .tempdir()
        .unwrap()
}

/// A link target leading from `/link` in any root to the host path `to`:
/// absolute, or relative with more `..` than any root is deep.
fn link_target(to: &Path, relative: bool) -> PathBuf {
    if !relative {
        return to.to_path_buf();
    }
    let up = "../".repeat(32);
    PathBuf::from(format!(
        "{up}{}",
        to.display().to_string().trim_start_matches('/')
    ))
}

fn tmpfs(destination: &str) -> MountSpec {
    MountSpec {
        destination: destination.into(),
        fstype: "tmpfs".into(),
        source: "tmpfs".into(),
        options: vec!["nosuid".into(), "nodev".into()],
    }
}

fn bind_file(source: &Path, destination: &str) -> MountSpec {
    MountSpec {
        destination: destination.into(),
        fstype: "bind".into(),
        source: source.display().to_string(),
        options: vec!["bind".into(), "ro".into()],
    }
}

/// How a refused spec is described: the kind of error, never a temp path.
fn refusal(e: &Error) -> String {
    match e {
        Error::Setup { source, .. } => format!("set-up refused ({source})"),
        Error::RootfsSpecialPath { path, what, .. } => {
            let what = what.split(" (").next().unwrap_or(what);
            format!("{path} refused: it is {what}")
        }
        Error::InvalidSpec { field, reason, .. } => format!("{field} refused: {reason}"),
        other => format!(
            "refused: {}",
            other.to_string().split(':').next().unwrap_or("")
        ),
    }
}

/// Runs `spec` and says whether `made` appeared on the host.
fn made_on_host(env: &Env, spec: ContainerSpec, made: &Path) -> Verdict {
    let r = env.try_run(spec);
    if made.symlink_metadata().is_ok() {
        return Verdict::Escaped("the runtime created a path on the host".into());
    }
    match r {
        Ok(_) => Verdict::Blocked("the path was made inside the root".into()),
        Err(e) => Verdict::Blocked(refusal(&e)),
    }
}

/// `/data` in the root links to a host directory; a tmpfs is mounted at
/// `/data/esc`, so set-up makes the directory `esc` through the link.
pub fn symlinked_parent(env: &Env, relative: bool) -> Verdict {
    let host = host_dir();
    let link = env.root.path().join("data");
    std::os::unix::fs::symlink(link_target(host.path(), relative), &link).unwrap();
    let mut spec = env.sh("true");
    spec.mounts.push(tmpfs("/data/esc"));
    made_on_host(env, spec, &host.path().join("esc"))
}

/// `/esc-file` in the root is a dangling link to a host path; a file is
/// bind-mounted there, so set-up creates the mount point through the link.
pub fn symlinked_last(env: &Env, relative: bool) -> Verdict {
    let host = host_dir();
    let made = host.path().join("made");
    let link = env.root.path().join("esc-file");
    std::os::unix::fs::symlink(link_target(&made, relative), &link).unwrap();
    let source = host.path().join("source");
    std::fs::write(&source, "bound").unwrap();
    let mut spec = env.sh("true");
    spec.mounts.push(bind_file(&source, "/esc-file"));
    made_on_host(env, spec, &made)
}

/// Opens `fifo` for reading after `after`, unless stopped first: a runtime
/// blocked opening it for writing is released, and the delay measured.
fn release_after(
    fifo: PathBuf,
    after: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < after {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let c = CString::new(fifo.into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; the fd, if any, is closed right away.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
        if fd >= 0 {
            // SAFETY: fd was just opened here.
            unsafe { libc::close(fd) };
        }
    })
}

/// The mount point `/esc-fifo` is a FIFO: a runtime that opens it to create
/// the mount point blocks until someone opens the other end.
pub fn fifo_target(env: &Env) -> Verdict {
    let fifo = env.root.path().join("esc-fifo");
    let c = CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let (_d, source) = super::host_marker();
    let mut spec = env.sh("true");
    spec.mounts.push(bind_file(&source, "/esc-fifo"));
    let stop = Arc::new(AtomicBool::new(false));
    let releaser = release_after(fifo, Duration::from_secs(3), stop.clone());
    let start = Instant::now();
    let r = env.try_run(spec);
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    releaser.join().unwrap();
    if took >= Duration::from_millis(2900) {
        return Verdict::Escaped(format!(
            "set-up blocked on the FIFO until the host opened it ({} ms)",
            took.as_millis()
        ));
    }
    match r {
        Ok(_) => Verdict::Blocked("opened without blocking (O_PATH), mounted over".into()),
        Err(e) => Verdict::Blocked(refusal(&e)),
    }
}

/// The root's `/proc` is a symlink to a host directory: a runtime that
/// accepts it runs the program with no `/proc` of its own and none of the
/// masked or read-only paths.
pub fn symlinked_proc(env: &Env) -> Verdict {
    let host = host_dir();
    let proc = env.root.path().join("proc");
    std::fs::remove_dir(&proc).unwrap();
    std::os::unix::fs::symlink(host.path(), &proc).unwrap();
    match env.try_run(env.sh("true")) {
        Ok(_) => Verdict::Escaped("ran with /proc a symlink out of the root".into()),
        Err(e) => Verdict::Blocked(refusal(&e)),
    }
}

/// `process.user.uid` 4294967295, i.e. `(uid_t)-1`: `setresuid` leaves the
/// ids as they are, root.
pub fn uid_overflow(env: &Env) -> Verdict {
    let mut spec = env.sh("echo uid=$(/bin/busybox id -u)");
    spec.uid = u32::MAX;
    match env.try_run(spec) {
        Ok(r) => {
            let out = String::from_utf8_lossy(&r.stdout).trim().to_string();
            if out == "uid=0" {
                Verdict::Escaped("the program ran as uid 0".into())
            } else {
                Verdict::Blocked(format!("ran with {out}"))
            }
        }
        Err(e) => Verdict::Blocked(refusal(&e)),
    }
}

/// Container root makes a world-readable `/dev/kvm` node in its root, which
/// is a host directory; the host then opens it as an unprivileged user could.
pub fn mknod_host_visible(env: &Env) -> Verdict {
    let spec = env.sh(
        "if /bin/busybox mknod -m 666 /esc-kvm c 10 232 2>/dev/null; \
         then echo made; else echo blocked mknod refused inside; fi",
    );
    let r = env.run(spec);
    let node = env.root.path().join("esc-kvm");
    let c = CString::new(node.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; the fd, if any, is closed right away.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    if fd >= 0 {
        // SAFETY: fd was just opened here.
        unsafe { libc::close(fd) };
        return Verdict::Escaped("the host opened the container's /dev/kvm copy".into());
    }
    match Verdict::from_output(&r) {
        Verdict::Blocked(how) => Verdict::Blocked(how),
        _ => Verdict::Blocked("made, but the host cannot open it".into()),
    }
}

/// The program prints 32 MiB; the runtime keeps at most 1 MiB of it.
pub fn output_flood(env: &Env) -> Verdict {
    const FLOOD: usize = 32 << 20;
    let mut spec = env.sh(&format!("head -c {FLOOD} /dev/zero"));
    spec.capture_limit = 1 << 20;
    let r = env.run(spec);
    let kept = r.stdout.len();
    if kept > 1 << 20 {
        return Verdict::Escaped(format!("the runtime kept {} MiB", kept >> 20));
    }
    assert_eq!(kept as u64 + r.stdout_dropped, FLOOD as u64, "bytes lost");
    Verdict::Blocked(format!(
        "kept {} MiB, read and dropped {} MiB",
        kept >> 20,
        r.stdout_dropped >> 20
    ))
}

/// The caller's cgroup paths that are not the root of their hierarchy,
/// keyed by controller list (`""` for v2).
fn own_nested_cgroups() -> Vec<(String, String)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroup_lines(&text)
        .into_iter()
        .filter(|(ctl, path)| path != "/" && !ctl.starts_with("name="))
        .collect()
}

fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctl, path) = (it.next()?, it.next()?, it.next()?);
            Some((ctl.to_string(), path.to_string()))
        })
        .collect()
}

/// Whether the placement can be told apart here: the caller is below the
/// root of at least one hierarchy.
pub fn caller_in_a_nested_cgroup() -> Result<(), String> {
    if own_nested_cgroups().is_empty() {
        return Err("this process is at the root of every cgroup hierarchy".into());
    }
    Ok(())
}

/// A container's groups must be below the caller's own cgroup in every
/// hierarchy where the caller is not at the root.
pub fn cgroup_placement(env: &Env) -> Verdict {
    let running = env.spawn(env.spec("/bin/sleep", &["1"]));
    let theirs = std::fs::read_to_string(format!("/proc/{}/cgroup", running.pid()))
        .map(|t| cgroup_lines(&t))
        .unwrap_or_default();
    running.wait().unwrap();
    let mut checked = Vec::new();
    for (ctl, own) in own_nested_cgroups() {
        let Some((_, path)) = theirs.iter().find(|(c, _)| *c == ctl) else {
            continue;
        };
        if *path == own {
            continue; // not placed in this hierarchy at all
        }
        if !path.starts_with(&format!("{own}/")) {
            return Verdict::Escaped(format!("{} group outside the caller's", label(&ctl)));
        }
        checked.push(label(&ctl));
    }
    if checked.is_empty() {
        return Verdict::Blocked("no group made where the caller is nested".into());
    }
    Verdict::Blocked(format!("below the caller's own ({})", checked.join(", ")))
}

fn label(ctl: &str) -> String {
    if ctl.is_empty() {
        "v2".into()
    } else {
        ctl.to_string()
    }
}
