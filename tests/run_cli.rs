//! `isolab run` as a user sees it: stdio passed through, podman's exit
//! statuses, one line for a timeout, and an OCI bundle from `runc spec` run
//! with no program, compared with runc itself.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn isolab(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_isolab"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Root and a static busybox: what a container run needs here.
fn container_ready(test: &str) -> bool {
    common::root_and_busybox(test)
}

#[test]
fn native_statuses_follow_podman() {
    let o = isolab(&["run", "--isolation", "native", "--", "/no/such"], b"");
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    // Said once, with its cause.
    assert_eq!(stderr(&o).matches("No such file or directory").count(), 1);
    let plain = tempfile::NamedTempFile::new().unwrap();
    let o = isolab(
        &[
            "run",
            "--isolation",
            "native",
            "--",
            plain.path().to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&o), 126, "{}", stderr(&o));
    let o = isolab(
        &[
            "run",
            "--isolation",
            "native",
            "--",
            "/bin/sh",
            "-c",
            "exit 3",
        ],
        b"",
    );
    assert_eq!(code(&o), 3);
    let o = isolab(&["run", "--isolation", "native", "--bogus"], b"");
    assert_eq!(code(&o), 125, "a usage error is isolab's own failure");
}

#[test]
fn native_stdio_passes_through_and_json_captures() {
    let o = isolab(&["run", "--isolation", "native", "--", "/bin/cat"], b"hi\n");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    let o = isolab(
        &[
            "run",
            "--isolation",
            "native",
            "--json",
            "--",
            "/bin/echo",
            "kept",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stdout"], "kept\n");
}

#[test]
fn container_statuses_stdio_and_timeout() {
    let test = "container_statuses_stdio_and_timeout";
    if !container_ready(test) {
        return;
    }
    let run = |args: &[&str], stdin: &[u8]| {
        let mut all = vec!["run", "--isolation", "container"];
        all.extend_from_slice(args);
        isolab(&all, stdin)
    };
    let o = run(&["--", "/bin/cat"], b"through\n");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "through\n",
        "{}",
        stderr(&o)
    );
    let o = run(&["--", "/no/such"], b"");
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    let o = run(&["--cpus", "0.001", "--", "/bin/true"], b"");
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("cpus"), "{}", stderr(&o));
    let o = run(&["--", "/bin/sh", "-c", "exit 9"], b"");
    assert_eq!(code(&o), 9);
    let o = run(&["--timeout", "1s", "--", "/bin/sleep", "10"], b"");
    assert_eq!(code(&o), 124);
    let lines: Vec<String> = stderr(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("--timeout"), "{lines:?}");
}

/// A `runc spec` bundle (terminal off) with a busybox root, whose
/// `process.args` exit with `status` after printing the user and cwd.
fn runc_bundle(dir: &Path, status: i32) {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    let out = Command::new("runc")
        .arg("spec")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    c["process"]["terminal"] = false.into();
    c["process"]["cwd"] = "/bin".into();
    c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    c["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push("GREETING=hello".into());
    c["process"]["args"] = serde_json::json!([
        "/bin/sh",
        "-c",
        format!("echo $GREETING $(/bin/busybox id -u) $(/bin/busybox pwd); exit {status}")
    ]);
    std::fs::write(&path, serde_json::to_string_pretty(&c).unwrap()).unwrap();
}

#[test]
fn a_runc_bundle_runs_its_own_process_args_as_runc_does() {
    let test = "a_runc_bundle_runs_its_own_process_args_as_runc_does";
    if !container_ready(test) {
        return;
    }
    let runc = Command::new("runc").arg("--version").output();
    let runc = runc
        .map(|_| ())
        .map_err(|e| format!("needs runc on PATH (apt-get install runc): {e}"));
    if !hostcaps::testing::require(test, "runc", runc) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    runc_bundle(d.path(), 7);
    let bundle = d.path().to_str().unwrap();
    let ours = isolab(&["run", "--bundle", bundle], b"");
    let name = format!("isolab-test-{}", std::process::id());
    let theirs = Command::new("runc")
        .args(["run", "--bundle", bundle, &name])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        "hello 1000 /bin\n",
        "{}",
        stderr(&ours)
    );
    assert_eq!(
        ours.stdout,
        theirs.stdout,
        "runc: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    assert_eq!(code(&ours), 7);
    assert_eq!(ours.status.code(), theirs.status.code());
}

#[test]
fn a_user_who_is_not_root_runs_a_rootless_container() {
    let test = "a_user_who_is_not_root_runs_a_rootless_container";
    if !container_ready(test)
        || !hostcaps::testing::require(test, "userns", common::can_unshare_as("65534", "nobody"))
    {
        return;
    }
    let mut child = common::setpriv_as("65534")
        .arg(env!("CARGO_BIN_EXE_isolab"))
        .args(["run", "--isolation", "container", "--memory", "64M", "--"])
        .args([
            "/bin/sh",
            "-c",
            "cat; id -u; cat /proc/self/uid_map; exit 5",
        ])
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"in\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("in"), "{out}\n{}", stderr(&o));
    assert_eq!(lines.next(), Some("0"), "root inside");
    let map: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        map,
        ["0", "65534", "1"],
        "only the caller's own id is mapped"
    );
    assert_eq!(code(&o), 5);
    // Without subordinate ids (nobody has none), a note says why.
    let err = stderr(&o);
    assert!(err.contains("only uid 0 and gid 0 inside"), "{err}");
    // Where this user owns no cgroup, the limits asked for are named as off.
    if err.contains("rootless: no cgroup") {
        assert!(err.contains("limits off: memory, pids"), "{err}");
    }
}

#[test]
fn probe_takes_json_anywhere_and_refuses_unknown_probes_before_running() {
    let o = isolab(
        &[
            "probe",
            "--isolation",
            "native",
            "cpu",
            "--json",
            "--reps",
            "1",
            "--cpu-rounds",
            "1",
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l["probe"] == "cpu"), "{out}");
    let o = isolab(&["probe", "--isolation", "native", "cpu", "bogus"], b"");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown probe \"bogus\""),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "nothing may run: {:?}", o.stdout);
    let o = isolab(
        &["probe", "--isolation", "native", "cpu", "--bogus", "1"],
        b"",
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown option \"--bogus\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_json_gives_durations_as_integer_nanoseconds() {
    let o = isolab(
        &["run", "--isolation", "native", "--json", "--", "/bin/true"],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cpu = &v["accounting"]["cpu_time_ns"];
    assert!(cpu.is_u64(), "{v}");
    assert!(v["accounting"].get("cpu_time").is_none(), "{v}");
}

/// `isolab bench --json`: the results document on stdout (the same as the
/// results file), progress on stderr; `--json` with `--soak` is refused by
/// the parser.
#[test]
fn bench_json_prints_the_results_document() {
    let o = isolab(&["bench", "--soak", "--json"], b"");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = isolab(
        &[
            "bench",
            "--quick",
            "--runs",
            "1",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(printed, saved);
    assert!(printed["schema_version"].as_u64().unwrap() >= 1);
    assert!(
        printed["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["subject"] == "native"),
        "{printed:.300}"
    );
}
