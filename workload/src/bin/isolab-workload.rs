//! `isolab-workload`: runs the probes on the Linux platform.
//!
//! As PID 1 it also acts as init: reaps orphans, exits on SIGTERM, and when
//! the kernel command line says `isolab.vm` it signals the VMM through the
//! isolab ports and reboots the guest when done. `exec PROGRAM…` runs a
//! program with init's duties; `bundle` runs an OCI bundle's process in the
//! bundle's root (see `workload::linux::bundle`).

use std::io::Write;
use std::process::ExitCode;

use workload::args::{self, Command, USAGE};
use workload::linux::{LinuxPlatform, bundle, exec, init, ports};

/// Exit status for a bad command line.
const USAGE_ERROR: u8 = 2;
/// Exit status for a probe that failed.
const PROBE_ERROR: u8 = 1;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mode = argv.first().map(String::as_str);
    let exec = matches!(mode, Some("exec" | "bundle"));
    let in_vm = init::is_pid1() && setup_pid1(!exec);
    let status = match mode {
        Some("exec") => run_program(&argv[1..], in_vm),
        Some("bundle") => run_bundle(in_vm),
        _ => run(&argv, in_vm),
    };
    if in_vm {
        let _ = std::io::stdout().flush();
        ports::exit_status(i32::from(status));
        init::power_off();
    }
    ExitCode::from(status)
}

/// PID 1 set-up; returns true when running as a VM's init with the ports
/// usable. `reap` installs the reaper (`exec` reaps in its own wait loop).
fn setup_pid1(reap: bool) -> bool {
    if let Err(e) = init::ensure_proc() {
        eprintln!("isolab-workload: warning: cannot mount /proc: {e}");
    }
    let mut in_vm = init::kernel_says_vm();
    if in_vm && let Err(e) = init::ensure_console() {
        // Without a console the results cannot leave; the exit status still can.
        eprintln!("isolab-workload: warning: no console: {e}");
    }
    if in_vm {
        match ports::enable() {
            Ok(()) => ports::init_started(),
            Err(e) => {
                eprintln!("isolab-workload: warning: no access to the isolab ports: {e}");
                in_vm = false;
            }
        }
    }
    if reap && let Err(e) = init::install_handlers(in_vm) {
        eprintln!("isolab-workload: warning: cannot install PID 1 signal handlers: {e}");
    }
    in_vm
}

/// `exec -- PROGRAM ARGS…`: an arbitrary program, with init's duties.
fn run_program(args: &[String], in_vm: bool) -> u8 {
    let spec = match exec::parse(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("isolab-workload: {e}");
            return exec::USAGE as u8;
        }
    };
    if in_vm && let Err(e) = exec::mount_basics() {
        eprintln!("isolab-workload: warning: {e}");
    }
    let ready = || {
        if in_vm {
            ports::ready();
        }
    };
    // Statuses are 0..=255 by construction (codes, 128 + signal).
    exec::run(&spec, ready) as u8
}

/// `bundle`: an OCI bundle's process in its own root (the VMM wrote the
/// description into the initramfs); only as a VM's PID 1.
fn run_bundle(in_vm: bool) -> u8 {
    if !in_vm {
        eprintln!("isolab-workload: `bundle` runs only as PID 1 of an isolab VM");
        return USAGE_ERROR;
    }
    // Statuses are 0..=255 by construction (codes, 128 + signal).
    bundle::run(ports::ready) as u8
}

fn run(argv: &[String], in_vm: bool) -> u8 {
    match args::parse(argv.iter().map(String::as_str)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            0
        }
        Ok(Command::Run(cfg)) => {
            let mut platform = LinuxPlatform::new(in_vm);
            match workload::run(&mut platform, &cfg) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("isolab-workload: error: {e}");
                    PROBE_ERROR
                }
            }
        }
        Err(e) => {
            eprintln!("isolab-workload: error: {e}\nrun `isolab-workload --help` for usage");
            USAGE_ERROR
        }
    }
}
