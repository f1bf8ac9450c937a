//! The baseline: the workload (or any program) as a plain child process.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::child::{ChildReport, ChildStatus, Supervise, supervise};
use super::{
    Accounting, BootTimes, Exit, Invocation, Isolation, IsolationError, IsolationKind, Limits,
    Outcome, parse_results,
};
use crate::artifacts;

/// Runs the workload as a child process of this one, with no isolation.
#[derive(Debug, Clone, Default)]
pub struct Native {
    /// Give the program our own stdin, stdout and stderr instead of capturing them.
    pub passthrough_stdio: bool,
}

impl Native {
    /// A native runner that captures the program's output.
    pub fn new() -> Native {
        Native::default()
    }
}

/// The program and arguments for `invocation`: the workload sees the io
/// target at the same path as this host does.
fn command_line(invocation: &Invocation) -> Result<(String, Vec<String>), IsolationError> {
    Ok(match invocation {
        Invocation::Probes(cfg) => {
            let bin = artifacts::workload_binary()
                .map_err(|e| IsolationError::BadInput(e.to_string()))?;
            (bin.display().to_string(), cfg.to_args())
        }
        Invocation::Program { program, args } => (program.clone(), args.clone()),
    })
}

impl Isolation for Native {
    fn kind(&self) -> IsolationKind {
        IsolationKind::Native
    }

    fn run(&self, invocation: &Invocation, limits: &Limits) -> Result<Outcome, IsolationError> {
        // Held for the run: the `net` probe's peer, on loopback, and the
        // configuration pointed at it.
        let peers = match invocation {
            Invocation::Probes(cfg) if super::net::wants_peer(cfg) => {
                Some(super::net::native_peers()?)
            }
            _ => None,
        };
        let pointed = match (invocation, &peers) {
            (Invocation::Probes(cfg), Some(p)) => Some(Invocation::Probes(p.point(cfg))),
            _ => None,
        };
        let (program, args) = command_line(pointed.as_ref().unwrap_or(invocation))?;
        let mut notes = Vec::new();
        if limits.memory.is_some() {
            notes.push("native runs do not enforce a memory limit".to_string());
        }
        if limits.cpus.is_some() {
            notes.push("native runs do not enforce a CPU limit".to_string());
        }
        let mut cmd = command(&program, &args, self.passthrough_stdio);
        tracing::debug!(%program, ?args, "native: spawning");
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|source| IsolationError::CannotStart {
            program: program.clone(),
            source,
        })?;
        let report = supervise(Supervise {
            pid: child.id() as i32,
            stdout: child.stdout.take().map(Into::into),
            stderr: child.stderr.take().map(Into::into),
            deadline: start + limits.timeout,
            kill_group: !self.passthrough_stdio,
        })
        .map_err(|source| IsolationError::Io {
            context: format!("waiting for {program}"),
            source,
        })?;
        // `supervise` reaped the child; `child` must not be waited on again.
        drop(child);
        drop(peers);

        outcome_of(invocation, report, start, notes)
    }
}

/// The command for `program`: with the caller's stdio, or piped and in its
/// own process group.
fn command(program: &str, args: &[String], passthrough_stdio: bool) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if passthrough_stdio {
        // In our process group, so it stays in the terminal's foreground
        // (a background group reading the terminal would be stopped).
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
    } else {
        // Own process group, so a timeout kills every descendant too.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
    }
    cmd
}

/// The outcome of a supervised run that started at `start`.
fn outcome_of(
    invocation: &Invocation,
    report: ChildReport,
    start: Instant,
    mut notes: Vec<String>,
) -> Result<Outcome, IsolationError> {
    let exit = match (report.timed_out, report.status) {
        (true, _) => Exit::Timeout,
        (false, ChildStatus::Exited(code)) => Exit::Exited { code },
        (false, ChildStatus::Signaled(signal)) => Exit::Signaled { signal },
    };
    let results = match invocation {
        Invocation::Probes(_) => parse_results(&report.stdout)?,
        // An arbitrary program's JSON is not ours to judge.
        Invocation::Program { .. } => parse_results(&report.stdout).unwrap_or_default(),
    };
    let boot = report.ready_at.map(|at| BootTimes {
        total: at.saturating_duration_since(start),
        setup: None,
        kernel: None,
        init: None,
    });
    if report.dropped > 0 {
        notes.push(format!(
            "{} bytes of output past the {} MiB capture limit were read and dropped",
            report.dropped,
            super::CAPTURE_LIMIT >> 20
        ));
    }
    Ok(Outcome {
        kind: IsolationKind::Native,
        exit,
        boot,
        results,
        stdout: report.stdout,
        console: report.stderr,
        accounting: Accounting {
            host_peak_rss_bytes: Some(report.peak_rss_bytes),
            cpu_time: Some(report.cpu_time),
            ..Accounting::default()
        },
        notes,
    })
}
