//! Device access rules for the device cgroup: which device nodes the
//! container may create (`mknod`), read and write.
//!
//! Everything is denied except the list, evaluated last match first. The
//! default list is the OCI runtime spec's default devices — `null`, `zero`,
//! `full`, `random`, `urandom`, `tty`, `console`, `ptmx` and the `devpts`
//! terminals — and nothing else. Unlike runc's and Docker's defaults it does
//! *not* allow `mknod` of every device: a node made inside a root the host
//! can see (a bundle's rootfs) is a node host users could open, so a `mknod`
//! of `/dev/kvm` or a disk fails inside with `EPERM`.
//!
//! cgroup v1 enforces the rules with its `devices` controller
//! ([`DeviceRule::v1_line`]); cgroup v2 has no device controller, only a BPF
//! program attached to the group ([`super::devices_bpf`]).

use crate::{Error, Result};

/// Access bits, as the kernel's device cgroup uses them.
pub mod access {
    /// `mknod`.
    pub const MKNOD: u8 = 1;
    /// Open for reading.
    pub const READ: u8 = 2;
    /// Open for writing.
    pub const WRITE: u8 = 4;
    /// All three.
    pub const ALL: u8 = 7;
}

/// Kind of device a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Every kind.
    All,
    /// Character devices.
    Char,
    /// Block devices.
    Block,
}

/// One rule: allow or deny `access` to devices of `kind` with `major:minor`
/// (`None` matches any number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// Device kind.
    pub kind: DeviceKind,
    /// Major number; `None` for any.
    pub major: Option<u32>,
    /// Minor number; `None` for any.
    pub minor: Option<u32>,
    /// Bits of [`access`].
    pub access: u8,
}

impl DeviceRule {
    /// Allow everything (`rwm`) on character device `major:minor`.
    pub const fn char_rwm(major: u32, minor: Option<u32>) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind: DeviceKind::Char,
            major: Some(major),
            minor,
            access: access::ALL,
        }
    }

    /// The cgroup v1 `devices.allow`/`devices.deny` line, e.g. `c 1:3 rwm`.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let mut acc = String::new();
        for (bit, ch) in [
            (access::READ, 'r'),
            (access::WRITE, 'w'),
            (access::MKNOD, 'm'),
        ] {
            if self.access & bit != 0 {
                acc.push(ch);
            }
        }
        format!("{kind} {}:{} {acc}", num(self.major), num(self.minor))
    }

    /// Parses OCI `linux.resources.devices[]` fields (`type` `a`/`c`/`b`,
    /// `access` letters from `rwm`); `field` names the entry in errors.
    pub fn from_oci(
        field: &str,
        allow: bool,
        kind: Option<&str>,
        major: Option<i64>,
        minor: Option<i64>,
        access_letters: Option<&str>,
    ) -> Result<DeviceRule> {
        let bad = |what: &str, reason: &str| Error::InvalidSpec {
            field: "linux.resources.devices",
            value: format!("{field}.{what}"),
            reason: reason.to_string(),
        };
        let kind = match kind.unwrap_or("a") {
            "a" => DeviceKind::All,
            "c" | "u" => DeviceKind::Char,
            "b" => DeviceKind::Block,
            _ => return Err(bad("type", "must be a, c or b")),
        };
        let num = |n: Option<i64>, what: &str| match n {
            None | Some(-1) => Ok(None),
            Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
            Some(_) => Err(bad(what, "must be a device number or -1 for any")),
        };
        let mut bits = 0;
        for ch in access_letters.unwrap_or("rwm").chars() {
            bits |= match ch {
                'r' => access::READ,
                'w' => access::WRITE,
                'm' => access::MKNOD,
                _ => return Err(bad("access", "letters must be from rwm")),
            };
        }
        Ok(DeviceRule {
            allow,
            kind,
            major: num(major, "major")?,
            minor: num(minor, "minor")?,
            access: bits,
        })
    }

    /// Whether this rule decides a request of `access` bits on `kind major:minor`.
    /// An allow rule must cover every requested bit; a deny rule any of them.
    pub fn matches(&self, kind: DeviceKind, major: u32, minor: u32, access: u8) -> bool {
        let kind_ok = self.kind == DeviceKind::All || self.kind == kind;
        let access_ok = if self.allow {
            access & !self.access == 0
        } else {
            access & self.access != 0
        };
        kind_ok
            && access_ok
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

/// Decides a request with `rules` as the kernel will: the last matching rule
/// wins, and nothing matching means denied.
pub fn allowed(rules: &[DeviceRule], kind: DeviceKind, major: u32, minor: u32, access: u8) -> bool {
    rules
        .iter()
        .rev()
        .find(|r| r.matches(kind, major, minor, access))
        .is_some_and(|r| r.allow)
}

/// The OCI default devices: `null` 1:3, `zero` 1:5, `full` 1:7, `random`
/// 1:8, `urandom` 1:9, `tty` 5:0, `console` 5:1, `ptmx` 5:2 and the `devpts`
/// terminals 136:*, each `rwm`.
pub fn default_rules() -> Vec<DeviceRule> {
    vec![
        DeviceRule::char_rwm(1, Some(3)),
        DeviceRule::char_rwm(1, Some(5)),
        DeviceRule::char_rwm(1, Some(7)),
        DeviceRule::char_rwm(1, Some(8)),
        DeviceRule::char_rwm(1, Some(9)),
        DeviceRule::char_rwm(5, Some(0)),
        DeviceRule::char_rwm(5, Some(1)),
        DeviceRule::char_rwm(5, Some(2)),
        DeviceRule::char_rwm(136, None),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceKind::*;

    #[test]
    fn default_rules_allow_the_oci_devices_and_nothing_else() {
        let r = default_rules();
        assert!(allowed(&r, Char, 1, 3, access::READ | access::WRITE));
        assert!(allowed(&r, Char, 136, 7, access::ALL));
        assert!(allowed(&r, Char, 1, 9, access::MKNOD));
        // /dev/kvm, /dev/mem and a disk: no mknod, no open.
        assert!(!allowed(&r, Char, 10, 232, access::MKNOD));
        assert!(!allowed(&r, Char, 1, 1, access::READ));
        assert!(!allowed(&r, Block, 8, 0, access::MKNOD));
        assert!(!allowed(&r, Block, 1, 3, access::READ));
    }

    #[test]
    fn last_match_wins_and_deny_takes_any_bit() {
        let mut r = default_rules();
        r.push(DeviceRule {
            allow: false,
            kind: Char,
            major: Some(1),
            minor: Some(3),
            access: access::WRITE,
        });
        assert!(allowed(&r, Char, 1, 3, access::READ));
        assert!(!allowed(&r, Char, 1, 3, access::READ | access::WRITE));
    }

    #[test]
    fn v1_lines_and_oci_parsing() {
        assert_eq!(DeviceRule::char_rwm(1, Some(3)).v1_line(), "c 1:3 rwm");
        assert_eq!(DeviceRule::char_rwm(136, None).v1_line(), "c 136:* rwm");
        let r = DeviceRule::from_oci("devices[0]", false, None, None, None, Some("rwm")).unwrap();
        assert_eq!(r.v1_line(), "a *:* rwm");
        let r = DeviceRule::from_oci("devices[1]", true, Some("b"), Some(8), Some(-1), Some("r"))
            .unwrap();
        assert_eq!(r.v1_line(), "b 8:* r");
        let e = DeviceRule::from_oci("devices[2]", true, Some("x"), None, None, None).unwrap_err();
        assert!(e.to_string().contains("devices[2].type"), "{e}");
        let e = DeviceRule::from_oci("devices[3]", true, Some("c"), None, None, Some("rx"))
            .unwrap_err();
        assert!(e.to_string().contains("devices[3].access"), "{e}");
    }
}
