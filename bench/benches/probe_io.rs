//! Block I/O per isolation: time per random 4 KiB read and per MiB of
//! sequential read, as the workload's `io` probe measured them (direct I/O
//! where the target allows it; the kind is in `isolab bench`'s results).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use std::time::Duration;

use criterion::{SamplingMode, criterion_group, criterion_main};

const ARGS: [&str; 9] = [
    "io",
    "--reps",
    "2",
    "--io-size",
    "8M",
    "--io-rand-ops",
    "256",
    "--fsync-ops",
    "4",
];

fn probe_io(c: &mut criterion::Criterion) {
    let backends = common::usable("probe_io", &ARGS);
    let mut group = c.benchmark_group("probe_io");
    group.sampling_mode(SamplingMode::Flat);
    for (kind, backend) in &backends {
        group.bench_function(format!("{}/rand_read_4k", kind.name()), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        common::probe_time(
                            backend.as_ref(),
                            &ARGS,
                            "io",
                            "rand_read_iops",
                            |iops| Duration::from_secs_f64(1.0 / iops),
                        )
                    })
                    .sum::<Duration>()
            })
        });
        group.bench_function(format!("{}/seq_read_per_mb", kind.name()), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        common::probe_time(
                            backend.as_ref(),
                            &ARGS,
                            "io",
                            "seq_read_mb_per_s",
                            |mbs| Duration::from_secs_f64(1.0 / mbs),
                        )
                    })
                    .sum::<Duration>()
            })
        });
    }
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = probe_io }
criterion_main!(benches);
