//! The default seccomp policy: allow everything except the syscalls that reach
//! the host kernel's global state (modules, kexec, keyrings, mounts, namespaces,
//! tracing, clocks), and io_uring, whose rings run requests in kernel workers
//! no per-syscall filter sees (Docker's default profile blocks it too since
//! 2023); all fail with `EPERM`.
//!
//! Two filters are stacked: the deny list (EPERM), and `clone3` → `ENOSYS`,
//! because `clone3` hides its flags in memory a filter cannot inspect and libc
//! falls back to `clone` (whose flags we can check) only on `ENOSYS`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::{Error, Result};

/// Compiled filters given by the caller (an OCI profile), installed in order.
#[derive(Clone, Default)]
pub struct Filters(pub Vec<BpfProgram>);

impl std::fmt::Debug for Filters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lens: Vec<usize> = self.0.iter().map(Vec::len).collect();
        write!(f, "Filters({lens:?} instructions)")
    }
}

impl PartialEq for Filters {
    fn eq(&self, other: &Filters) -> bool {
        let key = |p: &BpfProgram| -> Vec<(u16, u8, u8, u32)> {
            p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
        };
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| key(a) == key(b))
    }
}

/// Syscalls denied with `EPERM`, whatever their arguments.
pub const DENIED: &[(&str, libc::c_long)] = &[
    ("acct", libc::SYS_acct),
    ("add_key", libc::SYS_add_key),
    ("bpf", libc::SYS_bpf),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("clock_settime", libc::SYS_clock_settime),
    ("delete_module", libc::SYS_delete_module),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("finit_module", libc::SYS_finit_module),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fsopen", libc::SYS_fsopen),
    ("fspick", libc::SYS_fspick),
    ("init_module", libc::SYS_init_module),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("ioperm", libc::SYS_ioperm),
    ("iopl", libc::SYS_iopl),
    ("kcmp", libc::SYS_kcmp),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("kexec_load", libc::SYS_kexec_load),
    ("keyctl", libc::SYS_keyctl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("mount", libc::SYS_mount),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("move_mount", libc::SYS_move_mount),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("nfsservctl", libc::SYS_nfsservctl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("open_tree", libc::SYS_open_tree),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("pivot_root", libc::SYS_pivot_root),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("ptrace", libc::SYS_ptrace),
    ("quotactl", libc::SYS_quotactl),
    ("reboot", libc::SYS_reboot),
    ("request_key", libc::SYS_request_key),
    ("setns", libc::SYS_setns),
    ("settimeofday", libc::SYS_settimeofday),
    ("swapoff", libc::SYS_swapoff),
    ("swapon", libc::SYS_swapon),
    ("syslog", libc::SYS_syslog),
    ("_sysctl", libc::SYS__sysctl),
    ("umount2", libc::SYS_umount2),
    ("unshare", libc::SYS_unshare),
    ("uselib", libc::SYS_uselib),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("ustat", libc::SYS_ustat),
];

/// `clone` flags that create namespaces; `clone` with any of them is denied.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

fn arch() -> TargetArch {
    #[cfg(target_arch = "aarch64")]
    return TargetArch::aarch64;
    #[cfg(not(target_arch = "aarch64"))]
    TargetArch::x86_64
}

// Syscall numbers are c_long: i64 here, not on 32-bit targets.
#[allow(clippy::unnecessary_cast)]
fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch(),
    )
    .map_err(|e| Error::Seccomp(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| Error::Seccomp(e.to_string()))
}

/// The default policy as BPF programs, to install in this order.
#[allow(clippy::unnecessary_cast)]
pub fn default_filters() -> Result<Vec<BpfProgram>> {
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .map(|(_, nr)| (*nr as i64, Vec::new()))
        .collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|f| {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(*f as u64),
                *f as u64,
            )
            .map_err(|e| Error::Seccomp(e.to_string()))?;
            SeccompRule::new(vec![cond]).map_err(|e| Error::Seccomp(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    deny.insert(libc::SYS_clone as i64, clone_rules);
    let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3 as i64, Vec::new())].into();
    Ok(vec![
        compile(deny, libc::EPERM)?,
        compile(clone3, libc::ENOSYS)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_list_is_denied() {
        for name in [
            "kexec_load",
            "open_by_handle_at",
            "init_module",
            "bpf",
            "keyctl",
            "ptrace",
            "mount",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
        ] {
            assert!(
                DENIED.iter().any(|(n, _)| *n == name),
                "{name} is not denied"
            );
        }
    }

    #[test]
    fn filters_compile_to_nonempty_programs() {
        let f = default_filters().unwrap();
        assert_eq!(f.len(), 2);
        // The deny list needs at least one jump per syscall.
        assert!(f[0].len() > DENIED.len(), "{}", f[0].len());
    }

    #[test]
    fn a_denied_syscall_gets_eperm_in_a_filtered_child() {
        // Apply the filter in a forked child (never in the test process).
        let filters = default_filters().unwrap();
        // SAFETY: the child only makes raw syscalls and _exits.
        match unsafe { libc::fork() } {
            0 => {
                for f in &filters {
                    if seccompiler::apply_filter(f).is_err() {
                        // SAFETY: _exit in a forked child.
                        unsafe { libc::_exit(2) };
                    }
                }
                // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, session, 0) takes integers only.
                let rc = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                // SAFETY: _exit in a forked child.
                unsafe {
                    libc::_exit(if rc == -1 && errno == libc::EPERM {
                        0
                    } else {
                        1
                    })
                }
            }
            pid => {
                let mut st = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut st, 0) };
                assert!(libc::WIFEXITED(st));
                assert_eq!(libc::WEXITSTATUS(st), 0, "keyctl was not denied with EPERM");
            }
        }
    }
}
