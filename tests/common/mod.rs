//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::Command;

/// `setpriv` running as `uid`:`uid` with no supplementary groups.
pub fn setpriv_as(uid: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={uid}"),
        &format!("--regid={uid}"),
        "--clear-groups",
    ]);
    c
}

/// `Ok` when `who` (uid `uid`) can create a user namespace on this kernel,
/// as a rootless container needs; the error says why not.
pub fn can_unshare_as(uid: &str, who: &str) -> Result<(), String> {
    let out = setpriv_as(uid)
        .args(["unshare", "--user", "--map-root-user", "true"])
        .output()
        .map_err(|e| format!("needs setpriv and unshare (util-linux): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{who} cannot create a user namespace here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Root and a static busybox: what a container run needs here (the test's
/// skip is reported through the project's policy when either is missing).
pub fn root_and_busybox(test: &str) -> bool {
    hostcaps::testing::require_root_and_busybox(test)
}

/// The isolab binary under test.
pub fn isolab() -> &'static str {
    env!("CARGO_BIN_EXE_isolab")
}

/// A temporary directory holding an OCI state root (`state/`) and busybox
/// bundles, for driving isolab as podman drives an OCI runtime. Whatever a
/// failed test left in the state root is force-deleted on drop.
pub struct OciLab {
    /// The directory; bundles, logs and the state root live in it.
    pub dir: tempfile::TempDir,
}

impl OciLab {
    /// An empty lab.
    pub fn new() -> OciLab {
        OciLab {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// The `--root` state directory.
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    /// `isolab --root R ARGS`, stdin from /dev/null.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(isolab());
        c.arg("--root").arg(self.root()).args(args);
        c.stdin(std::process::Stdio::null());
        c
    }

    /// Runs `isolab --root R ARGS` to the end.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().expect("isolab runs")
    }

    /// Runs `isolab --root R ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "isolab {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Bundle `name`: a rootfs of a static busybox with `applets` linked to
    /// it, the usual mount points, and the config `isolab spec` writes with a
    /// writable root, changed by `edit`.
    pub fn bundle(
        &self,
        name: &str,
        applets: &[&str],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> std::path::PathBuf {
        let b = self.dir.path().join(name);
        let rootfs = b.join("rootfs");
        let bin = rootfs.join("bin");
        std::fs::create_dir_all(&bin).expect("bundle bin dir");
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
        for a in applets {
            std::os::unix::fs::symlink("busybox", bin.join(a)).expect("applet link");
        }
        for d in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mount point");
        }
        let out = Command::new(isolab())
            .args(["spec", "--bundle"])
            .arg(&b)
            .output()
            .expect("isolab spec runs");
        assert!(out.status.success(), "{out:?}");
        let path = b.join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("config.json"))
                .expect("config.json is JSON");
        c["root"]["readonly"] = false.into();
        edit(&mut c);
        std::fs::write(&path, c.to_string()).expect("write config.json");
        b
    }
}

impl Drop for OciLab {
    fn drop(&mut self) {
        // Whatever a failed test left: kill and remove.
        for e in std::fs::read_dir(self.root())
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = self.run(&["delete", "--force", &id]);
        }
    }
}
