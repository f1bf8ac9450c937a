//! `--log FILE` and `--log-format text|json`: where errors (and with
//! `--debug`, progress) go. podman and containerd read the last error from
//! the JSON log: one object per line, `{"level","msg","time"}`.

use std::io::Write;
use std::path::PathBuf;

/// The log the caller asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Log {
    pub path: Option<PathBuf>,
    pub json: bool,
    pub debug: bool,
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-01-31T12:00:00.123456789Z`).
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

impl Log {
    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.path else { return };
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": rfc3339(std::time::SystemTime::now())})
                .to_string()
        } else {
            format!("{} {level}: {msg}", rfc3339(std::time::SystemTime::now()))
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    /// An error: to the log, and to standard error.
    pub(crate) fn error(&self, msg: &str) {
        self.write("error", msg);
        eprintln!("isolab: {msg}");
    }

    /// Progress, with `--debug` only.
    pub(crate) fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates_are_civil_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(
            rfc3339(std::time::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
    }
}
