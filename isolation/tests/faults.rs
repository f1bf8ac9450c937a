//! Fault injection: a runtime or VMM killed with SIGKILL mid-run, a full disk
//! as the I/O target, a cgroup that cannot be created or configured. After
//! each, the next run works, and `isolab clean` (`isolation::clean::scan` +
//! `clean`) removes whatever the fault left.
//!
//! The kill tests run the built `isolab` binary as a child (it must sit beside
//! the test binary's directory, i.e. `target/<profile>/isolab`: build it with
//! `cargo build --bin isolab`); they skip with that reason when it is missing.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use common::probes;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use container::{CgroupChoice, ContainerSpec};
use isolation::clean::{self, Leftovers};
use isolation::{Isolation, IsolationError, IsolationKind, Limits, Outcome};

/// The tests here count cgroups and temp files of this process, so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(60),
        ..Limits::default()
    }
}

fn backend(kind: IsolationKind) -> Box<dyn Isolation> {
    isolation::backend(kind).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// A normal run of `kind` succeeds.
fn next_run_works(kind: IsolationKind) {
    let o = backend(kind).run(&probes(&["ready"]), &limits()).unwrap();
    assert!(
        o.exit.success(),
        "{kind}: the next run failed: {:?}",
        o.exit
    );
}

fn isolab(test: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("isolab"));
    let found = match &bin {
        Some(b) if b.is_file() => Ok(()),
        _ => Err(format!(
            "no isolab binary beside the test binary ({}); build it with `cargo build --bin isolab`",
            bin.as_ref()
                .map(|b| b.display().to_string())
                .unwrap_or_default()
        )),
    };
    hostcaps::testing::require(test, "isolab-binary", found).then(|| bin.unwrap())
}

fn kvm(test: &str) -> bool {
    hostcaps::testing::require(test, "kvm", hostcaps::kvm::device_usable())
}

/// Leftovers whose name carries `pid`.
fn leftovers_of(pid: u32) -> Leftovers {
    let all = clean::scan();
    let mine = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| clean::owner_pid(&n.to_string_lossy()))
            == Some(pid as i32)
    };
    Leftovers {
        container: container::clean::Leftovers {
            cgroups: all.container.cgroups.into_iter().filter(mine).collect(),
            staging: all.container.staging.into_iter().filter(mine).collect(),
            veths: all
                .container
                .veths
                .into_iter()
                .filter(|v| container::clean::veth_owner(v) == Some(pid as i32))
                .collect(),
            net: all
                .container
                .net
                .into_iter()
                .filter(|l| {
                    use container::net::leftovers::{Leftover, Names};
                    let (Leftover::Netns(n) | Leftover::Link(n) | Leftover::Chain(n)) = l;
                    Names::parse(n).is_some_and(|(p, _)| p == pid as i32)
                })
                .collect(),
        },
        cgroups: all.cgroups.into_iter().filter(mine).collect(),
        temp: all.temp.into_iter().filter(mine).collect(),
    }
}

/// Cgroup directories named after `pid`, in every hierarchy.
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("isolab-{pid}-");
    hostcaps::cgroup::mounts()
        .iter()
        .filter_map(|m| std::fs::read_dir(&m.path).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the child on drop, whatever the test did.
struct Killed(Child);

impl Killed {
    fn spawn(cmd: &mut Command) -> Killed {
        Killed(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
    fn kill9(&mut self) {
        self.0.kill().unwrap(); // SIGKILL
        self.0.wait().unwrap();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purpose: it runs nothing and holds nothing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next())
                != Some("Z")
        })
        .unwrap_or(false)
}

#[test]
fn killed_runtime_leaves_what_isolab_clean_removes() {
    let test = "killed_runtime_leaves_what_isolab_clean_removes";
    let _serial = serial();
    if !hostcaps::testing::require_root(test) {
        return;
    }
    let Some(bin) = isolab(test) else { return };
    let mut child = Killed::spawn(Command::new(bin).args([
        "run",
        "--isolation",
        "container",
        "--",
        "sleep",
        "60",
    ]));
    let pid = child.0.id();
    // The container is up once its cgroup has a process in it.
    let (group, procs) = wait_for("the container to start", Duration::from_secs(20), || {
        cgroups_of(pid).into_iter().find_map(|g| {
            let procs: Vec<i32> = std::fs::read_to_string(g.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            (!procs.is_empty()).then_some((g, procs))
        })
    });
    child.kill9();

    // What the dead runtime left: its cgroup(s) and the staging directory.
    let left = leftovers_of(pid);
    assert!(left.container.cgroups.contains(&group), "{left:?}");
    assert!(
        !left.container.staging.is_empty(),
        "no staging directory left? {left:?}"
    );
    let orphans = procs.iter().filter(|p| alive(**p)).count();
    println!(
        "after SIGKILL of the runtime: {left:?}; {orphans} of {} container processes still running",
        procs.len()
    );
    // The next run works while the leftovers are still there.
    next_run_works(IsolationKind::Container);

    let log = clean::clean(&left);
    assert!(log.iter().all(|l| l.starts_with("removed")), "{log:#?}");
    assert!(leftovers_of(pid).is_empty(), "{:?}", leftovers_of(pid));
    assert!(cgroups_of(pid).is_empty());
    // The container's processes, orphaned by the kill, were killed with their cgroup.
    wait_for(
        "the orphaned container processes to die",
        Duration::from_secs(5),
        || procs.iter().all(|p| !alive(*p)).then_some(()),
    );
    next_run_works(IsolationKind::Container);
}

#[test]
fn killed_net_run_leaves_a_network_that_isolab_clean_removes() {
    let test = "killed_net_run_leaves_a_network_that_isolab_clean_removes";
    let _serial = serial();
    if !hostcaps::testing::require_root(test) {
        return;
    }
    let Some(bin) = isolab(test) else { return };
    // Far more round trips than the test waits for.
    let mut child = Killed::spawn(Command::new(&bin).args([
        "probe",
        "--isolation",
        "container",
        "--net",
        "both",
        "net",
        "--net-round-trips",
        "10000000",
    ]));
    let pid = child.0.id();
    let names = container::net::leftovers::Names::new(pid as i32, 0);
    wait_for("the network to be made", Duration::from_secs(20), || {
        // The published port's DNAT chain is the last thing made.
        let rules = Command::new("iptables")
            .args(["-w", "-t", "nat", "-S"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&rules.stdout)
            .contains(&format!("-j {}", names.post_chain))
            .then_some(())
    });
    child.kill9();
    let left = leftovers_of(pid);
    // The namespace, the bridge (the veth pairs may go with the namespace
    // once its last process dies) and both nat chains.
    let shown: Vec<String> = left.container.net.iter().map(|l| l.to_string()).collect();
    for want in [&names.netns, &names.bridge, &names.chain, &names.post_chain] {
        assert!(
            shown.iter().any(|s| s.ends_with(want.as_str())),
            "{want} not in {shown:?}"
        );
    }
    let out = Command::new(&bin).arg("clean").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("removed network namespace {}", names.netns)),
        "{text}"
    );
    assert!(
        leftovers_of(pid).container.net.is_empty(),
        "{:?}",
        leftovers_of(pid)
    );
    for link in [&names.veth, &names.bridge, &names.port] {
        assert!(
            !std::path::Path::new("/sys/class/net").join(link).exists(),
            "{link}"
        );
    }
    let rules = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(!rules.contains(&names.chain), "{rules}");
}

#[test]
fn killed_vmm_leaves_nothing_and_the_next_vm_runs() {
    let test = "killed_vmm_leaves_nothing_and_the_next_vm_runs";
    let _serial = serial();
    if !kvm(test) {
        return;
    }
    let Some(bin) = isolab(test) else { return };
    // A guest that keeps its vCPU busy for far longer than the test waits.
    let mut child = Killed::spawn(Command::new(bin).args([
        "probe",
        "--isolation",
        "vm",
        "--guest",
        "tiny",
        "--timeout",
        "120s",
        "cpu",
        "--cpu-rounds",
        "1000000",
    ]));
    let pid = child.0.id();
    // Mid-run: the VMM has its vCPU thread (two threads at least).
    wait_for("the vCPU thread", Duration::from_secs(20), || {
        let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.count())
            .unwrap_or(0);
        (threads >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the guest finished before it could be killed"
    );
    child.kill9();

    // Guest RAM is anonymous memory and the disk an O_TMPFILE: nothing outlives the process.
    let left = leftovers_of(pid);
    assert!(left.is_empty(), "a killed VMM left {left:?}");
    next_run_works(IsolationKind::VmTiny);
}

/// A 1 MiB tmpfs mounted on a temp dir; unmounted on drop.
struct FullDisk {
    dir: tempfile::TempDir,
}

impl FullDisk {
    fn mount() -> FullDisk {
        let dir = tempfile::Builder::new()
            .prefix("faults-full-disk-")
            .tempdir()
            .unwrap();
        nix::mount::mount(
            Some("isolab-full"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some("size=1M,mode=0777"),
        )
        .expect("mount a 1 MiB tmpfs");
        FullDisk { dir }
    }
    fn entries(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn describe(r: &Result<Outcome, IsolationError>) -> String {
    match r {
        Ok(o) => format!("{:?}: {}", o.exit, String::from_utf8_lossy(&o.console)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_full_disk_as_the_io_target_is_a_clean_failure() {
    let test = "a_full_disk_as_the_io_target_is_a_clean_failure";
    let _serial = serial();
    if !hostcaps::testing::require_root(test) {
        return;
    }
    let mut kinds = vec![IsolationKind::Native, IsolationKind::Container];
    if kvm(test) {
        kinds.push(IsolationKind::VmTiny);
    }
    let full = FullDisk::mount();
    let roomy = tempfile::tempdir().unwrap();
    let io_on = |dir: &std::path::Path| {
        let target = dir.display().to_string();
        probes(&[
            "io",
            "--io-size",
            "4M",
            "--reps",
            "1",
            "--io-target",
            &target,
        ])
    };
    for kind in kinds {
        let b = backend(kind);
        let r = b.run(&io_on(full.dir.path()), &limits());
        println!("{kind} on a full disk: {}", describe(&r).trim());
        // Either the run reports the failure (non-zero exit) or refuses it with an error; never success.
        assert!(
            !matches!(&r, Ok(o) if o.exit.success()),
            "{kind}: 4 MiB of I/O succeeded on a 1 MiB disk: {}",
            describe(&r)
        );
        if let Ok(o) = &r {
            let console = String::from_utf8_lossy(&o.console);
            assert!(
                console.contains("io probe"),
                "{kind}: the failure is not explained: {console}"
            );
        }
        assert!(
            full.entries().is_empty(),
            "{kind} left {:?} on the full disk",
            full.entries()
        );
        // The same probe on a disk with room works right after.
        let r = b.run(&io_on(roomy.path()), &limits());
        assert!(
            matches!(&r, Ok(o) if o.exit.success()),
            "{kind}: the next io run failed: {}",
            describe(&r)
        );
        assert!(
            std::fs::read_dir(roomy.path()).unwrap().next().is_none(),
            "{kind} left files in the io target"
        );
    }
}

#[test]
fn a_cgroup_that_cannot_be_created_or_configured_is_a_clean_error() {
    let test = "a_cgroup_that_cannot_be_created_or_configured_is_a_clean_error";
    let _serial = serial();
    if !hostcaps::testing::require_root(test) {
        return;
    }
    let me = std::process::id();
    let staging = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| clean::owner_pid(&e.file_name().to_string_lossy()) == Some(me as i32))
            .count()
    };
    let before = (cgroups_of(me).len(), staging());
    // 1. The parent of the group is a regular file: mkdir fails.
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let spec = ContainerSpec::minimal("/bin/busybox")
        .program("true")
        .cgroup(CgroupChoice::V2 {
            parent: Some(file.join("sub")),
        });
    let err = container::run(&spec).expect_err("a cgroup under a file cannot be created");
    assert!(
        err.to_string().contains("not-a-directory"),
        "the error names the path: {err}"
    );

    // 2. A group that can be created but not limited: the cgroup2 mount here
    //    has no controllers, so a memory limit cannot be written.
    let mounts = hostcaps::cgroup::mounts();
    if let Some(v2) = hostcaps::cgroup::v2_root(&mounts)
        && !std::fs::read_to_string(v2.join("cgroup.subtree_control"))
            .unwrap_or_default()
            .contains("memory")
    {
        let spec = ContainerSpec::minimal("/bin/busybox")
            .program("true")
            .memory(64 << 20)
            .cgroup(CgroupChoice::V2 {
                parent: Some(v2.to_path_buf()),
            });
        let err = container::run(&spec).expect_err("no memory controller, no memory limit");
        println!("unconfigurable cgroup: {err}");
    } else {
        println!("SKIP part 2 of {test}: the cgroup2 root has the memory controller");
    }
    // Nothing left: no group, no staging directory.
    assert_eq!(
        (cgroups_of(me).len(), staging()),
        before,
        "a failed set-up left something"
    );
    next_run_works(IsolationKind::Container);
}
