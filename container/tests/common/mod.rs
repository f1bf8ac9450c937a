//! Shared helpers for the container integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use container::{ContainerSpec, RunReport, Stdio};

/// Precondition for every test here: root, a static busybox, and cgroups.
pub fn ready(test: &str) -> bool {
    hostcaps::testing::require_root_and_busybox(test)
}

/// A busybox root filesystem in a temp dir: /bin/busybox plus applet links.
pub fn busybox_rootfs() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let bb = bin.join("busybox");
    // A copy, not a hard link: the rootfs is writable, and a container that
    // wrote through a link would change the host's busybox.
    std::fs::copy("/bin/busybox", &bb).unwrap();
    for a in [
        "sh", "true", "false", "cat", "ls", "echo", "hostname", "ps", "id", "grep", "dd", "sleep",
        "unshare", "seq", "wc", "mount", "head",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    for d2 in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(d.path().join(d2)).unwrap();
    }
    d
}

/// `sh -c script` in `rootfs`, stdout and stderr captured.
pub fn sh(rootfs: &Path, script: &str) -> ContainerSpec {
    ContainerSpec::with_rootfs(rootfs, "/bin/sh")
        .args(["-c", script])
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .timeout(std::time::Duration::from_secs(30))
}

/// Runs and returns the report, panicking with the error otherwise.
pub fn run(spec: &ContainerSpec) -> RunReport {
    container::run(spec).unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// Stdout as a string.
pub fn out(r: &RunReport) -> String {
    String::from_utf8_lossy(&r.stdout).into_owned()
}

/// A path that certainly exists on the host and not in the rootfs.
pub fn host_marker() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("isolab-host-marker");
    std::fs::write(&p, "host").unwrap();
    (d, p)
}
