//! One module per subcommand.

mod clean;
mod doctor;
mod kernel;
mod run;

use crate::args::Command;

/// A capability this host (or this build) lacks; exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Runs a subcommand and returns the process exit status.
pub fn dispatch(cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Doctor { json } => doctor::run(json),
        Command::Run(a) => run::run(a),
        Command::Probe(a) => run::probe(a),
        Command::Compare { .. } => Err(Unsupported("`isolab compare` is not built yet (needs the benchmark harness)".into()).into()),
        Command::Bench { .. } => Err(Unsupported("`isolab bench` is not built yet (needs the benchmark harness)".into()).into()),
        Command::Report { .. } => Err(Unsupported("`isolab report` is not built yet (needs the report writer)".into()).into()),
        Command::Kernel { action } => kernel::run(action),
        Command::Clean => clean::run(),
    }
}
