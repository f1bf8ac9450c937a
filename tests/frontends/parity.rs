//! podman with the runtime under test against podman with runc: the same
//! commands, the same output and exit status.

use std::io::Read;
use std::process::{Command, Stdio};

use bench::frontend::Podman;

use crate::{DEMO, assert_podman_leaves_nothing, podman_with_demo, ready, runtime_under_test};

/// One step's result: what ran, its exit status and its standard output.
#[derive(Debug, PartialEq)]
pub struct Step {
    /// The command, as shown in a difference.
    pub what: String,
    /// Its exit status (-1 for a signal).
    pub code: i32,
    /// Its standard output.
    pub stdout: String,
}

fn step(what: &str, o: &std::process::Output) -> Step {
    Step {
        what: what.to_string(),
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
    }
}

/// `podman run --runtime RUNTIME --rm [opts] DEMO cmd...`.
pub fn run_rm(podman: &Podman, runtime: &str, opts: &[&str], cmd: &[&str]) -> Step {
    let mut args = podman.run_args(runtime);
    args.push("--rm".into());
    args.extend(opts.iter().map(|s| s.to_string()));
    args.push(DEMO.into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    let o = podman.command().args(&args).output().unwrap();
    if !o.stderr.is_empty() {
        eprintln!(
            "[{runtime}] {opts:?} {cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    step(&format!("run {opts:?} {cmd:?}"), &o)
}

/// The one-shot cases: options, command, and what runc is expected to give.
pub const CASES: [(&[&str], &[&str], i32, &str); 6] = [
    (&[], &["/bin/echo", "hi"], 0, "hi\n"),
    (&[], &["/bin/sh", "-c", "exit 7"], 7, ""),
    (
        &["--env", "FOO=bar"],
        &["/bin/sh", "-c", "echo $FOO"],
        0,
        "bar\n",
    ),
    (&["--workdir", "/tmp"], &["/bin/pwd"], 0, "/tmp\n"),
    (
        &["--user", "1000:1000"],
        &["/bin/id"],
        0,
        "uid=1000(lab) gid=1000(lab) groups=1000(lab)\n",
    ),
    // The image's /bin/false exits 1 with no output; stdin is not a terminal.
    (
        &["-i"],
        &["/bin/sh", "-c", "test -t 0 || echo no-tty; false"],
        1,
        "no-tty\n",
    ),
];

#[test]
fn podman_run_matches_runc() {
    let test = "podman_run_matches_runc";
    if !ready(test, &["podman", "runc"]) {
        return;
    }
    let podman = podman_with_demo();
    let r = runtime_under_test();
    // Every case runs; the differences are reported together.
    let mut differ = Vec::new();
    for (opts, cmd, code, stdout) in CASES {
        let reference = run_rm(&podman, "runc", opts, cmd);
        assert_eq!(
            (reference.code, reference.stdout.as_str()),
            (code, stdout),
            "runc itself: {opts:?} {cmd:?}"
        );
        let ours = run_rm(&podman, &r, opts, cmd);
        if ours != reference {
            differ.push(format!("{ours:?}\n  runc: {reference:?}"));
        }
    }
    assert_podman_leaves_nothing(podman);
    assert!(
        differ.is_empty(),
        "{r} differs from runc:\n{}",
        differ.join("\n")
    );
}

/// `podman run -it` under a pseudo-terminal (`script`), exit status passed back.
fn run_tty(podman: &Podman, runtime: &str) -> Step {
    let mut line: Vec<String> = vec![podman.program().display().to_string()];
    line.extend(podman.global_args());
    line.extend(podman.run_args(runtime));
    line.extend(
        [
            "--rm",
            "-it",
            DEMO,
            "/bin/sh",
            "-c",
            "tty; test -t 1 && echo out-tty; exit 3",
        ]
        .map(String::from),
    );
    let quoted: Vec<String> = line
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    // script's input stays open (and silent) until the container is done:
    // at end of input script would type an EOF into the terminal, echoed.
    let mut child = Command::new("script")
        .args(["-qfec", &quoted.join(" "), "/dev/null"])
        .envs(podman.envs())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = child.stdin.take();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    drop(input);
    Step {
        what: "run -it under a pty".into(),
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
    }
}

#[test]
fn podman_terminal_matches_runc() {
    let test = "podman_terminal_matches_runc";
    if !ready(test, &["podman", "runc", "script"]) {
        return;
    }
    let podman = podman_with_demo();
    let reference = run_tty(&podman, "runc");
    assert_eq!(reference.code, 3, "{reference:?}");
    assert!(
        reference.stdout.contains("/dev/pts/0\r\nout-tty\r\n"),
        "{reference:?}"
    );
    let ours = run_tty(&podman, &runtime_under_test());
    assert_eq!(ours, reference);
    assert_podman_leaves_nothing(podman);
}

/// A detached container's life: exec into it, logs, stop, inspect, rm.
fn lifecycle(podman: &Podman, runtime: &str) -> Vec<Step> {
    let name = format!("isolab-life-{}", std::process::id());
    let p = |args: &[&str]| {
        let o = podman.command().args(args).output().unwrap();
        // Container ids differ between runs; commands that print one are
        // compared by status only.
        let what = args
            .join(" ")
            .replace(&name, "NAME")
            .replace(runtime, "RUNTIME");
        let mut s = step(&what, &o);
        if matches!(args[0], "run" | "rm" | "stop") {
            s.stdout = s.stdout.replace(&name, "NAME");
            if args[0] == "run" {
                s.stdout = format!("<id of {} bytes>", s.stdout.trim().len());
            }
        }
        if s.code != 0 {
            eprintln!(
                "[{runtime}] {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        s
    };
    let mut run = podman.run_args(runtime);
    run.extend(
        [
            "-d",
            "--name",
            &name,
            DEMO,
            "/bin/sh",
            "-c",
            "echo started; exec sleep 600",
        ]
        .map(String::from),
    );
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let mut steps = vec![p(&run)];
    // The container has printed its line before `exec` asks.
    for _ in 0..100 {
        if podman
            .check(&["logs", &name])
            .is_ok_and(|l| l.contains("started"))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    steps.push(p(&["exec", &name, "/bin/echo", "in-exec"]));
    steps.push(p(&[
        "exec",
        "--user",
        "1000",
        "--workdir",
        "/tmp",
        &name,
        "/bin/sh",
        "-c",
        "id -u; pwd; exit 5",
    ]));
    steps.push(p(&["logs", &name]));
    steps.push(p(&["inspect", "--format", "{{.State.Status}}", &name]));
    steps.push(p(&["stop", "--time", "1", &name]));
    steps.push(p(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]));
    steps.push(p(&["rm", &name]));
    steps.push(p(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("name={name}"),
    ]));
    steps
}

#[test]
fn podman_lifecycle_matches_runc() {
    let test = "podman_lifecycle_matches_runc";
    if !ready(test, &["podman", "runc"]) {
        return;
    }
    let podman = podman_with_demo();
    let reference = lifecycle(&podman, "runc");
    let outputs: Vec<(i32, &str)> = reference
        .iter()
        .map(|s| (s.code, s.stdout.as_str()))
        .collect();
    assert_eq!(
        outputs[1..],
        [
            (0, "in-exec\n"),
            (5, "1000\n/tmp\n"),
            (0, "started\n"),
            (0, "running\n"),
            (0, "NAME\n"),
            (0, "exited 137\n"),
            (0, "NAME\n"),
            (0, ""),
        ],
        "runc itself: {reference:#?}"
    );
    let r = runtime_under_test();
    let ours = lifecycle(&podman, &r);
    let differ: Vec<String> = ours
        .iter()
        .zip(&reference)
        .filter(|(o, r)| o != r)
        .map(|(o, r)| format!("{o:?}\n  runc: {r:?}"))
        .collect();
    assert_podman_leaves_nothing(podman);
    assert!(
        differ.is_empty(),
        "{r} differs from runc:\n{}",
        differ.join("\n")
    );
}

/// The limit a container's cgroup holds, read on the host: `file` (v1
/// `memory.limit_in_bytes`, v2 `memory.max`) of the group `/proc/PID/cgroup`
/// names for `controller`.
fn host_limit(pid: &str, controller: &str, v1: &str, v2: &str) -> String {
    let groups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in groups.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let file = if ctrls.split(',').any(|c| c == controller) {
            format!("/sys/fs/cgroup/{controller}{path}/{v1}")
        } else if ctrls.is_empty() {
            format!("/sys/fs/cgroup/unified{path}/{v2}")
        } else {
            continue;
        };
        if let Ok(v) = std::fs::read_to_string(&file) {
            return v.trim().to_string();
        }
        if let Ok(v) = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/{v2}")) {
            return v.trim().to_string();
        }
    }
    panic!("no {controller} limit for pid {pid}: {groups}")
}

/// `--memory` and `--pids-limit` land in the container's cgroup as with runc,
/// read from the host (the view from inside: `podman_limits_read_inside_match_runc`).
#[test]
fn podman_limits_match_runc_on_the_host() {
    let test = "podman_limits_match_runc_on_the_host";
    if !ready(test, &["podman", "runc"]) {
        return;
    }
    let podman = podman_with_demo();
    let r = runtime_under_test();
    let mut seen = Vec::new();
    for runtime in ["runc", r.as_str()] {
        let mut args = podman.run_args(runtime);
        args.extend(
            [
                "-d",
                "--memory",
                "64m",
                "--pids-limit",
                "64",
                DEMO,
                "sleep",
                "30",
            ]
            .map(String::from),
        );
        let o = podman.command().args(&args).output().unwrap();
        assert!(
            o.status.success(),
            "{runtime}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let pid = podman
            .check(&["inspect", "--format", "{{.State.Pid}}", &id])
            .unwrap();
        let pid = pid.trim().to_string();
        let memory = host_limit(&pid, "memory", "memory.limit_in_bytes", "memory.max");
        let pids = host_limit(&pid, "pids", "pids.max", "pids.max");
        podman.check(&["rm", "-f", "-t", "0", &id]).unwrap();
        seen.push((runtime.to_string(), memory, pids));
    }
    for (runtime, memory, pids) in &seen {
        assert_eq!(
            (memory.as_str(), pids.as_str()),
            ("67108864", "64"),
            "{runtime}"
        );
    }
    assert_podman_leaves_nothing(podman);
}

/// A program reads its own limits in the container's /sys/fs/cgroup (v1
/// `memory/memory.limit_in_bytes`, v2 `memory.max`) and gets what it gets
/// under runc.
#[test]
fn podman_limits_read_inside_match_runc() {
    let test = "podman_limits_read_inside_match_runc";
    if !ready(test, &["podman", "runc"]) {
        return;
    }
    let podman = podman_with_demo();
    let r = runtime_under_test();
    let opts = ["--memory", "64m", "--pids-limit", "64"];
    let cmd = [
        "/bin/sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
         cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    ];
    let reference = run_rm(&podman, "runc", &opts, &cmd);
    assert_eq!(
        (reference.code, reference.stdout.as_str()),
        (0, "67108864\n64\n"),
        "runc itself"
    );
    let ours = run_rm(&podman, &r, &opts, &cmd);
    assert_podman_leaves_nothing(podman);
    assert_eq!(ours, reference, "{r} differs from runc");
}
