//! Is the `isolab` binary asked to be an OCI runtime?
//!
//! The rule, unambiguous against isolab's own command line (`src/args.rs`):
//! - invoked as `isolab-vm` (argv\[0\], e.g. a symlink): always, on the VM backend;
//! - the first argument is a runtime global flag (`--root`, `--log`,
//!   `--log-format`, `--debug`, `--systemd-cgroup`, `--rootless`): runtime;
//! - the first argument is a runtime-only subcommand (`create`, `start`,
//!   `state`, `kill`, `delete`, `exec`, `ps`, `features`, `spec`): runtime;
//! - `run` in its runtime form: a container id as a positional argument, no
//!   `--`, and only flags of `runc run`. isolab's own `run` takes its program
//!   after `--` and has no positional argument otherwise.

use std::ffi::OsString;

use crate::BackendKind;

const GLOBAL_FLAGS: &[&str] = &[
    "--root",
    "--log",
    "--log-format",
    "--debug",
    "--systemd-cgroup",
    "--rootless",
];

const RUNTIME_ONLY: &[&str] = &[
    "create", "start", "state", "kill", "delete", "exec", "ps", "features", "spec",
];

/// Flags of `runc run` that take a value, then those that do not.
const RUN_VALUE_FLAGS: &[&str] = &[
    "--bundle",
    "-b",
    "--pid-file",
    "--console-socket",
    "--preserve-fds",
];
const RUN_BOOL_FLAGS: &[&str] = &[
    "--detach",
    "-d",
    "--no-pivot",
    "--no-new-keyring",
    "--keep",
    "--no-subreaper",
];

fn flag_name(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(name, _)| name)
}

/// True when `args` (after `run`) are `runc run` arguments.
fn oci_run_form(args: &[String]) -> bool {
    let mut positional = 0;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            return false;
        }
        if a.starts_with('-') {
            let name = flag_name(a);
            if RUN_VALUE_FLAGS.contains(&name) {
                if !a.contains('=') {
                    i += 1;
                }
            } else if !RUN_BOOL_FLAGS.contains(&name) {
                return false;
            }
        } else {
            positional += 1;
        }
        i += 1;
    }
    positional == 1
}

/// The backend when `argv` (program name first) asks for the OCI runtime.
pub fn route(argv: &[OsString]) -> Option<BackendKind> {
    let program = argv.first()?;
    let name = std::path::Path::new(program).file_name()?.to_string_lossy();
    if name == "isolab-vm" {
        return Some(BackendKind::Vm);
    }
    let args: Vec<String> = argv[1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let first = args.first()?;
    let runtime = GLOBAL_FLAGS.contains(&flag_name(first))
        || RUNTIME_ONLY.contains(&first.as_str())
        || (first == "run" && oci_run_form(&args[1..]));
    runtime.then_some(BackendKind::Container)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Option<BackendKind> {
        let v: Vec<OsString> = s.split_whitespace().map(OsString::from).collect();
        route(&v)
    }

    #[test]
    fn runtime_forms_are_recognised() {
        let c = Some(BackendKind::Container);
        assert_eq!(r("isolab --root /r --log l create --bundle b id"), c);
        assert_eq!(r("isolab --log-format=json state id"), c);
        assert_eq!(r("/x/isolab create --bundle b --pid-file p id"), c);
        assert_eq!(r("isolab features"), c);
        assert_eq!(r("isolab run --bundle b id"), c);
        assert_eq!(r("isolab run -d -b=b --pid-file p id"), c);
        assert_eq!(r("/usr/bin/isolab-vm state id"), Some(BackendKind::Vm));
    }

    #[test]
    fn isolab_own_commands_are_left_alone() {
        assert_eq!(r("isolab run --isolation container -- /bin/true"), None);
        assert_eq!(r("isolab run --bundle b"), None);
        assert_eq!(r("isolab run --bundle b -- /bin/sh"), None);
        assert_eq!(r("isolab run --memory 64M --bundle b"), None);
        assert_eq!(r("isolab doctor"), None);
        assert_eq!(r("isolab clean"), None);
        assert_eq!(r("isolab"), None);
    }
}
