//! The process a Linux guest's `/init` runs from an OCI bundle: one typed
//! description, written by the VMM side into a small archive appended to
//! the initramfs ([`PROCESS_FILE`]) and read by `/init bundle`. One type on
//! both sides, so the two can never disagree about a field; the guest
//! checks it again ([`GuestProcess::parse`]) because the file is input.
//!
//! It travels in the initramfs, not on the kernel command line, whose 2048
//! bytes a real `process.env` easily exceeds.

use serde::{Deserialize, Serialize};

/// Where the description is in the guest's initramfs.
pub const PROCESS_FILE: &str = "/isolab/process.json";
/// Largest description accepted (the whole JSON file).
pub const MAX_BYTES: usize = 256 << 10;
/// Most arguments accepted.
pub const MAX_ARGS: usize = 4096;
/// Most environment entries accepted.
pub const MAX_ENV: usize = 4096;
/// Most supplementary groups accepted.
pub const MAX_GROUPS: usize = 256;
/// Longest hostname (the kernel's `HOST_NAME_MAX`).
pub const MAX_HOSTNAME: usize = 64;
/// Longest working directory (the kernel's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// Highest user or group id (`(uid_t)-1` would mean "unchanged").
pub const MAX_ID: u32 = i32::MAX as u32;
/// Layout version of the description.
pub const VERSION: u32 = 1;

/// What `/init bundle` runs, and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestProcess {
    /// [`VERSION`].
    pub version: u32,
    /// The program (a path, or a name looked up in the `PATH` of `env`) and its arguments.
    pub args: Vec<String>,
    /// The complete environment, `NAME=VALUE` each.
    pub env: Vec<String>,
    /// Working directory, absolute, inside the image.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Hostname of the guest (empty: left as the kernel's).
    pub hostname: String,
    /// Mount the image read-only.
    pub readonly_root: bool,
}

/// Why a description was refused: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field (in OCI terms: `process.args`, `hostname`…).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}

fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

fn no_nul(field: &'static str, s: &str) -> Result<(), Invalid> {
    match s.contains('\0') {
        true => Err(invalid(field, "contains a NUL byte")),
        false => Ok(()),
    }
}

impl GuestProcess {
    /// Checks every bound and shape; the VMM side calls it before writing,
    /// the guest after reading.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.version != VERSION {
            return Err(invalid(
                "version",
                format!("{} (expected {VERSION})", self.version),
            ));
        }
        if self.args.is_empty() || self.args[0].is_empty() {
            return Err(invalid("process.args", "no program to run"));
        }
        if self.args.len() > MAX_ARGS {
            return Err(invalid(
                "process.args",
                format!("{} arguments, more than {MAX_ARGS}", self.args.len()),
            ));
        }
        for a in &self.args {
            no_nul("process.args", a)?;
        }
        if self.env.len() > MAX_ENV {
            return Err(invalid(
                "process.env",
                format!("{} entries, more than {MAX_ENV}", self.env.len()),
            ));
        }
        for e in &self.env {
            no_nul("process.env", e)?;
            if e.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(invalid("process.env", format!("{e:?} is not NAME=VALUE")));
            }
        }
        no_nul("process.cwd", &self.cwd)?;
        if !self.cwd.starts_with('/') || self.cwd.len() > MAX_PATH {
            return Err(invalid(
                "process.cwd",
                format!("must be an absolute path of at most {MAX_PATH} bytes"),
            ));
        }
        self.validate_ids()?;
        no_nul("hostname", &self.hostname)?;
        if self.hostname.len() > MAX_HOSTNAME {
            return Err(invalid(
                "hostname",
                format!("longer than {MAX_HOSTNAME} bytes"),
            ));
        }
        Ok(())
    }

    fn validate_ids(&self) -> Result<(), Invalid> {
        if self.additional_gids.len() > MAX_GROUPS {
            return Err(invalid(
                "process.user.additionalGids",
                format!("more than {MAX_GROUPS} groups"),
            ));
        }
        let ids = [self.uid, self.gid]
            .into_iter()
            .chain(self.additional_gids.iter().copied());
        for id in ids {
            if id > MAX_ID {
                return Err(invalid(
                    "process.user",
                    format!("id {id} is above {MAX_ID}"),
                ));
            }
        }
        Ok(())
    }

    /// The file's bytes, after [`GuestProcess::validate`] and the size bound.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Invalid> {
        self.validate()?;
        let bytes = serde_json::to_vec(self)
            .map_err(|e| invalid("process", format!("cannot encode: {e}")))?;
        if bytes.len() > MAX_BYTES {
            return Err(invalid(
                "process",
                format!(
                    "args and env take {} bytes, more than the limit of {MAX_BYTES}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// Reads a description, refusing anything oversized or malformed.
    pub fn parse(bytes: &[u8]) -> Result<GuestProcess, Invalid> {
        if bytes.len() > MAX_BYTES {
            return Err(invalid(
                "process",
                format!("{} bytes, more than {MAX_BYTES}", bytes.len()),
            ));
        }
        let p: GuestProcess =
            serde_json::from_slice(bytes).map_err(|e| invalid("process", e.to_string()))?;
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GuestProcess {
        GuestProcess {
            version: VERSION,
            args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["PATH=/bin".into(), "A=b=c".into()],
            cwd: "/".into(),
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10, 20],
            hostname: "box".into(),
            readonly_root: false,
        }
    }

    #[test]
    fn round_trips_through_the_file() {
        let p = sample();
        assert_eq!(GuestProcess::parse(&p.to_bytes().unwrap()).unwrap(), p);
    }

    #[test]
    fn each_bound_is_refused_by_field() {
        let field = |f: fn(&mut GuestProcess)| {
            let mut p = sample();
            f(&mut p);
            p.to_bytes().unwrap_err().field
        };
        assert_eq!(field(|p| p.args.clear()), "process.args");
        assert_eq!(
            field(|p| p.args = vec!["x".into(); MAX_ARGS + 1]),
            "process.args"
        );
        assert_eq!(field(|p| p.args.push("a\0b".into())), "process.args");
        assert_eq!(field(|p| p.env.push("NOVALUE".into())), "process.env");
        assert_eq!(field(|p| p.env.push("=x".into())), "process.env");
        assert_eq!(field(|p| p.cwd = "relative".into()), "process.cwd");
        assert_eq!(field(|p| p.uid = u32::MAX), "process.user");
        assert_eq!(
            field(|p| p.additional_gids = vec![1; MAX_GROUPS + 1]),
            "process.user.additionalGids"
        );
        assert_eq!(field(|p| p.hostname = "h".repeat(65)), "hostname");
        assert_eq!(field(|p| p.version = 2), "version");
        // Within every count, but too many bytes in all.
        assert_eq!(
            field(|p| p.env = vec![format!("X={}", "v".repeat(1000)); 300]),
            "process"
        );
    }

    #[test]
    fn parse_refuses_oversized_unknown_and_malformed_input() {
        assert_eq!(
            GuestProcess::parse(&vec![b' '; MAX_BYTES + 1])
                .unwrap_err()
                .field,
            "process"
        );
        let mut v = serde_json::to_value(sample()).unwrap();
        v["extra"] = serde_json::Value::Bool(true);
        assert!(GuestProcess::parse(&serde_json::to_vec(&v).unwrap()).is_err());
        assert!(GuestProcess::parse(b"{").is_err());
        let mut bad = sample();
        bad.cwd = "x".into();
        let bytes = serde_json::to_vec(&bad).unwrap();
        assert_eq!(
            GuestProcess::parse(&bytes).unwrap_err().field,
            "process.cwd"
        );
    }
}
