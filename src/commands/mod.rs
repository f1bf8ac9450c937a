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
            eprintln!("{} {}", crate::style::error_prefix(), error_text(&e));
            Ok(run::failure_code(&e))
        }),
        Command::Probe(a) => run::probe(a),
        Command::Compare { out, json } => bench::compare(out, json),
        Command::Bench {
            soak: true, runs, ..
        } => bench::soak(runs),
        Command::Bench {
            quick,
            runs,
            out,
            json,
            ..
        } => bench::bench(quick, runs, &out, json),
        Command::Report { results, out } => bench::report(&results, &out),
        Command::Kernel { action } => kernel::run(action),
        Command::Clean => clean::run(),
        Command::Testhost { action } => testhost::run(action),
    }
}

/// `e` and its causes, each said once: many errors already name their cause
/// in their own message, and repeating it would only confuse.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(2); // ENOENT
        let e = anyhow::Error::from(::isolation::IsolationError::CannotStart {
            program: "/x".into(),
            source: io,
        });
        assert_eq!(
            error_text(&e),
            "cannot start /x: No such file or directory (os error 2)"
        );
        let e = anyhow::Error::from(std::io::Error::other("inner")).context("outer: inner");
        assert_eq!(error_text(&e), "outer: inner");
    }
}
