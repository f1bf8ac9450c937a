//! Boot time per isolation, and per phase where a backend splits it: from
//! asking for a run to the workload's ready marker, as measured by the host
//! (`Outcome::boot`), fed to criterion with
//! `iter_custom` so criterion's statistics apply to the externally measured
//! time rather than to our own call overhead.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::time::Duration;

use criterion::{SamplingMode, criterion_group, criterion_main};
use isolation::BootTimes;

/// A phase of the boot, read from the outcome.
type Phase = fn(&BootTimes) -> Option<Duration>;

/// The whole boot, then each phase a backend reports: set-up (runtime or
/// VMM, until the first instruction), the guest kernel (until its init
/// started) and init (until ready). The Linux guest's targets on hardware
/// KVM: whole boot ≤ 100 ms median with 128 MiB.
const PHASES: [(&str, Phase); 4] = [
    ("total", |b| Some(b.total)),
    ("setup", |b| b.setup),
    ("kernel", |b| b.kernel),
    ("init", |b| b.init),
];

fn boot(c: &mut criterion::Criterion) {
    let args = ["ready"];
    let backends = common::usable("boot", &args);
    let mut group = c.benchmark_group("boot");
    group.sampling_mode(SamplingMode::Flat);
    for (kind, backend) in &backends {
        let trial = common::run(backend.as_ref(), &args).unwrap_or_else(|e| panic!("{e}"));
        let Some(reported) = trial.boot else {
            panic!("{kind} reported no ready marker");
        };
        for (phase, read) in PHASES.iter().filter(|(_, read)| read(&reported).is_some()) {
            let name = match *phase {
                "total" => kind.name().to_string(),
                p => format!("{}/{p}", kind.name()),
            };
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let o = common::run(backend.as_ref(), &args)
                                .unwrap_or_else(|e| panic!("{e}"));
                            o.boot
                                .and_then(|t| read(&t))
                                .unwrap_or_else(|| panic!("{kind} reported no {phase} time"))
                        })
                        .sum::<Duration>()
                })
            });
        }
    }
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = boot }
criterion_main!(benches);
