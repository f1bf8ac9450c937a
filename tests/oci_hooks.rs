//! The runtime spec's hooks, as isolab's OCI runtime runs them: each kind at
//! its point of the lifecycle, in order, with the container's state on
//! stdin; a failing or slow `prestart` fails `create` and leaves nothing.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn ready(test: &str) -> bool {
    common::root_and_busybox(test)
}

/// A state root (`common::OciLab`), a bundle printing its `oom_score_adj`
/// (set to 123), and a file the hooks append to.
struct Lab(common::OciLab);

impl std::ops::Deref for Lab {
    type Target = common::OciLab;
    fn deref(&self) -> &common::OciLab {
        &self.0
    }
}

impl Lab {
    fn new() -> Lab {
        Lab(common::OciLab::new())
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal")
    }

    /// A hook that appends `NAME <its argv0> <env X> <state>` to the journal,
    /// then runs `then` (a shell command).
    fn hook(&self, name: &str, then: &str) -> Value {
        let script = format!(
            "echo \"{name} $0 $X $(cat)\" >> {}; {then}",
            self.journal().display()
        );
        json!({"path": "/bin/sh", "args": [format!("argv0-{name}"), "-c", script], "env": ["X=x", "PATH=/usr/bin:/bin"]})
    }

    /// The bundle, with `hooks` in its config.
    fn bundle(&self, hooks: Value) -> PathBuf {
        self.0.bundle("bundle", &["sh"], |c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = json!([
                "/bin/sh",
                "-c",
                "read a < /proc/self/oom_score_adj; echo adj=$a"
            ]);
            c["process"]["oomScoreAdj"] = 123.into();
            c["hooks"] = hooks;
        })
    }

    /// `create`: the container's output and the runtime's go to a file (a
    /// pipe would stay open as long as the container runs); returns the
    /// exit code and what was written.
    fn create(&self, b: &Path, id: &str) -> (Option<i32>, String) {
        let log = self.dir.path().join(format!("{id}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let st = self
            .cmd(&["create", "--bundle", b.to_str().unwrap(), id])
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .unwrap();
        (st.code(), std::fs::read_to_string(&log).unwrap())
    }

    /// The journal's lines: (hook, argv0, X, state).
    fn entries(&self) -> Vec<(String, String, String, Value)> {
        std::fs::read_to_string(self.journal())
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut it = l.splitn(4, ' ');
                let mut next = || it.next().unwrap().to_string();
                let (name, argv0, x) = (next(), next(), next());
                (name, argv0, x, serde_json::from_str(&next()).unwrap())
            })
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.entries().into_iter().map(|e| e.0).collect()
    }

    /// Asserts nothing of container `id` is left: state, init, cgroups.
    fn assert_gone(&self, id: &str, init: i32) {
        assert!(!self.root().join(id).exists(), "state of {id} left");
        assert!(
            !Path::new(&format!("/proc/{init}")).exists(),
            "init {init} left"
        );
        let groups = std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|h| h.path().join("isolab-oci").join(id))
            .chain([Path::new("/sys/fs/cgroup/isolab-oci").join(id)]);
        for g in groups {
            assert!(!g.exists(), "{} left", g.display());
        }
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn each_hook_runs_at_its_point_with_the_state() {
    if !ready("each_hook_runs_at_its_point_with_the_state") {
        return;
    }
    // The init outlives `create`: its status is ours to reap, as a shim's.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let lab = Lab::new();
    let b = lab.bundle(json!({
        "prestart": [lab.hook("prestart1", ""), lab.hook("prestart2", "")],
        "createRuntime": [lab.hook("createRuntime", "")],
        "poststart": [lab.hook("poststart", "exit 1")],
        "poststop": [lab.hook("poststop", "")],
        "createContainer": []
    }));
    let bundle = b.to_str().unwrap();
    let (code, out) = lab.create(&b, "h1");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        lab.names(),
        ["prestart1", "prestart2", "createRuntime"],
        "prestart first, in order"
    );
    let state: Value = serde_json::from_str(&lab.ok(&["state", "h1"])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    for (name, argv0, x, s) in lab.entries() {
        assert_eq!(argv0, format!("argv0-{name}"));
        assert_eq!(x, "x", "{name}: its env");
        assert_eq!(s["status"], "creating", "{name}");
        assert_eq!(s["id"], "h1");
        assert_eq!(s["pid"], pid, "{name}: the init's pid");
        assert_eq!(s["bundle"], bundle);
        assert!(s["ociVersion"].is_string());
    }
    // A failing poststart is a warning, not a failure of start.
    let out = lab.run(&["start", "h1"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hooks.poststart[0]"), "{err}");
    let (name, _, _, s) = lab.entries().pop().unwrap();
    assert_eq!(
        (name.as_str(), &s["status"]),
        ("poststart", &json!("running"))
    );
    wait_for("the program to exit", || {
        lab.ok(&["state", "h1"]).contains("\"stopped\"")
    });
    assert!(!lab.names().contains(&"poststop".to_string()));
    let out = std::fs::read_to_string(lab.dir.path().join("h1.log")).unwrap();
    assert_eq!(out, "adj=123\n", "process.oomScoreAdj");
    lab.ok(&["delete", "h1"]);
    let (name, _, _, s) = lab.entries().pop().unwrap();
    assert_eq!(
        (name.as_str(), &s["status"]),
        ("poststop", &json!("stopped"))
    );
    assert_eq!(s["id"], "h1");
    assert_eq!(lab.names().len(), 5);
    let mut st = 0;
    // SAFETY: reaping the exited init, whose subreaper this process is.
    let rc = unsafe { libc::waitpid(pid as i32, &mut st, 0) };
    assert_eq!(rc, pid as i32, "{}", std::io::Error::last_os_error());
    lab.assert_gone("h1", pid as i32);
}

/// Creates `id` expecting failure; returns its stderr.
fn create_fails(lab: &Lab, b: &Path, id: &str) -> String {
    let (code, out) = lab.create(b, id);
    assert_eq!(code, Some(125), "{out}");
    out
}

#[test]
fn a_failing_prestart_fails_create_and_leaves_nothing() {
    if !ready("a_failing_prestart_fails_create_and_leaves_nothing") {
        return;
    }
    let lab = Lab::new();
    let b = lab.bundle(json!({
        "prestart": [lab.hook("prestart", "echo boom >&2; exit 7")],
        "createRuntime": [lab.hook("createRuntime", "")],
        "poststop": [lab.hook("poststop", "")]
    }));
    let err = create_fails(&lab, &b, "h2");
    assert!(err.contains("hooks.prestart[0] (/bin/sh)"), "{err}");
    assert!(
        err.contains("exit status: 7") && err.contains("boom"),
        "{err}"
    );
    // The later hooks did not run; the poststop hooks did, once it was gone.
    assert_eq!(lab.names(), ["prestart", "poststop"]);
    let init = lab.entries()[0].3["pid"].as_i64().unwrap();
    assert!(init > 0);
    lab.assert_gone("h2", init as i32);
}

#[test]
fn a_hook_past_its_timeout_is_killed_and_fails_create() {
    if !ready("a_hook_past_its_timeout_is_killed_and_fails_create") {
        return;
    }
    let lab = Lab::new();
    let mut slow = lab.hook("createRuntime", "exec sleep 60");
    slow["timeout"] = 1.into();
    let b = lab.bundle(json!({ "createRuntime": [slow] }));
    let t = Instant::now();
    let err = create_fails(&lab, &b, "h3");
    assert!(err.contains("killed after its timeout of 1s"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let init = lab.entries()[0].3["pid"].as_i64().unwrap();
    lab.assert_gone("h3", init as i32);
}

#[test]
fn hooks_in_the_container_namespaces_are_refused() {
    if !ready("hooks_in_the_container_namespaces_are_refused") {
        return;
    }
    let lab = Lab::new();
    let b = lab.bundle(json!({ "startContainer": [{"path": "/bin/true"}] }));
    let err = create_fails(&lab, &b, "h4");
    assert!(err.contains("hooks.startContainer"), "{err}");
    assert!(!lab.root().join("h4").exists());
    assert!(lab.names().is_empty());
}
