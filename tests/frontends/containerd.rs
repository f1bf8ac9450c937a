//! containerd's runc shim driving the runtime under test with the spec
//! containerd 1.6 writes: its default resources (`cpu.shares`), `ctr run`'s
//! `--memory-limit` and `--cpus`, and `--with-ns network:PATH` (a pod's
//! containers joining its sandbox's network namespace). The image is an OCI
//! layout made with umoci (busybox-static), imported with `ctr images import`.

use std::path::Path;
use std::process::Command;

use crate::services::Containerd;
use crate::{ready, runtime_under_test};

const IMAGE: &str = "localhost/isolab-ctr:latest";

/// An OCI layout tar of a busybox-static image, built in `dir`.
fn busybox_layout(dir: &Path) -> std::path::PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let sh = |args: &[&str]| {
        let o = Command::new("umoci").args(args).output().unwrap();
        assert!(o.status.success(), "umoci {args:?}: {o:?}");
    };
    let (l, b) = (layout.to_str().unwrap(), bundle.to_str().unwrap());
    sh(&["init", "--layout", l]);
    sh(&["new", "--image", &format!("{l}:latest")]);
    sh(&["unpack", "--image", &format!("{l}:latest"), b]);
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for a in ["sh", "echo", "sleep", "cat", "readlink"] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    sh(&["repack", "--image", &format!("{l}:latest"), b]);
    let tar = dir.join("image.tar");
    let o = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    tar
}

fn text(o: &std::process::Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The host path of `pid`'s group in the v1 `controller` hierarchy, or its
/// v2 group.
fn cgroup_dir(pid: &str, controller: &str) -> std::path::PathBuf {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
        if ctrls.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(&path[1..]);
        }
        if ctrls.is_empty() && v2_only() {
            return Path::new("/sys/fs/cgroup").join(&path[1..]);
        }
    }
    panic!("{pid} has no {controller} group: {own}");
}

/// Pure cgroup v2 (the test host), rather than v1 or hybrid (this machine).
fn v2_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn containerd_drives_the_runtime_with_resources_and_joined_namespaces() {
    let test = "containerd_drives_the_runtime_with_resources_and_joined_namespaces";
    if !ready(
        test,
        &["containerd", "ctr", "containerd-shim-runc-v2", "umoci"],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tar = busybox_layout(tmp.path());
    let ctrd = Containerd::start();
    let o = ctrd.ctr(&[
        "images",
        "import",
        "--snapshotter",
        "native",
        "--base-name",
        "localhost/isolab-ctr",
        tar.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}\n{}", text(&o), ctrd.log());
    let rt = runtime_under_test();
    // containerd's default spec (cpu.shares and all).
    let o = ctrd.run(&rt, &["--rm"], IMAGE, "hi", &["/bin/echo", "hi"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hi\n",
        "{}\n{}",
        text(&o),
        ctrd.log()
    );

    // A sandbox with limits, seen from the host.
    let o = ctrd.run(
        &rt,
        &["-d", "--memory-limit", "67108864", "--cpus", "0.5"],
        IMAGE,
        "sandbox",
        &["/bin/sleep", "60"],
    );
    assert!(o.status.success(), "{}\n{}", text(&o), ctrd.log());
    let tasks = String::from_utf8_lossy(&ctrd.ctr(&["tasks", "list"]).stdout).into_owned();
    let pid = tasks
        .lines()
        .find(|l| l.starts_with("sandbox"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no sandbox task: {tasks}"))
        .to_string();
    let read = |p: std::path::PathBuf| {
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    if v2_only() {
        let d = cgroup_dir(&pid, "");
        assert_eq!(read(d.join("memory.max")).trim(), "67108864");
        assert_eq!(read(d.join("cpu.max")).trim(), "50000 100000");
    } else {
        assert_eq!(
            read(cgroup_dir(&pid, "memory").join("memory.limit_in_bytes")).trim(),
            "67108864"
        );
        let cpu = cgroup_dir(&pid, "cpu");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")).trim(), "50000");
        assert_eq!(read(cpu.join("cpu.shares")).trim(), "1024");
    }

    // A second container in the sandbox's network namespace (the pod shape).
    let netns = format!("network:/proc/{pid}/ns/net");
    let o = ctrd.run(
        &rt,
        &["--rm", "--with-ns", &netns],
        IMAGE,
        "member",
        &["/bin/readlink", "/proc/self/ns/net"],
    );
    let sandbox_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        sandbox_net.to_str().unwrap(),
        "{}\n{}",
        text(&o),
        ctrd.log()
    );
    let _ = ctrd.ctr(&["tasks", "kill", "--signal", "SIGKILL", "sandbox"]);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ctrd.ctr(&["tasks", "delete", "sandbox"]).status.code() != Some(0)
        && std::time::Instant::now() < end
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = ctrd.ctr(&["containers", "delete", "sandbox"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ctrd.ctr(&["images", "remove", IMAGE]);
    assert!(o.status.success(), "{}", text(&o));
}
