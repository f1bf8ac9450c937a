//! The runtime spec's POSIX hooks (`config.json` `hooks`), all run in the
//! runtime's namespaces, each with the container's state JSON on stdin:
//!
//! - `prestart` (deprecated) then `createRuntime`: by `create`, once the
//!   backend reports the container set up (namespaces, mounts, cgroups, the
//!   root already pivoted) and its init waits at the start gate, before the
//!   container is recorded and let go. The spec asks for "before
//!   `pivot_root`"; what these hooks need (the init's pid, its network
//!   namespace) exists by then and the user's program has not run. A failure
//!   fails `create`: the init is killed, its cgroups and state removed, and
//!   the `poststop` hooks run.
//! - `poststart`: by `start`, once the program executes; failures are warned
//!   about on standard error, `start` still succeeds.
//! - `poststop`: by `delete`, after the container is gone; failures warned about.
//!
//! `createContainer` and `startContainer` (run in the container's namespaces)
//! are refused when present. Each hook runs with exactly its `env`, `args[0]`
//! as its argv\[0\], the bundle as working directory, stdout and stderr
//! captured (shown when it fails) and, with a `timeout`, is killed on expiry.
//! The hooks are kept next to the record (`<root>/<id>/hooks.json`) for
//! `start` and `delete`.

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::state::Record;
use crate::{Error, Result};

/// The hooks of a container, relative to its directory.
const FILE: &str = "hooks.json";
/// How much of a failed hook's output the error shows (its end).
const OUTPUT_SHOWN: usize = 2048;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// `prestart`: in `create`, before `createRuntime`.
    Prestart,
    /// `createRuntime`: in `create`.
    CreateRuntime,
    /// `poststart`: in `start`, after the program executes.
    Poststart,
    /// `poststop`: in `delete`, after the container is removed.
    Poststop,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::Prestart => "prestart",
            Point::CreateRuntime => "createRuntime",
            Point::Poststart => "poststart",
            Point::Poststop => "poststop",
        }
    }

    /// The status the hooks see in the state.
    fn status(self) -> &'static str {
        match self {
            Point::Prestart | Point::CreateRuntime => "creating",
            Point::Poststart => "running",
            Point::Poststop => "stopped",
        }
    }

    #[allow(deprecated)] // prestart is deprecated by the spec, still used by dockerd
    fn hooks(self, h: &Hooks) -> &[Hook] {
        let list = match self {
            Point::Prestart => h.prestart(),
            Point::CreateRuntime => h.create_runtime(),
            Point::Poststart => h.poststart(),
            Point::Poststop => h.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

fn refused(field: &str, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a config's hooks before anything is set up: `createContainer` and
/// `startContainer` are refused; every path is absolute, every timeout
/// positive, every env entry `KEY=VALUE`.
pub(crate) fn check(hooks: &Hooks) -> Result<()> {
    for (name, list) in [
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
    ] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(refused(
                &format!("hooks.{name}"),
                "hooks in the container's namespaces are not supported (use createRuntime, \
                 poststart or poststop, which run in the runtime's)",
            ));
        }
    }
    for point in [
        Point::Prestart,
        Point::CreateRuntime,
        Point::Poststart,
        Point::Poststop,
    ] {
        for (i, hook) in point.hooks(hooks).iter().enumerate() {
            let at = format!("hooks.{}[{i}]", point.name());
            if !hook.path().is_absolute() {
                return Err(refused(&format!("{at}.path"), "must be an absolute path"));
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                return Err(refused(
                    &format!("{at}.timeout"),
                    "must be greater than zero",
                ));
            }
            if let Some(bad) = hook.env().iter().flatten().find(|e| !e.contains('=')) {
                return Err(refused(
                    &format!("{at}.env"),
                    format!("{bad:?} is not KEY=VALUE"),
                ));
            }
        }
    }
    Ok(())
}

/// Keeps the hooks that run after `create` in the container's directory.
pub(crate) fn save(dir: &Path, hooks: &Hooks) -> Result<()> {
    if Point::Poststart.hooks(hooks).is_empty() && Point::Poststop.hooks(hooks).is_empty() {
        return Ok(());
    }
    let text = serde_json::to_vec(hooks).map_err(|e| Error::Usage(e.to_string()))?;
    crate::state::write_atomic(&dir.join(FILE), &text)
}

/// The hooks saved by [`save`] (none when there are none, or they cannot be read).
pub(crate) fn load(dir: &Path) -> Hooks {
    std::fs::read(dir.join(FILE))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

/// The runtime spec's state of `rec` as the hooks at `point` see it.
fn state(point: Point, rec: &Record) -> Vec<u8> {
    let pid = if point == Point::Poststop { 0 } else { rec.pid };
    serde_json::json!({
        "ociVersion": "1.0.2",
        "id": rec.id,
        "status": point.status(),
        "pid": pid,
        "bundle": rec.bundle,
        "annotations": rec.annotations,
    })
    .to_string()
    .into_bytes()
}

/// Runs the hooks of `point` in order; the first failure stops them.
pub(crate) fn run(point: Point, hooks: &Hooks, rec: &Record) -> Result<()> {
    let input = state(point, rec);
    for (i, hook) in point.hooks(hooks).iter().enumerate() {
        run_one(hook, &input, &rec.bundle).map_err(|why| {
            refused(
                &format!("hooks.{}[{i}] ({})", point.name(), hook.path().display()),
                why,
            )
        })?;
    }
    Ok(())
}

/// Runs every hook of `point`; a failure is a warning on standard error.
pub(crate) fn run_warn(point: Point, hooks: &Hooks, rec: &Record) {
    let input = state(point, rec);
    for (i, hook) in point.hooks(hooks).iter().enumerate() {
        if let Err(why) = run_one(hook, &input, &rec.bundle) {
            eprintln!(
                "isolab: warning: container {}: hooks.{}[{i}] ({}): {why}",
                rec.id,
                point.name(),
                hook.path().display()
            );
        }
    }
}

/// An anonymous file (the hook's stdin, or its output), gone with its last descriptor.
fn memfd(name: &std::ffi::CStr) -> std::result::Result<std::fs::File, String> {
    nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map(std::fs::File::from)
        .map_err(|e| format!("memfd_create: {e}"))
}

/// Runs one hook; `Err` says why it failed. Its stdin and output are files,
/// not pipes, so a hook that leaves a child behind holding them cannot
/// block the runtime.
fn run_one(hook: &Hook, input: &[u8], bundle: &Path) -> std::result::Result<(), String> {
    let mut stdin = memfd(c"isolab-hook-state")?;
    stdin
        .write_all(input)
        .and_then(|()| stdin.rewind())
        .map_err(|e| format!("write the state: {e}"))?;
    let mut output = memfd(c"isolab-hook-output")?;
    let clone = || output.try_clone().map_err(|e| format!("dup: {e}"));
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|e| e.split_once('=')),
        )
        // The bundle may be gone by `delete`.
        .current_dir(if bundle.is_dir() {
            bundle
        } else {
            Path::new("/")
        })
        .stdin(stdin)
        .stdout(clone()?)
        .stderr(clone()?);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    let limit = hook
        .timeout()
        .map(|s| Duration::from_secs(s.unsigned_abs()));
    let status = wait(&mut child, limit);
    let mut text = String::new();
    let _ = output
        .rewind()
        .and_then(|()| output.read_to_string(&mut text));
    let text = text.trim();
    let mut from = text.len().saturating_sub(OUTPUT_SHOWN);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let tail = &text[from..];
    let shown = if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    };
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("failed ({s}){shown}")),
        Err(why) => Err(format!("{why}{shown}")),
    }
}

/// Waits for a hook, killing it once `limit` has passed.
fn wait(child: &mut Child, limit: Option<Duration>) -> std::result::Result<ExitStatus, String> {
    let end = limit.map(|l| Instant::now() + l);
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Ok(s),
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if end.is_some_and(|end| Instant::now() >= end) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "killed after its timeout of {}s",
                limit.unwrap_or_default().as_secs()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hooks(json: &str) -> Hooks {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn container_namespace_hooks_are_refused() {
        let e = check(&hooks(r#"{"startContainer":[{"path":"/bin/true"}]}"#)).unwrap_err();
        assert!(e.to_string().starts_with("hooks.startContainer:"), "{e}");
        assert!(check(&hooks(r#"{"createContainer":[]}"#)).is_ok());
    }

    #[test]
    fn bad_entries_are_named() {
        let e = check(&hooks(r#"{"poststop":[{"path":"true"}]}"#)).unwrap_err();
        assert!(e.to_string().starts_with("hooks.poststop[0].path:"), "{e}");
        let e = check(&hooks(r#"{"prestart":[{"path":"/x","timeout":0}]}"#)).unwrap_err();
        assert!(
            e.to_string().starts_with("hooks.prestart[0].timeout:"),
            "{e}"
        );
        let e = check(&hooks(r#"{"createRuntime":[{"path":"/x","env":["A"]}]}"#)).unwrap_err();
        assert!(e.to_string().contains("\"A\" is not KEY=VALUE"), "{e}");
    }

    #[test]
    fn a_hook_sees_its_args_env_and_the_state() {
        let h: Hook = serde_json::from_str(
            r#"{"path":"/bin/sh","args":["hooky","-c","echo \"$0 $A $(cat)\" >&2; exit 3"],"env":["A=b=c"]}"#,
        )
        .unwrap();
        let e = run_one(&h, b"{\"x\":1}", Path::new("/")).unwrap_err();
        assert!(e.contains("hooky b=c {\"x\":1}"), "{e}");
        assert!(e.contains("exit status: 3"), "{e}");
    }

    #[test]
    fn a_slow_hook_is_killed() {
        let h: Hook =
            serde_json::from_str(r#"{"path":"/bin/sleep","args":["sleep","30"],"timeout":1}"#)
                .unwrap();
        let t = Instant::now();
        let e = run_one(&h, b"{}", Path::new("/")).unwrap_err();
        assert!(e.contains("timeout of 1s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(20));
    }
}
