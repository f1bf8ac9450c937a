//! `isolab-workload exec [--cwd DIR] [--env NAME=VALUE]… [--] PROGRAM ARGS…`:
//! run an arbitrary program as a Linux guest's init would. PID 1 mounts what
//! a program expects (`/proc`, `/sys`, `/dev`, a `/tmp`), marks ready, runs
//! the program as its child, reaps every orphan, forwards SIGTERM and
//! SIGINT, and reports the program's status — not found 127, not executable
//! 126, killed by a signal 128+n, as a shell does.

use std::ffi::CString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// Status when the program does not exist (or its interpreter does not).
pub const NOT_FOUND: i32 = 127;
/// Status when the program exists but cannot be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// Status for a bad `exec` command line.
pub const USAGE: i32 = 2;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    /// Working directory.
    pub cwd: Option<String>,
    /// Environment (replaces init's, after a default `PATH`).
    pub env: Vec<(String, String)>,
    /// The program and its arguments.
    pub argv: Vec<String>,
}

/// Parses the arguments after `exec`: options, then the program (after an
/// optional `--`). The VMM passes no `--`: the kernel ends init's arguments
/// at a second one.
pub fn parse(args: &[String]) -> Result<ExecSpec, String> {
    let mut spec = ExecSpec::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => {
                spec.argv = it.cloned().collect();
                break;
            }
            program if !program.starts_with("--") => {
                spec.argv = std::iter::once(a).chain(it).cloned().collect();
                break;
            }
            "--cwd" => spec.cwd = Some(it.next().ok_or("--cwd needs a directory")?.clone()),
            "--env" => {
                let kv = it.next().ok_or("--env needs NAME=VALUE")?;
                let (k, v) = kv
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("--env {kv}: expected NAME=VALUE"))?;
                spec.env.push((k.to_string(), v.to_string()));
            }
            other => return Err(format!("exec: unknown option {other}")),
        }
    }
    if spec.argv.is_empty() {
        return Err("exec: no program to run".into());
    }
    Ok(spec)
}

pub(crate) fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
) -> io::Result<()> {
    std::fs::create_dir_all(target)?;
    let c = |s: &str| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let (source_c, target_c, fstype_c) = (c(source)?, c(target)?, c(fstype)?);
    // SAFETY: NUL-terminated strings that outlive the call; no data argument.
    let rc = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            fstype_c.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    match rc {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            // Already mounted (e.g. /proc by the PID 1 set-up): fine.
            e if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
            e => Err(io::Error::new(
                e.kind(),
                format!("mount {fstype} on {target}: {e}"),
            )),
        },
    }
}

/// The file systems a program expects of a Linux system.
pub fn mount_basics() -> io::Result<()> {
    let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
    if !std::path::Path::new("/proc/self").exists() {
        mount("proc", "/proc", "proc", nosuid_nodev | libc::MS_NOEXEC)?;
    }
    mount("sysfs", "/sys", "sysfs", nosuid_nodev | libc::MS_NOEXEC)?;
    mount("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID)?;
    mount("tmpfs", "/tmp", "tmpfs", nosuid_nodev)
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn forward_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a handler that only calls kill.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The status a shell would give for a failed `execve`.
pub fn exec_failure_status(e: &io::Error) -> i32 {
    match e.kind() {
        io::ErrorKind::NotFound => NOT_FOUND,
        _ => NOT_EXECUTABLE,
    }
}

/// Runs the program and waits for it, reaping any other child on the way.
/// Returns its status (see the module docs). `ready` is called just before
/// the program starts.
pub fn run(spec: &ExecSpec, ready: impl FnOnce()) -> i32 {
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    ready();
    spawn_and_wait(cmd, &spec.argv[0])
}

/// Starts `cmd` (named `name` in messages) in its own process group with
/// SIGTERM and SIGINT forwarded to it, and waits for it, reaping any other
/// child on the way. Returns its status as a shell would.
pub fn spawn_and_wait(mut cmd: Command, name: &str) -> i32 {
    // The program gets default signal dispositions and its own session.
    cmd.process_group(0);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("isolab-workload: cannot execute {name}: {e}");
            return exec_failure_status(&e);
        }
    };
    let pid = child.id() as i32;
    CHILD.store(pid, Ordering::Relaxed);
    forward_signals();
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let got = unsafe { libc::waitpid(-1, &mut status, 0) };
        if got == pid {
            let st = std::process::ExitStatus::from_raw(status);
            return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
        }
        if got < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return NOT_EXECUTABLE;
        }
    }
}

/// Tests that run [`spawn_and_wait`] hold this: it reaps any child, so two
/// at once would take each other's.
#[cfg(test)]
pub(crate) static WAIT_ANY: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_program_follows_the_separator() {
        let s = parse(&args(&[
            "--cwd", "/w", "--env", "A=b=c", "--", "ls", "-l", "--",
        ]))
        .unwrap();
        assert_eq!(s.cwd.as_deref(), Some("/w"));
        assert_eq!(s.env, vec![("A".to_string(), "b=c".to_string())]);
        assert_eq!(s.argv, args(&["ls", "-l", "--"]));
        let bare = parse(&args(&["--cwd", "/", "ls", "--", "-l"])).unwrap();
        assert_eq!(bare.argv, args(&["ls", "--", "-l"]));
        assert!(parse(&args(&["--"])).is_err());
        assert!(parse(&args(&[])).is_err());
        assert!(parse(&args(&["--bogus", "ls"])).is_err());
        assert!(parse(&args(&["--env", "=x", "--", "ls"])).is_err());
    }

    #[test]
    fn statuses_are_a_shells() {
        let _reaper = WAIT_ANY.lock().unwrap_or_else(|p| p.into_inner());
        let spec = |argv: &[&str]| ExecSpec {
            argv: args(argv),
            ..ExecSpec::default()
        };
        let mut marked = false;
        assert_eq!(
            run(&spec(&["/bin/sh", "-c", "exit 7"]), || marked = true),
            7
        );
        assert!(marked);
        assert_eq!(run(&spec(&["/no/such/program"]), || {}), NOT_FOUND);
        assert_eq!(run(&spec(&["/etc/hostname"]), || {}), NOT_EXECUTABLE);
        assert_eq!(run(&spec(&["/bin/sh", "-c", "kill -9 $$"]), || {}), 128 + 9);
        let cwd = ExecSpec {
            cwd: Some("/tmp".into()),
            env: vec![("X".into(), "y".into())],
            argv: args(&["/bin/sh", "-c", r#"[ "$PWD" = /tmp ] && [ "$X" = y ]"#]),
        };
        assert_eq!(run(&cwd, || {}), 0);
    }
}
