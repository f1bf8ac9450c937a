//! A bundle written by `runc spec` runs as written (terminal aside).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

#[test]
fn a_real_runc_spec_bundle_runs() {
    if !common::ready("a_real_runc_spec_bundle_runs") {
        return;
    }
    let have_runc = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !hostcaps::testing::require(
        "a_real_runc_spec_bundle_runs",
        "runc",
        if have_runc {
            Ok(())
        } else {
            Err("runc not installed".into())
        },
    ) {
        return;
    }
    let bundle = tempfile::tempdir().unwrap();
    let rootfs = common::busybox_rootfs();
    std::fs::rename(rootfs.path(), bundle.path().join("rootfs")).unwrap();
    assert!(
        std::process::Command::new("runc")
            .args(["spec", "-b"])
            .arg(bundle.path())
            .status()
            .unwrap()
            .success()
    );
    // runc's default wants a terminal; everything else is used as written.
    let cfg = bundle.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = serde_json::json!([
        "/bin/sh",
        "-c",
        "hostname; grep CapEff /proc/self/status; touch /x || echo ro"
    ]);
    std::fs::write(&cfg, v.to_string()).unwrap();
    let spec = container::oci::load_bundle(bundle.path())
        .unwrap()
        .stdout(container::Stdio::Piped)
        .stderr(container::Stdio::Piped);
    let r = container::run(&spec).unwrap();
    let o = common::out(&r);
    assert!(r.success(), "{r:?}");
    assert!(o.starts_with("runc\n"), "{o}");
    // runc's default set: AUDIT_WRITE, KILL, NET_BIND_SERVICE.
    assert!(o.contains("0000000020000420"), "{o}");
    assert!(o.contains("ro"), "read-only root not applied: {o}");
}
