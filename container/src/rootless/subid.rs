//! Subordinate ids: the ranges `/etc/subuid` and `/etc/subgid` grant a user,
//! and the id maps of a rootless container built from them.
//!
//! With a range for the caller in both files and the setuid helpers
//! `newuidmap` and `newgidmap` (package `uidmap`) installed, id 0 inside is
//! the caller's own id and ids 1 to `count` inside are the range; otherwise
//! only 0 is mapped, and [`IdMaps::note`] says why.

use std::ffi::CStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `count` host ids from `start` on, granted to one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubidRange {
    /// First host id of the range.
    pub start: u32,
    /// How many ids (at least 1).
    pub count: u32,
}

/// The first range in `text` (the `/etc/subuid` format: `owner:start:count`
/// lines, `#` comments) whose owner is `name` or the number `id`. Blank,
/// comment and malformed lines are skipped, as are empty or overflowing ranges.
pub fn find_range(text: &str, name: Option<&str>, id: u32) -> Option<SubidRange> {
    text.lines().find_map(|line| {
        let (owner, range) = parse_line(line)?;
        let mine = Some(owner) == name || owner.parse::<u32>() == Ok(id);
        mine.then_some(range)
    })
}

fn parse_line(line: &str) -> Option<(&str, SubidRange)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split(':');
    let owner = fields.next()?.trim();
    let start: u32 = fields.next()?.trim().parse().ok()?;
    let count: u32 = fields.next()?.trim().parse().ok()?;
    if fields.next().is_some() || owner.is_empty() || count == 0 {
        return None;
    }
    // Inside, the range is ids 1..=count; on the host it must not wrap.
    start.checked_add(count - 1)?;
    count.checked_add(1)?;
    Some((owner, SubidRange { start, count }))
}

/// The subordinate half of a rootless container's id maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subordinate {
    /// The caller's `/etc/subuid` range, mapped to uids 1..=count inside.
    pub uids: SubidRange,
    /// The caller's `/etc/subgid` range, mapped to gids 1..=count inside.
    pub gids: SubidRange,
    /// The setuid helper that writes `uid_map`.
    pub newuidmap: PathBuf,
    /// The setuid helper that writes `gid_map` (and leaves `setgroups` allowed).
    pub newgidmap: PathBuf,
}

/// How a rootless container's user namespace maps ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    /// The caller's uid, mapped to 0 inside.
    pub uid: u32,
    /// The caller's gid, mapped to 0 inside.
    pub gid: u32,
    /// Subordinate ranges, where the caller has them and the helpers exist.
    pub sub: Option<Subordinate>,
    /// Why there are none, when there are none (e.g. "no /etc/subuid range for alice").
    pub why_none: Option<String>,
}

/// What [`IdMaps::decide`] looks at: the caller and what the host offers.
#[derive(Debug)]
pub struct Host<'a> {
    /// The caller's user name, where it has one.
    pub name: Option<&'a str>,
    /// `/etc/subuid`, or why it could not be read.
    pub subuid: std::result::Result<&'a str, String>,
    /// `/etc/subgid`, or why it could not be read.
    pub subgid: std::result::Result<&'a str, String>,
    /// `newuidmap`, where installed.
    pub newuidmap: Option<PathBuf>,
    /// `newgidmap`, where installed.
    pub newgidmap: Option<PathBuf>,
}

impl IdMaps {
    /// The maps for this process: its effective ids, its user name, the
    /// files in `/etc` and the helpers on `PATH`.
    pub fn for_caller() -> IdMaps {
        // SAFETY: no arguments; cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let name = user_name(uid);
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
        let (subuid, subgid) = (read("/etc/subuid"), read("/etc/subgid"));
        let host = Host {
            name: name.as_deref(),
            subuid: subuid.as_deref().map_err(Clone::clone),
            subgid: subgid.as_deref().map_err(Clone::clone),
            newuidmap: find_helper("newuidmap"),
            newgidmap: find_helper("newgidmap"),
        };
        IdMaps::decide(uid, gid, &host)
    }

    /// The maps for a caller with `uid` and `gid` on `host`.
    pub fn decide(uid: u32, gid: u32, host: &Host) -> IdMaps {
        let (sub, why_none) = match subordinate(uid, host) {
            Ok(s) => (Some(s), None),
            Err(why) => (None, Some(why)),
        };
        IdMaps {
            uid,
            gid,
            sub,
            why_none,
        }
    }

    /// The run's note when only id 0 is mapped, saying why.
    pub fn note(&self) -> Option<String> {
        let why = self.why_none.as_ref()?;
        Some(format!("rootless: {why}: only uid 0 and gid 0 inside"))
    }

    /// The highest uid mapped inside.
    pub fn max_uid(&self) -> u32 {
        self.sub.as_ref().map_or(0, |s| s.uids.count)
    }

    /// The highest gid mapped inside.
    pub fn max_gid(&self) -> u32 {
        self.sub.as_ref().map_or(0, |s| s.gids.count)
    }

    /// `uid_map` lines: `inside outside count`.
    pub fn uid_lines(&self) -> Vec<[u32; 3]> {
        lines(self.uid, self.sub.as_ref().map(|s| s.uids))
    }

    /// `gid_map` lines: `inside outside count`.
    pub fn gid_lines(&self) -> Vec<[u32; 3]> {
        lines(self.gid, self.sub.as_ref().map(|s| s.gids))
    }
}

fn lines(own: u32, sub: Option<SubidRange>) -> Vec<[u32; 3]> {
    let mut v = vec![[0, own, 1]];
    v.extend(sub.map(|r| [1, r.start, r.count]));
    v
}

/// The text written to `/proc/PID/uid_map` or `gid_map` directly.
pub fn map_text(lines: &[[u32; 3]]) -> String {
    lines
        .iter()
        .map(|[i, o, n]| format!("{i} {o} {n}\n"))
        .collect()
}

/// The arguments of `newuidmap`/`newgidmap`: the pid, then each line's three ids.
pub fn helper_args(pid: libc::pid_t, lines: &[[u32; 3]]) -> Vec<String> {
    std::iter::once(pid.to_string())
        .chain(lines.iter().flatten().map(u32::to_string))
        .collect()
}

fn subordinate(uid: u32, host: &Host) -> std::result::Result<Subordinate, String> {
    let who = host
        .name
        .map_or_else(|| format!("uid {uid}"), str::to_string);
    let range = |file: &std::result::Result<&str, String>, path: &str| match file {
        Ok(text) => find_range(text, host.name, uid).ok_or(format!("no {path} range for {who}")),
        Err(e) => Err(format!("cannot read {e}")),
    };
    let uids = range(&host.subuid, "/etc/subuid")?;
    let gids = range(&host.subgid, "/etc/subgid")?;
    let helper = |h: &Option<PathBuf>, name: &str| {
        h.clone()
            .ok_or(format!("{name} not found (install the uidmap package)"))
    };
    Ok(Subordinate {
        uids,
        gids,
        newuidmap: helper(&host.newuidmap, "newuidmap")?,
        newgidmap: helper(&host.newgidmap, "newgidmap")?,
    })
}

/// The name of user `uid` (passwd or any NSS source), if it has one.
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids).
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local, and buf's length is passed.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string in buf.
    let name = unsafe { CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// `name` in a directory of `PATH` (or the usual ones), if it is executable.
fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u32, count: u32) -> SubidRange {
        SubidRange { start, count }
    }

    #[test]
    fn first_matching_range_by_name_or_uid_skipping_noise() {
        let text = "# comment\n\n  \nalice:100000:65536\nbob:x:1\nbob:5:0\n\
                    bob::7\nbob:1:2:3\n:9:9\nbob:4294967295:2\n 1001 : 200000 : 10 \n\
                    bob:300000:5\n";
        assert_eq!(find_range(text, Some("alice"), 7), Some(r(100000, 65536)));
        // bob's malformed lines are skipped; his uid's line comes first.
        assert_eq!(find_range(text, Some("bob"), 1001), Some(r(200000, 10)));
        assert_eq!(find_range(text, Some("bob"), 1002), Some(r(300000, 5)));
        assert_eq!(find_range(text, None, 1001), Some(r(200000, 10)));
        assert_eq!(find_range(text, Some("carol"), 1003), None);
        assert_eq!(find_range("", Some("alice"), 0), None);
        // A name is not a number prefix: "1001x" is not uid 1001.
        assert_eq!(find_range("1001x:1:1\n", None, 1001), None);
        assert_eq!(
            find_range("u:4294967295:1", Some("u"), 0),
            Some(r(u32::MAX, 1))
        );
    }

    fn host<'a>(sub: &'a str) -> Host<'a> {
        Host {
            name: Some("alice"),
            subuid: Ok(sub),
            subgid: Ok(sub),
            newuidmap: Some("/usr/bin/newuidmap".into()),
            newgidmap: Some("/usr/bin/newgidmap".into()),
        }
    }

    #[test]
    fn with_a_range_the_maps_add_it_after_the_own_id() {
        let m = IdMaps::decide(1000, 1001, &host("alice:100000:65536\n"));
        assert_eq!(m.note(), None);
        assert_eq!((m.max_uid(), m.max_gid()), (65536, 65536));
        assert_eq!(map_text(&m.uid_lines()), "0 1000 1\n1 100000 65536\n");
        assert_eq!(
            helper_args(42, &m.gid_lines()),
            ["42", "0", "1001", "1", "1", "100000", "65536"]
        );
    }

    #[test]
    fn without_a_range_or_a_helper_only_zero_with_the_reason() {
        let m = IdMaps::decide(1000, 1000, &host("bob:1:2\n"));
        assert_eq!(m.max_uid(), 0);
        assert_eq!(map_text(&m.uid_lines()), "0 1000 1\n");
        assert_eq!(helper_args(7, &m.gid_lines()), ["7", "0", "1000", "1"]);
        let note = m.note().unwrap();
        assert!(note.contains("no /etc/subuid range for alice"), "{note}");
        let mut h = host("alice:1:2\n");
        h.subgid = Err("/etc/subgid: No such file".into());
        let note = IdMaps::decide(1, 1, &h).note().unwrap();
        assert!(note.contains("cannot read /etc/subgid"), "{note}");
        let mut h = host("alice:1:2\n");
        h.newgidmap = None;
        let note = IdMaps::decide(1, 1, &h).note().unwrap();
        assert!(note.contains("newgidmap not found"), "{note}");
    }
}
