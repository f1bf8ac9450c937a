//! The names a [`super::Network`] gives what it makes, and the removal of
//! what a killed run left: every name carries the owning process's pid and
//! a per-process sequence number, so a leftover is recognised by its shape
//! and removed only when that process is gone.
//!
//! | thing | name |
//! | --- | --- |
//! | network namespace | `isolab-<pid>-<seq>` (`/run/netns`) |
//! | point-to-point veth, host end | `il<pid>v<seq>` |
//! | bridge | `il<pid>b<seq>` |
//! | bridge port (container's veth, host end) | `il<pid>p<seq>` |
//! | a VM's tap ([`super::tap::TapLink`]) | `il<pid>t<seq>` |
//! | iptables nat chains | `ISOLAB-<pid>-<seq>` (DNAT), `ISOLAB-<pid>-<seq>-POST` (MASQUERADE) |

use std::net::Ipv4Addr;
use std::path::Path;

use super::{ip, iptables_output, iptables_quiet};

/// Every name of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Owning process.
    pub pid: i32,
    /// Sequence number within it (0–999).
    pub seq: u32,
    /// Network namespace.
    pub netns: String,
    /// Point-to-point veth, host end.
    pub veth: String,
    /// Bridge.
    pub bridge: String,
    /// Bridge port.
    pub port: String,
    /// DNAT chain.
    pub chain: String,
    /// MASQUERADE chain.
    pub post_chain: String,
}

impl Names {
    /// The names for network `seq` of process `pid`.
    pub fn new(pid: i32, seq: u32) -> Names {
        Names {
            pid,
            seq,
            netns: format!("isolab-{pid}-{seq}"),
            veth: format!("il{pid}v{seq}"),
            bridge: format!("il{pid}b{seq}"),
            port: format!("il{pid}p{seq}"),
            chain: format!("ISOLAB-{pid}-{seq}"),
            post_chain: format!("ISOLAB-{pid}-{seq}-POST"),
        }
    }

    /// The name of a VM's tap interface for network `seq` of process `pid`.
    pub fn tap(pid: i32, seq: u32) -> String {
        format!("il{pid}t{seq}")
    }

    /// The (pid, seq) of any of these names, if it has their shape.
    pub fn parse(name: &str) -> Option<(i32, u32)> {
        fn num(s: &str) -> Option<&str> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
        }
        if let Some(rest) = name
            .strip_prefix("isolab-")
            .or_else(|| name.strip_prefix("ISOLAB-"))
        {
            let rest = rest.strip_suffix("-POST").unwrap_or(rest);
            let (pid, seq) = rest.split_once('-')?;
            return Some((num(pid)?.parse().ok()?, num(seq)?.parse().ok()?));
        }
        let rest = name.strip_prefix("il")?;
        let at = rest.find(['v', 'b', 'p', 't'])?;
        let (pid, seq) = (num(&rest[..at])?, num(&rest[at + 1..])?);
        Some((pid.parse().ok()?, seq.parse().ok()?))
    }
}

/// The jumps from the built-in nat chains into this network's chains:
/// (parent chain, rule arguments after `-A parent`).
pub fn chain_rules(n: &Names, gateway: Ipv4Addr) -> Vec<(&'static str, Vec<String>)> {
    let gw = gateway.to_string();
    let jump = |d: &str, to: &str| -> Vec<String> {
        let mut r = Vec::new();
        if !d.is_empty() {
            r.extend(["-d".to_string(), format!("{d}/32")]);
        }
        r.extend(["-j".to_string(), to.to_string()]);
        r
    };
    vec![
        ("PREROUTING", jump(&gw, &n.chain)),
        ("OUTPUT", jump(&gw, &n.chain)),
        ("POSTROUTING", jump("", &n.post_chain)),
    ]
}

/// Removes every rule jumping to `chains`, then the chains; returns failures.
fn remove_chains(chains: &[String]) -> Vec<String> {
    let mut failed = Vec::new();
    let Some(rules) = iptables_output(&["-t", "nat", "-S"]) else {
        return failed;
    };
    for line in rules.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let jumps_to_ours = words
            .windows(2)
            .any(|w| w[0] == "-j" && chains.iter().any(|c| c == w[1]));
        if words.first() == Some(&"-A") && jumps_to_ours {
            let mut args = vec!["-t", "nat", "-D"];
            args.extend(&words[1..]);
            if !iptables_quiet(&args) {
                failed.push(format!("iptables rule `{line}`"));
            }
        }
    }
    let exists = |c: &String| rules.lines().any(|l| l == format!("-N {c}"));
    for c in chains.iter().filter(|c| exists(c)) {
        if !(iptables_quiet(&["-t", "nat", "-F", c]) && iptables_quiet(&["-t", "nat", "-X", c])) {
            failed.push(format!("iptables chain {c}"));
        }
    }
    failed
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Removes everything named by `n` that exists; returns what could not be removed.
pub fn remove(n: &Names) -> Vec<String> {
    let mut failed = remove_chains(&[n.chain.clone(), n.post_chain.clone()]);
    for link in [&n.veth, &n.port, &n.bridge] {
        if link_exists(link) && ip(&["link", "del", link]).is_err() {
            failed.push(format!("interface {link}"));
        }
    }
    if Path::new("/run/netns").join(&n.netns).exists() && ip(&["netns", "del", &n.netns]).is_err() {
        failed.push(format!("network namespace {}", n.netns));
    }
    failed
}

/// One thing a dead run left.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Leftover {
    /// A network namespace under `/run/netns`.
    Netns(String),
    /// A host interface (veth end, bridge or a VM's tap).
    Link(String),
    /// An iptables nat chain (and the rules jumping to it).
    Chain(String),
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::Netns(n) => write!(f, "network namespace {n}"),
            Leftover::Link(n) => write!(f, "interface {n}"),
            Leftover::Chain(n) => write!(f, "iptables nat chain {n}"),
        }
    }
}

fn dir_names(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What networks of processes for which `alive` is false left behind.
pub fn scan(alive: impl Fn(i32) -> bool) -> Vec<Leftover> {
    let dead = |name: &str| Names::parse(name).is_some_and(|(pid, _)| !alive(pid));
    let mut out: Vec<Leftover> = Vec::new();
    out.extend(
        dir_names("/run/netns")
            .into_iter()
            .filter(|n| n.starts_with("isolab-") && dead(n))
            .map(Leftover::Netns),
    );
    out.extend(
        dir_names("/sys/class/net")
            .into_iter()
            .filter(|n| n.starts_with("il") && dead(n))
            .map(Leftover::Link),
    );
    if let Some(rules) = iptables_output(&["-t", "nat", "-S"]) {
        out.extend(
            rules
                .lines()
                .filter_map(|l| l.strip_prefix("-N "))
                .filter(|c| c.starts_with("ISOLAB-") && dead(c))
                .map(|c| Leftover::Chain(c.to_string())),
        );
    }
    out.sort();
    out
}

/// Removes one leftover; `Err` says what could not be removed.
pub fn remove_leftover(l: &Leftover) -> Result<(), String> {
    let failed = match l {
        Leftover::Netns(n) => {
            if ip(&["netns", "del", n]).is_err() {
                vec![l.to_string()]
            } else {
                Vec::new()
            }
        }
        // A veth's other end may already have gone with its namespace.
        Leftover::Link(n) if !link_exists(n) => Vec::new(),
        Leftover::Link(n) => match ip(&["link", "del", n]) {
            Ok(()) => Vec::new(),
            Err(e) => vec![e.to_string()],
        },
        Leftover::Chain(c) => remove_chains(std::slice::from_ref(c)),
    };
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_carries_pid_and_seq_and_fits_an_interface() {
        let n = Names::new(4_194_303, 999);
        for name in [
            &n.netns,
            &n.veth,
            &n.bridge,
            &n.port,
            &n.chain,
            &n.post_chain,
            &Names::tap(4_194_303, 999),
        ] {
            assert_eq!(Names::parse(name), Some((4_194_303, 999)), "{name}");
        }
        for link in [&n.veth, &n.bridge, &n.port, &Names::tap(4_194_303, 999)] {
            assert!(link.len() < libc::IFNAMSIZ, "{link}");
        }
        // iptables chain names are at most 28 characters.
        assert!(n.post_chain.len() <= 28);
        for other in [
            "eth0",
            "isl123",
            "ilo",
            "il12x3",
            "isolab-cache",
            "ISOLAB-1",
            "lo",
        ] {
            assert_eq!(Names::parse(other), None, "{other}");
        }
    }

    #[test]
    fn jumps_target_the_gateway_and_the_run_chains() {
        let n = Names::new(12, 3);
        let r = chain_rules(&n, Ipv4Addr::new(10, 200, 0, 9));
        assert_eq!(r[0].0, "PREROUTING");
        assert_eq!(r[1].1, ["-d", "10.200.0.9/32", "-j", "ISOLAB-12-3"]);
        assert_eq!(r[2].1, ["-j", "ISOLAB-12-3-POST"]);
    }
}
