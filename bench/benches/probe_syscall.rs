//! Kernel-entry round trip per isolation: a system call natively and in a
//! container, a VM exit in the tiny VM; the workload's own net time per
//! round trip (loop overhead subtracted), one workload run per iteration.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::time::Duration;

use criterion::{SamplingMode, criterion_group, criterion_main};

const ARGS: [&str; 5] = ["syscall", "--reps", "3", "--syscall-iters", "10000"];

fn probe_syscall(c: &mut criterion::Criterion) {
    let backends = common::usable("probe_syscall", &ARGS);
    let mut group = c.benchmark_group("probe_syscall");
    group.sampling_mode(SamplingMode::Flat);
    for (kind, backend) in &backends {
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        common::probe_time(
                            backend.as_ref(),
                            &ARGS,
                            "syscall",
                            "round_trip_ns",
                            |ns| Duration::from_secs_f64(ns / 1e9),
                        )
                    })
                    .sum::<Duration>()
            })
        });
    }
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = probe_syscall }
criterion_main!(benches);
