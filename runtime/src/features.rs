//! `features` (the runtime spec's features document) and `spec` (a default config.json).

use std::path::Path;

use crate::{Error, Result};

/// The features JSON: what isolab's container runtime implements.
pub(crate) fn features() -> Result<String> {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let value = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.0.2",
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": [
            "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind",
            "private", "rprivate", "slave", "rslave", "relatime", "strictatime", "noatime"
        ],
        "linux": {
            "namespaces": ["mount", "pid", "network", "ipc", "uts", "cgroup", "user", "time"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
                            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_LOG"],
                "operators": ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                              "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"],
                "archs": ["SCMP_ARCH_X86_64"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {
            "org.isolab.runtime": "container",
            "org.isolab.cgroupfs": "own groups only (v2 cgroup2 in a cgroup namespace or a bind; v1 tmpfs with per-hierarchy binds)",
            "org.isolab.resources": "memory (limit, swap), cpu (quota, period, shares, cpus, mems), pids, devices",
            "org.isolab.exec": "signals forwarded, --preserve-fds"
        }
    });
    // Checked against the runtime spec's model.
    let _: oci_spec::runtime::Features =
        serde_json::from_value(value.clone()).map_err(|e| Error::Usage(e.to_string()))?;
    serde_json::to_string_pretty(&value).map_err(|e| Error::Usage(e.to_string()))
}

/// `spec`: writes `bundle/config.json` (runc's defaults, from `oci-spec`),
/// refusing to overwrite one.
pub(crate) fn write_spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::Usage(format!(
            "{} exists: remove it first",
            path.display()
        )));
    }
    let spec = if rootless {
        oci_spec::runtime::Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        oci_spec::runtime::Spec::default()
    };
    let text = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Usage(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}
