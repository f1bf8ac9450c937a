//! What `/proc/PID/stat` says about a process: whether a recorded pid is
//! still the same process (its start time) and whether it has exited; and
//! the one thing `create` writes there, the init's `oom_score_adj`.

use crate::{Error, Result};

/// Start time (clock ticks after boot) and state letter of `pid`, if it exists.
pub(crate) fn stat(pid: i32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, starttime field 22 (1-based).
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// True when `pid` is the process that started at `start` and has not exited
/// (a zombie has exited: only its reaper has not looked yet).
pub(crate) fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && stat(pid).is_some_and(|(s, st)| s == start && st != 'Z' && st != 'X')
}

/// Sets `pid`'s `oom_score_adj` (`process.oomScoreAdj`): written into the
/// waiting init before it execs, its program inherits it.
pub(crate) fn set_oom_score_adj(pid: i32, adj: i32) -> Result<()> {
    if !(-1000..=1000).contains(&adj) {
        return Err(Error::Usage(format!(
            "process.oomScoreAdj {adj} is outside -1000..=1000"
        )));
    }
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
        .map_err(|e| Error::io(format!("set the oom_score_adj of {pid}"), e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn our_own_process_is_alive_with_its_start_time() {
        let me = std::process::id() as i32;
        let (start, state) = stat(me).unwrap();
        assert_ne!(state, 'Z');
        assert!(alive(me, start));
        assert!(!alive(me, start + 1));
        assert!(!alive(0, start));
    }
}
