//! The same image as a container and as a micro VM under podman: `podman
//! --runtime isolab-vm run` boots the Linux guest with the image's root
//! file system and prints what `--runtime isolab` (the container route)
//! and `--runtime runc` print, with the same exit status. Needs a host that
//! boots a Linux guest (the emulated test host); skips with the reason
//! elsewhere.

use std::path::PathBuf;

use crate::parity::{Step, run_rm};
use crate::{assert_podman_leaves_nothing, podman_with_demo, ready};

/// A temporary directory holding `isolab-vm`, a symlink to this checkout's
/// `isolab`: the runtime mode is chosen by the program's name, as podman's
/// `--runtime PATH` gives it.
struct VmRuntime {
    dir: tempfile::TempDir,
}

impl VmRuntime {
    fn new() -> VmRuntime {
        let dir = tempfile::Builder::new()
            .prefix("isolab-vm-runtime-")
            .tempdir()
            .unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_isolab"), dir.path().join("isolab-vm"))
            .unwrap();
        VmRuntime { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("isolab-vm")
    }
}

/// Commands whose stdout and exit status are compared; none writes to
/// stderr (the VM's serial console carries both streams as one).
const CASES: [(&[&str], i32, &str); 3] = [
    (&["/bin/echo", "hi"], 0, "hi\n"),
    (&["/bin/sh", "-c", "exit 7"], 7, ""),
    (&["/bin/sh", "-c", "echo out; exit 3"], 3, "out\n"),
];

#[test]
fn podman_isolab_vm_matches_the_container_route_and_runc() {
    let test = "podman_isolab_vm_matches_the_container_route_and_runc";
    if !ready(test, &["podman", "runc"])
        || !hostcaps::testing::require(
            test,
            "linux-guest",
            isolation::vm_linux::linux_guest_support(),
        )
    {
        return;
    }
    let podman = podman_with_demo();
    let vm = VmRuntime::new();
    let vm_path = vm.path().display().to_string();
    let container = env!("CARGO_BIN_EXE_isolab");
    let mut differ = Vec::new();
    for (cmd, code, stdout) in CASES {
        let reference = run_rm(&podman, "runc", &[], cmd);
        assert_eq!(
            (reference.code, reference.stdout.as_str()),
            (code, stdout),
            "runc itself: {cmd:?}"
        );
        for runtime in [container, vm_path.as_str()] {
            let ours: Step = run_rm(&podman, runtime, &[], cmd);
            if ours != reference {
                differ.push(format!("{runtime}: {ours:?}\n  runc: {reference:?}"));
            }
        }
    }
    assert_podman_leaves_nothing(podman);
    assert!(
        differ.is_empty(),
        "differ from runc:\n{}",
        differ.join("\n")
    );
}
