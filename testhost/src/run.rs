//! Booting the test host and running one command in it.
//!
//! The host side makes a run directory (a temporary directory, shared with
//! the guest at `/run/isolab-testhost`) holding the command as a shell
//! script, its environment and [stage 2](../stage2.sh); QEMU's stdout is the
//! guest's virtio console, on which the command's output arrives as it is
//! written; stage 2 writes the command's exit status back into the run
//! directory. QEMU dies with this process (`PR_SET_PDEATHSIG`), and the run
//! directory is removed whatever happens.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{CMDLINE_MARK, Error, Image};

/// Stage 2, run by busybox init inside.
pub const STAGE2: &str = include_str!("stage2.sh");
/// The emulator.
pub const QEMU: &str = "qemu-system-x86_64";
/// Exit status when the timeout stopped the test host (as `timeout(1)`).
pub const TIMEOUT_STATUS: i32 = 124;
/// Exit status when the test host froze and was stopped (`EX_TEMPFAIL`: a
/// rerun normally passes).
pub const FROZEN_STATUS: i32 = 75;
/// A test host whose QEMU used less than [`FROZEN_CPU_SHARE`] of one CPU for
/// this long is frozen. QEMU 7.2's TCG now and then leaves the emulated CPU
/// halted with a deliverable timer interrupt pending (seen in `info lapic`:
/// IRR set, ISR empty, HLT=1); nothing wakes it again, so without this the
/// run would sit idle until its timeout. `ISOLAB_TESTHOST_FREEZE_S` changes
/// the window (0: off), for commands that legitimately idle that long.
const FROZEN_AFTER: Duration = Duration::from_secs(120);
/// See [`FROZEN_AFTER`]. Measured here: a frozen QEMU uses none at all, an
/// idle but live one (`sleep` inside) about 0.5% of a CPU.
const FROZEN_CPU_SHARE: f64 = 0.001;
/// Lines of the console shown when the test host fails.
const CONSOLE_TAIL: usize = 40;
/// The CPU QEMU emulates: an AMD EPYC with SVM and nested paging, minus the
/// features TCG does not implement (which QEMU would warn about at start).
const CPU: &str = "EPYC,+svm,+npt,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch,\
-osvw,-topoext,-nrip-save,-xsavec";
/// The test host's kernel command line (its console goes to a file).
const KERNEL_CMDLINE: &str = "console=ttyS0 loglevel=5 panic=-1 softlockup_panic=1";
/// Environment variables passed into the test host when set here.
const PASSED_ENV: &[&str] = &[
    "CI",
    "RUST_BACKTRACE",
    "RUST_LOG",
    "TERM",
    "NO_COLOR",
    "PATH",
    "HOME",
];

/// One command to run in the test host.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Extra environment (after the passed-through variables).
    pub env: Vec<(String, String)>,
    /// Working directory inside (must be under `share` or outside writable trees).
    pub cwd: PathBuf,
    /// Directory shared read-write at the same path.
    pub share: PathBuf,
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// Emulated CPUs.
    pub cpus: u8,
    /// Wall-clock limit for the whole run.
    pub timeout: Duration,
    /// Give the command a terminal (stdin and stdout are a tty here).
    pub interactive: bool,
}

/// Runs `spec` in the test host booted from `image`; returns the command's
/// exit status ([`TIMEOUT_STATUS`] when the timeout stopped it).
pub fn run(image: &Image, spec: &RunSpec) -> Result<i32, Error> {
    check(spec)?;
    // Named after our pid, so `isolab clean` removes it if we are killed.
    let rundir = tempfile::Builder::new()
        .prefix(&format!("isolab-testhost-{}-", std::process::id()))
        .tempdir()
        .map_err(Error::io(&std::env::temp_dir()))?;
    write_run_files(rundir.path(), spec)?;
    let mut child = qemu(image, spec, rundir.path())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ToolMissing {
                tool: QEMU,
                hint: "apt-get install qemu-system-x86",
            },
            _ => Error::io(Path::new(QEMU))(e),
        })?;
    let ended = wait(&mut child, spec.timeout, freeze_window())?;
    let status = std::fs::read_to_string(rundir.path().join("status")).ok();
    match (ended, status) {
        (Ended::Exited(_), Some(s)) => s.trim().parse().map_err(|_| Error::NoStatus {
            why: format!("unreadable status {s:?}"),
            console: console_tail(rundir.path()),
        }),
        (Ended::TimedOut, _) => {
            eprintln!(
                "isolab: testhost: stopped by the timeout ({} s)",
                spec.timeout.as_secs()
            );
            Ok(TIMEOUT_STATUS)
        }
        (Ended::Frozen(idle), _) => {
            eprintln!(
                "isolab: testhost: the emulated host froze (QEMU used no CPU for {} s: its \
                 emulated CPU halted with an interrupt pending) and was stopped; rerun it",
                idle.as_secs()
            );
            Ok(FROZEN_STATUS)
        }
        (Ended::Exited(how), None) => Err(Error::NoStatus {
            why: format!("QEMU {how}"),
            console: console_tail(rundir.path()),
        }),
    }
}

fn check(spec: &RunSpec) -> Result<(), Error> {
    if spec.command.is_empty() {
        return Err(Error::BadInput("no command to run in the test host".into()));
    }
    let share = &spec.share;
    if !share.is_absolute() || share == Path::new("/") || !share.is_dir() {
        return Err(Error::BadInput(format!(
            "the shared directory must be an existing absolute directory other than /: {}",
            share.display()
        )));
    }
    if share
        .to_str()
        .is_none_or(|s| s.contains(|c: char| c.is_whitespace() || c == ','))
    {
        return Err(Error::BadInput(format!(
            "QEMU cannot share {}: its path has a space or a comma",
            share.display()
        )));
    }
    if spec.cpus == 0 || spec.memory_mib < 512 {
        return Err(Error::BadInput(
            "the test host needs at least one CPU and 512 MiB".into(),
        ));
    }
    Ok(())
}

/// Single-quotes `s` for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn write_run_files(dir: &Path, spec: &RunSpec) -> Result<(), Error> {
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(Error::io(&p))
    };
    let share = spec.share.to_string_lossy();
    write(
        "config",
        format!(
            "ISOLAB_TESTHOST_SHARE={}\nISOLAB_TESTHOST_INTERACTIVE={}\n",
            quote(&share),
            u8::from(spec.interactive)
        ),
    )?;
    write("stage2", STAGE2.to_string())?;
    let mut script = format!("cd {} || exit 125\n", quote(&spec.cwd.to_string_lossy()));
    let passed = PASSED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)));
    // Inside, output goes to the virtio console, a terminal to the command even
    // when ours is a pipe: say so with NO_COLOR, as a pipe would.
    if !spec.interactive && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        script.push_str("export NO_COLOR=1\n");
    }
    for (k, v) in passed.chain(spec.env.iter().cloned()) {
        script.push_str(&format!("export {k}={}\n", quote(&v)));
    }
    let argv: Vec<String> = spec.command.iter().map(|a| quote(a)).collect();
    script.push_str(&format!("exec {}\n", argv.join(" ")));
    write("command", script)
}

fn qemu(image: &Image, spec: &RunSpec, rundir: &Path) -> Command {
    let virtfs = |path: &Path, tag: &str, ro: bool| {
        format!(
            "local,path={},mount_tag={tag},security_model=passthrough,multidevs=remap{}",
            path.display(),
            if ro { ",readonly=on" } else { "" }
        )
    };
    let mut c = Command::new(QEMU);
    c.args(["-accel", "tcg,thread=multi", "-cpu", CPU])
        .args([
            "-smp",
            &spec.cpus.to_string(),
            "-m",
            &format!("{}M", spec.memory_mib),
        ])
        .args([
            "-display",
            "none",
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
            "-nic",
            "none",
        ])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initramfs)
        .args(["-append", &format!("{KERNEL_CMDLINE} {CMDLINE_MARK}")])
        .arg("-serial")
        .arg(format!("file:{}", rundir.join("console.log").display()))
        .args(["-device", "virtio-serial-pci"])
        .args([
            "-chardev",
            if spec.interactive {
                "stdio,id=con,signal=off"
            } else {
                "stdio,id=con"
            },
        ])
        .args(["-device", "virtconsole,chardev=con"])
        .args(["-virtfs", &virtfs(Path::new("/"), "hostroot", true)])
        .args(["-virtfs", &virtfs(rundir, "run", false)])
        .args(["-virtfs", &virtfs(&spec.share, "share", false)])
        // A monitor for post-mortems (`info registers -a` on a hung host).
        .arg("-monitor")
        .arg(format!(
            "unix:{},server=on,wait=off",
            rundir.join("monitor").display()
        ))
        .args(extra_args())
        .stdin(if spec.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    // SAFETY: prctl with integer arguments is async-signal-safe; it only
    // asks the kernel to kill QEMU when this process dies.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

/// Extra QEMU arguments from `ISOLAB_TESTHOST_QEMU_ARGS` (space separated),
/// for diagnosing the emulator itself.
fn extra_args() -> Vec<String> {
    std::env::var("ISOLAB_TESTHOST_QEMU_ARGS")
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// How a QEMU run ended.
enum Ended {
    /// QEMU exited by itself, with this status.
    Exited(String),
    /// Killed at the timeout.
    TimedOut,
    /// Killed after idling this long (see [`FROZEN_AFTER`]).
    Frozen(Duration),
}

/// The freeze window: `ISOLAB_TESTHOST_FREEZE_S` seconds, else
/// [`FROZEN_AFTER`]; `None` (never frozen) for 0.
fn freeze_window() -> Option<Duration> {
    match std::env::var("ISOLAB_TESTHOST_FREEZE_S")
        .ok()
        .map(|v| v.trim().parse::<u64>())
    {
        Some(Ok(0)) => None,
        Some(Ok(s)) => Some(Duration::from_secs(s)),
        _ => Some(FROZEN_AFTER),
    }
}

/// Waits for QEMU until `timeout`, or until it has used (almost) no CPU for
/// `freeze` (checked every few seconds from `/proc/PID/stat`).
fn wait(child: &mut Child, timeout: Duration, freeze: Option<Duration>) -> Result<Ended, Error> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut samples: Vec<(Duration, Duration)> = Vec::new();
    let mut next_sample = start;
    loop {
        if let Some(st) = child.try_wait().map_err(Error::io(Path::new(QEMU)))? {
            return Ok(Ended::Exited(st.to_string()));
        }
        let now = Instant::now();
        let mut ended = (now >= deadline).then_some(Ended::TimedOut);
        if let (Some(window), true) = (freeze, now >= next_sample) {
            next_sample = now + Duration::from_secs(5);
            if let Some(cpu) = cpu_time(child.id()) {
                samples.push((now - start, cpu));
                if frozen(&samples, window) {
                    ended = Some(Ended::Frozen(window));
                }
            }
        }
        if let Some(ended) = ended {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(ended);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// CPU time (user + system) process `pid` has used so far.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(") ")?.1;
    let mut f = rest.split_whitespace().skip(11);
    let ticks: u64 = f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

/// True when the samples (elapsed, CPU used) span at least `window` and
/// the CPU used over the last `window` is below [`FROZEN_CPU_SHARE`] of it.
fn frozen(samples: &[(Duration, Duration)], window: Duration) -> bool {
    let Some(&(now, cpu_now)) = samples.last() else {
        return false;
    };
    let Some(&(then, cpu_then)) = samples.iter().rev().find(|(t, _)| now - *t >= window) else {
        return false;
    };
    let used = cpu_now.saturating_sub(cpu_then).as_secs_f64();
    used < (now - then).as_secs_f64() * FROZEN_CPU_SHARE
}

fn console_tail(rundir: &Path) -> String {
    let text = std::fs::read_to_string(rundir.join("console.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(CONSOLE_TAIL)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(command: &[&str]) -> RunSpec {
        RunSpec {
            command: command.iter().map(|s| s.to_string()).collect(),
            env: vec![("A".into(), "it's".into())],
            cwd: "/work/x y".into(),
            share: std::env::temp_dir(),
            memory_mib: 3072,
            cpus: 2,
            timeout: Duration::from_secs(60),
            interactive: false,
        }
    }

    #[test]
    fn the_command_script_quotes_everything() {
        let dir = tempfile::tempdir().unwrap();
        write_run_files(dir.path(), &spec(&["sh", "-c", "echo 'a b'"])).unwrap();
        let script = std::fs::read_to_string(dir.path().join("command")).unwrap();
        assert!(
            script.starts_with("cd '/work/x y' || exit 125\n"),
            "{script}"
        );
        assert!(script.contains("export A='it'\\''s'\n"), "{script}");
        assert!(
            script.ends_with("exec 'sh' '-c' 'echo '\\''a b'\\'''\n"),
            "{script}"
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("A={}; echo \"$A\"", quote("it's $HOME")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $HOME\n");
        let config = std::fs::read_to_string(dir.path().join("config")).unwrap();
        assert!(config.contains("ISOLAB_TESTHOST_INTERACTIVE=0"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stage2")).unwrap(),
            STAGE2
        );
    }

    #[test]
    fn bad_requests_are_refused_before_booting() {
        assert!(matches!(check(&spec(&[])), Err(Error::BadInput(_))));
        let mut s = spec(&["true"]);
        s.share = "/".into();
        assert!(matches!(check(&s), Err(Error::BadInput(_))));
        s.share = "relative".into();
        assert!(matches!(check(&s), Err(Error::BadInput(_))));
        let mut s = spec(&["true"]);
        s.memory_mib = 64;
        assert!(matches!(check(&s), Err(Error::BadInput(_))));
        assert!(check(&spec(&["true"])).is_ok());
    }

    #[test]
    fn qemu_gets_svm_the_shares_and_the_mark() {
        let image = Image {
            dir: "/c".into(),
            kernel: "/c/vmlinuz".into(),
            initramfs: "/c/initramfs.cpio".into(),
            package: "p 1".into(),
        };
        let c = qemu(&image, &spec(&["true"]), Path::new("/tmp/run"));
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("-cpu EPYC,+svm,+npt"), "{joined}");
        assert!(
            joined.contains(
                "mount_tag=hostroot,security_model=passthrough,multidevs=remap,readonly=on"
            )
        );
        assert!(joined.contains("path=/tmp/run,mount_tag=run"));
        assert!(
            args.iter()
                .any(|a| a.ends_with(CMDLINE_MARK) && a.starts_with("console=ttyS0"))
        );
    }

    #[test]
    fn a_host_idle_for_the_whole_window_is_frozen() {
        let s = |t: u64, cpu_ms: u64| (Duration::from_secs(t), Duration::from_millis(cpu_ms));
        let w = Duration::from_secs(120);
        // Busy, then nothing at all for 125 s: frozen.
        assert!(frozen(&[s(0, 0), s(5, 4000), s(130, 4000)], w));
        // Too short a history to say.
        assert!(!frozen(&[s(0, 0), s(60, 0)], w));
        // Idle but alive (timer ticks): 1 s of CPU in 125 s is not frozen.
        assert!(!frozen(&[s(5, 4000), s(130, 5000)], w));
        assert!(!frozen(&[], w));
    }
}
