//! Memory as a measured quantity: host-side peak RSS of an idle workload run
//! per isolation, in bytes, through a custom criterion `Measurement`.
//!
//! Why a custom measurement rather than figures attached to the boot bench:
//! criterion then applies its own statistics (outlier classification,
//! confidence intervals, change detection between runs) to bytes exactly as it
//! does to time, and a memory regression shows up as a criterion "change"
//! instead of hiding in a side note. One iteration is one idle run; its value
//! is the peak RSS of every host process the run created (workload, runtime
//! or VMM with the guest memory it touched); a VMM that reports no peak RSS
//! counts its own overhead plus the guest RAM touched, as `isolab bench` does.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Bytes of peak resident memory.
struct PeakRss;

/// Formats bytes in binary units.
struct BytesFormatter;

impl ValueFormatter for BytesFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = match typical {
            t if t >= (1u64 << 30) as f64 => ((1u64 << 30) as f64, "GiB"),
            t if t >= (1u64 << 20) as f64 => ((1u64 << 20) as f64, "MiB"),
            t if t >= 1024.0 => (1024.0, "KiB"),
            _ => (1.0, "B"),
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        _throughput: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        // Throughput of a memory footprint has no meaning; values stay as they are.
        "B"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "B"
    }
}

impl Measurement for PeakRss {
    type Intermediate = ();
    type Value = f64;

    fn start(&self) -> Self::Intermediate {}

    fn end(&self, _i: Self::Intermediate) -> Self::Value {
        // Only `iter_custom` is used: the value comes from the run's accounting.
        0.0
    }

    fn add(&self, v1: &Self::Value, v2: &Self::Value) -> Self::Value {
        v1 + v2
    }

    fn zero(&self) -> Self::Value {
        0.0
    }

    fn to_f64(&self, value: &Self::Value) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &BytesFormatter
    }
}

const ARGS: [&str; 3] = ["idle", "--idle-ms", "50"];

fn memory(c: &mut Criterion<PeakRss>) {
    let backends = common::usable("memory", &ARGS);
    let mut group = c.benchmark_group("idle_peak_rss");
    group.sampling_mode(SamplingMode::Flat);
    for (kind, backend) in &backends {
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let o =
                            common::run(backend.as_ref(), &ARGS).unwrap_or_else(|e| panic!("{e}"));
                        bench::matrix::host_footprint_bytes(&o.accounting)
                            .unwrap_or_else(|| panic!("{kind} reports no host-side memory"))
                            as f64
                    })
                    .sum::<f64>()
            })
        });
    }
    group.finish();
}

fn config() -> Criterion<PeakRss> {
    common::criterion().with_measurement(PeakRss)
}

criterion_group! { name = benches; config = config(); targets = memory }
criterion_main!(benches);
