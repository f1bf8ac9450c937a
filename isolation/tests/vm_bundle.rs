//! An OCI bundle in the Linux guest: its rootfs as the guest's root, its
//! process with env, cwd, ids and hostname, its output and exit status.
//!
//! Hostile configs are refused before anything is built, here on any host.
//! The boots need a host that runs a Linux guest (hardware KVM; in CI the
//! emulated test host, `scripts/testhost-suite`) and skip with the reason
//! elsewhere.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::path::Path;
use std::time::Duration;

use isolation::vm_linux::{self, VmLinux, bundle};
use isolation::{Exit, Invocation, Isolation, IsolationError, Limits, Outcome};
use serde_json::{Value, json};

/// A busybox root filesystem and a config running `args`.
fn busybox_bundle(args: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("rootfs");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for a in ["sh", "echo", "id", "hostname", "pwd", "true", "cat", "kill"] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    for dir in ["proc", "sys", "dev", "tmp", "etc", "work"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    write_config(d.path(), |_| {});
    set_args(d.path(), args);
    d
}

fn write_config(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("config.json");
    let mut v = std::fs::read(&path)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|_| {
            json!({
                "ociVersion": "1.0.2",
                "process": {
                    "terminal": false,
                    "user": {"uid": 0, "gid": 0},
                    "args": ["true"],
                    "env": ["PATH=/bin"],
                    "cwd": "/"
                },
                "root": {"path": "rootfs"},
                "hostname": "vmbox",
                "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
            })
        });
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

fn set_args(dir: &Path, args: &[&str]) {
    let args: Vec<Value> = args.iter().map(|a| json!(a)).collect();
    write_config(dir, |v| v["process"]["args"] = Value::Array(args));
}

fn own_program() -> Invocation {
    Invocation::Program {
        program: String::new(),
        args: Vec::new(),
    }
}

/// Images of this process left in the temp dir.
fn leftover_images() -> Vec<String> {
    let prefix = format!("isolab-rootfs-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

fn refusal(dir: &Path) -> String {
    match bundle::load(dir, &own_program()) {
        Err(IsolationError::BadInput(msg)) => msg,
        Err(other) => panic!("expected a specific refusal, got {other:?}"),
        Ok((_, _, p)) => panic!("a hostile config was accepted (cwd {})", p.cwd),
    }
}

#[test]
fn hostile_configs_are_refused_by_field_and_leave_nothing() {
    let b = busybox_bundle(&["true"]);
    let root = b.path().join("rootfs");
    // An absolute symlink out of the root, and a relative one through `..`.
    std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
    for cwd in ["/abs", "/up/etc", "/work/../../.."] {
        write_config(b.path(), |v| v["process"]["cwd"] = json!(cwd));
        let msg = refusal(b.path());
        assert!(
            msg.contains("process.cwd") && msg.contains("leaves the bundle's root filesystem"),
            "{cwd}: {msg}"
        );
    }
    write_config(b.path(), |v| v["process"]["cwd"] = json!("/bin/busybox"));
    assert!(refusal(b.path()).contains("not a directory"));
    write_config(b.path(), |v| v["process"]["cwd"] = json!("/"));

    let env: Vec<String> = (0..300)
        .map(|i| format!("V{i}={}", "x".repeat(1000)))
        .collect();
    write_config(b.path(), |v| v["process"]["env"] = json!(env));
    let msg = refusal(b.path());
    assert!(msg.contains("more than the limit of"), "{msg}");
    write_config(b.path(), |v| v["process"]["env"] = json!(["PATH=/bin"]));

    let many = vec!["x"; 5000];
    set_args(b.path(), &many);
    assert!(refusal(b.path()).starts_with("process.args: 5000 arguments"));
    set_args(b.path(), &["true"]);

    write_config(b.path(), |v| {
        v["process"]["user"]["additionalGids"] = json!(vec![1; 300])
    });
    assert!(refusal(b.path()).starts_with("process.user.additionalGids"));
    write_config(b.path(), |v| {
        v["process"]["user"]["additionalGids"] = json!([])
    });

    write_config(b.path(), |v| {
        v["annotations"] = json!({"pad": "p".repeat(bundle::MAX_CONFIG_BYTES as usize)})
    });
    assert!(refusal(b.path()).contains("more than the limit of 1048576"));

    // What stays is the container loader's own refusal of what no runtime
    // here implements.
    write_config(b.path(), |v| {
        v.as_object_mut().unwrap().remove("annotations");
        v["process"]["terminal"] = json!(true);
    });
    assert!(matches!(
        bundle::load(b.path(), &own_program()),
        Err(IsolationError::Container(_))
    ));
    assert_eq!(leftover_images(), Vec::<String>::new());
}

#[test]
fn a_prepared_bundle_carries_its_process_in_the_initramfs_and_its_root_on_the_disk() {
    let test = "a_prepared_bundle_carries_its_process_in_the_initramfs_and_its_root_on_the_disk";
    let k = isolation::kernel::resolve(None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    if !hostcaps::testing::require(test, "guest-kernel", k) {
        return;
    }
    let b = busybox_bundle(&["sh", "-c", "echo hi"]);
    let cache = tempfile::tempdir().unwrap();
    let vm = VmLinux {
        bundle: Some(b.path().into()),
        quiet: true,
        ..VmLinux::new()
    };
    let (p, times) = bundle::prepare(
        &vm,
        b.path(),
        &own_program(),
        &Limits::default(),
        cache.path(),
    )
    .unwrap();
    let microvm::GuestImage::Linux(linux) = &p.config.image else {
        panic!("not a Linux guest")
    };
    assert!(
        linux.cmdline.ends_with("isolab.vm quiet -- bundle"),
        "{}",
        linux.cmdline
    );
    let initramfs = linux.initramfs.as_ref().unwrap();
    let text = String::from_utf8_lossy(initramfs);
    assert!(text.contains("isolab/process.json\0"));
    assert!(
        text.contains(r#""args":["sh","-c","echo hi"]"#),
        "process description missing"
    );
    assert!(p.bundle && p.program);
    assert!(
        p.config
            .disk
            .as_ref()
            .unwrap()
            .starts_with("/proc/self/fd/")
    );
    assert!(times.image > Duration::ZERO);
    // The image exists only through the run's descriptor.
    assert_eq!(leftover_images(), Vec::<String>::new());
    drop(p);
}

fn linux_guest(test: &str) -> bool {
    hostcaps::testing::require(test, "linux-guest", vm_linux::linux_guest_support())
}

fn boot(dir: &Path) -> Outcome {
    let vm = VmLinux {
        bundle: Some(dir.into()),
        quiet: true,
        ..VmLinux::new()
    };
    let limits = Limits {
        timeout: Duration::from_secs(240),
        ..Limits::default()
    };
    vm.run(&own_program(), &limits).unwrap()
}

fn stdout(o: &Outcome) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_bundles_process_runs_in_the_guest_with_its_status_env_cwd_and_ids() {
    let test = "the_bundles_process_runs_in_the_guest_with_its_status_env_cwd_and_ids";
    if !linux_guest(test) {
        return;
    }
    let b = busybox_bundle(&["echo", "hi"]);
    let o = boot(b.path());
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    assert_eq!(stdout(&o), "hi\n");
    let boot_times = o.boot.unwrap();
    assert!(
        boot_times.kernel.is_some() && boot_times.init.is_some(),
        "{boot_times:?}"
    );

    set_args(b.path(), &["sh", "-c", "exit 7"]);
    assert_eq!(boot(b.path()).exit, Exit::Exited { code: 7 });

    set_args(
        b.path(),
        &[
            "sh",
            "-c",
            r#"echo "$FOO|$PWD|$(id -u)|$(id -g)|$(id -G)|$(hostname)"; kill -9 $$"#,
        ],
    );
    write_config(b.path(), |v| {
        v["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        v["process"]["cwd"] = json!("/work");
        v["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [10]});
    });
    let o = boot(b.path());
    assert_eq!(
        stdout(&o),
        "bar baz|/work|1000|1001|1001 10|vmbox\n",
        "{o:?}"
    );
    assert_eq!(o.exit, Exit::Exited { code: 128 + 9 });

    // A root the guest cannot set up is isolab's failure, not the program's.
    std::fs::remove_dir(b.path().join("rootfs/proc")).unwrap();
    std::fs::write(b.path().join("rootfs/proc"), b"not a directory").unwrap();
    match boot(b.path()).exit {
        Exit::VmStopped { detail } => {
            assert!(
                detail.contains("could not start the bundle's process"),
                "{detail}"
            );
            assert!(
                detail.contains("/newroot/proc in the image is not a directory"),
                "{detail}"
            );
        }
        other => panic!("expected a set-up failure, got {other:?}"),
    }
    assert_eq!(leftover_images(), Vec::<String>::new());
}
