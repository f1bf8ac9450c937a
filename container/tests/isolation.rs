//! Each test proves one isolation from inside a container, and fails if that
//! isolation is removed (several also run the weakened configuration to show it).
//! Root is required; the tests skip (or fail under CI with ISOLAB_REQUIRE=root).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::time::Duration;

use common::{busybox_rootfs, out, ready, run, sh};
use container::{CgroupChoice, ContainerSpec, ExitStatus, NetMode, Stdio, Volume};

#[test]
fn workload_is_pid_1_and_sees_no_host_process() {
    if !ready("workload_is_pid_1_and_sees_no_host_process") {
        return;
    }
    let root = busybox_rootfs();
    let r = run(&sh(root.path(), "echo $$; ls /proc | grep -c '^[0-9]'"));
    let o = out(&r);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "1", "shell is not PID 1: {o}");
    let inside: usize = lines[1].trim().parse().unwrap();
    let host = std::fs::read_dir("/proc").unwrap().filter(|e| {
        e.as_ref().is_ok_and(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
    });
    let host = host.count();
    // sh, ls and grep at most; the host has far more.
    assert!(inside <= 3, "container sees {inside} processes");
    assert!(
        host > inside + 10,
        "host has {host} processes, container {inside}"
    );
}

#[test]
fn hostname_differs_from_the_host() {
    if !ready("hostname_differs_from_the_host") {
        return;
    }
    let root = busybox_rootfs();
    let r = run(&sh(root.path(), "hostname").hostname("isolab-test-box"));
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(out(&r).trim(), "isolab-test-box");
    assert_ne!(host, "isolab-test-box");
}

#[test]
fn only_the_rootfs_is_at_slash() {
    if !ready("only_the_rootfs_is_at_slash") {
        return;
    }
    let root = busybox_rootfs();
    std::fs::write(root.path().join("rootfs-marker"), "inside").unwrap();
    let (_d, host_marker) = common::host_marker();
    let script = format!(
        "cat /rootfs-marker; echo; cat {} || echo host-marker-unreachable",
        host_marker.display()
    );
    let r = run(&sh(root.path(), &script));
    let o = out(&r);
    assert!(o.starts_with("inside"), "{o}");
    assert!(
        o.contains("host-marker-unreachable"),
        "host file visible inside: {o}"
    );
    assert!(host_marker.exists());
}

#[test]
fn old_root_is_unreachable_after_pivot_root() {
    if !ready("old_root_is_unreachable_after_pivot_root") {
        return;
    }
    let root = busybox_rootfs();
    // Neither `..` from /, nor /proc/1/root, nor the mount table lead to the host's root.
    let r = run(&sh(
        root.path(),
        "ls /../..; echo ---; ls /proc/1/root/; echo ---; cat /proc/self/mountinfo",
    ));
    let o = out(&r);
    let parts: Vec<&str> = o.split("---\n").collect();
    assert_eq!(parts[0], parts[1], "`..` of / differs from /proc/1/root");
    let mut names: Vec<&str> = parts[0].lines().collect();
    names.sort();
    assert_eq!(names, ["bin", "dev", "etc", "proc", "sys", "tmp"]);
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        host_mounts.contains("/sys/fs/cgroup"),
        "host mount table unexpected"
    );
    assert!(
        !parts[2].contains("/sys/fs/cgroup"),
        "host mounts visible inside:\n{}",
        parts[2]
    );
    let root_mounts = parts[2]
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("/"))
        .count();
    assert_eq!(root_mounts, 1, "more than one mount at /:\n{}", parts[2]);
}

#[test]
fn only_loopback_is_visible_and_it_is_up() {
    if !ready("only_loopback_is_visible_and_it_is_up") {
        return;
    }
    let root = busybox_rootfs();
    let r = run(&sh(
        root.path(),
        "ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags",
    ));
    let o = out(&r);
    let mut lines = o.lines();
    assert_eq!(lines.next(), Some("lo"), "{o}");
    let host_ifs = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert!(
        host_ifs > 1,
        "host has only lo; the test would prove nothing"
    );
    // IFF_UP is bit 0 of the flags.
    let flags = o.lines().last().unwrap();
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: {o}");
}

#[test]
fn capability_set_is_the_oci_default() {
    if !ready("capability_set_is_the_oci_default") {
        return;
    }
    let root = busybox_rootfs();
    let r = run(&sh(
        root.path(),
        "grep -E '^Cap|^NoNewPrivs' /proc/self/status",
    ));
    let o = out(&r);
    let get = |k: &str| {
        o.lines()
            .find(|l| l.starts_with(k))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    for k in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(get(k), "00000000a80425fb", "{k} {o}");
    }
    assert_eq!(get("CapInh:"), "0000000000000000");
    assert_eq!(get("CapAmb:"), "0000000000000000");
    assert_eq!(get("NoNewPrivs:"), "1");
}

#[test]
fn denied_syscall_fails_with_eperm_and_only_because_of_seccomp() {
    if !ready("denied_syscall_fails_with_eperm_and_only_because_of_seccomp") {
        return;
    }
    let root = busybox_rootfs();
    // unshare(CLONE_NEWUSER) needs no capability: only the filter stops it.
    let script = "unshare -U true; echo rc=$?; grep '^Seccomp:' /proc/self/status";
    let r = run(&sh(root.path(), script));
    let o = out(&r);
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(o.contains("rc=1"), "{o} {e}");
    assert!(e.contains("Operation not permitted"), "{e}");
    assert!(o.contains("Seccomp:\t2"), "{o}");
    let mut weak = sh(root.path(), script);
    weak.seccomp = false;
    let r = run(&weak);
    assert!(
        out(&r).contains("rc=0"),
        "without seccomp the syscall should work: {}",
        out(&r)
    );
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    if !ready("memory_hog_is_oom_killed_and_reported") {
        return;
    }
    if !hostcaps::testing::require(
        "memory_hog_is_oom_killed_and_reported",
        "cgroup-memory",
        hostcaps::cgroup::memory_controller_usable(),
    ) {
        return;
    }
    let root = busybox_rootfs();
    // dd keeps a 64 MiB buffer and fills it from /dev/zero.
    let hog = |mem: u64| {
        ContainerSpec::with_rootfs(root.path(), "/bin/dd")
            .args(["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
            .stderr(Stdio::Null)
            .memory(mem)
            .timeout(Duration::from_secs(30))
    };
    let r = run(&hog(16 << 20));
    assert!(r.oom_killed, "{r:?}");
    assert_eq!(r.status, ExitStatus::Signaled(libc::SIGKILL));
    assert!(r.stats.oom_kills.unwrap() >= 1);
    assert!(r.stats.peak_memory_bytes.unwrap() <= 16 << 20);
    let r = run(&hog(256 << 20));
    assert!(
        r.success() && !r.oom_killed,
        "the same program fits in 256 MiB: {r:?}"
    );
}

#[test]
fn fork_bomb_is_stopped_by_the_pids_limit() {
    if !ready("fork_bomb_is_stopped_by_the_pids_limit") {
        return;
    }
    if !hostcaps::testing::require(
        "fork_bomb_is_stopped_by_the_pids_limit",
        "cgroup-pids",
        hostcaps::cgroup::controller_usable("pids"),
    ) {
        return;
    }
    let root = busybox_rootfs();
    let bomb = "i=0; while [ $i -lt 100 ]; do sleep 3 & i=$((i+1)); done; echo spawned";
    let r = run(&sh(root.path(), bomb).pids(Some(16)));
    assert!(r.stats.pids_limit_hits.unwrap() > 0, "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("can't fork"),
        "{r:?}"
    );
    // The host is unaffected: it can still start processes.
    assert!(
        std::process::Command::new("/bin/true")
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn volumes_and_read_only_root() {
    if !ready("volumes_and_read_only_root") {
        return;
    }
    let root = busybox_rootfs();
    let rw = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("f"), "ro-data").unwrap();
    let spec = sh(root.path(), "echo hi > /data/out; cat /cfg/f; echo x > /cfg/g || echo ro-refused; touch /newfile || echo root-refused")
        .volume(Volume::parse(&format!("{}:/data", rw.path().display())).unwrap())
        .volume(Volume::parse(&format!("{}:/cfg:ro", ro.path().display())).unwrap())
        .readonly_root(true);
    let r = run(&spec);
    let o = out(&r);
    assert_eq!(
        std::fs::read_to_string(rw.path().join("out")).unwrap(),
        "hi\n"
    );
    assert!(
        o.contains("ro-data") && o.contains("ro-refused") && o.contains("root-refused"),
        "{o}"
    );
    assert!(!ro.path().join("g").exists());
    assert!(!root.path().join("newfile").exists());
}

#[test]
fn veth_reaches_the_host_and_is_removed() {
    if !ready("veth_reaches_the_host_and_is_removed") {
        return;
    }
    let root = busybox_rootfs();
    let before = std::fs::read_dir("/sys/class/net").unwrap().count();
    let r = run(&sh(root.path(), "ls /sys/class/net; ip -4 addr show eth0").net(NetMode::Veth));
    let o = out(&r);
    assert!(
        o.contains("eth0") && o.contains("10.2"),
        "{o} {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        std::fs::read_dir("/sys/class/net").unwrap().count(),
        before,
        "veth left behind"
    );
}

#[test]
fn minimal_root_holds_only_the_binary_and_busybox() {
    if !ready("minimal_root_holds_only_the_binary_and_busybox") {
        return;
    }
    let spec = ContainerSpec::minimal("/bin/busybox")
        .program("sh")
        .args(["-c", "ls /bin | grep -c .; ls /"])
        .stdout(Stdio::Piped);
    let r = run(&spec);
    let o = out(&r);
    assert!(r.success(), "{r:?}");
    assert!(o.contains("proc") && o.contains("dev"), "{o}");
    let n: usize = o.lines().next().unwrap().parse().unwrap();
    assert_eq!(n, container::rootfs::APPLETS.len() + 1, "{o}");
}

#[test]
fn cgroup_v2_back_end_runs_under_the_unified_mount() {
    let name = "cgroup_v2_back_end_runs_under_the_unified_mount";
    if !ready(name) {
        return;
    }
    let mounts = hostcaps::cgroup::mounts();
    let v2 = hostcaps::cgroup::v2_root(&mounts).map(|p| p.to_path_buf());
    let avail = v2
        .as_ref()
        .map_or(Err("no cgroup2 mount".to_string()), |r| {
            hostcaps::cgroup::can_create_child(r)
        });
    if !hostcaps::testing::require(name, "cgroup2", avail) {
        return;
    }
    // A parent of this test's own, so other tests' groups (on a pure v2
    // host every test uses v2) are not counted.
    let parent = v2
        .unwrap()
        .join(format!("isolab-test-{}-v2", std::process::id()));
    std::fs::create_dir(&parent).unwrap();
    let root = busybox_rootfs();
    let spec = sh(
        root.path(),
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo $i",
    )
    .cgroup(CgroupChoice::V2 {
        parent: Some(parent.clone()),
    })
    .pids(None);
    let r = run(&spec);
    let left = std::fs::read_dir(&parent)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    std::fs::remove_dir(&parent).unwrap();
    assert_eq!(out(&r).trim(), "20000");
    let cpu = r.stats.cpu_time.expect("cpu.stat is always there in v2");
    assert!(cpu > Duration::ZERO);
    assert_eq!(left, 0, "v2 group left behind");
}

#[test]
fn setup_errors_come_back_as_messages() {
    if !ready("setup_errors_come_back_as_messages") {
        return;
    }
    let root = busybox_rootfs();
    let mut spec = ContainerSpec::with_rootfs(root.path(), "/bin/true");
    spec.cwd = "/does-not-exist".into();
    match container::run(&spec).unwrap_err() {
        container::Error::Setup { step, source } => {
            assert_eq!(step, "change to the working directory");
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        e => panic!("unexpected error {e}"),
    }
}

#[test]
fn new_time_namespace_where_the_kernel_has_one() {
    let name = "new_time_namespace_where_the_kernel_has_one";
    if !ready(name) {
        return;
    }
    let has = if std::path::Path::new("/proc/self/ns/time").exists() {
        Ok(())
    } else {
        Err("the kernel has no time namespaces (needs Linux 5.6+)".to_string())
    };
    if !hostcaps::testing::require(name, "timens", has) {
        return;
    }
    let root = busybox_rootfs();
    let host = std::fs::read_link("/proc/self/ns/time").unwrap();
    let r = run(&sh(root.path(), "readlink /proc/self/ns/time"));
    let inside = out(&r);
    assert!(inside.starts_with("time:["), "{inside}");
    assert_ne!(
        inside.trim(),
        host.to_string_lossy(),
        "same time namespace as the host"
    );
    let mut weak = sh(root.path(), "readlink /proc/self/ns/time");
    weak.namespaces.time = false;
    assert_eq!(out(&run(&weak)).trim(), host.to_string_lossy());
}
