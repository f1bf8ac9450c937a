//! The functional KVM probes give the verdict this host's kind of KVM implies.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use hostcaps::kvm::KvmKind;

#[test]
fn probe_verdicts_match_the_kind_of_kvm() {
    if !common::kvm("probe_verdicts_match_the_kind_of_kvm") {
        return;
    }
    let p = microvm::probe::functional().unwrap();
    println!("{p:?}");
    assert!(p.cpl3_guest_ok, "a CPL-3 guest must work on every KVM host");
    assert!(p.tiny_guest_supported());
    assert!(
        p.cpl3_ns_per_iter > 0.0 && p.cpl3_ns_per_iter < 50.0,
        "CPL 3 runs natively: {p:?}"
    );
    // The loop lengths adapt to the host's speed, so even emulated CPL 0 takes
    // milliseconds (typically 40-100 ms in all here). The bound only catches a
    // probe that stopped adapting; timing targets belong to benchmarks.
    assert!(p.elapsed.as_secs() < 10, "probes took {:?}", p.elapsed);
    match hostcaps::kvm::facts().kind {
        KvmKind::SoftwareAssisted => {
            assert!(!p.exceptions_delivered, "{}", p.exception_detail);
            assert!(
                p.exception_detail.contains("not delivered"),
                "{}",
                p.exception_detail
            );
            assert!(
                p.cpl0_slowdown > 100.0,
                "CPL 0 should be emulated here: {p:?}"
            );
            assert!(!p.linux_guest_supported());
        }
        KvmKind::Hardware => {
            assert!(p.exceptions_delivered, "{}", p.exception_detail);
            assert!(p.cpl0_slowdown < 5.0, "CPL 0 should be native: {p:?}");
            assert!(p.linux_guest_supported());
        }
        KvmKind::Unavailable => unreachable!("gated on a usable /dev/kvm"),
    }
}
