//! Subordinate ids in a rootless container: a user given an `/etc/subuid`
//! and `/etc/subgid` range runs a program as uid 1000 inside, and a uid
//! beyond the range is refused with 125.
//!
//! The ranges are given, for the test's duration only, to `daemon`, an
//! unprivileged account every Debian system has, so that the `nobody` run of
//! `run_cli.rs` (which expects no range) is not disturbed. The files are
//! restored by a guard even when an assertion fails.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const USER: &str = "daemon";
const UID: &str = "1";
/// Far above the ranges `useradd` hands out (100000 on), so it collides with none.
const START: u32 = 1_500_000_000;
const COUNT: u32 = 65536;

/// Puts a file back as it was (or removes it) when dropped.
struct Restore {
    path: PathBuf,
    old: Option<Vec<u8>>,
}

impl Restore {
    /// Puts `line` first in `path`, so it is the first range for its owner.
    fn prepend(path: &str, line: &str) -> Restore {
        let old = std::fs::read(path).ok();
        let mut new = format!("{line}\n").into_bytes();
        new.extend(old.iter().flatten());
        let guard = Restore {
            path: path.into(),
            old,
        };
        std::fs::write(path, new).unwrap();
        guard
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = match &self.old {
            Some(old) => std::fs::write(&self.path, old),
            None => std::fs::remove_file(&self.path),
        };
    }
}

/// Root, a static busybox, `newuidmap` and a `daemon` who may create a user
/// namespace; else the reason to skip.
fn ready(test: &str) -> bool {
    use hostcaps::testing::require;
    if !hostcaps::testing::require_root(test) {
        return false;
    }
    let found = |p: &str, why: &str| {
        Path::new(p)
            .exists()
            .then_some(())
            .ok_or_else(|| why.to_string())
    };
    require(
        test,
        "busybox",
        found(
            "/bin/busybox",
            "needs a static /bin/busybox (apt-get install busybox-static)",
        ),
    ) && require(
        test,
        "uidmap",
        found(
            "/usr/bin/newuidmap",
            "needs newuidmap and newgidmap (apt-get install uidmap)",
        )
        .and(found(
            "/usr/bin/newgidmap",
            "needs newgidmap (apt-get install uidmap)",
        )),
    ) && require(test, "userns", common::can_unshare_as(UID, USER))
}

fn as_user() -> Command {
    common::setpriv_as(UID)
}

/// A bundle, readable by `daemon`, running `sh -c script` as `uid`:`uid`.
fn bundle(dir: &Path, uid: u32, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    // Made here: the rootfs is root's, whom the user namespace does not map.
    for d in ["proc", "dev"] {
        std::fs::create_dir(dir.join("rootfs").join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {
            "cwd": "/",
            "user": {"uid": uid, "gid": uid},
            "env": ["PATH=/bin"],
            "args": ["/bin/sh", "-c", script],
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

fn run_as_user(uid: u32, script: &str) -> Output {
    let d = tempfile::tempdir().unwrap();
    bundle(d.path(), uid, script);
    as_user()
        .arg(env!("CARGO_BIN_EXE_isolab"))
        .args(["run", "--bundle"])
        .arg(d.path())
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_subordinate_range_lets_a_rootless_program_run_as_uid_1000() {
    let test = "a_subordinate_range_lets_a_rootless_program_run_as_uid_1000";
    if !ready(test) {
        return;
    }
    let line = format!("{USER}:{START}:{COUNT}");
    let _uids = Restore::prepend("/etc/subuid", &line);
    let _gids = Restore::prepend("/etc/subgid", &line);

    let o = run_as_user(1000, "id -u; id -g; cat /proc/self/uid_map");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    let words: Vec<&str> = out.split_whitespace().collect();
    let (start, count) = (START.to_string(), COUNT.to_string());
    assert_eq!(
        words,
        ["1000", "1000", "0", UID, "1", "1", &start, &count],
        "{err}"
    );
    assert!(!err.contains("only uid 0"), "{err}");

    let o = run_as_user(COUNT + 1, "id -u");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("uid") && err.contains("0 to 65536"), "{err}");
}
