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

/// `t` as RFC 3339 UTC with nanoseconds (`2026-01-31T12:00:00.123456789Z`).
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    hostcaps::time::rfc3339(t, hostcaps::time::Fraction::Nanos)
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
