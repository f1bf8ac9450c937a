//! Capability sets: the OCI default set, parsing `CAP_*` names, and applying a
//! set in the child with raw `prctl`/`capset` (no allocation).

use std::io;
use std::str::FromStr;

use caps::Capability;

use crate::{Error, Result};

/// The default set container runtimes give a root process (the one Docker,
/// containerd and CRI-O use): enough to run ordinary software as root,
/// nothing that reaches the host kernel.
pub const OCI_DEFAULT: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// The five capability sets of the workload, as bit masks (bit n = capability n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilitySet {
    /// Bounding set: the most the process (and its children) can ever have.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Ambient set.
    pub ambient: u64,
}

/// Bit mask of a list of capabilities.
pub fn mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | c.bitmask())
}

/// Parses `CAP_*` names (as in OCI `process.capabilities`) into a mask.
pub fn parse_names<S: AsRef<str>>(field: &'static str, names: &[S]) -> Result<u64> {
    let mut m = 0;
    for n in names {
        let c = Capability::from_str(n.as_ref()).map_err(|_| Error::InvalidSpec {
            field,
            value: n.as_ref().to_string(),
            reason: "unknown capability name".into(),
        })?;
        m |= c.bitmask();
    }
    Ok(m)
}

impl CapabilitySet {
    /// The OCI default set in bounding, effective and permitted; nothing inheritable or ambient.
    pub fn oci_default() -> CapabilitySet {
        let m = mask(OCI_DEFAULT);
        CapabilitySet {
            bounding: m,
            effective: m,
            permitted: m,
            inheritable: 0,
            ambient: 0,
        }
    }

    /// Every capability (no dropping at all; only for experiments).
    pub fn all() -> CapabilitySet {
        let m = mask(&caps::all().into_iter().collect::<Vec<_>>());
        CapabilitySet {
            bounding: m,
            effective: m,
            permitted: m,
            inheritable: 0,
            ambient: 0,
        }
    }
}

/// Highest capability number the kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops every capability outside `set.bounding` from the bounding set. Needs CAP_SETPCAP.
pub fn drop_bounding(set: &CapabilitySet, last_cap: u32) -> io::Result<()> {
    for cap in 0..=last_cap.min(63) {
        if set.bounding & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets effective, permitted and inheritable sets, then the ambient set.
pub fn apply_sets(set: &CapabilitySet) -> io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let lo = |m: u64| m as u32;
    let hi = |m: u64| (m >> 32) as u32;
    let data = [
        CapData {
            effective: lo(set.effective),
            permitted: lo(set.permitted),
            inheritable: lo(set.inheritable),
        },
        CapData {
            effective: hi(set.effective),
            permitted: hi(set.permitted),
            inheritable: hi(set.inheritable),
        },
    ];
    // SAFETY: header and data are the kernel's v3 layout and live across the call.
    if unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    for cap in 0..64u64 {
        if set.ambient & (1 << cap) != 0 {
            // SAFETY: prctl with integer arguments only.
            let rc =
                unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap, 0, 0) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_default_mask_is_the_well_known_value() {
        // 0xa80425fb is what `grep CapEff /proc/self/status` shows in a default Docker container.
        assert_eq!(mask(OCI_DEFAULT), 0xa804_25fb);
        let d = CapabilitySet::oci_default();
        assert_eq!((d.inheritable, d.ambient), (0, 0));
    }

    #[test]
    fn names_parse_and_unknown_names_are_rejected() {
        assert_eq!(
            parse_names("caps", &["CAP_KILL", "CAP_CHOWN"]).unwrap(),
            (1 << 5) | 1
        );
        let err = parse_names("process.capabilities.bounding", &["CAP_FLY"]).unwrap_err();
        assert!(err.to_string().contains("CAP_FLY"), "{err}");
    }
}
