//! Is this machine itself emulated? Inside isolab's test host (QEMU's TCG
//! emulating a CPU with SVM) every instruction is emulated: what runs there
//! works as on hardware, but its times mean nothing about hardware. Results
//! made here are labelled so, and never set beside real ones.

/// The word on the test host's kernel command line that marks it.
pub const TESTHOST_MARK: &str = "isolab.testhost";
/// Set to anything but `0` to declare a manually emulated host.
pub const ENV: &str = "ISOLAB_EMULATED";

/// Why this host counts as emulated, or `None` for real hardware (or a
/// hardware-accelerated VM).
pub fn detect() -> Option<String> {
    let declared = std::env::var(ENV).ok();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    from_facts(declared.as_deref(), &cmdline)
}

/// [`detect`] from its inputs, for tests.
pub fn from_facts(declared: Option<&str>, cmdline: &str) -> Option<String> {
    if cmdline.split_whitespace().any(|w| w == TESTHOST_MARK) {
        return Some("isolab's test host (QEMU TCG emulating an AMD CPU with SVM)".into());
    }
    match declared {
        Some(v) if !v.is_empty() && v != "0" => Some(format!("declared by {ENV}={v}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_host_mark_or_the_variable_says_emulated() {
        assert!(from_facts(None, "console=ttyS0 isolab.testhost quiet").is_some());
        assert!(from_facts(None, "console=ttyS0 isolab.testhostx").is_none());
        assert!(
            from_facts(Some("1"), "")
                .unwrap()
                .contains("ISOLAB_EMULATED=1")
        );
        assert!(from_facts(Some("0"), "").is_none());
        assert!(from_facts(Some(""), "").is_none());
    }
}
