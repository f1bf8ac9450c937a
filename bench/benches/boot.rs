//! Boot time per isolation: from asking for a run to the workload's ready
//! marker, as measured by the host (`Outcome::boot`), fed to criterion with
//! `iter_custom` so criterion's statistics apply to the externally measured
//! time rather than to our own call overhead.

mod common;

use std::time::Duration;

use criterion::{SamplingMode, criterion_group, criterion_main};

fn boot(c: &mut criterion::Criterion) {
    let args = ["ready"];
    let backends = common::usable("boot", &args);
    let mut group = c.benchmark_group("boot");
    group.sampling_mode(SamplingMode::Flat);
    for (kind, backend) in &backends {
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let o =
                            common::run(backend.as_ref(), &args).unwrap_or_else(|e| panic!("{e}"));
                        o.boot
                            .map(|t| t.total)
                            .unwrap_or_else(|| panic!("{kind} reported no ready marker"))
                    })
                    .sum::<Duration>()
            })
        });
    }
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = boot }
criterion_main!(benches);
