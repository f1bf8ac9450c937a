//! What a front end may leave behind when a run fails half way: mounts
//! under its private directory and the cgroup subtree its containers used.

use std::path::{Path, PathBuf};

/// Mount points at or below `dir`, deepest first, from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Detaches every mount at or below `dir`. Returns those that would not go.
pub fn unmount_under(dir: &Path) -> Vec<String> {
    let mut stuck = Vec::new();
    for m in mounts_under(dir) {
        if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            stuck.push(format!("{}: {e}", m.display()));
        }
    }
    stuck
}

/// The directories of cgroup `name` (a path relative to each hierarchy's
/// root) in every mounted cgroup hierarchy that has it.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    hostcaps::cgroup::parse_mountinfo(&text)
        .into_iter()
        .map(|m| m.path.join(name.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes cgroup `name` and its children in every hierarchy, deepest
/// first (a cgroup directory goes with `rmdir` once it has no processes).
/// Returns those that would not go.
pub fn remove_cgroup(name: &str) -> Vec<String> {
    let mut stuck = Vec::new();
    for top in cgroup_dirs(name) {
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for d in dirs {
            if let Err(e) = std::fs::remove_dir(&d) {
                stuck.push(format!("{}: {e}", d.display()));
            }
        }
    }
    stuck
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nothing_is_mounted_under_a_fresh_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(mounts_under(dir.path()).is_empty());
        assert!(unmount_under(dir.path()).is_empty());
    }

    #[test]
    fn the_root_is_a_mount_and_a_missing_cgroup_has_no_directories() {
        assert_eq!(mounts_under(Path::new("/")).last().unwrap(), Path::new("/"));
        assert!(cgroup_dirs("/isolab-no-such-cgroup-for-sure").is_empty());
        assert!(remove_cgroup("/isolab-no-such-cgroup-for-sure").is_empty());
    }
}
