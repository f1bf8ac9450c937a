//! The functional KVM probes give the verdict this host's kind of KVM implies.

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
    assert!(
        p.elapsed.as_secs_f64() < 1.0,
        "probes must stay well under a second: {:?}",
        p.elapsed
    );
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
