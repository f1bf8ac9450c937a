//! Bad input: each case is a specific error, and nothing is left behind.
//! One test in its own binary, so the leak count is not disturbed.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use container::{ContainerSpec, Error};

fn leftovers() -> usize {
    let prefix = format!("isolab-{}-", std::process::id());
    // Groups go below this process's own cgroup in each hierarchy.
    let cg: usize = container::cgroup::parent_dirs()
        .iter()
        .map(|dir| {
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum();
    let staging = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("isolab-root-isolab-")
        })
        .filter(|e| e.file_name().to_string_lossy().contains(&prefix))
        .count();
    cg + staging
}

#[test]
fn bad_input_gives_specific_errors_and_leaves_nothing() {
    if !common::ready("bad_input_gives_specific_errors_and_leaves_nothing") {
        return;
    }
    let root = common::busybox_rootfs();
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();

    let e = container::run(&ContainerSpec::with_rootfs(
        "/nonexistent/isolab-rootfs",
        "/bin/true",
    ))
    .unwrap_err();
    assert!(matches!(e, Error::RootfsMissing { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/isolab-rootfs"));

    let e = container::run(&ContainerSpec::with_rootfs(root.path(), "/bin/not-here")).unwrap_err();
    assert!(matches!(e, Error::ProgramNotInRootfs { .. }), "{e}");
    assert!(e.to_string().contains("/bin/not-here"));

    let e = container::run(&ContainerSpec::minimal("/nonexistent/isolab-prog")).unwrap_err();
    assert!(matches!(e, Error::ProgramMissing { .. }), "{e}");

    let e = container::run(&ContainerSpec::with_rootfs(root.path(), "/bin/true").memory(1 << 20))
        .unwrap_err();
    assert!(
        matches!(e, Error::MemoryLimitTooLow { limit: 1048576, .. }),
        "{e}"
    );

    let bundle = tempfile::tempdir().unwrap();
    std::fs::write(bundle.path().join("config.json"), "{ \"ociVersion\": ").unwrap();
    let e = container::oci::load_bundle(bundle.path()).unwrap_err();
    assert!(matches!(e, Error::BundleConfigMalformed { .. }), "{e}");

    let cfg = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": root.path()},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}], "personality": {"domain": "LINUX32"}}
    });
    std::fs::write(bundle.path().join("config.json"), cfg.to_string()).unwrap();
    let e = container::oci::load_bundle(bundle.path()).unwrap_err();
    match &e {
        Error::UnsupportedOciField { field, .. } => assert_eq!(field, "linux.personality"),
        _ => panic!("{e}"),
    }

    let e = container::Volume::parse("/tmp:relative").unwrap_err();
    assert!(matches!(e, Error::BadVolume { .. }), "{e}");
    let spec = ContainerSpec::with_rootfs(root.path(), "/bin/true")
        .volume(container::Volume::parse("/nonexistent/isolab-vol:/data").unwrap());
    assert!(matches!(
        container::run(&spec),
        Err(Error::BadVolume { .. })
    ));

    // A failure inside the child, after clone and cgroup creation.
    let mut spec = ContainerSpec::with_rootfs(root.path(), "/bin/true");
    spec.cwd = "/nope".into();
    assert!(matches!(container::run(&spec), Err(Error::Setup { .. })));

    assert_eq!(leftovers(), 0);
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count(),
        mounts_before
    );
}
