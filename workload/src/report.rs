//! Building and emitting result lines.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::platform::Platform;
use crate::schema::{ResultLine, SCHEMA_VERSION};
use crate::stats::median;

/// A result line under construction; [`Line::emit`] prints it.
pub struct Line {
    line: ResultLine,
}

impl Line {
    /// A line for `probe`/`metric` whose value is the median of `samples`.
    pub fn new<P: Platform>(
        p: &P,
        probe: &str,
        metric: &str,
        unit: &str,
        samples: Vec<f64>,
    ) -> Line {
        let value = median(&samples);
        Line {
            line: ResultLine {
                schema: SCHEMA_VERSION,
                probe: probe.to_string(),
                metric: metric.to_string(),
                value,
                unit: unit.to_string(),
                samples,
                platform: p.kind(),
                checksum: None,
                kind: None,
                extra: serde_json::Map::new(),
            },
        }
    }

    /// Overrides the summary value (for metrics that are not a median).
    pub fn value(mut self, value: f64) -> Line {
        self.line.value = value;
        self
    }

    /// Sets the checksum.
    pub fn checksum(mut self, checksum: String) -> Line {
        self.line.checksum = Some(checksum);
        self
    }

    /// Sets the measurement variant.
    pub fn kind(mut self, kind: &str) -> Line {
        self.line.kind = Some(kind.to_string());
        self
    }

    /// Adds an `extra` fact.
    pub fn extra(mut self, key: &str, value: impl Into<serde_json::Value>) -> Line {
        self.line.extra.insert(key.to_string(), value.into());
        self
    }

    /// The finished line.
    pub fn into_result(self) -> ResultLine {
        self.line
    }

    /// Serializes the line and hands it to the platform.
    pub fn emit<P: Platform>(self, p: &mut P) {
        // Serializing plain numbers and strings into a String cannot fail.
        let text = serde_json::to_string(&self.line).unwrap_or_default();
        p.emit(&text);
    }
}
