//! Filesystem mounts inside the root: the default set and `mount(8)`-style options.

/// One filesystem to mount inside the container (OCI `mounts[]` shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub destination: String,
    /// Filesystem type (`proc`, `tmpfs`, …) or `bind`/`none` for bind mounts.
    pub fstype: String,
    /// Source: a device name for pseudo filesystems, a host path for bind mounts.
    pub source: String,
    /// `mount(8)` options: flags (`ro`, `nosuid`, `bind`, …) and data (`mode=755`).
    pub options: Vec<String>,
}

impl MountSpec {
    fn new(dest: &str, fstype: &str, source: &str, options: &[&str]) -> MountSpec {
        MountSpec {
            destination: dest.into(),
            fstype: fstype.into(),
            source: source.into(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// True when this is a bind mount of a host path.
    pub fn is_bind(&self) -> bool {
        self.fstype == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

/// The mounts every container gets, the same set OCI runtimes use.
pub fn default_mounts() -> Vec<MountSpec> {
    vec![
        MountSpec::new("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        MountSpec::new(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "strictatime", "mode=755", "size=65536k"],
        ),
        MountSpec::new(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        MountSpec::new(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        MountSpec::new(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        MountSpec::new(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ]
}

/// Parsed options: mount flags, filesystem data, and propagation flags (applied separately).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedOptions {
    /// Flags for `mount(2)`.
    pub flags: libc::c_ulong,
    /// Flags that need a remount to take effect on a bind mount (`ro`, `nosuid`, …).
    pub clear_or_set_after_bind: libc::c_ulong,
    /// Propagation flags (`rprivate`, `shared`, …).
    pub propagation: libc::c_ulong,
    /// Comma-joined filesystem-specific options.
    pub data: String,
}

/// Parses `mount(8)` options into flags and data. Unknown words go to data,
/// where the filesystem itself rejects what it does not know.
pub fn parse_options(options: &[String]) -> ParsedOptions {
    let mut p = ParsedOptions::default();
    let mut data = Vec::new();
    for o in options {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match o.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "bind" => (libc::MS_BIND, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let rec = if o.starts_with('r') && o != "rw" {
                    libc::MS_REC
                } else {
                    0
                };
                let kind = match o.trim_start_matches('r') {
                    "private" => libc::MS_PRIVATE,
                    "shared" => libc::MS_SHARED,
                    "slave" => libc::MS_SLAVE,
                    _ => libc::MS_UNBINDABLE,
                };
                p.propagation = kind | rec;
                continue;
            }
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        p.flags = (p.flags | set) & !clear;
    }
    let per_mount = libc::MS_RDONLY
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC
        | libc::MS_NOATIME
        | libc::MS_NODIRATIME
        | libc::MS_RELATIME
        | libc::MS_STRICTATIME;
    p.clear_or_set_after_bind = p.flags & per_mount;
    p.data = data.join(",");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_and_data_are_split() {
        let p = parse_options(&opts(&[
            "nosuid",
            "noexec",
            "mode=1777",
            "size=65536k",
            "ro",
        ]));
        assert_eq!(p.flags, libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_RDONLY);
        assert_eq!(p.data, "mode=1777,size=65536k");
        assert_eq!(p.propagation, 0);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let p = parse_options(&opts(&["ro", "rw"]));
        assert_eq!(p.flags & libc::MS_RDONLY, 0);
    }

    #[test]
    fn rbind_is_recursive_bind_and_propagation_is_separate() {
        let p = parse_options(&opts(&["rbind", "rprivate", "ro"]));
        assert_eq!(p.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(p.propagation, libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(p.clear_or_set_after_bind, libc::MS_RDONLY);
    }

    #[test]
    fn default_set_has_proc_dev_and_readonly_sys() {
        let m = default_mounts();
        let sys = m
            .iter()
            .find(|m| m.destination == "/sys")
            .expect("sys mount");
        assert!(sys.options.contains(&"ro".to_string()));
        assert!(
            m.iter()
                .any(|m| m.destination == "/proc" && m.fstype == "proc")
        );
        assert!(!m.iter().any(MountSpec::is_bind));
    }
}
