//! Soak and concurrency: many runs of each isolation in a row and a wave of
//! concurrent mixed runs leave no failure and nothing behind (see
//! `bench::soak`). The full soak (1000 sequential runs per isolation, 16
//! concurrent) is ignored by default:
//! `cargo test -p bench --test soak -- --ignored --nocapture` (run it alone:
//! the counts are of this process, so no other test may run beside it).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use bench::soak::{self, Snapshot, SoakOptions, SoakReport};
use isolation::IsolationKind;

/// The isolations this host can soak; the others are skipped with a reason.
fn kinds(test: &str) -> Vec<IsolationKind> {
    let mut k = vec![IsolationKind::Native];
    if hostcaps::testing::require_root(test) {
        k.push(IsolationKind::Container);
    }
    if hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable()) {
        k.push(IsolationKind::VmTiny);
    }
    k
}

fn check(r: &SoakReport) {
    println!("{}", soak::render(r));
    for k in &r.kinds {
        assert!(k.skipped.is_none(), "{}: {:?}", k.kind, k.skipped);
        assert_eq!(k.failures, 0, "{}: {:?}", k.kind, k.failure_samples);
        assert_eq!(
            k.leaks.growth(),
            0,
            "{} left something behind: {:?}",
            k.kind,
            k.leaks
        );
    }
    let c = r.concurrent.as_ref().expect("a concurrent wave ran");
    assert_eq!(c.failures, 0, "{:?}", c.failure_samples);
    let allowed = soak::ARENA_MAPPINGS_SLACK;
    assert!(
        c.leaks.mappings <= allowed
            && Snapshot {
                mappings: 0,
                ..c.leaks
            }
            .growth()
                == 0,
        "the concurrent wave left something behind: {:?}",
        c.leaks
    );
    assert!(r.clean());
    assert_eq!(c.kinds.len(), c.runs as usize);
}

#[test]
fn small_soak_has_no_failures_and_no_leaks() {
    let kinds = kinds("small_soak_has_no_failures_and_no_leaks");
    let r = soak::run(&SoakOptions {
        runs: 30,
        concurrency: 8,
        kinds: kinds.clone(),
    });
    check(&r);
    assert_eq!(r.kinds.len(), kinds.len());
    assert!(r.kinds.iter().all(|k| k.runs == 30));
    // The wave mixed every kind.
    let c = r.concurrent.as_ref().unwrap();
    assert!(kinds.iter().all(|k| c.kinds.contains(k)), "{:?}", c.kinds);
}

#[test]
#[ignore = "long: 1000 runs per isolation (minutes); run alone with --ignored"]
fn full_soak_has_no_failures_and_no_leaks() {
    let kinds = kinds("full_soak_has_no_failures_and_no_leaks");
    let r = soak::run(&SoakOptions {
        runs: 1000,
        concurrency: 16,
        kinds,
    });
    println!("{}", serde_json::to_string(&r).unwrap());
    check(&r);
}
