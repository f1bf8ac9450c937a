//! One module per subcommand.

mod bench;
mod clean;
mod doctor;
mod kernel;
mod run;
mod testhost;

use crate::args::Command;

/// A capability this host (or this build) lacks; exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Runs a subcommand and returns the process exit status.
pub fn dispatch(cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Doctor { json } => doctor::run(json),
        Command::Run(a) => run::run(a).or_else(|e| {
            // Printed here, once, so the status can be podman's 125/126/127.
            eprintln!("isolab: error: {e:#}");
            Ok(run::failure_code(&e))
        }),
        Command::Probe(a) => run::probe(a),
        Command::Compare { out, json } => bench::compare(out, json),
        Command::Bench {
            soak: true, runs, ..
        } => bench::soak(runs),
        Command::Bench {
            quick, runs, out, ..
        } => bench::bench(quick, runs, &out),
        Command::Report { results, out } => bench::report(&results, &out),
        Command::Kernel { action } => kernel::run(action),
        Command::Clean => clean::run(),
        Command::Testhost { action } => testhost::run(action),
    }
}
