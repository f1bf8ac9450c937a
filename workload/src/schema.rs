//! The result schema every probe prints: one JSON object per line.
//!
//! Schema version 1. Adding an optional field is compatible; renaming or
//! removing one bumps [`SCHEMA_VERSION`].

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Version of the result-line schema written in every line's `schema` field.
pub const SCHEMA_VERSION: u32 = 1;

/// Where the probe ran: a Linux process or the bare tiny guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    /// Linux userspace (native, container, or a Linux guest's `/init`).
    Linux,
    /// The freestanding tiny guest.
    Bare,
}

/// One measured metric of one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    /// Always [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Probe name: `ready`, `cpu`, `mem`, `syscall`, `io`, `idle`.
    pub probe: String,
    /// Metric name within the probe, e.g. `ops_per_s`, `copy_gb_per_s`.
    pub metric: String,
    /// The summary value (median of `samples` unless the metric says otherwise).
    pub value: f64,
    /// Unit of `value` and `samples`, e.g. `ns`, `MB/s`, `GB/s`, `IOPS`.
    pub unit: String,
    /// Every repetition's measurement, in run order.
    pub samples: Vec<f64>,
    /// Which platform produced the line.
    pub platform: PlatformKind,
    /// Deterministic checksum of the computed data, where the probe has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Variant of the measurement, e.g. `syscall` vs `vmexit`, `direct` vs `buffered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Free-form extra facts (timer resolution, sizes, loop overhead).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
