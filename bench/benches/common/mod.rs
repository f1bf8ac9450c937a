//! Shared by the criterion benches: the isolations this host can run, and
//! running the workload once through one of them.
//!
//! Every bench measures through `isolation::Isolation`, like `isolab
//! bench`; an isolation this host cannot run is reported on stderr with its
//! reason and left out, and the rest are measured.

#![allow(dead_code)] // each bench uses a different subset

use std::time::Duration;

use criterion::Criterion;
use isolation::{self, Invocation, Isolation, IsolationKind, Limits, Outcome};

/// Criterion settings for benches whose iterations are whole process or VM
/// runs: few samples, flat sampling, short warm-up.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args()
}

/// Limits for one bench run.
pub fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(60),
        ..Limits::default()
    }
}

/// The isolations that can run `trial` here; the others are reported and skipped.
pub fn usable(bench: &str, trial: &[&str]) -> Vec<(IsolationKind, Box<dyn Isolation>)> {
    let mut out = Vec::new();
    for kind in IsolationKind::ALL {
        match isolation::backend(kind) {
            Ok(backend) => match run(backend.as_ref(), trial) {
                Ok(_) => out.push((kind, backend)),
                Err(e) => eprintln!("{bench}: {kind} skipped: trial run failed: {e}"),
            },
            Err(e) => eprintln!("{bench}: {kind} skipped: {e}"),
        }
    }
    out
}

/// Runs the workload with `args` once; a run that does not exit cleanly is an error.
pub fn run(backend: &dyn Isolation, args: &[&str]) -> Result<Outcome, String> {
    let inv = Invocation::probes(args.iter().copied()).map_err(|e| e.to_string())?;
    let o = backend.run(&inv, &limits()).map_err(|e| e.to_string())?;
    if !o.exit.success() {
        return Err(format!(
            "{} ended with {:?}: {}",
            o.kind,
            o.exit,
            String::from_utf8_lossy(&o.console)
        ));
    }
    Ok(o)
}

/// The value of `probe`/`metric` in an outcome.
pub fn value(o: &Outcome, probe: &str, metric: &str) -> Result<f64, String> {
    o.results
        .iter()
        .find(|l| l.probe == probe && l.metric == metric)
        .map(|l| l.value)
        .ok_or_else(|| format!("{} printed no {probe}/{metric} line", o.kind))
}

/// Runs `args` and turns the probe's reported value into a duration with `to_time`.
pub fn probe_time(
    backend: &dyn Isolation,
    args: &[&str],
    probe: &str,
    metric: &str,
    to_time: fn(f64) -> Duration,
) -> Duration {
    let o = run(backend, args).unwrap_or_else(|e| panic!("{e}"));
    to_time(value(&o, probe, metric).unwrap_or_else(|e| panic!("{e}")))
}
