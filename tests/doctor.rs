//! `isolab doctor` on the live host, checked against facts gathered here by
//! independent means (util-linux `unshare`, `/proc/mounts`, `/sys/module`),
//! so a wrong answer from doctor's own code fails the test.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::path::Path;
use std::process::Command;

fn doctor_json() -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_isolab"))
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "doctor failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("doctor --json is valid JSON")
}

#[test]
fn json_is_versioned_and_complete() {
    let j = doctor_json();
    assert_eq!(j["schema_version"], 1);
    for key in [
        "kvm",
        "cgroup",
        "namespaces",
        "peers",
        "checks",
        "kernel",
        "root",
    ] {
        assert!(!j[key].is_null(), "missing `{key}`");
    }
    // Every line that is not ok says what to do.
    for c in j["checks"].as_array().unwrap() {
        if c["status"] != "ok" {
            assert!(c["advice"].is_string(), "no advice for {c}");
        }
    }
}

#[test]
fn kvm_kind_and_verdicts_match_the_loaded_module() {
    if !hostcaps::testing::require(
        "kvm_kind_and_verdicts_match_the_loaded_module",
        "kvm",
        hostcaps::kvm::device_usable(),
    ) {
        return;
    }
    let j = doctor_json();
    let kvm = &j["kvm"];
    let pvm = Path::new("/sys/module/kvm_pvm").exists();
    let hw =
        Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists();
    if pvm && !hw {
        assert_eq!(kvm["kind"], "software-assisted");
        assert_eq!(kvm["guest_cpl0"], "emulated");
        assert_eq!(kvm["guest_exceptions_delivered"], false);
        assert_eq!(kvm["linux_guest"], false);
    } else if hw {
        assert_eq!(kvm["kind"], "hardware");
        assert_eq!(kvm["guest_cpl0"], "native");
        assert_eq!(kvm["linux_guest"], true);
    }
    // Both kinds run a CPL-3 guest without exceptions.
    assert_eq!(kvm["tiny_guest"], true, "{kvm}");
    assert_eq!(kvm["api_version"], 12);
    assert!(
        kvm["probe_ms"].as_f64().unwrap() < 1000.0,
        "probes must finish well under a second: {kvm}"
    );
}

#[test]
fn cgroup_mode_matches_proc_mounts() {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let v1: Vec<&str> = mounts
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("cgroup"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let v2 = mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("cgroup2"));
    let j = doctor_json();
    let expected = match (v1.iter().any(|p| p.ends_with("/memory")), v2) {
        (true, true) => "hybrid",
        (true, false) => "v1",
        (false, true) => "v2",
        (false, false) => "none",
    };
    assert_eq!(j["cgroup"]["mode"], expected);
    if expected == "hybrid" || expected == "v1" {
        for ctl in ["memory", "pids", "cpu"] {
            let c = j["cgroup"]["controllers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == ctl)
                .unwrap();
            assert_eq!(c["hierarchy"], "v1", "{c}");
            if hostcaps::is_root() {
                assert_eq!(c["can_create_child"], true, "{c}");
            }
        }
    }
}

#[test]
fn namespaces_match_util_linux_unshare() {
    if !hostcaps::testing::require(
        "namespaces_match_util_linux_unshare",
        "root",
        if hostcaps::is_root() {
            Ok(())
        } else {
            Err("needs root".into())
        },
    ) {
        return;
    }
    let ok = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
            "--uts",
            "--net",
            "--ipc",
            "--mount",
            "--cgroup",
            "true",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let j = doctor_json();
    let ns: Vec<(String, bool)> = serde_json::from_value(j["namespaces"].clone()).unwrap();
    for name in ["user", "pid", "mount", "uts", "ipc", "net", "cgroup"] {
        let reported = ns.iter().find(|(n, _)| n == name).map(|(_, ok)| *ok);
        assert_eq!(
            reported,
            Some(ok),
            "namespace {name}: doctor says {reported:?}, unshare(1) says {ok}"
        );
    }
}
