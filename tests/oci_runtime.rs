//! isolab as an OCI runtime, driven the way podman and containerd drive runc:
//! the lifecycle (create → created → start → running → stopped → delete),
//! signals, errors, the console socket, and podman itself.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::isolab;

fn ready(test: &str) -> bool {
    common::root_and_busybox(test)
}

/// A state root and bundles running a script (`common::OciLab`), with the
/// lifecycle steps these tests repeat.
struct Lab(common::OciLab);

impl std::ops::Deref for Lab {
    type Target = common::OciLab;
    fn deref(&self) -> &common::OciLab {
        &self.0
    }
}

impl Lab {
    fn new() -> Lab {
        Lab(common::OciLab::new())
    }

    /// Bundle `name` running `/bin/sh -c script`, with a terminal or not.
    fn bundle(&self, name: &str, script: &str, terminal: bool) -> PathBuf {
        let applets = ["sh", "echo", "sleep", "cat", "tty", "id", "true", "mkdir"];
        self.0.bundle(name, &applets, |c| {
            c["process"]["terminal"] = terminal.into();
            c["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
        })
    }

    /// Creates `id` from `bundle`, the container's stdout and stderr going to `log`.
    fn create(&self, id: &str, bundle: &Path, log: &Path) {
        let f = std::fs::File::create(log).unwrap();
        let out = self
            .cmd(&["create", "--bundle", bundle.to_str().unwrap(), id])
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .unwrap();
        assert!(
            out.success(),
            "create {id}: {}",
            std::fs::read_to_string(log).unwrap()
        );
    }

    fn state(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    fn record(&self, id: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.root().join(id).join("state.json")).unwrap())
            .unwrap()
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn status(lab: &Lab, id: &str) -> String {
    lab.state(id)["status"].as_str().unwrap().to_string()
}

/// Makes this test process the reaper of orphaned container inits, so their
/// exit statuses can be read (as conmon or a shim does).
fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

fn wait_status(pid: i32) -> i32 {
    let mut st = 0;
    // SAFETY: waiting for a process we reap as subreaper.
    let rc = unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    st
}

#[test]
fn create_start_stop_delete() {
    if !ready("create_start_stop_delete") {
        return;
    }
    become_subreaper();
    let lab = Lab::new();
    let b = lab.bundle(
        "b",
        // Runs until the test says go (bounded at 30 s), so "running" holds
        // however slow the host is.
        "echo started; read x < /dev/null; i=0; \
         while [ ! -e /go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; echo done",
        false,
    );
    let log = lab.dir.path().join("log");
    let pid_file = lab.dir.path().join("pid");
    let f = std::fs::File::create(&log).unwrap();
    let st = lab
        .cmd(&[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "c1",
        ])
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .status()
        .unwrap();
    assert!(st.success());
    let s = lab.state("c1");
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], "c1");
    assert_eq!(s["bundle"], b.to_str().unwrap());
    let pid = s["pid"].as_i64().unwrap() as i32;
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // Nothing ran before start.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    lab.ok(&["start", "c1"]);
    assert_eq!(status(&lab, "c1"), "running");
    // A second start is refused.
    assert!(!lab.run(&["start", "c1"]).status.success());
    // A running container is not deleted without --force.
    let out = lab.run(&["delete", "c1"]);
    assert!(!out.status.success());
    std::fs::write(b.join("rootfs/go"), "").unwrap();
    assert_eq!(wait_status(pid), 0);
    assert_eq!(status(&lab, "c1"), "stopped");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "started\ndone\n");
    let cgroups: Vec<PathBuf> = lab.record("c1")["cgroup_paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    assert!(cgroups.iter().all(|p| p.exists()), "{cgroups:?}");
    lab.ok(&["delete", "c1"]);
    assert!(!lab.root().join("c1").exists());
    assert!(
        cgroups.iter().all(|p| !p.exists()),
        "left behind: {cgroups:?}"
    );
    assert!(!lab.run(&["state", "c1"]).status.success());
}

#[test]
fn kill_delivers_named_and_numbered_signals() {
    if !ready("kill_delivers_named_and_numbered_signals") {
        return;
    }
    become_subreaper();
    let lab = Lab::new();
    let script = "trap 'exit 10' TERM; trap 'exit 11' USR1; trap 'exit 12' HUP; echo ready; while :; do sleep 0.05; done";
    let b = lab.bundle("b", script, false);
    for (i, (sig, want)) in [
        ("TERM", Some(10)),
        ("SIGUSR1", Some(11)),
        ("1", Some(12)),
        ("9", None),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("k{i}");
        let log = lab.dir.path().join(format!("{id}.log"));
        lab.create(&id, &b, &log);
        let pid = lab.state(&id)["pid"].as_i64().unwrap() as i32;
        lab.ok(&["start", &id]);
        wait_for("the traps", Duration::from_secs(10), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("ready")
        });
        lab.ok(&["kill", &id, sig]);
        let st = wait_status(pid);
        match want {
            Some(code) => assert_eq!(
                (libc::WIFEXITED(st), libc::WEXITSTATUS(st)),
                (true, code),
                "{sig}"
            ),
            None => assert_eq!(libc::WTERMSIG(st), libc::SIGKILL, "{sig}"),
        }
        assert_eq!(status(&lab, &id), "stopped");
        // A stopped container cannot be signalled.
        assert!(!lab.run(&["kill", &id, "TERM"]).status.success());
        lab.ok(&["delete", &id]);
    }
    assert!(!lab.run(&["kill", "k0", "NOSUCHSIGNAL"]).status.success());
}

#[test]
fn missing_and_duplicate_ids_are_errors() {
    if !ready("missing_and_duplicate_ids_are_errors") {
        return;
    }
    let lab = Lab::new();
    let out = lab.run(&["state", "nosuch"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nosuch does not exist"),
        "{out:?}"
    );
    // The JSON log carries the error for podman and containerd.
    let jlog = lab.dir.path().join("log.json");
    let out = Command::new(isolab())
        .args([
            "--log",
            jlog.to_str().unwrap(),
            "--log-format",
            "json",
            "--root",
        ])
        .arg(lab.root())
        .args(["delete", "nosuch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&jlog)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("does not exist"));
    assert!(line["time"].as_str().unwrap().ends_with('Z'));

    let b = lab.bundle("b", "true", false);
    let log = lab.dir.path().join("log");
    lab.create("dup", &b, &log);
    let out = lab.run(&["create", "--bundle", b.to_str().unwrap(), "dup"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{out:?}"
    );
    // The first one is untouched.
    assert_eq!(status(&lab, "dup"), "created");
    let out = lab.run(&["create", "--bundle", b.to_str().unwrap(), "../escape"]);
    assert!(!out.status.success());
    let out = lab.run(&["--systemd-cgroup", "state", "dup"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--systemd-cgroup"));
    lab.ok(&["delete", "dup"]);
}

#[test]
fn an_abandoned_container_is_removed_by_delete_force_and_clean() {
    if !ready("an_abandoned_container_is_removed_by_delete_force_and_clean") {
        return;
    }
    let lab = Lab::new();
    let b = lab.bundle("b", "sleep 100", false);
    // Created by a shell that is gone right after: nobody will start it.
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "{} --root {} create --bundle {} orphan >/dev/null 2>&1 </dev/null",
            isolab(),
            lab.root().display(),
            b.display()
        ))
        .status()
        .unwrap();
    assert!(out.success());
    assert_eq!(status(&lab, "orphan"), "created");
    let pid = lab.state("orphan")["pid"].as_i64().unwrap() as i32;
    let cgroups = lab.record("orphan")["cgroup_paths"].clone();
    lab.ok(&["delete", "--force", "orphan"]);
    assert!(!lab.root().join("orphan").exists());
    assert!(
        !Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap()
                .is_empty()
    );
    for p in cgroups.as_array().unwrap() {
        assert!(!Path::new(p.as_str().unwrap()).exists(), "{p}");
    }

    // The same through `isolab clean`, which looks in the default root.
    let id = format!("isolab-test-orphan-{}", std::process::id());
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "{} create --bundle {} {id} >/dev/null 2>&1 </dev/null",
            isolab(),
            b.display()
        ))
        .status()
        .unwrap();
    assert!(out.success());
    let dir = Path::new("/run/isolab").join(&id);
    assert!(dir.join("state.json").exists());
    let out = Command::new(isolab()).arg("clean").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("removed OCI container {id}")),
        "{text}"
    );
    assert!(!dir.exists());
}

#[test]
fn a_late_create_failure_leaves_nothing() {
    if !ready("a_late_create_failure_leaves_nothing") {
        return;
    }
    let lab = Lab::new();
    let b = lab.bundle("b", "true", false);
    let name = format!("isolab-test-late-{}", std::process::id());
    let path = b.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["linux"]["cgroupsPath"] = format!("/{name}").into();
    std::fs::write(&path, c.to_string()).unwrap();
    let out = lab.run(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        "/nonexistent/dir/pid",
        "late",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/pid"),
        "{out:?}"
    );
    assert!(!lab.root().join("late").exists());
    let left: Vec<PathBuf> = hostcaps::cgroup::mounts()
        .iter()
        .map(|m| m.path.join(&name))
        .filter(|p| p.exists())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Receives one fd over `stream` (SCM_RIGHTS).
fn recv_fd(stream: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!(std::os::fd::RawFd);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd was just received and is owned by nobody else.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

#[test]
fn console_socket_gets_the_terminal() {
    if !ready("console_socket_gets_the_terminal") {
        return;
    }
    become_subreaper();
    let lab = Lab::new();
    let b = lab.bundle("b", "tty; read line; echo got:$line", true);
    let sock_path = lab.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let out = lab.run(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        "tty1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let (stream, _) = listener.accept().unwrap();
    let master = std::fs::File::from(recv_fd(&stream));
    let pid = lab.state("tty1")["pid"].as_i64().unwrap() as i32;
    lab.ok(&["start", "tty1"]);
    (&master).write_all(b"hello\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let end = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains("got:hello") && Instant::now() < end {
        match (&master).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&seen);
    // The pty is the container's own (/dev/pts/0 of its devpts), the line is echoed, then read.
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("hello\r\n"), "{text}");
    assert!(text.contains("got:hello"), "{text}");
    assert_eq!(libc::WEXITSTATUS(wait_status(pid)), 0);
    lab.ok(&["delete", "tty1"]);
    // A terminal without a console socket is refused.
    let out = lab.run(&["create", "--bundle", b.to_str().unwrap(), "tty2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--console-socket"));
}

#[test]
fn ps_features_and_run() {
    if !ready("ps_features_and_run") {
        return;
    }
    let lab = Lab::new();
    let f: serde_json::Value = serde_json::from_str(&lab.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);

    let b = lab.bundle("b", "sleep 30", false);
    let log = lab.dir.path().join("log");
    lab.create("p1", &b, &log);
    lab.ok(&["start", "p1"]);
    let pid = lab.state("p1")["pid"].as_i64().unwrap();
    let pids: Vec<i64> = serde_json::from_str(&lab.ok(&["ps", "--format", "json", "p1"])).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");
    lab.ok(&["delete", "--force", "p1"]);
    assert!(!lab.root().join("p1").exists());

    // `run` waits and returns the program's status; the container is gone after.
    let b = lab.bundle("r", "echo out; exit 7", false);
    let out = lab.run(&["run", "--bundle", b.to_str().unwrap(), "r1"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(!lab.root().join("r1").exists());
}

fn podman_ready(test: &str) -> bool {
    if !ready(test) {
        return false;
    }
    let podman = Command::new("podman")
        .arg("--version")
        .output()
        .map(|_| ())
        .map_err(|_| "needs podman (apt-get install podman)".to_string());
    hostcaps::testing::require(test, "podman", podman)
}

/// podman with its own storage (vfs: no mounts to leave) in a temp dir.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        let d = self.dir.path();
        c.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, runtime: &str, args: &[&str]) -> Output {
        self.cmd()
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                "--runtime",
                runtime,
            ])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rm", "-a", "-f"]).output();
        let _ = self.cmd().args(["rmi", "-a", "-f"]).output();
    }
}

#[test]
fn podman_runs_with_isolab_as_with_runc() {
    if !podman_ready("podman_runs_with_isolab_as_with_runc") {
        return;
    }
    let lab = Lab::new();
    let b = lab.bundle("img", "true", false);
    let tar = lab.dir.path().join("rootfs.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(b.join("rootfs"))
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let podman = Podman {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = podman
        .cmd()
        .arg("import")
        .arg(&tar)
        .arg("localhost/isolab-smoke")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cases: &[&[&str]] = &[
        &["localhost/isolab-smoke", "/bin/echo", "hi"],
        &["localhost/isolab-smoke", "/bin/sh", "-c", "exit 7"],
        &[
            "--env",
            "FOO=bar",
            "--workdir",
            "/bin",
            "--user",
            "1000:1000",
            "localhost/isolab-smoke",
            "/bin/sh",
            "-c",
            "echo $FOO; pwd; id",
        ],
        &[
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "localhost/isolab-smoke",
            "/bin/sh",
            "-c",
            "grep -E ':(pids|memory):/libpod_parent/libpod-' /proc/self/cgroup | cut -d: -f2; echo ok",
        ],
    ];
    for args in cases {
        let with_runc = podman.run("runc", args);
        let with_isolab = podman.run(isolab(), args);
        assert_eq!(
            (
                with_isolab.status.code(),
                String::from_utf8_lossy(&with_isolab.stdout)
            ),
            (
                with_runc.status.code(),
                String::from_utf8_lossy(&with_runc.stdout)
            ),
            "podman run {args:?}: isolab's stderr: {}",
            String::from_utf8_lossy(&with_isolab.stderr)
        );
    }
    let hi = podman.run(isolab(), cases[0]);
    assert_eq!(String::from_utf8_lossy(&hi.stdout), "hi\n");

    // `podman exec` into a running container, as with runc.
    let execs: Vec<Vec<(Option<i32>, String)>> = ["runc", isolab()]
        .into_iter()
        .map(|runtime| podman_execs(&podman, runtime))
        .collect();
    assert_eq!(execs[1], execs[0], "podman exec: isolab vs runc");
    assert_eq!(execs[1][0], (Some(0), "hi\n".to_string()));
}

/// `podman exec` of a few commands into a container of `runtime`.
fn podman_execs(podman: &Podman, runtime: &str) -> Vec<(Option<i32>, String)> {
    let out = podman
        .cmd()
        .args([
            "run",
            "-d",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
        ])
        .args(["--ulimit", "nproc=1024:1024", "--runtime", runtime])
        .args(["localhost/isolab-smoke", "/bin/sleep", "60"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // (podman exec's options, the command)
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["echo", "hi"]),
        (&[], &["sh", "-c", "cat /proc/1/cmdline; exit 3"]),
        (
            &["--user", "1000", "--env", "FOO=bar", "--workdir", "/bin"],
            &["sh", "-c", "id; echo $FOO; pwd"],
        ),
    ];
    let got = cases
        .iter()
        .map(|(opts, cmd)| {
            let out = podman
                .cmd()
                .arg("exec")
                .args(*opts)
                .arg(&id)
                .args(*cmd)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            (out.status.code(), stdout)
        })
        .collect();
    let _ = podman.cmd().args(["rm", "-f", "-t", "0", &id]).output();
    got
}

/// A bundle for `exec` tests: `sleep 30` under a hostname of its own and a
/// seccomp profile that denies `mkdir`.
fn exec_bundle(lab: &Lab, name: &str) -> PathBuf {
    let b = lab.bundle(name, "sleep 30", false);
    let path = b.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["hostname"] = "exec-host".into();
    c["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    std::fs::write(&path, c.to_string()).unwrap();
    b
}

#[test]
fn exec_joins_a_running_container() {
    if !ready("exec_joins_a_running_container") {
        return;
    }
    become_subreaper();
    let lab = Lab::new();
    let b = exec_bundle(&lab, "b");
    let log = lab.dir.path().join("log");
    lab.create("e1", &b, &log);
    // A created container is not running yet: refused.
    let out = lab.run(&["exec", "e1", "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    lab.ok(&["start", "e1"]);

    // Its hostname, its pid namespace (pid 1 is the container's program),
    // its seccomp profile; the exit status comes back.
    let script = "cat /proc/1/cmdline; echo; busybox hostname; mkdir /tmp/x || echo denied; exit 5";
    let out = lab.run(&["exec", "e1", "sh", "-c", script]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    // (sh -c execs its last command: pid 1 is `sleep 30` itself.)
    assert_eq!(text, "sleep\u{0}30\u{0}\nexec-host\ndenied\n");

    // runc's flags: user, environment, working directory.
    let out = lab.ok(&[
        "exec",
        "--user",
        "1000:1000",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "e1",
        "sh",
        "-c",
        "id -u; id -g; echo $FOO; pwd",
    ]);
    assert_eq!(out, "1000\n1000\nbar\n/tmp\n");

    // Detached: the pid file names the process, which is in the container's cgroups.
    let pid_file = lab.dir.path().join("exec.pid");
    let out = lab
        .cmd(&[
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "e1",
            "sleep",
            "30",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let init = lab.state("e1")["pid"].as_i64().unwrap();
    let cgroup = |p: i64| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cgroup(pid as i64), cgroup(init));
    let ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(ns(pid as i64), ns(init));

    // This test is the detached process's reaper (as conmon is): reap it
    // before the cgroups go. A stopped container refuses exec.
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_status(pid);
    lab.ok(&["delete", "--force", "e1"]);
    let b = lab.bundle("s", "true", false);
    lab.create("e2", &b, &log);
    let init = lab.state("e2")["pid"].as_i64().unwrap() as i32;
    lab.ok(&["start", "e2"]);
    wait_status(init);
    let out = lab.run(&["exec", "e2", "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running"),
        "{out:?}"
    );
    lab.ok(&["delete", "e2"]);
}

#[test]
fn exec_with_a_terminal_uses_the_console_socket() {
    if !ready("exec_with_a_terminal_uses_the_console_socket") {
        return;
    }
    become_subreaper();
    let lab = Lab::new();
    let b = lab.bundle("b", "sleep 30", false);
    lab.create("t1", &b, &lab.dir.path().join("log"));
    lab.ok(&["start", "t1"]);
    let sock_path = lab.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let mut exec = lab
        .cmd(&[
            "exec",
            "--tty",
            "--console-socket",
            sock_path.to_str().unwrap(),
            "t1",
            "sh",
            "-c",
            "tty; read line; echo got:$line",
        ])
        .spawn()
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    let master = std::fs::File::from(recv_fd(&stream));
    (&master).write_all(b"hi\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let end = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains("got:hi") && Instant::now() < end {
        match (&master).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&seen);
    // A pty of the container's own devpts, its first: the init has none.
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("got:hi"), "{text}");
    assert_eq!(exec.wait().unwrap().code(), Some(0));
    lab.ok(&["delete", "--force", "t1"]);
}

/// Runs `script` in a bundle limited to 64 MiB and 50 tasks, with its
/// config's cgroup mount at /sys/fs/cgroup; returns the output.
fn run_limited(lab: &Lab, name: &str, script: &str, cgroupns: bool) -> String {
    let b = lab.bundle(name, script, false);
    let path = b.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 64 << 20});
    c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
    if !cgroupns {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
    }
    std::fs::write(&path, c.to_string()).unwrap();
    let out = lab.run(&["run", "--bundle", b.to_str().unwrap(), name]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cgroup_filesystem_shows_the_container_s_own_limits() {
    if !ready("cgroup_filesystem_shows_the_container_s_own_limits") {
        return;
    }
    let lab = Lab::new();
    // v1: one directory per hierarchy (a link for each name of a combined
    // one, `cpuacct -> cpu,cpuacct`); v2: one directory.
    let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    let script = if v1 {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; \
         test -e /sys/fs/cgroup/cpuacct/cpuacct.usage && echo cpuacct"
    } else {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; echo cpuacct"
    };
    // Read-only as the mount asks: nothing can be created or changed.
    let script = format!(
        "{script}; mkdir /sys/fs/cgroup/x 2>/dev/null && echo writable; \
         echo 1 2>/dev/null > /sys/fs/cgroup/cgroup.procs && echo writable; echo end"
    );
    let want = "67108864\n50\ncpuacct\nend\n";
    for cgroupns in [true, false] {
        let name = format!("cg{}", u8::from(cgroupns));
        assert_eq!(
            run_limited(&lab, &name, &script, cgroupns),
            want,
            "cgroup namespace: {cgroupns}"
        );
    }
}

/// `cmd` with the read end of a pipe holding `text` as its descriptor 3.
fn with_fd3(mut cmd: Command, text: &str) -> Output {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    std::fs::File::from(w).write_all(text.as_bytes()).unwrap();
    let fd = r.as_raw_fd();
    // SAFETY: between fork and exec only dup2 and fcntl, async-signal-safe;
    // the duplicate on 3 has no close-on-exec flag.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // dup2 onto itself would keep close-on-exec.
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[test]
fn preserve_fds_passes_descriptors_to_run_and_exec() {
    if !ready("preserve_fds_passes_descriptors_to_run_and_exec") {
        return;
    }
    let lab = Lab::new();
    // The program reads fd 3; fd 4 (not preserved) is closed.
    let b = lab.bundle("p", "cat <&3; test -e /proc/self/fd/4 || echo no-4", false);
    let out = with_fd3(
        lab.cmd(&[
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            b.to_str().unwrap(),
            "pf1",
        ]),
        "via run\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via run\nno-4\n");

    // exec: the same, into a running container.
    let b = lab.bundle("q", "sleep 30", false);
    let log = lab.dir.path().join("log");
    lab.create("pf2", &b, &log);
    lab.ok(&["start", "pf2"]);
    let out = with_fd3(
        lab.cmd(&[
            "exec",
            "--preserve-fds",
            "1",
            "pf2",
            "cat",
            "/proc/self/fd/3",
        ]),
        "via exec\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via exec\n");

    // Descriptors that are not open: a specific error, exit 125, nothing left.
    // (Some low ones may be open: cargo's jobserver pipes are inherited.)
    let out = lab.run(&["exec", "--preserve-fds", "500", "pf2", "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not open"),
        "{out:?}"
    );
    lab.ok(&["delete", "--force", "pf2"]);
    let out = lab.run(&[
        "run",
        "--preserve-fds",
        "2",
        "--bundle",
        b.to_str().unwrap(),
        "pf3",
    ]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--preserve-fds"),
        "{out:?}"
    );
    assert!(!lab.root().join("pf3").exists());
}

/// Starts `isolab exec ID sh -c SCRIPT` and returns it once SCRIPT printed `ready`.
fn exec_until_ready(lab: &Lab, id: &str, script: &str) -> std::process::Child {
    let mut child = lab
        .cmd(&["exec", id, "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    // Ends at the newline, or at end of file if the exec failed.
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    assert_eq!(String::from_utf8_lossy(&line), "ready");
    child
}

/// Waits (at most 20 s) for `child` and returns its exit code.
fn exit_code(mut child: std::process::Child) -> Option<i32> {
    let mut status = None;
    wait_for("the exec to end", Duration::from_secs(20), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.and_then(|s| s.code())
}

#[test]
fn exec_forwards_signals_and_returns_the_status() {
    if !ready("exec_forwards_signals_and_returns_the_status") {
        return;
    }
    let lab = Lab::new();
    let b = lab.bundle("s", "sleep 30", false);
    lab.create("sg", &b, &lab.dir.path().join("log"));
    lab.ok(&["start", "sg"]);
    // Each signal sent to the runtime reaches the process's trap.
    for (sig, name, code) in [
        (libc::SIGTERM, "TERM", 7),
        (libc::SIGINT, "INT", 8),
        (libc::SIGHUP, "HUP", 9),
        (libc::SIGUSR1, "USR1", 10),
    ] {
        let script = format!("trap 'exit {code}' {name}; echo ready; while :; do sleep 0.05; done");
        let child = exec_until_ready(&lab, "sg", &script);
        // SAFETY: kill with integer arguments, to our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        assert_eq!(exit_code(child), Some(code), "{name}");
    }
    // A process killed by the signal: 128 + its number, as runc exits.
    let child = exec_until_ready(&lab, "sg", "echo ready; exec sleep 30");
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(exit_code(child), Some(128 + libc::SIGTERM));
    lab.ok(&["delete", "--force", "sg"]);
}

#[test]
fn cpuset_limits_the_cpus_and_bad_lists_are_refused() {
    if !ready("cpuset_limits_the_cpus_and_bad_lists_are_refused") {
        return;
    }
    let lab = Lab::new();
    let with_cpus = |name: &str, cpus: &str| {
        let b = lab.bundle(
            name,
            "grep Cpus_allowed_list /proc/self/status; \
             cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus",
            false,
        );
        let path = b.join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        c["linux"]["resources"]["cpu"] = serde_json::json!({"cpus": cpus, "mems": "0"});
        std::fs::write(&path, c.to_string()).unwrap();
        lab.run(&["run", "--bundle", b.to_str().unwrap(), name])
    };
    let out = with_cpus("cs1", "0");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Cpus_allowed_list:\t0\n0\n"
    );
    // A CPU the machine does not have: named, exit 125, no group left.
    let out = with_cpus("cs2", "4000");
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("linux.resources.cpu.cpus"), "{err}");
    assert!(!lab.root().join("cs2").exists());
    for dir in [
        "/sys/fs/cgroup/cpuset/isolab-oci/cs2",
        "/sys/fs/cgroup/isolab-oci/cs2",
    ] {
        assert!(!Path::new(dir).exists(), "{dir} left behind");
    }
    // A malformed list is refused before anything is made.
    let out = with_cpus("cs3", "1-0");
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("runs backwards"),
        "{out:?}"
    );
}
