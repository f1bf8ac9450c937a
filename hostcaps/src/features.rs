//! Smaller kernel features isolab uses: seccomp, overlayfs, TUN, THP.

use std::path::Path;

/// `Ok` when the kernel supports seccomp filters (the `Seccomp:` field exists in
/// `/proc/self/status`, which needs `CONFIG_SECCOMP`), with the filter mode.
pub fn seccomp() -> Result<(), String> {
    seccomp_from_status(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
}

/// Parses the seccomp support out of a `/proc/<pid>/status` text.
pub fn seccomp_from_status(status: &str) -> Result<(), String> {
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        Ok(())
    } else {
        Err("the kernel has no seccomp support (CONFIG_SECCOMP_FILTER)".into())
    }
}

/// `Ok` when `/proc/filesystems` lists `overlay`.
pub fn overlayfs() -> Result<(), String> {
    filesystem_listed(
        &std::fs::read_to_string("/proc/filesystems").unwrap_or_default(),
        "overlay",
    )
}

/// Whether a `/proc/filesystems` text lists `fs`.
pub fn filesystem_listed(text: &str, fs: &str) -> Result<(), String> {
    if text
        .lines()
        .any(|l| l.split_whitespace().last() == Some(fs))
    {
        Ok(())
    } else {
        Err(format!("the kernel has no {fs} filesystem (modprobe {fs})"))
    }
}

/// `Ok` when `/dev/net/tun` exists.
pub fn tun() -> Result<(), String> {
    if Path::new("/dev/net/tun").exists() {
        Ok(())
    } else {
        Err("/dev/net/tun is missing (modprobe tun)".into())
    }
}

/// The transparent-huge-page mode (`always`, `madvise` or `never`), if readable.
pub fn thp_mode() -> Option<String> {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .ok()
        .and_then(|s| selected(&s))
}

/// The bracketed choice of a sysfs multiple-choice file (`always [madvise] never`).
pub fn selected(text: &str) -> Option<String> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(text[start + 1..end].to_string())
}

/// The CPU frequency governor of cpu0, if the host exposes one.
pub fn cpu_governor() -> Option<String> {
    std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_field_means_support() {
        assert!(seccomp_from_status("Name:\tx\nSeccomp:\t0\nSeccomp_filters:\t0\n").is_ok());
        assert!(seccomp_from_status("Name:\tx\nNoNewPrivs:\t0\n").is_err());
    }

    #[test]
    fn overlay_listed_in_proc_filesystems() {
        let text = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n";
        assert!(filesystem_listed(text, "overlay").is_ok());
        assert!(filesystem_listed(text, "btrfs").is_err());
        assert!(filesystem_listed("nodev\toverlayfs2\n", "overlay").is_err());
    }

    #[test]
    fn thp_mode_is_the_bracketed_choice() {
        assert_eq!(
            selected("always [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(
            selected("[always] madvise never").as_deref(),
            Some("always")
        );
        assert_eq!(selected("garbage"), None);
    }
}
