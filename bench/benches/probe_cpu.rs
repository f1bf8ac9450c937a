//! CPU throughput per isolation: time per SHA-256 block as the workload's
//! `cpu` probe measured it inside the isolation (one workload run per
//! iteration), so start-up cost does not pollute the figure.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::time::Duration;

use criterion::{SamplingMode, criterion_group, criterion_main};

const ARGS: [&str; 5] = ["cpu", "--reps", "3", "--cpu-rounds", "4"];

fn probe_cpu(c: &mut criterion::Criterion) {
    let backends = common::usable("probe_cpu", &ARGS);
    let mut group = c.benchmark_group("probe_cpu");
    group.sampling_mode(SamplingMode::Flat);
    for (kind, backend) in &backends {
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        common::probe_time(backend.as_ref(), &ARGS, "cpu", "ops_per_s", |ops| {
                            Duration::from_secs_f64(1.0 / ops)
                        })
                    })
                    .sum::<Duration>()
            })
        });
    }
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = probe_cpu }
criterion_main!(benches);
