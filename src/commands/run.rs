//! `isolab run` and `isolab probe`: one invocation under one isolation.

use isolation::{BackendOptions, Exit, Invocation, IsolationError, IsolationKind, Limits, Outcome};

use super::Unsupported;
use crate::args::{Common, GuestArg, IsolationArg, NetArg, ProbeArgs, RunArgs};
use isolation::net::ContainerNet;

/// `isolab run -- PROGRAM ARGS…`: exits with the program's status, or with
/// 125/126/127 when it could not be run (see [`failure_code`]).
pub fn run(a: RunArgs) -> anyhow::Result<i32> {
    let mut program = a.program.into_iter();
    let invocation = Invocation::Program {
        program: program.next().unwrap_or_default(),
        args: program.collect(),
    };
    // Output kept only when the outcome is printed as JSON.
    let passthrough = !a.common.json;
    let outcome = execute(&a.common, &invocation, passthrough)?;
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&outcome_json(&outcome))?);
    } else {
        use std::io::Write;
        std::io::stdout().write_all(&outcome.stdout)?;
        // The program's stderr (a VM's console) goes to ours, so errors are seen.
        std::io::stderr().write_all(&outcome.console)?;
        for note in &outcome.notes {
            eprintln!("{} {note}", crate::style::note_prefix());
        }
    }
    match outcome.exit {
        Exit::Timeout => eprintln!(
            "isolab: the program was stopped after --timeout {:?}",
            a.common.timeout
        ),
        Exit::OomKilled => eprintln!("isolab: the program was {}", describe(&outcome.exit)),
        _ => {}
    }
    Ok(exit_status(&outcome.exit))
}

/// The exit status of an `isolab run` that failed before the program ran, as
/// podman and Docker use them: 127 not found, 126 not executable, 125 for
/// isolab's own failures.
pub fn failure_code(e: &anyhow::Error) -> i32 {
    e.downcast_ref::<IsolationError>()
        .map_or(125, IsolationError::exit_code)
}

/// `isolab probe PROBE…`: prints the result lines (or a summary table).
pub fn probe(mut a: ProbeArgs) -> anyhow::Result<i32> {
    // The probe list swallows what follows it, so a trailing `--json` is
    // isolab's, not the workload's.
    let words = a.probes.len();
    a.probes.retain(|w| w != "--json");
    a.common.json |= a.probes.len() != words;
    // Parsed once, here, by the workload's own parser: unknown probes and
    // options are refused before anything starts, and every backend gets
    // the typed configuration.
    let config = match workload::args::parse(a.probes.iter().map(String::as_str)) {
        Ok(workload::args::Command::Run(config)) => config,
        Ok(workload::args::Command::Help) => {
            print!("{}", workload::args::USAGE);
            return Ok(0);
        }
        Err(e) => {
            eprintln!("{} {e}", crate::style::error_prefix());
            return Ok(2);
        }
    };
    let outcome = execute(&a.common, &Invocation::Probes(config), false)?;
    if a.common.json {
        for r in &outcome.results {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        println!(
            "{:<8} {:<22} {:>14} {:<8} {:>5}  checksum/kind",
            "probe", "metric", "value", "unit", "n"
        );
        for r in &outcome.results {
            let tag = r.checksum.as_deref().or(r.kind.as_deref()).unwrap_or("");
            println!(
                "{:<8} {:<22} {:>14.3} {:<8} {:>5}  {}",
                r.probe,
                r.metric,
                r.value,
                r.unit,
                r.samples.len(),
                tag
            );
        }
        if let Some(b) = outcome.boot {
            println!(
                "boot: {:.3} ms to the ready marker",
                b.total.as_secs_f64() * 1e3
            );
        }
        for note in &outcome.notes {
            eprintln!("{} {note}", crate::style::note_prefix());
        }
    }
    if !outcome.exit.success() {
        eprintln!(
            "isolab: the workload did not finish cleanly: {}",
            describe(&outcome.exit)
        );
        if !outcome.console.is_empty() {
            eprintln!(
                "--- console/stderr ---\n{}",
                String::from_utf8_lossy(&outcome.console)
            );
        }
        return Ok(exit_status(&outcome.exit).max(1));
    }
    Ok(0)
}

fn kind_of(c: &Common) -> IsolationKind {
    match (c.isolation.unwrap_or(IsolationArg::Container), c.guest) {
        (IsolationArg::Native, _) => IsolationKind::Native,
        (IsolationArg::Container, _) => IsolationKind::Container,
        (IsolationArg::Vm, Some(GuestArg::Tiny)) => IsolationKind::VmTiny,
        (IsolationArg::Vm, Some(GuestArg::Linux)) => IsolationKind::VmLinux,
        (IsolationArg::Vm, None) => IsolationKind::VmLinux,
    }
}

fn execute(c: &Common, invocation: &Invocation, passthrough: bool) -> anyhow::Result<Outcome> {
    let mut kind = kind_of(c);
    if kind != IsolationKind::Container && c.rootfs.is_some() {
        anyhow::bail!("--rootfs applies to --isolation container only (got {kind})");
    }
    // A bundle runs in a container or, its rootfs as the guest's root, in
    // the Linux guest; never in the tiny guest, and never by falling back to it.
    if c.bundle.is_some() && c.isolation == Some(IsolationArg::Vm) {
        if c.guest == Some(GuestArg::Tiny) {
            anyhow::bail!("--bundle runs in a container or the Linux guest, not --guest tiny");
        }
        kind = IsolationKind::VmLinux;
    }
    if kind == IsolationKind::Native && c.bundle.is_some() {
        anyhow::bail!("--bundle applies to --isolation container or vm (got {kind})");
    }
    if kind != IsolationKind::Container && c.net.is_some() {
        anyhow::bail!("--net applies to --isolation container only (got {kind})");
    }
    let options = BackendOptions {
        rootfs: c.rootfs.clone(),
        bundle: c.bundle.clone(),
        kernel: c.kernel.clone(),
        cmdline: c.cmdline.clone(),
        console: c.console,
        passthrough_stdio: passthrough,
        net: c.net.map(|n| match n {
            NetArg::Veth => ContainerNet::Veth,
            NetArg::Nat => ContainerNet::Nat,
            NetArg::Both => ContainerNet::Both,
        }),
    };
    let limits = Limits {
        memory: c.memory,
        cpus: c.cpus,
        timeout: c.timeout,
    };
    // `--isolation vm` without `--guest`: isolation decides which guest (and says why).
    let (backend, fallback_note) = if c.guest.is_none() && kind == IsolationKind::VmLinux {
        isolation::preferred_vm(&options)
    } else {
        isolation::backend_with(kind, &options).map(|b| (b, None))
    }
    .map_err(unsupported)?;
    let mut outcome = backend.run(invocation, &limits).map_err(unsupported)?;
    outcome.notes.extend(fallback_note);
    Ok(outcome)
}

fn unsupported(e: IsolationError) -> anyhow::Error {
    match e {
        IsolationError::Unsupported { .. } => Unsupported(e.to_string()).into(),
        other => other.into(),
    }
}

fn exit_status(e: &Exit) -> i32 {
    match e {
        Exit::Exited { code } => *code,
        Exit::Signaled { signal } => 128 + signal,
        Exit::OomKilled => 137,
        Exit::Timeout => 124,
        Exit::VmStopped { .. } => 125,
    }
}

fn describe(e: &Exit) -> String {
    match e {
        Exit::Exited { code } => format!("exited with status {code}"),
        Exit::Signaled { signal } => format!("killed by signal {signal}"),
        Exit::OomKilled => "killed by the OOM killer (memory limit)".into(),
        Exit::Timeout => "stopped by --timeout".into(),
        Exit::VmStopped { detail } => format!("the VM stopped: {detail}"),
    }
}

fn outcome_json(o: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "isolation": o.kind,
        "exit": o.exit,
        "boot": o.boot,
        "accounting": o.accounting,
        "results": o.results,
        "stdout": String::from_utf8_lossy(&o.stdout),
        "console": String::from_utf8_lossy(&o.console),
        "notes": o.notes,
    })
}
