//! A synthetic but realistic results file for report and schema tests: the
//! magnitudes follow what this project measures on its development machines,
//! with deterministic noise so every test sees the same data.

#![allow(dead_code)] // each test binary uses a different subset

use bench::results::{
    Better, Environment, Metric, MetricKey, RESULTS_SCHEMA_VERSION, Results, RunSettings, Status,
    SubjectStatus, ToolVersion, Verdict,
};

/// Deterministic noise source (xorshift64*).
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise(seed.max(1))
    }

    /// Uniform in [-1, 1).
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (v >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// `rounds` samples around `median` with relative spread `spread`.
pub fn samples(noise: &mut Noise, median: f64, spread: f64, rounds: u32) -> Vec<(u32, f64)> {
    (0..rounds)
        .map(|r| (r, median * (1.0 + spread * noise.next())))
        .collect()
}

pub fn environment(host: &str) -> Environment {
    Environment {
        hostname: host.into(),
        kernel: "6.1.0-test".into(),
        os: Some("Debian GNU/Linux 12 (bookworm)".into()),
        cpu_model: "Example CPU @ 2.00GHz".into(),
        cpu_count: 2,
        memory_bytes: 24 << 30,
        governor: None,
        thp: Some("madvise".into()),
        isolab_version: "0.1.0".into(),
        git_commit: Some("0123456789ab".into()),
        kvm_kind: "software-assisted".into(),
        kvm_modules: vec!["kvm".into(), "kvm_pvm".into()],
        cgroup_mode: "hybrid".into(),
        emulated: None,
        verdicts: vec![
            Verdict {
                name: "kvm".into(),
                ok: true,
                detail: "software-assisted".into(),
            },
            Verdict {
                name: "linux_guest".into(),
                ok: false,
                detail: "cannot deliver exceptions to the guest kernel".into(),
            },
        ],
        verdict_source: "test".into(),
        tools: vec![
            ToolVersion {
                name: "runc".into(),
                version: Some("runc version 1.1.5".into()),
            },
            ToolVersion {
                name: "crun".into(),
                version: Some("crun version 1.8.1".into()),
            },
        ],
        doctor: None,
    }
}

/// (subject, probe, metric, kind, unit, better, median, spread)
type Spec = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Better,
    f64,
    f64,
);

const SPECS: &[Spec] = &[
    (
        "native",
        "boot",
        "total_ms",
        None,
        "ms",
        Better::Lower,
        1.2,
        0.1,
    ),
    (
        "native",
        "boot",
        "setup_ms",
        None,
        "ms",
        Better::Lower,
        0.8,
        0.1,
    ),
    (
        "container",
        "boot",
        "total_ms",
        None,
        "ms",
        Better::Lower,
        9.0,
        0.1,
    ),
    (
        "container",
        "boot",
        "setup_ms",
        None,
        "ms",
        Better::Lower,
        7.0,
        0.1,
    ),
    (
        "vm-tiny",
        "boot",
        "total_ms",
        None,
        "ms",
        Better::Lower,
        14.0,
        0.1,
    ),
    (
        "vm-tiny",
        "boot",
        "setup_ms",
        None,
        "ms",
        Better::Lower,
        10.0,
        0.1,
    ),
    (
        "native",
        "memory",
        "idle_peak_rss_mib",
        None,
        "MiB",
        Better::Lower,
        1.1,
        0.02,
    ),
    (
        "container",
        "memory",
        "idle_peak_rss_mib",
        None,
        "MiB",
        Better::Lower,
        2.5,
        0.02,
    ),
    (
        "vm-tiny",
        "memory",
        "idle_peak_rss_mib",
        None,
        "MiB",
        Better::Lower,
        40.0,
        0.02,
    ),
    (
        "vm-tiny",
        "memory",
        "overhead_mib",
        None,
        "MiB",
        Better::Lower,
        3.5,
        0.02,
    ),
    (
        "native",
        "cpu",
        "ops_per_s",
        None,
        "blocks/s",
        Better::Higher,
        450.0,
        0.03,
    ),
    (
        "container",
        "cpu",
        "ops_per_s",
        None,
        "blocks/s",
        Better::Higher,
        448.0,
        0.03,
    ),
    (
        "vm-tiny",
        "cpu",
        "ops_per_s",
        None,
        "blocks/s",
        Better::Higher,
        447.0,
        0.03,
    ),
    (
        "native",
        "syscall",
        "round_trip_ns",
        Some("syscall"),
        "ns",
        Better::Lower,
        60.0,
        0.05,
    ),
    (
        "container",
        "syscall",
        "round_trip_ns",
        Some("syscall"),
        "ns",
        Better::Lower,
        62.0,
        0.05,
    ),
    (
        "vm-tiny",
        "syscall",
        "round_trip_ns",
        Some("vmexit"),
        "ns",
        Better::Lower,
        9000.0,
        0.05,
    ),
    (
        "native",
        "mem",
        "copy_gb_per_s",
        None,
        "GB/s",
        Better::Higher,
        9.5,
        0.04,
    ),
    (
        "container",
        "mem",
        "copy_gb_per_s",
        None,
        "GB/s",
        Better::Higher,
        9.4,
        0.04,
    ),
    (
        "vm-tiny",
        "mem",
        "copy_gb_per_s",
        None,
        "GB/s",
        Better::Higher,
        9.3,
        0.04,
    ),
    (
        "native",
        "mem",
        "first_touch_ns_per_page",
        None,
        "ns",
        Better::Lower,
        250.0,
        0.05,
    ),
    (
        "container",
        "mem",
        "first_touch_ns_per_page",
        None,
        "ns",
        Better::Lower,
        255.0,
        0.05,
    ),
    (
        "vm-tiny",
        "mem",
        "first_touch_ns_per_page",
        None,
        "ns",
        Better::Lower,
        900.0,
        0.05,
    ),
    (
        "native",
        "io",
        "seq_write_mb_per_s",
        Some("direct"),
        "MB/s",
        Better::Higher,
        900.0,
        0.08,
    ),
    (
        "container",
        "io",
        "seq_write_mb_per_s",
        Some("direct"),
        "MB/s",
        Better::Higher,
        880.0,
        0.08,
    ),
    (
        "vm-tiny",
        "io",
        "seq_write_mb_per_s",
        Some("buffered"),
        "MB/s",
        Better::Higher,
        300.0,
        0.08,
    ),
    (
        "native",
        "io",
        "seq_read_mb_per_s",
        Some("direct"),
        "MB/s",
        Better::Higher,
        2500.0,
        0.08,
    ),
    (
        "container",
        "io",
        "seq_read_mb_per_s",
        Some("direct"),
        "MB/s",
        Better::Higher,
        2450.0,
        0.08,
    ),
    (
        "vm-tiny",
        "io",
        "seq_read_mb_per_s",
        Some("buffered"),
        "MB/s",
        Better::Higher,
        800.0,
        0.08,
    ),
    (
        "native",
        "io",
        "rand_read_iops",
        Some("direct"),
        "IOPS",
        Better::Higher,
        120_000.0,
        0.08,
    ),
    (
        "container",
        "io",
        "rand_read_iops",
        Some("direct"),
        "IOPS",
        Better::Higher,
        118_000.0,
        0.08,
    ),
    (
        "vm-tiny",
        "io",
        "rand_read_iops",
        Some("buffered"),
        "IOPS",
        Better::Higher,
        30_000.0,
        0.08,
    ),
    (
        "native",
        "io",
        "fsync_p50_us",
        Some("direct"),
        "us",
        Better::Lower,
        400.0,
        0.1,
    ),
    (
        "container",
        "io",
        "fsync_p50_us",
        Some("direct"),
        "us",
        Better::Lower,
        420.0,
        0.1,
    ),
    (
        "vm-tiny",
        "io",
        "fsync_p50_us",
        Some("buffered"),
        "us",
        Better::Lower,
        1500.0,
        0.1,
    ),
    (
        "container",
        "start",
        "wall_ms",
        None,
        "ms",
        Better::Lower,
        12.0,
        0.1,
    ),
    (
        "runc",
        "start",
        "wall_ms",
        None,
        "ms",
        Better::Lower,
        38.0,
        0.1,
    ),
    (
        "bwrap",
        "start",
        "wall_ms",
        None,
        "ms",
        Better::Lower,
        7.0,
        0.1,
    ),
    (
        "vm-tiny",
        "start",
        "wall_ms",
        None,
        "ms",
        Better::Lower,
        20.0,
        0.1,
    ),
    (
        "qemu-microvm",
        "start",
        "wall_ms",
        None,
        "ms",
        Better::Lower,
        57.0,
        0.1,
    ),
];

/// A complete results file with `rounds` rounds, labelled `label`.
pub fn synthetic(label: &str, seed: u64, rounds: u32) -> Results {
    let mut noise = Noise::new(seed);
    let metrics = SPECS
        .iter()
        .map(
            |&(subject, probe, metric, kind, unit, better, median, spread)| {
                let key = MetricKey {
                    subject: subject.into(),
                    probe: probe.into(),
                    metric: metric.into(),
                    kind: kind.map(String::from),
                };
                Metric::from_samples(
                    key,
                    unit,
                    better,
                    &samples(&mut noise, median, spread, rounds),
                )
                .expect("finite samples")
            },
        )
        .collect();
    let measured = |name: &str, role: &str| SubjectStatus {
        name: name.into(),
        role: role.into(),
        status: Status::Measured,
        reason: None,
        version: None,
    };
    let mut results = Results {
        schema_version: RESULTS_SCHEMA_VERSION,
        label: label.into(),
        created: "2026-11-21T23:00:00Z".into(),
        environment: environment(label),
        settings: RunSettings {
            quick: true,
            rounds,
            warmup: 1,
            probes: vec!["cpu".into(), "mem".into(), "syscall".into(), "io".into()],
            workload_args: vec!["--reps".into(), "3".into()],
            elapsed_s: 75.0,
        },
        subjects: vec![
            measured("native", "isolation"),
            measured("container", "isolation"),
            measured("vm-tiny", "isolation"),
            SubjectStatus {
                name: "vm-linux".into(),
                role: "isolation".into(),
                status: Status::Unsupported,
                reason: Some(
                    "software-assisted KVM cannot deliver exceptions to a Linux guest".into(),
                ),
                version: None,
            },
            measured("runc", "peer"),
            measured("bwrap", "peer"),
            SubjectStatus {
                name: "crun".into(),
                role: "peer".into(),
                status: Status::Failed,
                reason: Some("cgroups in hybrid mode not supported".into()),
                version: Some("crun version 1.8.1".into()),
            },
            measured("qemu-microvm", "peer"),
        ],
        metrics,
        ratios: Vec::new(),
        notes: vec!["synthetic data for tests".into()],
    };
    results.add_ratios("container", "native");
    results.add_ratios("vm-tiny", "native");
    for peer in ["runc", "bwrap"] {
        results.add_ratios("container", peer);
    }
    results.add_ratios("vm-tiny", "qemu-microvm");
    results
}
