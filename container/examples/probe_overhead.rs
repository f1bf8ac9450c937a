//! CPU and syscall probes of the static workload, natively and in an isolab
//! container (minimal root, default security), alternated so both see the
//! same machine noise. Prints the median of all samples and the ratio.
//!
//! `cargo run --release -p container --example probe_overhead -- WORKLOAD [ROUNDS]` (as root).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::collections::BTreeMap;
use std::process::Command;

use container::{ContainerSpec, Stdio};

type Samples = BTreeMap<String, Vec<f64>>;

fn collect(stdout: &[u8], into: &mut Samples) {
    for line in String::from_utf8_lossy(stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(probe), Some(metric)) = (v["probe"].as_str(), v["metric"].as_str()) else {
            continue;
        };
        if probe == "ready" {
            continue;
        }
        let key = format!("{probe}.{metric} ({})", v["unit"].as_str().unwrap_or(""));
        let samples = v["samples"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_f64);
        into.entry(key).or_default().extend(samples);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args
        .next()
        .expect("usage: probe_overhead WORKLOAD [ROUNDS]");
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let probe_args = ["cpu", "syscall", "--reps", "5"];
    let mut spec = ContainerSpec::minimal(&workload)
        .args(probe_args)
        .stdout(Stdio::Piped);
    // Knobs to attribute an overhead: ISOLAB_NO_TIMENS=1, ISOLAB_NO_SECCOMP=1.
    spec.namespaces.time = std::env::var_os("ISOLAB_NO_TIMENS").is_none();
    spec.seccomp = std::env::var_os("ISOLAB_NO_SECCOMP").is_none();
    let (mut native, mut contained) = (Samples::new(), Samples::new());
    for _ in 0..rounds {
        let out = Command::new(&workload)
            .args(probe_args)
            .output()
            .expect("native run");
        collect(&out.stdout, &mut native);
        let r = container::run(&spec).expect("container run");
        assert!(r.success(), "{r:?}");
        collect(&r.stdout, &mut contained);
    }
    println!("{rounds} rounds x 5 reps each, alternated; median of all samples");
    for (key, n) in native.iter_mut() {
        let Some(c) = contained.get_mut(key) else {
            continue;
        };
        let (mn, mc) = (median(n), median(c));
        println!(
            "{key:40} native {mn:14.2}  container {mc:14.2}  container/native {:.3}",
            mc / mn
        );
    }
}
