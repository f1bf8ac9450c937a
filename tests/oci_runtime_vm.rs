//! `isolab-vm`: the OCI runtime's VM backend, driven as podman drives a
//! runtime: create (the VMM waits before boot, its pid is the container's),
//! start (the guest boots and runs the bundle's process with the caller's
//! stdio), the VMM's exit status is the program's, kill stops the VM, delete
//! leaves nothing. Needs a host that boots a Linux guest (the emulated test
//! host in CI); skips with the reason elsewhere.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ready(test: &str) -> bool {
    if !hostcaps::testing::require_root(test) {
        return false;
    }
    let guest = isolation::vm_linux::linux_guest_support();
    hostcaps::testing::require(test, "linux-guest", guest)
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        // The runtime is chosen by its name, as podman's `--runtime` gives it.
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_isolab"), lab.vm()).unwrap();
        lab
    }

    fn vm(&self) -> PathBuf {
        self.dir.path().join("isolab-vm")
    }

    fn bundle(&self, name: &str, script: &str) -> PathBuf {
        let b = self.dir.path().join(name);
        let bin = b.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for a in ["sh", "echo", "sleep", "hostname"] {
            std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
        }
        for d in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(b.join("rootfs").join(d)).unwrap();
        }
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
                        "args": ["/bin/sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/"},
            "root": {"path": "rootfs"},
            "hostname": "vmbox",
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
        });
        std::fs::write(b.join("config.json"), config.to_string()).unwrap();
        b
    }

    /// `isolab-vm --root R ARGS`; the container's stdio goes to `out`.
    fn run(&self, args: &[&str], out: Option<&Path>) -> std::process::Output {
        let mut c = Command::new(self.vm());
        c.arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args);
        c.stdin(Stdio::null());
        if let Some(path) = out {
            // A file, not a pipe: the VMM outlives `create` and holds it.
            let f = std::fs::File::create(path).unwrap();
            c.stdout(f.try_clone().unwrap()).stderr(f);
        }
        c.output().unwrap()
    }

    fn status(&self, id: &str) -> (String, i32) {
        let out = self.run(&["state", id], None);
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["status"].as_str().unwrap().to_string(),
            v["pid"].as_i64().unwrap() as i32,
        )
    }
}

/// Makes this test process the reaper of orphans, so the VMM (whose parent
/// `create` exits) is ours to wait for, as conmon does.
fn become_subreaper() {
    // SAFETY: prctl with integer arguments only changes this process.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
}

/// Waits for `pid` (an orphan we reap) and returns its wait status.
fn reap(pid: i32, within: Duration) -> i32 {
    let end = Instant::now() + within;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == pid {
            return status;
        }
        assert!(Instant::now() < end, "the VMM {pid} did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn leftover_images() -> usize {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("isolab-rootfs-")
        })
        .count()
}

#[test]
fn the_vm_backend_runs_the_lifecycle_with_the_programs_status() {
    let test = "the_vm_backend_runs_the_lifecycle_with_the_programs_status";
    if !ready(test) {
        return;
    }
    become_subreaper();
    let images = leftover_images();
    let lab = Lab::new();
    let b = lab.bundle("b", "echo hi; hostname; exit 3");
    let log = lab.dir.path().join("out.txt");
    let out = lab.run(
        &["create", "--bundle", b.to_str().unwrap(), "c1"],
        Some(&log),
    );
    assert!(out.status.success(), "{out:?}");
    let (status, pid) = lab.status("c1");
    assert_eq!(status, "created");
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    let out = lab.run(&["start", "c1"], None);
    assert!(out.status.success(), "{out:?}");
    let wait = reap(pid, Duration::from_secs(240));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(libc::WIFEXITED(wait), "{wait:#x}: {text}");
    assert_eq!(libc::WEXITSTATUS(wait), 3, "{text}");
    assert_eq!(text, "hi\nvmbox\n");
    assert_eq!(lab.status("c1").0, "stopped");
    let out = lab.run(&["delete", "c1"], None);
    assert!(out.status.success(), "{out:?}");
    assert!(!lab.dir.path().join("state/c1").exists());

    // kill stops the VM: the VMM ends by the signal.
    let b = lab.bundle("k", "sleep 1000");
    let out = lab.run(
        &["create", "--bundle", b.to_str().unwrap(), "c2"],
        Some(&log),
    );
    assert!(out.status.success(), "{out:?}");
    let (_, pid) = lab.status("c2");
    assert!(lab.run(&["start", "c2"], None).status.success());
    assert_eq!(lab.status("c2").0, "running");
    assert!(lab.run(&["kill", "c2", "KILL"], None).status.success());
    let wait = reap(pid, Duration::from_secs(30));
    assert!(
        libc::WIFSIGNALED(wait) && libc::WTERMSIG(wait) == libc::SIGKILL,
        "{wait:#x}"
    );
    assert!(lab.run(&["delete", "c2"], None).status.success());
    assert_eq!(
        leftover_images(),
        images,
        "an image was left in the temp dir"
    );
}
