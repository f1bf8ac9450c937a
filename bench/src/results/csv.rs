//! The CSV twin of a results file: one row per sample, for spreadsheets.

use super::{Better, Results};

/// Column names of the CSV file.
pub const HEADER: &str = "label,subject,probe,metric,kind,unit,better,round,value";

/// Renders every sample of `results` as CSV (RFC 4180 quoting).
pub fn to_csv(results: &Results) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for m in &results.metrics {
        let better = match m.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
        };
        for (round, value) in m.rounds.iter().zip(&m.samples) {
            let fields = [
                field(&results.label),
                field(&m.subject),
                field(&m.probe),
                field(&m.metric),
                field(m.kind.as_deref().unwrap_or("")),
                field(&m.unit),
                better.to_string(),
                round.to_string(),
                value.to_string(),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    out
}

/// Quotes a field when it holds a separator, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(field("MB/s"), "MB/s");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
