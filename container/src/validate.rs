//! Checks of a [`ContainerSpec`] before anything is created: every refusal
//! names the field and says what would be accepted.
//!
//! Limits: memory at least [`MIN_MEMORY_BYTES`] and at most the host's RAM;
//! CPUs at least [`MIN_CPUS`] and at most the host's online CPUs; pids at
//! least 1 and at most the kernel's pid limit. Ids: 0 to 2^31 − 1, as runc
//! insists, because `(uid_t)-1` means "unchanged" to `setresuid` and a larger
//! id would leave the program running as root.

use crate::cgroup::MIN_CPUS;
use crate::spec::ContainerSpec;
use crate::{Error, Result};

/// Smallest memory limit accepted: below it even the set-up cannot finish.
pub const MIN_MEMORY_BYTES: u64 = 4 << 20;

/// Largest user or group id accepted.
pub const MAX_ID: u32 = i32::MAX as u32;

/// The kernel's hard upper bound on pids (`PID_MAX_LIMIT` on 64-bit).
pub const MAX_PIDS: u64 = 4 << 20;

/// Bytes of RAM the host has.
pub fn host_ram_bytes() -> u64 {
    // SAFETY: sysinfo fills a zeroed struct.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return u64::MAX;
    }
    (si.totalram as u64).saturating_mul(u64::from(si.mem_unit.max(1)))
}

/// CPUs online on the host.
pub fn host_cpus() -> u32 {
    // SAFETY: sysconf takes an integer.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 { n as u32 } else { 1 }
}

fn invalid(field: &'static str, value: impl ToString, reason: impl Into<String>) -> Error {
    Error::InvalidSpec {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Checks the resource limits of `spec`.
pub fn limits(spec: &ContainerSpec) -> Result<()> {
    let r = &spec.resources;
    if let Some(m) = r.memory {
        if m < MIN_MEMORY_BYTES {
            return Err(Error::MemoryLimitTooLow {
                limit: m,
                minimum: MIN_MEMORY_BYTES,
            });
        }
        let ram = host_ram_bytes();
        if m > ram {
            return Err(invalid(
                "memory",
                m,
                format!(
                    "is more than this host's {} MiB of RAM (limits above it are refused, not clamped)",
                    ram >> 20
                ),
            ));
        }
    }
    if let Some(c) = r.cpus {
        let host = host_cpus();
        if !c.is_finite() || c < MIN_CPUS {
            return Err(invalid(
                "cpus",
                c,
                format!("must be at least {MIN_CPUS} (1 ms of CPU time per 100 ms)"),
            ));
        }
        if c > f64::from(host) {
            return Err(invalid(
                "cpus",
                c,
                format!(
                    "is more than this host's {host} CPUs (limits above it are refused, not clamped)"
                ),
            ));
        }
    }
    match r.pids {
        Some(0) => Err(invalid("pids", 0, "must be at least 1")),
        Some(p) if p > MAX_PIDS => Err(invalid(
            "pids",
            p,
            format!("must be at most {MAX_PIDS}, the kernel's pid limit"),
        )),
        _ => Ok(()),
    }
}

/// Checks the user and group ids of `spec`.
pub fn ids(spec: &ContainerSpec) -> Result<()> {
    if !spec.hardening.check_ids {
        return Ok(());
    }
    let range = format!("must be 0 to {MAX_ID}");
    if spec.uid > MAX_ID {
        return Err(invalid("uid", spec.uid, range));
    }
    if spec.gid > MAX_ID {
        return Err(invalid("gid", spec.gid, range));
    }
    if let Some(g) = spec.additional_gids.iter().find(|g| **g > MAX_ID) {
        return Err(invalid("additional gids", g, range));
    }
    Ok(())
}

/// Every check of `spec` made before anything is created.
pub fn spec(spec: &ContainerSpec) -> Result<()> {
    limits(spec)?;
    ids(spec)?;
    if spec.user_namespace {
        crate::rootless::check(spec)?;
    }
    if spec.hostname.len() > 64 || spec.hostname.contains('\0') {
        return Err(invalid(
            "hostname",
            &spec.hostname,
            "must be at most 64 bytes without NUL",
        ));
    }
    if !spec.cwd.starts_with('/') {
        return Err(invalid("cwd", &spec.cwd, "must be absolute"));
    }
    if let Some(e) = spec.env.iter().find(|e| !e.contains('=')) {
        return Err(invalid("env", e, "must be KEY=VALUE"));
    }
    if let Some(p) = &spec.cgroup_path {
        let rel = p.trim_start_matches('/');
        if rel.is_empty()
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(invalid(
                "cgroup_path",
                p,
                "must be a path of named components below the hierarchy root",
            ));
        }
    }
    for (key, value) in &spec.sysctls {
        sysctl(spec, key, value)?;
    }
    for v in &spec.volumes {
        if !v.host.exists() {
            return Err(Error::BadVolume {
                spec: format!("{}:{}", v.host.display(), v.guest.display()),
                reason: format!("host path {} does not exist", v.host.display()),
            });
        }
    }
    Ok(())
}

/// A sysctl the container's own namespaces scope (others would change the
/// host), with a name that stays below `/proc/sys` and a one-line value.
fn sysctl(spec: &ContainerSpec, key: &str, value: &str) -> Result<()> {
    let name_ok = !key.is_empty()
        && key.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if !name_ok {
        return Err(invalid("sysctl", key, "is not a sysctl name"));
    }
    let ipc = key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
        || key.starts_with("fs.mqueue.");
    let scoped = if key.starts_with("net.") {
        spec.net != crate::spec::NetMode::Host
    } else {
        ipc && spec.namespaces.ipc
    };
    if !scoped {
        return Err(invalid(
            "sysctl",
            key,
            "is not scoped by a namespace of this container (net.* needs a network namespace, IPC sysctls an IPC namespace; others would change the host)",
        ));
    }
    if value.contains('\n') || value.contains('\0') {
        return Err(invalid("sysctl", value, "must be one line"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ContainerSpec {
        ContainerSpec::with_rootfs("/", "/bin/true")
    }

    fn field_of(e: Error) -> &'static str {
        match e {
            Error::InvalidSpec { field, .. } => field,
            Error::MemoryLimitTooLow { .. } => "memory",
            other => panic!("{other}"),
        }
    }

    #[test]
    fn absurd_limits_are_refused_naming_the_field() {
        for m in [0, 1 << 20, u64::MAX, 8191u64 << 40] {
            assert_eq!(
                field_of(limits(&base().memory(m)).unwrap_err()),
                "memory",
                "{m}"
            );
        }
        for c in [0.0, 0.0001, -1.0, f64::NAN, f64::INFINITY, 1e6] {
            assert_eq!(
                field_of(limits(&base().cpus(c)).unwrap_err()),
                "cpus",
                "{c}"
            );
        }
        for p in [0, MAX_PIDS + 1] {
            assert_eq!(field_of(limits(&base().pids(Some(p))).unwrap_err()), "pids");
        }
        limits(&base().memory(64 << 20).cpus(MIN_CPUS).pids(Some(1))).unwrap();
        limits(&base().cpus(f64::from(host_cpus()))).unwrap();
        let e = limits(&base().memory(u64::MAX)).unwrap_err().to_string();
        assert!(e.contains("refused, not clamped"), "{e}");
    }

    #[test]
    fn ids_above_2_31_are_refused_unless_the_check_is_off() {
        let mut s = base();
        s.uid = u32::MAX;
        assert_eq!(field_of(ids(&s).unwrap_err()), "uid");
        s.uid = MAX_ID;
        ids(&s).unwrap();
        s.gid = MAX_ID + 1;
        assert_eq!(field_of(ids(&s).unwrap_err()), "gid");
        s.gid = 0;
        s.additional_gids = vec![5, u32::MAX];
        assert_eq!(field_of(ids(&s).unwrap_err()), "additional gids");
        s.hardening.check_ids = false;
        ids(&s).unwrap();
    }
}
