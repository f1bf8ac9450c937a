//! The container's root filesystem: checks in the parent ([`program`]), a
//! plan of mount operations built in the parent ([`plan`]) and executed by the
//! child ([`execute`]), with every path inside the root opened without
//! leaving it ([`resolve`]).

pub mod cgroupfs;
pub mod execute;
pub mod plan;
pub mod program;
pub mod resolve;

use std::path::{Path, PathBuf};

pub use cgroupfs::CgroupView;
pub use execute::execute;
pub use plan::{Op, Plan, plan, plan_with_cgroups};
pub use program::{check_special_dirs, lookup_in_root, missing_interpreter, resolve_program};

/// Host device nodes bind-mounted into the container's `/dev`.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Where the host's static busybox is looked for.
pub const BUSYBOX: &str = "/bin/busybox";

/// busybox applets linked in the minimal root (busybox's shell finds the others itself).
pub const APPLETS: &[&str] = &[
    "sh", "ash", "cat", "echo", "true", "false", "ls", "ps", "hostname", "id", "env", "sleep",
    "grep", "dd", "head", "tail", "seq", "wc", "mount", "umount", "unshare", "nsenter", "ip",
    "ifconfig", "kill", "mkdir", "rm", "touch", "stat", "test", "[", "readlink", "uname", "cut",
    "sed", "awk", "tr", "sort", "uniq", "xargs", "mknod", "chroot", "whoami", "nproc", "free",
    "df", "dmesg", "sysctl", "insmod", "setpriv", "timeout", "yes", "date",
];

/// The host binaries a minimal root holds.
pub fn minimal_binaries(binaries: &[PathBuf], busybox: bool) -> Vec<PathBuf> {
    let mut out = binaries.to_vec();
    if busybox
        && Path::new(BUSYBOX).exists()
        && !out
            .iter()
            .any(|b| b.file_name() == Some("busybox".as_ref()))
    {
        out.push(PathBuf::from(BUSYBOX));
    }
    out
}
