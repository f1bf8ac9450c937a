//! `/init bundle`: PID 1 of a Linux guest that runs an OCI bundle's process
//! in the bundle's own root filesystem (the Kata Containers idea).
//!
//! The VMM attaches the image of the bundle's rootfs as the virtio-blk disk
//! and appends [`PROCESS_FILE`] to the initramfs. In order, `/init`: reads
//! and checks the description, mounts the disk on `/newroot`, mounts
//! `/proc`, `/sys` and `/dev` inside it, makes it the root (`MS_MOVE` over
//! `/`, then `chroot`, as `switch_root` does: an initramfs cannot be
//! `pivot_root`ed away), sets the hostname, turns off the console's output
//! processing (so a program's `\n` is not sent as `\r\n`), writes the ready
//! marker, and runs the program as a child with its environment, ids and
//! working directory, reaping orphans until it ends. The caller reports the
//! status on the exit port. A set-up failure is printed and returns
//! [`SETUP_FAILED`] before the ready marker, which is how the VMM tells it
//! from a program's own status.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::exec::{self, NOT_FOUND};
use super::guest_process::{GuestProcess, PROCESS_FILE};

/// The disk holding the image (the only virtio-blk device).
pub const ROOT_DEVICE: &str = "/dev/vda";
/// The image's file system.
pub const ROOT_FSTYPE: &str = "ext4";
/// Where the image is mounted before it becomes `/`.
const NEW_ROOT: &str = "/newroot";
/// Status when the guest could not set up the program's environment.
pub const SETUP_FAILED: i32 = 125;
/// `PATH` searched when the environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn c(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        _ => {
            let e = io::Error::last_os_error();
            Err(io::Error::new(e.kind(), format!("{what}: {e}")))
        }
    }
}

/// Runs the bundle's process; `ready` is called just before it starts.
pub fn run(ready: impl FnOnce()) -> i32 {
    let process = match read_process().and_then(|p| enter_root(&p).map(|()| p)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("isolab-init: {e}");
            return SETUP_FAILED;
        }
    };
    ready();
    let Some(program) = find_program(&process) else {
        eprintln!("isolab-init: {}: not found", process.args[0]);
        return NOT_FOUND;
    };
    match command(&process, &program) {
        Ok(cmd) => exec::spawn_and_wait(cmd, &process.args[0]),
        Err(e) => {
            eprintln!("isolab-init: {e}");
            SETUP_FAILED
        }
    }
}

fn read_process() -> io::Result<GuestProcess> {
    let bytes = std::fs::read(PROCESS_FILE)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {PROCESS_FILE}: {e}")))?;
    GuestProcess::parse(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Mounts the image and its file systems and makes it `/`.
fn enter_root(p: &GuestProcess) -> io::Result<()> {
    std::fs::create_dir_all(NEW_ROOT)?;
    let (dev, target, fstype) = (c(ROOT_DEVICE)?, c(NEW_ROOT)?, c(ROOT_FSTYPE)?);
    // SAFETY: NUL-terminated strings that outlive the call; no data argument.
    let rc = unsafe {
        libc::mount(
            dev.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    check(rc, "mounting the image")?;
    let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
    for (fs, at, flags) in [
        ("proc", "proc", nosuid_nodev | libc::MS_NOEXEC),
        ("sysfs", "sys", nosuid_nodev | libc::MS_NOEXEC),
        ("devtmpfs", "dev", libc::MS_NOSUID),
    ] {
        let dir = Path::new(NEW_ROOT).join(at);
        mount_point(&dir)?;
        exec::mount(fs, &dir.to_string_lossy(), fs, flags)?;
    }
    if p.readonly_root {
        // SAFETY: as above; a remount takes only the target and flags.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            )
        };
        check(rc, "making the image read-only")?;
    }
    switch_root(&target)?;
    // A missing working directory is made, as runc does; a read-only image
    // leaves it missing and the program's start reports that.
    let _ = std::fs::create_dir_all(&p.cwd);
    if !p.hostname.is_empty() {
        // SAFETY: the pointer and length describe the hostname's bytes.
        let rc = unsafe { libc::sethostname(p.hostname.as_ptr().cast(), p.hostname.len()) };
        check(rc, "sethostname")?;
    }
    raw_console_output();
    Ok(())
}

/// A mount point inside the image: a directory, made if missing; a symlink
/// or file there is refused rather than followed.
fn mount_point(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} in the image is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", dir.display()))),
        Err(e) => Err(e),
    }
}

/// Moves the mount at `new_root` over `/` and enters it.
fn switch_root(new_root: &CString) -> io::Result<()> {
    // SAFETY: NUL-terminated paths; chdir/chroot/mount take nothing else.
    unsafe {
        check(libc::chdir(new_root.as_ptr()), "chdir to the image")?;
        check(
            libc::mount(
                c".".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_MOVE,
                std::ptr::null(),
            ),
            "moving the image over /",
        )?;
        check(libc::chroot(c".".as_ptr()), "chroot")?;
        check(libc::chdir(c"/".as_ptr()), "chdir /")
    }
}

/// The console is a tty with `ONLCR`: without this, `\n` reaches the host
/// as `\r\n` and the output differs from the container's.
fn raw_console_output() {
    // SAFETY: a zeroed termios is valid storage; tcgetattr fills it and
    // tcsetattr reads it; fd 1 is the console or the call fails harmlessly.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(1, &mut t) == 0 {
            t.c_oflag &= !libc::OPOST;
            libc::tcsetattr(1, libc::TCSANOW, &t);
        }
    }
}

/// The program's path: `args[0]` when it has a `/`, else the first
/// executable file of that name in the `PATH` of the process's environment.
fn find_program(p: &GuestProcess) -> Option<PathBuf> {
    let name = &p.args[0];
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|candidate| {
            let Ok(cpath) = CString::new(candidate.as_os_str().as_bytes()) else {
                return false;
            };
            // SAFETY: a NUL-terminated path; access only checks permissions.
            candidate.is_file() && unsafe { libc::access(cpath.as_ptr(), libc::X_OK) } == 0
        })
}

/// The program with its arguments, environment, ids and working directory.
fn command(p: &GuestProcess, program: &Path) -> io::Result<Command> {
    let mut cmd = Command::new(program);
    cmd.arg0(&p.args[0])
        .args(&p.args[1..])
        .env_clear()
        .envs(p.env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::null());
    let groups: Vec<libc::gid_t> = p.additional_gids.clone();
    let (uid, gid) = (p.uid, p.gid);
    let cwd = c(&p.cwd)?;
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // Groups first, then the group id, then the user id: after
            // setuid the process may no longer change the others. Init runs
            // as 0:0 with no groups, so root needs none of the calls (which a
            // kernel without CONFIG_MULTIUSER does not have).
            let as_init = uid == 0 && gid == 0 && groups.is_empty();
            let ok = as_init
                || (libc::setgroups(groups.len(), groups.as_ptr()) == 0
                    && libc::setgid(gid) == 0
                    && libc::setuid(uid) == 0);
            if !ok {
                return Err(io::Error::last_os_error());
            }
            // Entered as the user, as a container runtime does.
            if libc::chdir(cwd.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::guest_process::VERSION;

    fn process(args: &[&str], env: &[&str]) -> GuestProcess {
        GuestProcess {
            version: VERSION,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
            cwd: "/tmp".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            hostname: String::new(),
            readonly_root: false,
        }
    }

    #[test]
    fn programs_are_found_in_the_processes_own_path() {
        let p = process(&["sh"], &["PATH=/nonexistent:/bin"]);
        assert_eq!(find_program(&p), Some(PathBuf::from("/bin/sh")));
        let none = process(&["sh"], &["PATH=/nonexistent"]);
        assert_eq!(find_program(&none), None);
        let default = process(&["sh"], &[]);
        assert!(find_program(&default).is_some());
        let abs = process(&["/x/y"], &[]);
        assert_eq!(find_program(&abs), Some(PathBuf::from("/x/y")));
    }

    #[test]
    fn the_command_gets_env_cwd_and_ids() {
        let _reaper = exec::WAIT_ANY.lock().unwrap_or_else(|p| p.into_inner());
        // Our own ids, so the test needs no privilege.
        // SAFETY: getuid/getgid take no arguments and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let mut p = process(
            &[
                "sh",
                "-c",
                r#"[ "$PWD" = /tmp ] && [ "$X" = y=z ] && [ "$(id -u)" = "$U" ]"#,
            ],
            &["PATH=/usr/bin:/bin", "X=y=z"],
        );
        p.env.push(format!("U={uid}"));
        p.uid = uid;
        p.gid = gid;
        if uid == 0 {
            p.additional_gids = vec![gid];
        }
        let cmd = command(&p, &find_program(&p).unwrap()).unwrap();
        assert_eq!(exec::spawn_and_wait(cmd, "sh"), 0);
    }
}
