//! Checks made in the parent before anything is created: the root exists and
//! its `/proc`, `/sys` and `/dev` are plain directories, the program is in it
//! and executable; and, after a failed `execve`, why (a missing `#!`
//! interpreter says so instead of "No such file or directory").

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{APPLETS, minimal_binaries};
use crate::spec::{ContainerSpec, RootSpec};
use crate::{Error, Result};

/// The directories the runtime mounts filesystems on, which must be plain
/// directories in an image (or absent): a symlink there would move `/proc`
/// and every masked path under it somewhere else.
pub const SPECIAL_DIRS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Refuses a root whose `/proc`, `/sys` or `/dev` exists as anything but a directory.
pub fn check_special_dirs(rootfs: &Path) -> Result<()> {
    for d in SPECIAL_DIRS {
        let host = rootfs.join(&d[1..]);
        let what = match std::fs::symlink_metadata(&host) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => format!("unreadable ({e})"),
            Ok(md) if md.is_dir() => continue,
            Ok(md) if md.file_type().is_symlink() => {
                let to = std::fs::read_link(&host)
                    .map_or_else(|_| "?".to_string(), |t| t.display().to_string());
                format!("a symbolic link (to {to})")
            }
            Ok(_) => "not a directory".to_string(),
        };
        return Err(Error::RootfsSpecialPath {
            rootfs: rootfs.to_path_buf(),
            path: d,
            what,
        });
    }
    Ok(())
}

fn search_list(spec: &ContainerSpec) -> Vec<String> {
    if spec.program.contains('/') {
        return vec![spec.program.clone()];
    }
    spec.env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/bin")
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{}", d.trim_end_matches('/'), spec.program))
        .collect()
}

/// Checks the root exists, and finds `program` in it (following symlinks
/// inside the root, never out of it). Returns the path inside the container.
pub fn resolve_program(spec: &ContainerSpec) -> Result<String> {
    if spec.program.is_empty() {
        return Err(Error::InvalidSpec {
            field: "program",
            value: String::new(),
            reason: "is empty".into(),
        });
    }
    let candidates = search_list(spec);
    match &spec.root {
        RootSpec::Dir(dir) => {
            let md = std::fs::metadata(dir).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::RootfsMissing { path: dir.clone() },
                _ => Error::RootfsUnusable {
                    path: dir.clone(),
                    source: e,
                },
            })?;
            if !md.is_dir() {
                return Err(Error::RootfsNotDirectory { path: dir.clone() });
            }
            if spec.hardening.paths_in_root {
                check_special_dirs(dir)?;
            }
            for c in &candidates {
                if let Some(host) = lookup_in_root(dir, c) {
                    check_executable(&host, c)?;
                    return Ok(c.clone());
                }
            }
            Err(Error::ProgramNotInRootfs {
                program: spec.program.clone(),
                rootfs: dir.clone(),
                looked: candidates.join(", "),
            })
        }
        RootSpec::Minimal { binaries, busybox } => {
            for b in binaries {
                if !b.exists() {
                    return Err(Error::ProgramMissing { path: b.clone() });
                }
                check_executable(b, &b.display().to_string())?;
            }
            let all = minimal_binaries(binaries, *busybox);
            let has_busybox = all
                .iter()
                .any(|b| b.file_name() == Some("busybox".as_ref()));
            for c in &candidates {
                let Some(name) = c.strip_prefix("/bin/") else {
                    continue;
                };
                if all.iter().any(|b| b.file_name() == Some(name.as_ref()))
                    || (has_busybox && APPLETS.contains(&name))
                {
                    return Ok(c.clone());
                }
            }
            Err(Error::ProgramNotInRootfs {
                program: spec.program.clone(),
                rootfs: PathBuf::from("<minimal root>"),
                looked: candidates.join(", "),
            })
        }
    }
}

fn check_executable(host: &Path, shown: &str) -> Result<()> {
    let md = std::fs::metadata(host).map_err(|_| Error::ProgramMissing {
        path: host.to_path_buf(),
    })?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        return Err(Error::ProgramNotExecutable {
            path: PathBuf::from(shown),
        });
    }
    Ok(())
}

/// After `execve(program)` failed with `ENOENT` although the program exists:
/// the `#!` interpreter it names is what is missing. Returns that error, if so.
pub fn missing_interpreter(spec: &ContainerSpec, program: &str) -> Option<Error> {
    let RootSpec::Dir(dir) = &spec.root else {
        return None;
    };
    let host = lookup_in_root(dir, program)?;
    let mut head = [0u8; 256];
    let n = {
        use std::io::Read;
        std::fs::File::open(&host).ok()?.read(&mut head).ok()?
    };
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|b| *b == b'\n').unwrap_or(line.len())];
    let text = String::from_utf8_lossy(line);
    let interpreter = text.split_whitespace().next()?.to_string();
    if lookup_in_root(dir, &interpreter).is_some() {
        return None;
    }
    Some(Error::InterpreterMissing {
        program: program.to_string(),
        interpreter,
    })
}

/// Resolves `guest` inside `root` like the kernel would after `pivot_root`:
/// absolute symlinks restart at `root`, `..` stops at `root`.
pub fn lookup_in_root(root: &Path, guest: &str) -> Option<PathBuf> {
    let mut todo: Vec<String> = guest
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut cur = root.to_path_buf();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                if cur != root {
                    cur.pop();
                }
                continue;
            }
            _ => {}
        }
        let next = cur.join(&part);
        let md = std::fs::symlink_metadata(&next).ok()?;
        if md.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&next).ok()?;
            let t = target.to_string_lossy();
            if t.starts_with('/') {
                cur = root.to_path_buf();
            }
            todo.extend(
                t.split('/')
                    .filter(|s| !s.is_empty())
                    .rev()
                    .map(str::to_string),
            );
        } else {
            cur = next;
        }
    }
    cur.exists().then_some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_follows_absolute_links_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/busybox"), b"x").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", d.path().join("bin/sh")).unwrap();
        // A link escaping with .. stays inside the root.
        std::os::unix::fs::symlink("../../../../bin/busybox", d.path().join("bin/up")).unwrap();
        assert_eq!(
            lookup_in_root(d.path(), "/bin/sh"),
            Some(d.path().join("bin/busybox"))
        );
        assert_eq!(
            lookup_in_root(d.path(), "/bin/up"),
            Some(d.path().join("bin/busybox"))
        );
        assert_eq!(lookup_in_root(d.path(), "/bin/none"), None);
    }

    #[test]
    fn missing_program_in_rootfs_names_the_paths_tried() {
        let d = tempfile::tempdir().unwrap();
        let s = ContainerSpec::with_rootfs(d.path(), "nothere");
        match resolve_program(&s).unwrap_err() {
            Error::ProgramNotInRootfs { looked, .. } => {
                assert!(looked.contains("/bin/nothere"), "{looked}")
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn missing_rootfs_is_its_own_error_and_a_too_long_one_says_so() {
        let s = ContainerSpec::with_rootfs("/nonexistent/isolab-root", "/bin/true");
        assert!(matches!(
            resolve_program(&s),
            Err(Error::RootfsMissing { .. })
        ));
        let long = format!("/tmp/{}", "x".repeat(5000));
        let e = resolve_program(&ContainerSpec::with_rootfs(&long, "/bin/true")).unwrap_err();
        assert!(matches!(e, Error::RootfsUnusable { .. }), "{e}");
        assert!(e.to_string().contains("too long"), "{e}");
    }

    #[test]
    fn symlinked_or_file_proc_sys_dev_are_refused_by_name() {
        for (name, make) in [("proc", 0), ("sys", 1), ("dev", 0)] {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join(name);
            if make == 0 {
                std::os::unix::fs::symlink("/etc", &p).unwrap();
            } else {
                std::fs::write(&p, b"").unwrap();
            }
            let e = check_special_dirs(d.path()).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(&format!("/{name}")), "{text}");
            if make == 0 {
                assert!(text.contains("symbolic link (to /etc)"), "{text}");
            }
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("proc")).unwrap();
        check_special_dirs(d.path()).unwrap();
    }

    #[test]
    fn a_missing_shebang_interpreter_is_named() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("script"), b"#!/bin/bash -e\necho hi\n").unwrap();
        let s = ContainerSpec::with_rootfs(d.path(), "/script");
        match missing_interpreter(&s, "/script") {
            Some(Error::InterpreterMissing { interpreter, .. }) => {
                assert_eq!(interpreter, "/bin/bash")
            }
            other => panic!("{other:?}"),
        }
        std::fs::create_dir(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/bash"), b"").unwrap();
        assert!(missing_interpreter(&s, "/script").is_none());
    }
}
