//! Which namespaces this host lets us create: tried for real in a forked child.

use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

/// A Linux namespace type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// User namespace.
    User,
    /// PID namespace.
    Pid,
    /// Mount namespace.
    Mount,
    /// UTS (hostname) namespace.
    Uts,
    /// IPC namespace.
    Ipc,
    /// Network namespace.
    Net,
    /// Cgroup namespace.
    Cgroup,
    /// Time namespace (Linux 5.6+).
    Time,
}

impl Namespace {
    /// Every namespace, in the order doctor lists them.
    pub const ALL: [Namespace; 8] = [
        Self::User,
        Self::Pid,
        Self::Mount,
        Self::Uts,
        Self::Ipc,
        Self::Net,
        Self::Cgroup,
        Self::Time,
    ];

    /// The lower-case name (`user`, `pid`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Pid => "pid",
            Self::Mount => "mount",
            Self::Uts => "uts",
            Self::Ipc => "ipc",
            Self::Net => "net",
            Self::Cgroup => "cgroup",
            Self::Time => "time",
        }
    }

    /// The `clone`/`unshare` flag.
    pub fn flag(self) -> CloneFlags {
        match self {
            Self::User => CloneFlags::CLONE_NEWUSER,
            Self::Pid => CloneFlags::CLONE_NEWPID,
            Self::Mount => CloneFlags::CLONE_NEWNS,
            Self::Uts => CloneFlags::CLONE_NEWUTS,
            Self::Ipc => CloneFlags::CLONE_NEWIPC,
            Self::Net => CloneFlags::CLONE_NEWNET,
            Self::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // nix has no constant for CLONE_NEWTIME on every target.
            Self::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        }
    }
}

/// Tries `unshare(flags)` in a forked child so the caller is untouched.
/// `Ok` if it worked, otherwise the errno text.
pub fn try_unshare(flags: CloneFlags) -> Result<(), String> {
    // A pipe carries the child's errno back.
    let (r, w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the child only calls async-signal-safe functions (unshare, write, _exit)
    // before exiting; it never returns into Rust code of the parent.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            // SAFETY: raw unshare syscall on flags we built; no memory is passed.
            let rc = unsafe { libc::unshare(flags.bits()) };
            let errno: i32 = if rc == 0 {
                0
            } else {
                nix::errno::Errno::last_raw()
            };
            let _ = nix::unistd::write(&w, &errno.to_ne_bytes());
            // SAFETY: _exit never returns and runs no destructors, as a forked child must.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut buf = [0u8; 4];
            let n = nix::unistd::read(&r, &mut buf).unwrap_or(0);
            let _ = nix::sys::wait::waitpid(child, None);
            if n != 4 {
                return Err("probe child died before reporting".into());
            }
            match i32::from_ne_bytes(buf) {
                0 => Ok(()),
                e => Err(nix::errno::Errno::from_raw(e).desc().to_string()),
            }
        }
    }
}

/// `Ok` when namespace `ns` can be created by this process.
pub fn can_create(ns: Namespace) -> Result<(), String> {
    if ns == Namespace::Time && !std::path::Path::new("/proc/self/ns/time").exists() {
        return Err("the kernel has no time namespaces (needs Linux 5.6+)".into());
    }
    try_unshare(ns.flag()).map_err(|e| format!("unshare({}) failed: {e}", ns.name()))
}

/// Whether unprivileged users may create user namespaces, from the sysctls
/// that gate it (Debian's `kernel.unprivileged_userns_clone`, Ubuntu's
/// AppArmor restriction, and `user.max_user_namespaces`).
pub fn unprivileged_userns_allowed() -> Result<(), String> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err("user.max_user_namespaces is 0".into());
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err(
            "kernel.unprivileged_userns_clone is 0 (sysctl -w kernel.unprivileged_userns_clone=1)"
                .into(),
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Err("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_distinct() {
        let mut bits: Vec<i32> = Namespace::ALL.iter().map(|n| n.flag().bits()).collect();
        bits.sort();
        bits.dedup();
        assert_eq!(bits.len(), Namespace::ALL.len());
    }

    #[test]
    fn an_invalid_unshare_reports_the_error() {
        // The exit-signal byte is not a valid unshare(2) flag → EINVAL, proving errors come back.
        let err = try_unshare(CloneFlags::from_bits_retain(0x11));
        assert!(err.is_err(), "{err:?}");
    }
}
