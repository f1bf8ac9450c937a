//! isolab under the real front ends: podman, a registry, containerd (`ctr`,
//! the path a Kubernetes node takes) and Docker, each started by the test in
//! a temporary directory and stopped after.
//!
//! The OCI runtime under test is a parameter: `ISOLAB_FRONTEND_RUNTIME`
//! (a path or a name on `PATH`), by default this checkout's `isolab`.
//! `ISOLAB_FRONTEND_RUNTIME=runc` checks the harness itself. Whatever it is,
//! its output and exit status are compared with runc's for the same command.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod containerd;
mod crun;
mod parity;
mod services;
mod ship;
mod vm;

use std::path::PathBuf;

use bench::frontend::Podman;

/// The image every scenario runs, as tagged in podman's private store.
pub const DEMO: &str = "localhost/isolab-demo:latest";

/// The runtime under test, as podman's `--runtime` takes it.
pub fn runtime_under_test() -> String {
    std::env::var("ISOLAB_FRONTEND_RUNTIME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_isolab").to_string())
}

/// Root and each tool in `tools` on `PATH`; prints why the test skips
/// otherwise (refused under CI, where `ISOLAB_REQUIRE` lists them).
pub fn ready(test: &str, tools: &[&str]) -> bool {
    if !hostcaps::testing::require_root(test) {
        return false;
    }
    tools.iter().all(|t| {
        hostcaps::testing::require(
            test,
            t,
            hostcaps::peers::which(t)
                .map(|_| ())
                .ok_or_else(|| format!("needs {t} (scripts/setup-host installs it)")),
        )
    })
}

/// A private podman store holding the demo image (busybox-static and the
/// static workload, `FROM scratch`), built for this test.
pub fn podman_with_demo() -> Podman {
    let podman = Podman::new().unwrap();
    let workload: PathBuf = isolation::artifacts::workload_binary().unwrap();
    podman
        .build_demo_image(DEMO, std::path::Path::new("/bin/busybox"), &workload)
        .unwrap();
    podman
}

/// Nothing of `podman`'s is left once it is dropped: no mounts under its
/// directory, no cgroup, no directory.
pub fn assert_podman_leaves_nothing(podman: Podman) {
    let dir = podman.dir().to_path_buf();
    let cgroup = podman.cgroup_parent().to_string();
    drop(podman);
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(
        bench::frontend::cleanup::mounts_under(&dir).is_empty(),
        "mounts under {} are left",
        dir.display()
    );
    let cgroups = bench::frontend::cleanup::cgroup_dirs(&cgroup);
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}
