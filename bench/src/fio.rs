//! Cross-check of the `io` probe against `fio`: once per run, on a file in
//! the same directory the isolations' `io` probe used, with the probe's flags
//! (O_DIRECT, 1 MiB sequential blocks, 4 KiB random reads, 4 KiB writes each
//! followed by fsync). The numbers are stored as subject `fio` (role
//! `cross-check`) with the probe's metric names, so the report can put them
//! beside native's.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use workload::args::Config;

use crate::results::{Better, Metric, MetricKey, Status, SubjectStatus};

/// Subject name of the cross-check in a results file.
pub const SUBJECT: &str = "fio";

/// What the cross-check produced: its status and, when measured, its metrics.
#[derive(Debug)]
pub struct CrossCheck {
    /// `fio` measured, missing or failed (with why).
    pub status: SubjectStatus,
    /// The probe's io metrics as fio measured them (one sample each).
    pub metrics: Vec<Metric>,
}

/// The sizes the io probe uses: bytes, random reads, fsyncs.
fn sizes(config: &Config) -> (u64, u32, u32) {
    (config.io_size, config.io_rand_ops, config.fsync_ops)
}

/// fio's arguments: four jobs one after another (`stonewall`) on one file.
fn args(file: &Path, (size, rand, fsync): (u64, u32, u32)) -> Vec<String> {
    let mut a: Vec<String> = [
        "--output-format=json".to_string(),
        format!("--filename={}", file.display()),
        format!("--size={size}"),
        "--direct=1".into(),
        "--ioengine=psync".into(),
        "--thread".into(),
    ]
    .to_vec();
    for job in [
        "--name=seq_write --rw=write --bs=1M --end_fsync=1".to_string(),
        "--name=seq_read --rw=read --bs=1M --stonewall".into(),
        format!("--name=rand_read --rw=randread --bs=4k --number_ios={rand} --stonewall"),
        format!("--name=fsync --rw=write --bs=4k --fsync=1 --number_ios={fsync} --stonewall"),
    ] {
        a.extend(job.split(' ').map(String::from));
    }
    a
}

/// Runs fio once in `dir` (the io probe's directory) when it is installed.
pub fn cross_check(dir: &Path, config: &Config) -> CrossCheck {
    let mut status = SubjectStatus {
        name: SUBJECT.into(),
        role: "cross-check".into(),
        status: Status::Measured,
        reason: None,
        version: None,
    };
    let Some(fio) = hostcaps::peers::which("fio") else {
        status.status = Status::Missing;
        status.reason = Some("fio is not installed (apt-get install fio)".into());
        return CrossCheck {
            status,
            metrics: Vec::new(),
        };
    };
    status.version = Command::new(&fio)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let file = dir.join("isolab-fio.dat");
    let out = Command::new(&fio).args(args(&file, sizes(config))).output();
    // The file is ours alone; nothing is left behind whatever fio did.
    let _ = std::fs::remove_file(&file);
    let parsed = out
        .map_err(|e| format!("fio could not run: {e}"))
        .and_then(|o| {
            if o.status.success() {
                serde_json::from_slice::<Value>(&o.stdout)
                    .map_err(|e| format!("fio's JSON output did not parse: {e}"))
            } else {
                Err(format!(
                    "fio failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
        })
        .and_then(|v| metrics(&v));
    match parsed {
        Ok(metrics) => CrossCheck { status, metrics },
        Err(why) => {
            status.status = Status::Failed;
            status.reason = Some(why);
            CrossCheck {
                status,
                metrics: Vec::new(),
            }
        }
    }
}

/// The probe's metrics from fio's JSON report.
fn metrics(report: &Value) -> Result<Vec<Metric>, String> {
    let job = |name: &str| {
        report["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["jobname"] == name))
            .ok_or_else(|| format!("fio's report has no job {name}"))
    };
    let number = |v: &Value, what: &str| {
        v.as_f64()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| format!("fio's report has no {what}"))
    };
    let fsync = job("fsync")?;
    // fio reports fsync latency under `sync` (newer) and the write's
    // completion latency otherwise.
    let p50 = ["sync", "write"]
        .into_iter()
        .find_map(|section| {
            let lat = &fsync[section]["lat_ns"]["percentile"]["50.000000"];
            let clat = &fsync[section]["clat_ns"]["percentile"]["50.000000"];
            lat.as_f64().or(clat.as_f64()).filter(|x| *x > 0.0)
        })
        .ok_or("fio's report has no fsync latency percentile")?;
    let values = [
        (
            "seq_write_mb_per_s",
            "MB/s",
            Better::Higher,
            number(
                &job("seq_write")?["write"]["bw_bytes"],
                "seq_write bandwidth",
            )? / 1e6,
        ),
        (
            "seq_read_mb_per_s",
            "MB/s",
            Better::Higher,
            number(&job("seq_read")?["read"]["bw_bytes"], "seq_read bandwidth")? / 1e6,
        ),
        (
            "rand_read_iops",
            "IOPS",
            Better::Higher,
            number(&job("rand_read")?["read"]["iops"], "rand_read IOPS")?,
        ),
        ("fsync_p50_us", "us", Better::Lower, p50 / 1e3),
    ];
    Ok(values
        .into_iter()
        .filter_map(|(metric, unit, better, v)| {
            Metric::from_samples(
                MetricKey {
                    subject: SUBJECT.into(),
                    probe: "io".into(),
                    metric: metric.into(),
                    kind: Some("direct".into()),
                },
                unit,
                better,
                &[(0, v)],
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_follow_the_probe() {
        let a = args(
            Path::new("/tmp/x"),
            sizes(&Config {
                io_size: 8 << 20,
                fsync_ops: 8,
                ..Config::default()
            }),
        );
        let text = a.join(" ");
        for needle in [
            "--direct=1",
            "--size=8388608",
            "--rw=write --bs=1M",
            "--rw=randread --bs=4k --number_ios=1024",
            "--fsync=1 --number_ios=8",
        ] {
            assert!(text.contains(needle), "{text}");
        }
    }

    /// Runs fio for real where it is installed, on a temporary directory.
    #[test]
    fn measures_where_fio_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let c = cross_check(
            dir.path(),
            &Config {
                io_size: 4 << 20,
                io_rand_ops: 64,
                fsync_ops: 4,
                ..Config::default()
            },
        );
        if c.status.status == Status::Missing {
            println!("skipped: {}", c.status.reason.unwrap_or_default());
            return;
        }
        // Some filesystems (tmpfs) refuse O_DIRECT: then fio fails, said why.
        if c.status.status == Status::Failed {
            assert!(c.status.reason.unwrap().contains("fio"));
            return;
        }
        assert_eq!(c.metrics.len(), 4, "{:?}", c.metrics);
        assert!(c.metrics.iter().all(|m| m.summary.median > 0.0));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "fio's file left behind"
        );
    }
}
