//! OCI `linux.resources.cpu.cpus` / `mems`: the CPUs and memory nodes the
//! container may use, in the kernel's list format (`0-3,6`). v1 writes them
//! to the `cpuset` hierarchy, v2 to the group's `cpuset.cpus`/`cpuset.mems`.

use std::path::Path;

use super::write;
use crate::spec::Resources;
use crate::{Error, Result};

/// Highest CPU or node number accepted (the kernel's own limit is lower on
/// any real machine; this only keeps the numbers sane).
const MAX_ID: u32 = 8191;

/// Checks a CPU or node list (`0-3,6`): comma-separated numbers or ranges
/// `a-b` with `a <= b`. Returns it without blanks.
pub fn parse_list(field: &'static str, value: &str) -> Result<String> {
    let bad = |why: &str| Error::InvalidSpec {
        field,
        value: value.to_string(),
        reason: format!("{why}; expected a list like 0-3,6"),
    };
    let list: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    if list.is_empty() {
        return Err(bad("is empty"));
    }
    let num = |s: &str| -> Result<u32> {
        match s.parse::<u32>() {
            Ok(n) if n <= MAX_ID => Ok(n),
            Ok(_) => Err(bad(&format!("{s} is above {MAX_ID}"))),
            Err(_) => Err(bad(&format!("{s:?} is not a number"))),
        }
    };
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) if num(a)? > num(b)? => {
                return Err(bad(&format!("range {part} runs backwards")));
            }
            Some(_) => {}
            None => {
                num(part)?;
            }
        }
    }
    Ok(list)
}

/// True when `res` asks for a cpuset.
pub(crate) fn wanted(res: &Resources) -> bool {
    res.cpuset_cpus.is_some() || res.cpuset_mems.is_some()
}

/// Writes one list; the kernel refuses CPUs or nodes the parent group does
/// not have, which is said with the parent's set.
fn write_list(dir: &Path, file: &str, field: &'static str, value: &str) -> Result<()> {
    write(&dir.join(file), value).map_err(|e| match e {
        Error::Cgroup { ref source, .. }
            if matches!(source.raw_os_error(), Some(libc::EINVAL | libc::ERANGE)) =>
        {
            let parent = dir
                .parent()
                .and_then(|p| {
                    std::fs::read_to_string(p.join(format!("{file}.effective")))
                        .ok()
                        .or_else(|| std::fs::read_to_string(p.join(file)).ok())
                })
                .unwrap_or_default();
            Error::InvalidSpec {
                field,
                value: value.to_string(),
                reason: format!(
                    "not available to the container's parent group (it has {})",
                    parent.trim()
                ),
            }
        }
        other => other,
    })
}

/// Writes the requested lists to the group `dir`.
pub(crate) fn apply(dir: &Path, res: &Resources) -> Result<()> {
    if let Some(mems) = &res.cpuset_mems {
        write_list(dir, "cpuset.mems", "linux.resources.cpu.mems", mems)?;
    }
    if let Some(cpus) = &res.cpuset_cpus {
        write_list(dir, "cpuset.cpus", "linux.resources.cpu.cpus", cpus)?;
    }
    Ok(())
}

/// v1: a new cpuset group has no CPUs and no nodes and takes no task until
/// it has both. Fills every empty group from `dir` up (the parents made for
/// a `cgroupsPath` too) from its parent, top down.
pub(crate) fn fill_v1(dir: &Path) -> Result<()> {
    let empty = |d: &Path| {
        std::fs::read_to_string(d.join("cpuset.cpus")).map_or(true, |s| s.trim().is_empty())
    };
    let mut chain = Vec::new();
    let mut d = dir;
    while let Some(parent) = d.parent() {
        chain.push(d);
        if !empty(parent) {
            break;
        }
        d = parent;
    }
    for d in chain.into_iter().rev() {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = std::fs::read_to_string(d.join(file)).unwrap_or_default();
            if own.trim().is_empty()
                && let Some(p) = d.parent()
            {
                let from = std::fs::read_to_string(p.join(file)).unwrap_or_default();
                write(&d.join(file), from.trim())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_checked_by_field() {
        assert_eq!(parse_list("f", "0-3, 6").unwrap(), "0-3,6");
        assert_eq!(parse_list("f", "0").unwrap(), "0");
        for bad in ["", "3-1", "a", "0,,1", "-1", "99999", "1-"] {
            assert!(
                matches!(
                    parse_list("f", bad),
                    Err(Error::InvalidSpec { field: "f", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn empty_v1_groups_are_filled_from_their_parents() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path();
        std::fs::write(top.join("cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(top.join("cpuset.mems"), "0\n").unwrap();
        let mid = top.join("a");
        let leaf = mid.join("b");
        std::fs::create_dir_all(&leaf).unwrap();
        for d in [&mid, &leaf] {
            std::fs::write(d.join("cpuset.cpus"), "\n").unwrap();
            std::fs::write(d.join("cpuset.mems"), "").unwrap();
        }
        fill_v1(&leaf).unwrap();
        for d in [&mid, &leaf] {
            assert_eq!(
                std::fs::read_to_string(d.join("cpuset.cpus")).unwrap(),
                "0-1"
            );
            assert_eq!(std::fs::read_to_string(d.join("cpuset.mems")).unwrap(), "0");
        }
    }
}
