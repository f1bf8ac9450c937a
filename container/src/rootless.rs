//! Rootless containers: a caller that is not root gets a new user namespace
//! in which its own uid and gid are 0, as `podman` and `runc` rootless do.
//!
//! Where `/etc/subuid` and `/etc/subgid` grant the caller a range and the
//! setuid helpers `newuidmap`/`newgidmap` (package `uidmap`) are installed,
//! the runtime has them map ids 1 to `count` inside to that range too (see
//! [`subid`]), so a program may run as, say, uid 1000 inside; `setgroups`
//! stays allowed. Otherwise it writes the child's maps itself (`0 <uid> 1`,
//! `0 <gid> 1`, with `setgroups` denied, which an unprivileged process may do
//! for its own child), only id 0 exists inside, and a note says why. The maps
//! are written before the child starts its set-up. Limits need a cgroup the
//! user may write (a delegated cgroup v2 subtree); where there is none, the
//! run goes on without one and a note names the limits that are off. Device
//! nodes cannot be made in a user namespace at all, so there is no device
//! cgroup to miss.

use std::io;
use std::process::{Command, Stdio};

pub mod subid;

pub use subid::IdMaps;

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

/// Refuses, by field, what a rootless container cannot do here.
pub(crate) fn check(spec: &ContainerSpec) -> Result<()> {
    check_with(spec, &IdMaps::for_caller())
}

fn check_with(spec: &ContainerSpec, maps: &IdMaps) -> Result<()> {
    check_id("uid", spec.uid, maps.max_uid(), maps)?;
    check_id("gid", spec.gid, maps.max_gid(), maps)?;
    for g in &spec.additional_gids {
        check_id("additional gids", *g, maps.max_gid(), maps)?;
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

/// Refuses `id` for `field` when it is not mapped (0 to `max` inside).
fn check_id(field: &'static str, id: u32, max: u32, maps: &IdMaps) -> Result<()> {
    if id <= max {
        return Ok(());
    }
    let reason = match &maps.sub {
        Some(_) => format!(
            "a rootless container maps {field} 0 to {max} here (0 is your own, 1 to {max} your subordinate range)"
        ),
        None => format!(
            "a rootless container maps only {field} 0 here: {}",
            maps.why_none.as_deref().unwrap_or("no subordinate ids")
        ),
    };
    Err(invalid(field, id.to_string(), &reason))
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

/// Writes the id maps of the user namespace of `pid` as `maps` says: with
/// `newuidmap`/`newgidmap` where there are subordinate ids, else directly.
pub(crate) fn write_id_maps(pid: libc::pid_t, maps: &IdMaps) -> Result<()> {
    if let Some(sub) = &maps.sub {
        // Independent files: both helpers run at once.
        let uids = start_helper(&sub.newuidmap, pid, &maps.uid_lines())?;
        let gids = start_helper(&sub.newgidmap, pid, &maps.gid_lines());
        let uids = finish_helper(uids);
        return uids.and(finish_helper(gids?));
    }
    let write = |file: &str, text: String| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| Error::host(format!("write {path}"), e))
    };
    write("uid_map", subid::map_text(&maps.uid_lines()))?;
    write("setgroups", "deny".into())?;
    write("gid_map", subid::map_text(&maps.gid_lines()))
}

/// Starts a setuid map helper; returns it with its command line.
fn start_helper(
    helper: &std::path::Path,
    pid: libc::pid_t,
    lines: &[[u32; 3]],
) -> Result<(std::process::Child, String)> {
    let args = subid::helper_args(pid, lines);
    let what = format!("{} {}", helper.display(), args.join(" "));
    let child = Command::new(helper)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::host(what.clone(), e))?;
    Ok((child, what))
}

/// Waits for a helper; its own message is the error when it fails.
fn finish_helper((child, what): (std::process::Child, String)) -> Result<()> {
    let out = child
        .wait_with_output()
        .map_err(|e| Error::host(what.clone(), e))?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(Error::host(
        what,
        io::Error::other(format!("{}: {msg}", out.status)),
    ))
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
    fn devpts_loses_its_unmapped_group() {
        let pts = crate::mounts::default_mounts()
            .into_iter()
            .find(|m| m.fstype == "devpts")
            .unwrap();
        assert!(pts.options.iter().any(|o| o == "gid=5"));
        assert!(!mount(&pts).options.iter().any(|o| o.starts_with("gid=")));
    }

    #[test]
    fn ids_outside_the_mapped_range_are_refused_by_field() {
        let none = subid::Host {
            name: Some("alice"),
            subuid: Ok(""),
            subgid: Ok(""),
            newuidmap: None,
            newgidmap: None,
        };
        let only_zero = IdMaps::decide(1000, 1000, &none);
        let with_sub = IdMaps::decide(
            1000,
            1000,
            &subid::Host {
                subuid: Ok("alice:100000:65536\n"),
                subgid: Ok("alice:100000:65536\n"),
                newuidmap: Some("/x".into()),
                newgidmap: Some("/y".into()),
                ..none
            },
        );
        let mut s = ContainerSpec::minimal("/bin/true");
        assert!(check_with(&s, &only_zero).is_ok());
        s.uid = 1000;
        let e = check_with(&s, &only_zero).unwrap_err().to_string();
        assert!(
            e.contains("uid") && e.contains("no /etc/subuid range"),
            "{e}"
        );
        assert!(check_with(&s, &with_sub).is_ok());
        s.uid = 65537;
        let e = check_with(&s, &with_sub).unwrap_err().to_string();
        assert!(e.contains("uid") && e.contains("0 to 65536"), "{e}");
        s.uid = 0;
        s.additional_gids = vec![5, 70000];
        let e = check_with(&s, &with_sub).unwrap_err().to_string();
        assert!(e.contains("additional gids") && e.contains("70000"), "{e}");
    }
}
