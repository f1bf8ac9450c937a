//! Rootless containers: a caller that is not root gets a new user namespace
//! in which its own uid and gid are 0, as `podman` and `runc` rootless do.
//!
//! The runtime writes the child's id maps (`0 <uid> 1`, `0 <gid> 1`, with
//! `setgroups` denied, which an unprivileged process may do for its own
//! child) before the child starts its set-up. Limits need a cgroup the user
//! may write (a delegated cgroup v2 subtree); where there is none, the run
//! goes on without one and a note names the limits that are off. Device
//! nodes cannot be made in a user namespace at all, so there is no device
//! cgroup to miss. Subordinate ids (`newuidmap`) are not used yet: only the
//! caller's own id is mapped, so the program runs as uid 0 or not at all.

use std::io;

use crate::cgroup::{CgroupManager, NoCgroup};
use crate::mounts::MountSpec;
use crate::spec::{ContainerSpec, NetMode, Resources};
use crate::{Error, Result};

/// Whether this process is not root, so its containers need a user namespace.
pub fn needed() -> bool {
    !crate::process::is_root()
}

fn invalid(field: &'static str, value: String, reason: &str) -> Error {
    Error::InvalidSpec {
        field,
        value,
        reason: reason.into(),
    }
}

/// Refuses, by field, what a rootless container cannot do.
pub(crate) fn check(spec: &ContainerSpec) -> Result<()> {
    if spec.uid != 0 || spec.gid != 0 || !spec.additional_gids.is_empty() {
        return Err(invalid(
            "user",
            format!("{}:{} {:?}", spec.uid, spec.gid, spec.additional_gids),
            "a rootless container maps only your own uid and gid, to 0 inside (subordinate ids are not supported yet)",
        ));
    }
    if spec.net == NetMode::Veth {
        return Err(invalid(
            "net",
            "veth".into(),
            "a veth pair to the host needs root on the host",
        ));
    }
    Ok(())
}

/// `m` as a user namespace can mount it: devpts without `gid=5`, a group
/// that is not mapped.
pub(crate) fn mount(m: &MountSpec) -> MountSpec {
    let mut m = m.clone();
    if m.fstype == "devpts" {
        m.options.retain(|o| !o.starts_with("gid="));
    }
    m
}

/// Maps the caller's uid and gid to 0 in the user namespace of `pid`.
pub(crate) fn write_id_maps(pid: libc::pid_t) -> Result<()> {
    // SAFETY: no arguments.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let write = |file: &str, text: String| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| Error::host(format!("write {path}"), e))
    };
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("setgroups", "deny".into())?;
    write("gid_map", format!("0 {gid} 1\n"))
}

fn limits_asked(res: &Resources) -> Vec<&'static str> {
    let mut v = Vec::new();
    if res.memory.is_some() {
        v.push("memory");
    }
    if res.cpus.is_some() {
        v.push("cpus");
    }
    if res.pids.is_some() {
        v.push("pids");
    }
    v
}

fn denied(e: &Error) -> bool {
    match e {
        // EBUSY: cgroup v2 will not delegate controllers below a group that
        // holds processes, as the caller's own does.
        Error::Cgroup { source, .. } => {
            matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) || source.raw_os_error() == Some(libc::EBUSY)
        }
        Error::ControllerUnavailable { .. } => true,
        _ => false,
    }
}

/// The cgroup of a rootless run: the usual one where this user may create
/// groups, else none, with the note saying which limits are off and why.
pub(crate) fn cgroup(spec: &ContainerSpec) -> Result<(Box<dyn CgroupManager>, Option<String>)> {
    let mut m = crate::cgroup::manager_for(&spec.cgroup, spec.cgroup_placement)?;
    match m.create(&spec.resources, None) {
        Ok(()) => Ok((m, None)),
        Err(e) if denied(&e) => {
            let _ = m.remove();
            let off = limits_asked(&spec.resources);
            let note = (!off.is_empty()).then(|| {
                format!(
                    "rootless: no cgroup this user may write ({e}); limits off: {}",
                    off.join(", ")
                )
            });
            Ok((Box::new(NoCgroup), note))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devpts_loses_its_unmapped_group_and_ids_must_be_zero() {
        let pts = crate::mounts::default_mounts()
            .into_iter()
            .find(|m| m.fstype == "devpts")
            .unwrap();
        assert!(pts.options.iter().any(|o| o == "gid=5"));
        assert!(!mount(&pts).options.iter().any(|o| o.starts_with("gid=")));
        let mut s = ContainerSpec::minimal("/bin/true");
        assert!(check(&s).is_ok());
        s.uid = 1000;
        assert!(check(&s).unwrap_err().to_string().contains("user"));
    }
}
