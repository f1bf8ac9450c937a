//! OCI seccomp profiles (`linux.seccomp`, as podman sends its default one)
//! compiled into stacked BPF filters with `seccompiler`.
//!
//! One profile maps onto several filters because a `seccompiler` filter has a
//! single match action. The first filter allows every syscall the profile
//! names (under the entry's argument conditions) and applies the default
//! action to the rest; then one filter per other action returns that action
//! for its entries and allows everything else. The kernel runs every filter
//! and keeps the most severe result, the most recently installed one among
//! equals, so an entry's own action wins over the default and over allow,
//! as libseccomp would decide.

use std::collections::BTreeMap;

use container::security::seccomp::Filters;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompOperator as Op,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::Error;
use crate::syscall_table::SYSCALLS;

/// Rules by syscall number; `None` means "whatever the arguments".
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn refuse(reason: impl Into<String>) -> Error {
    Error::Unsupported {
        field: "linux.seccomp".into(),
        reason: reason.into(),
    }
}

/// The x86-64 number of a syscall name, if the architecture has it.
pub(crate) fn syscall_number(name: &str) -> Option<i64> {
    SYSCALLS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| SYSCALLS[i].1)
}

fn action(a: Action, errno: Option<u32>) -> Result<SeccompAction, Error> {
    Ok(match a {
        Action::ScmpActAllow => SeccompAction::Allow,
        Action::ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32)),
        Action::ScmpActKill | Action::ScmpActKillThread => SeccompAction::KillThread,
        Action::ScmpActKillProcess => SeccompAction::KillProcess,
        Action::ScmpActTrap => SeccompAction::Trap,
        Action::ScmpActLog => SeccompAction::Log,
        Action::ScmpActNotify | Action::ScmpActTrace => {
            return Err(refuse(format!(
                "action {a} needs a seccomp agent or tracer, which isolab does not provide"
            )));
        }
    })
}

fn condition(arg: &LinuxSeccompArg) -> Result<SeccompCondition, Error> {
    let (op, value) = match arg.op() {
        Op::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        Op::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        Op::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        Op::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        Op::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        Op::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // OCI: `value` is the mask, `valueTwo` what the masked argument must equal.
        Op::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    let index = u8::try_from(arg.index())
        .map_err(|_| refuse(format!("argument index {} is out of range", arg.index())))?;
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| refuse(e.to_string()))
}

/// Adds `nr` under `conds` (all must hold) to `rules`.
fn add(rules: &mut Rules, nr: i64, conds: &[SeccompCondition]) -> Result<(), Error> {
    if conds.is_empty() {
        rules.insert(nr, None);
        return Ok(());
    }
    let rule = SeccompRule::new(conds.to_vec()).map_err(|e| refuse(e.to_string()))?;
    // An unconditional entry (None) already matches every call.
    if let Some(v) = rules.entry(nr).or_insert_with(|| Some(Vec::new())) {
        v.push(rule);
    }
    Ok(())
}

fn compile_one(
    rules: Rules,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, Error> {
    let rules = rules
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let filter = SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64)
        .map_err(|e| refuse(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| refuse(e.to_string()))
}

/// Checks what the profile asks for besides syscall rules.
fn check_profile(p: &LinuxSeccomp) -> Result<(), Error> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(refuse("seccomp filter flags are not supported"));
    }
    if p.listener_path().is_some() {
        return Err(refuse("a seccomp listener (agent) is not supported"));
    }
    if let Some(archs) = p.architectures()
        && !archs.is_empty()
        && !archs.contains(&Arch::ScmpArchX86_64)
    {
        return Err(refuse("the profile does not cover SCMP_ARCH_X86_64"));
    }
    Ok(())
}

/// Compiles `profile`. Syscall names this architecture lacks are skipped (as
/// libseccomp does); other architectures' calls (x86, x32) are killed.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filters, Error> {
    check_profile(profile)?;
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut named = Rules::new();
    let mut by_action: Vec<(SeccompAction, Rules)> = Vec::new();
    for entry in profile.syscalls().iter().flatten() {
        let act = action(entry.action(), entry.errno_ret())?;
        let conds = entry
            .args()
            .iter()
            .flatten()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        for nr in entry.names().iter().filter_map(|n| syscall_number(n)) {
            add(&mut named, nr, &conds)?;
            if act != SeccompAction::Allow {
                let i = match by_action.iter().position(|(a, _)| *a == act) {
                    Some(i) => i,
                    None => {
                        by_action.push((act.clone(), Rules::new()));
                        by_action.len() - 1
                    }
                };
                add(&mut by_action[i].1, nr, &conds)?;
            }
        }
    }
    let mut filters = Vec::new();
    if default != SeccompAction::Allow {
        if named.is_empty() {
            return Err(refuse(
                "the profile allows no syscall at all, not even execve",
            ));
        }
        filters.push(compile_one(named, default, SeccompAction::Allow)?);
    }
    for (act, rules) in by_action {
        filters.push(compile_one(rules, SeccompAction::Allow, act)?);
    }
    Ok(Filters(filters))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_table_is_sorted_and_finds_names() {
        assert!(SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(syscall_number("read"), Some(libc::SYS_read));
        assert_eq!(syscall_number("socket"), Some(libc::SYS_socket));
        assert_eq!(syscall_number("stime"), None);
    }

    #[test]
    fn a_podman_like_profile_compiles_to_stacked_filters() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "execve", "nosuchcall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}
            ]
        }));
        // Allow-or-default, then one filter per errno.
        assert_eq!(compile(&p).unwrap().0.len(), 3);
    }

    #[test]
    fn agents_flags_and_foreign_architectures_are_refused() {
        for v in [
            serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}),
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}),
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"}),
        ] {
            let e = compile(&profile(v.clone())).unwrap_err().to_string();
            assert!(e.contains("linux.seccomp"), "{v}: {e}");
        }
    }
}
