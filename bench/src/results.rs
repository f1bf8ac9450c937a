//! The results file: a versioned JSON document holding the environment, every
//! sample and the summaries derived from them, plus a CSV twin for spreadsheets.
//!
//! The schema is documented in `bench/README.md`. Readers refuse files with a
//! newer `schema_version` rather than misreading them.

mod csv;
mod environment;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use environment::{Environment, ToolVersion, Verdict};

use crate::stats::{self, Summary};

/// Version of the results schema this build writes and the newest it reads.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// Which direction of a metric is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Throughput-like: more is better.
    Higher,
    /// Latency-like: less is better.
    Lower,
}

/// One measured quantity of one subject, with every sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Who was measured: an isolation (`native`, `container`, `vm-tiny`,
    /// `vm-linux`) or a peer (`runc`, `crun`, `bwrap`, `qemu-microvm`).
    pub subject: String,
    /// Probe or measurement group: `boot`, `cpu`, `mem`, `syscall`, `io`, `idle`,
    /// `memory` (host accounting), `run`, `start` (peers and ours).
    pub probe: String,
    /// Metric name within the probe.
    pub metric: String,
    /// Variant (e.g. `syscall` or `vmexit`, `direct` or `buffered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Unit of the samples.
    pub unit: String,
    /// Which direction is better.
    pub better: Better,
    /// The interleaved round each sample came from (same length as `samples`).
    pub rounds: Vec<u32>,
    /// One value per round.
    pub samples: Vec<f64>,
    /// Median and 95% CI of `samples`.
    pub summary: Summary,
}

impl Metric {
    /// Builds a metric from `(round, value)` pairs; `None` when there are no finite values.
    pub fn from_samples(
        key: MetricKey,
        unit: &str,
        better: Better,
        pairs: &[(u32, f64)],
    ) -> Option<Metric> {
        let samples: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let summary = stats::summarize(&samples)?;
        Some(Metric {
            subject: key.subject,
            probe: key.probe,
            metric: key.metric,
            kind: key.kind,
            unit: unit.to_string(),
            better,
            rounds: pairs.iter().map(|p| p.0).collect(),
            samples,
            summary,
        })
    }

    /// `(round, value)` pairs, for pairing with another subject.
    pub fn pairs(&self) -> Vec<(u32, f64)> {
        self.rounds
            .iter()
            .copied()
            .zip(self.samples.iter().copied())
            .collect()
    }

    /// The key of this metric.
    pub fn key(&self) -> MetricKey {
        MetricKey {
            subject: self.subject.clone(),
            probe: self.probe.clone(),
            metric: self.metric.clone(),
            kind: self.kind.clone(),
        }
    }

    /// True when this metric is `probe`/`metric` (any kind when `kind` is `None`).
    pub fn is(&self, probe: &str, metric: &str, kind: Option<&str>) -> bool {
        self.probe == probe
            && self.metric == metric
            && (kind.is_none() || self.kind.as_deref() == kind)
    }
}

/// Identifies a metric of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricKey {
    /// Subject name.
    pub subject: String,
    /// Probe name.
    pub probe: String,
    /// Metric name.
    pub metric: String,
    /// Variant.
    pub kind: Option<String>,
}

/// A metric of one subject relative to another, from paired samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// Subject in the numerator (`container`, `vm-tiny`, or ours vs a peer).
    pub numerator: String,
    /// Subject in the denominator (`native`, or a peer such as `runc`).
    pub denominator: String,
    /// Probe name.
    pub probe: String,
    /// Metric name.
    pub metric: String,
    /// Variant of the numerator's metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Variant of the denominator's metric when it differs (e.g. `vmexit` over
    /// `syscall`, `buffered` over `direct`): then the ratio is not like for like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator_kind: Option<String>,
    /// Which direction of the underlying metric is better.
    pub better: Better,
    /// Median and 95% CI of the per-round ratios.
    pub summary: Summary,
}

/// What happened to a subject isolab tried to measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Samples were taken.
    Measured,
    /// The tool is not installed.
    Missing,
    /// This host cannot run it (the reason says why).
    Unsupported,
    /// It was tried and failed (the reason holds the error).
    Failed,
}

/// A subject (isolation or peer) and whether it could be measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectStatus {
    /// Subject name, as in [`Metric::subject`].
    pub name: String,
    /// `isolation` or `peer`.
    pub role: String,
    /// Outcome.
    pub status: Status,
    /// Why it was not measured, or notes about how it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Tool version for peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// How the matrix was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// `--quick` was given.
    pub quick: bool,
    /// Measured rounds (each round runs every subject once, interleaved).
    pub rounds: u32,
    /// Warm-up rounds discarded before measuring.
    pub warmup: u32,
    /// Probes run in every round.
    pub probes: Vec<String>,
    /// Extra workload arguments (sizes, repetitions inside one run).
    pub workload_args: Vec<String>,
    /// Wall time of the whole matrix, in seconds.
    pub elapsed_s: f64,
}

/// A complete results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`RESULTS_SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// Name for this machine/run in combined reports (defaults to the hostname).
    pub label: String,
    /// When the run finished, RFC 3339 UTC.
    pub created: String,
    /// The host.
    pub environment: Environment,
    /// How the matrix ran.
    pub settings: RunSettings,
    /// Every isolation and peer, measured or not, and why not.
    pub subjects: Vec<SubjectStatus>,
    /// Every metric with its samples.
    pub metrics: Vec<Metric>,
    /// Paired ratios (container/native, vm/native, ours/peer).
    pub ratios: Vec<Ratio>,
    /// Things the reader should know (fallbacks, failed runs).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Results {
    /// The metric of `subject` matching `probe`/`metric`/`kind`, if measured.
    pub fn metric(
        &self,
        subject: &str,
        probe: &str,
        metric: &str,
        kind: Option<&str>,
    ) -> Option<&Metric> {
        self.metrics
            .iter()
            .find(|m| m.subject == subject && m.is(probe, metric, kind))
    }

    /// The ratio `numerator/denominator` of a metric, if computed.
    pub fn ratio(
        &self,
        numerator: &str,
        denominator: &str,
        probe: &str,
        metric: &str,
        kind: Option<&str>,
    ) -> Option<&Ratio> {
        self.ratios.iter().find(|r| {
            r.numerator == numerator
                && r.denominator == denominator
                && r.probe == probe
                && r.metric == metric
                && (kind.is_none() || r.kind.as_deref() == kind)
        })
    }

    /// Computes the ratio of every metric (same probe and metric name)
    /// `numerator` shares with `denominator`, pairing samples by round, and
    /// appends it to [`Results::ratios`]. Variants may differ (a VM's `vmexit`
    /// against native `syscall`); the ratio records both. Asking for the same
    /// pair twice adds nothing the second time.
    pub fn add_ratios(&mut self, numerator: &str, denominator: &str) {
        if self
            .ratios
            .iter()
            .any(|r| r.numerator == numerator && r.denominator == denominator)
        {
            return;
        }
        let mut new = Vec::new();
        for num in self.metrics.iter().filter(|m| m.subject == numerator) {
            // The same variant where the denominator has it (a peer's `bridge`
            // path against ours), else its only one (`veth` against `loopback`).
            let same = |d: &&Metric| {
                d.subject == denominator && d.probe == num.probe && d.metric == num.metric
            };
            let Some(den) = self
                .metrics
                .iter()
                .filter(same)
                .find(|d| d.kind == num.kind)
                .or_else(|| self.metrics.iter().find(same))
            else {
                continue;
            };
            if let Some(summary) = stats::paired_ratio_summary(&num.pairs(), &den.pairs()) {
                new.push(Ratio {
                    numerator: numerator.into(),
                    denominator: denominator.into(),
                    probe: num.probe.clone(),
                    metric: num.metric.clone(),
                    kind: num.kind.clone(),
                    denominator_kind: (den.kind != num.kind).then(|| den.kind.clone()).flatten(),
                    better: num.better,
                    summary,
                });
            }
        }
        self.ratios.extend(new);
    }

    /// Checks the structure beyond what serde enforces: a supported version,
    /// samples and rounds of equal length, summaries that match their samples.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema_version == 0 || self.schema_version > RESULTS_SCHEMA_VERSION {
            return Err(format!(
                "schema_version {} is not supported (this isolab reads 1..={RESULTS_SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        for m in &self.metrics {
            let what = format!("metric {}/{}/{}", m.subject, m.probe, m.metric);
            if m.samples.is_empty() {
                return Err(format!("{what} has no samples"));
            }
            if m.samples.len() != m.rounds.len() {
                return Err(format!(
                    "{what} has {} samples but {} rounds",
                    m.samples.len(),
                    m.rounds.len()
                ));
            }
            if m.summary.n != m.samples.iter().filter(|s| s.is_finite()).count() {
                return Err(format!(
                    "{what}: summary.n {} does not match its samples",
                    m.summary.n
                ));
            }
            if !(m.summary.ci_low <= m.summary.median && m.summary.median <= m.summary.ci_high) {
                return Err(format!(
                    "{what}: median lies outside its confidence interval"
                ));
            }
        }
        for s in &self.subjects {
            if s.status != Status::Measured && s.reason.as_deref().unwrap_or("").is_empty() {
                return Err(format!(
                    "subject {} is {:?} without a reason",
                    s.name, s.status
                ));
            }
        }
        Ok(())
    }
}

/// Errors reading or writing results files.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not JSON or does not have the results structure.
    #[error("{path} is not an isolab results file: {source}")]
    Malformed {
        /// File.
        path: PathBuf,
        /// Parse error.
        source: serde_json::Error,
    },
    /// The file was written by a newer isolab.
    #[error(
        "{path} has results schema version {found}, newer than the {supported} this isolab reads; upgrade isolab to read it"
    )]
    NewerSchema {
        /// File.
        path: PathBuf,
        /// Version in the file.
        found: u64,
        /// Newest version supported here.
        supported: u32,
    },
    /// The JSON parsed but its contents are inconsistent.
    #[error("{path} is inconsistent: {detail}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Reads and checks a results file.
pub fn load(path: &Path) -> Result<Results, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |source| ResultsError::Malformed {
        path: path.to_path_buf(),
        source,
    };
    // Look at the version first so a newer file gets the right message, not a field error.
    let value: serde_json::Value = serde_json::from_str(&text).map_err(malformed)?;
    match value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v > u64::from(RESULTS_SCHEMA_VERSION) => {
            return Err(ResultsError::NewerSchema {
                path: path.to_path_buf(),
                found: v,
                supported: RESULTS_SCHEMA_VERSION,
            });
        }
        _ => {}
    }
    let results: Results = serde_json::from_value(value).map_err(malformed)?;
    results.validate().map_err(|detail| ResultsError::Invalid {
        path: path.to_path_buf(),
        detail,
    })?;
    Ok(results)
}

/// Writes `results` as pretty JSON to `path` and as CSV beside it (same name,
/// `.csv` extension). Returns the CSV path.
pub fn save(results: &Results, path: &Path) -> Result<PathBuf, ResultsError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let json = serde_json::to_string_pretty(results).expect("results always serialize");
    std::fs::write(path, json + "\n").map_err(io(path))?;
    let csv_path = path.with_extension("csv");
    std::fs::write(&csv_path, csv::to_csv(results)).map_err(io(&csv_path))?;
    Ok(csv_path)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ResultsError + '_ {
    move |source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Current time as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
pub fn now_rfc3339() -> String {
    hostcaps::time::rfc3339(
        std::time::SystemTime::now(),
        hostcaps::time::Fraction::Seconds,
    )
}
