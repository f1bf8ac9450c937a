//! `isolab clean`: finds and removes what a killed run left behind.
//!
//! Every run names what it creates after the pid of the process that owns
//! it, so a leftover is anything with such a name whose owner is no longer
//! alive; things owned by a live process are never touched. What the
//! container runtime creates (cgroups, staging roots, veths) is found and
//! removed by [`container::clean`], which knows its own names; this module
//! adds the rest: temp files and directories `isolab-…-<pid>-…` (such as the
//! test host's run directory `isolab-testhost-<pid>-…`) and cgroups of the
//! same shape (a capability probe's `isolab-probe-<pid>`).

use std::path::PathBuf;

use container::clean::{dead_entries, remove_cgroup, remove_tree};

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// The container runtime's: its cgroups, staging roots and veths.
    pub container: container::clean::Leftovers,
    /// Other cgroup directories (any hierarchy) of dead runs.
    pub cgroups: Vec<PathBuf>,
    /// Other temp files and directories of dead runs.
    pub temp: Vec<PathBuf>,
}

impl Leftovers {
    /// Nothing found.
    pub fn is_empty(&self) -> bool {
        self.container.is_empty() && self.cgroups.is_empty() && self.temp.is_empty()
    }
}

/// The pid a leftover's name carries: the first all-digit `-`-separated
/// token after an `isolab` token (`isolab-123-4`, `isolab-root-isolab-123-4`).
pub fn owner_pid(name: &str) -> Option<i32> {
    let mut tokens = name.split('-');
    tokens.find(|t| *t == "isolab")?;
    tokens.find_map(|t| {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    })
}

/// [`owner_pid`] for the names the container runtime does not claim.
fn others(name: &str) -> Option<i32> {
    owner_pid(name).filter(|_| !container::clean::owns(name))
}

/// Looks for leftovers in the cgroup hierarchies, the temp dir and the host's interfaces.
pub fn scan() -> Leftovers {
    Leftovers {
        container: container::clean::scan(),
        cgroups: hostcaps::cgroup::mounts()
            .iter()
            .flat_map(|m| dead_entries(&m.path, others))
            .collect(),
        temp: dead_entries(&std::env::temp_dir(), others),
    }
}

/// Removes everything in `l`; returns one line per item, saying what happened.
pub fn clean(l: &Leftovers) -> Vec<String> {
    let mut log = container::clean::remove(&l.container);
    for c in &l.cgroups {
        log.push(match remove_cgroup(c) {
            Ok(()) => format!("removed cgroup {}", c.display()),
            Err(e) => format!("could not remove cgroup {}: {e}", c.display()),
        });
    }
    for t in &l.temp {
        log.push(match remove_tree(t) {
            Ok(()) => format!("removed {}", t.display()),
            Err(e) => format!("could not remove {}: {e}", t.display()),
        });
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_from_names() {
        assert_eq!(owner_pid("isolab-123-4"), Some(123));
        assert_eq!(owner_pid("isolab-root-isolab-77-0"), Some(77));
        assert_eq!(owner_pid("isolab-testhost-4321-Ab9xYz"), Some(4321));
        assert_eq!(owner_pid("isolab-cache"), None);
        assert_eq!(owner_pid("other-123-4"), None);
        // The container runtime's own names are its to clean.
        assert_eq!(others("isolab-root-isolab-77-0"), None);
        assert_eq!(others("isolab-123-4"), None);
        assert_eq!(others("isolab-testhost-4321-Ab9xYz"), Some(4321));
    }

    #[test]
    fn dead_owner_is_a_leftover_and_live_owner_is_not() {
        let d = tempfile::tempdir().unwrap();
        // Pid 1 is always alive; pid 2^22+1 is above pid_max's ceiling, so never alive.
        let live = d.path().join("isolab-testhost-1-x");
        let dead = d
            .path()
            .join(format!("isolab-testhost-{}-x", (1 << 22) + 1));
        let unrelated = d.path().join("something-else");
        for p in [&live, &dead, &unrelated] {
            std::fs::create_dir(p).unwrap();
        }
        assert_eq!(dead_entries(d.path(), others), vec![dead.clone()]);
        let log = clean(&Leftovers {
            temp: vec![dead.clone()],
            ..Leftovers::default()
        });
        assert!(log[0].starts_with("removed"), "{log:?}");
        assert!(!dead.exists() && live.exists() && unrelated.exists());
    }
}
