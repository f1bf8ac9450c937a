//! The test policy: tests that need a capability ask here, and either run or
//! print `SKIP <test>: <reason>`.
//!
//! Under `CI=true` a skip is refused (the test panics) when the capability is
//! one the CI machine is known to have: `.ci/run` lists them in
//! `ISOLAB_REQUIRE` (comma separated names, e.g. `root,kvm,userns`). So a CI
//! machine that silently lost a capability fails instead of going green.

/// Returns `true` when the test may go on. When `available` is an error the
/// test must return early: this prints the skip line, or panics under CI if
/// `name` is listed in `ISOLAB_REQUIRE`.
pub fn require(test: &str, name: &str, available: Result<(), String>) -> bool {
    match available {
        Ok(()) => true,
        Err(reason) => {
            if required_here(name) {
                panic!(
                    "{test}: capability `{name}` is required on this CI machine (ISOLAB_REQUIRE) but missing: {reason}"
                );
            }
            println!("SKIP {test}: {reason}");
            eprintln!("SKIP {test}: {reason}");
            log_skip(test, &reason);
            false
        }
    }
}

/// Convenience for the common "must be root" precondition.
pub fn require_root(test: &str) -> bool {
    require(
        test,
        "root",
        if crate::is_root() {
            Ok(())
        } else {
            Err("needs root (run the tests as root)".into())
        },
    )
}

/// Root and a static `/bin/busybox`: what a container test run needs (each
/// reported through [`require`] when missing).
pub fn require_root_and_busybox(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    let bb = if std::path::Path::new("/bin/busybox").exists() {
        Ok(())
    } else {
        Err("needs a static /bin/busybox (apt-get install busybox-static)".to_string())
    };
    require(test, "busybox", bb)
}

/// The test harness captures the output of passing tests, so skips are also
/// appended to `$ISOLAB_SKIP_LOG` when it is set; `scripts/test-all` prints it.
fn log_skip(test: &str, reason: &str) {
    use std::io::Write;
    let file = std::env::var_os("ISOLAB_SKIP_LOG").and_then(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
    });
    if let Some(mut f) = file {
        let _ = writeln!(f, "SKIP {test}: {reason}");
    }
}

fn required_here(name: &str) -> bool {
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
    if !ci {
        return false;
    }
    std::env::var("ISOLAB_REQUIRE")
        .map(|list| list.split(',').map(str::trim).any(|n| n == name))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_capability_runs() {
        assert!(require("t", "nothing", Ok(())));
    }

    #[test]
    fn missing_capability_skips_outside_ci() {
        // SAFETY-free: env manipulation is process-wide, so only unset names used here.
        if std::env::var("ISOLAB_REQUIRE")
            .map(|l| l.contains("unlisted-cap"))
            .unwrap_or(false)
        {
            return;
        }
        assert!(!require("t", "unlisted-cap", Err("because".into())));
    }
}
