//! Helpers shared by the isolation crate's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

use isolation::{Invocation, Limits, Outcome};

/// The probes with this command line (panics on a bad one: a test's typo).
pub fn probes(args: &[&str]) -> Invocation {
    Invocation::probes(args.iter().copied()).unwrap()
}

/// Default limits with this timeout.
pub fn limits_s(timeout_s: u64) -> Limits {
    Limits {
        timeout: Duration::from_secs(timeout_s),
        ..Limits::default()
    }
}

/// The run's diagnostics as text.
pub fn console(o: &Outcome) -> String {
    String::from_utf8_lossy(&o.console).into_owned()
}

/// The bytes every `io` result line says the probe moved.
pub fn io_bytes(o: &Outcome) -> Vec<u64> {
    o.results
        .iter()
        .filter(|r| r.probe == "io")
        .filter_map(|r| r.extra.get("bytes").and_then(serde_json::Value::as_u64))
        .collect()
}

/// Asserts that every `io` line moved exactly `size` bytes: `--io-size` honoured.
pub fn assert_io_size(o: &Outcome, size: u64) {
    let bytes = io_bytes(o);
    assert!(
        !bytes.is_empty() && bytes.iter().all(|b| *b == size),
        "io lines moved {bytes:?}, --io-size was {size}\n{}",
        console(o)
    );
}
