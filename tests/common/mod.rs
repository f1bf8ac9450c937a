//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
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
    if !hostcaps::testing::require_root(test) {
        return false;
    }
    let bb = if Path::new("/bin/busybox").exists() {
        Ok(())
    } else {
        Err("needs a static /bin/busybox (apt-get install busybox-static)".to_string())
    };
    hostcaps::testing::require(test, "busybox", bb)
}
