//! podman with crun as its runtime against podman with runc: the same
//! commands, the same output and exit status. crun refuses hybrid cgroups
//! (the project's machines), so this needs a pure cgroup v2 host (the
//! emulated test host); it skips with the reason elsewhere.

use hostcaps::cgroup::CgroupMode;

use crate::parity::{CASES, run_rm};
use crate::{assert_podman_leaves_nothing, podman_with_demo, ready};

/// `Ok` on a pure cgroup v2 host, else why crun cannot run here.
fn cgroup_v2() -> Result<(), String> {
    match hostcaps::cgroup::mode() {
        CgroupMode::V2 => Ok(()),
        other => Err(format!(
            "crun refuses this host's cgroups ({other:?}): it needs a pure cgroup v2 host (the test host)"
        )),
    }
}

#[test]
fn podman_crun_matches_runc() {
    let test = "podman_crun_matches_runc";
    if !ready(test, &["podman", "runc", "crun"])
        || !hostcaps::testing::require(test, "cgroup-v2", cgroup_v2())
    {
        return;
    }
    let podman = podman_with_demo();
    let mut differ = Vec::new();
    for (opts, cmd, code, stdout) in CASES {
        let reference = run_rm(&podman, "runc", opts, cmd);
        assert_eq!(
            (reference.code, reference.stdout.as_str()),
            (code, stdout),
            "runc itself: {opts:?} {cmd:?}"
        );
        let crun = run_rm(&podman, "crun", opts, cmd);
        if crun != reference {
            differ.push(format!("{crun:?}\n  runc: {reference:?}"));
        }
    }
    assert_podman_leaves_nothing(podman);
    assert!(
        differ.is_empty(),
        "crun differs from runc:\n{}",
        differ.join("\n")
    );
}
