//! Peer tools found on `PATH`, with their versions.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// A peer program isolab can compare against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Program name (`runc`, `bwrap`, …).
    pub name: String,
    /// Full path, if found.
    pub path: Option<PathBuf>,
    /// First line of its version output, if found.
    pub version: Option<String>,
}

/// The peers doctor lists, and the flag that prints each one's version.
pub const PEERS: [(&str, &str); 6] = [
    ("runc", "--version"),
    ("crun", "--version"),
    ("bwrap", "--version"),
    ("qemu-system-x86_64", "--version"),
    ("fio", "--version"),
    ("busybox", "--help"),
];

/// Finds `name` on `PATH` (or the usual sbin directories root has).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Looks up one peer.
pub fn find(name: &str, version_flag: &str) -> Peer {
    let path = which(name);
    let version = path.as_ref().and_then(|p| {
        let out = Command::new(p).arg(version_flag).output().ok()?;
        let text = if out.stdout.is_empty() {
            out.stderr
        } else {
            out.stdout
        };
        String::from_utf8_lossy(&text)
            .lines()
            .next()
            .map(|l| l.trim().to_string())
    });
    Peer {
        name: name.into(),
        path,
        version,
    }
}

/// Looks up every peer in [`PEERS`].
pub fn all() -> Vec<Peer> {
    PEERS.iter().map(|(n, f)| find(n, f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_a_made_up_name() {
        assert!(which("sh").is_some());
        assert!(which("isolab-no-such-program-xyz").is_none());
        let p = find("isolab-no-such-program-xyz", "--version");
        assert_eq!((p.path, p.version), (None, None));
    }
}
