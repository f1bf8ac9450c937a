//! The cgroup v2 device controller: a `BPF_PROG_TYPE_CGROUP_DEVICE` program,
//! assembled here from the rules (no compiler, no BPF library), loaded with
//! `bpf(2)` and attached to the container's group before its first process
//! enters it.
//!
//! The kernel runs the program on every `mknod` and every open of a device
//! node by a task in the group, with a `struct bpf_cgroup_dev_ctx`:
//! `access_type = access << 16 | type` (type: block 1, char 2; access:
//! mknod 1, read 2, write 4), `major`, `minor`. The program returns 1 to
//! allow and 0 to deny. It checks the rules from the last to the first, one
//! block each, and denies when none matches ([`super::devices::allowed`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::devices::{DeviceKind, DeviceRule, access};

/// One BPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register (low nibble) and source register (high nibble).
    pub regs: u8,
    /// Jump offset or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND_K: u8 = 0x57; // dst &= imm
const RSH_K: u8 = 0x77; // dst >>= imm
const MOV_K: u8 = 0xb7; // dst = imm
const MOV_X: u8 = 0xbf; // dst = src
const JEQ_K: u8 = 0x15; // if dst == imm goto +off
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const EXIT: u8 = 0x95;

// Registers: r1 = context; r2 = type; r3 = access; r4 = major; r5 = minor; r6 scratch.
const CTX: u8 = 1;
const TYPE: u8 = 2;
const ACC: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;
const TMP: u8 = 6;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The instructions of one rule; jumps with offset `i16::MAX` go to the next rule.
fn rule_block(r: &DeviceRule) -> Vec<Insn> {
    const NEXT: i16 = i16::MAX;
    let mut b = Vec::new();
    match r.kind {
        DeviceKind::All => {}
        DeviceKind::Char => b.push(insn(JNE_K, TYPE, 0, NEXT, 2)),
        DeviceKind::Block => b.push(insn(JNE_K, TYPE, 0, NEXT, 1)),
    }
    if r.allow && r.access != access::ALL {
        // Every requested bit must be in the rule.
        b.push(insn(MOV_X, TMP, ACC, 0, 0));
        b.push(insn(AND_K, TMP, 0, 0, i32::from(!r.access & access::ALL)));
        b.push(insn(JNE_K, TMP, 0, NEXT, 0));
    } else if !r.allow {
        // Any requested bit in the rule denies.
        b.push(insn(MOV_X, TMP, ACC, 0, 0));
        b.push(insn(AND_K, TMP, 0, 0, i32::from(r.access)));
        b.push(insn(JEQ_K, TMP, 0, NEXT, 0));
    }
    if let Some(m) = r.major {
        b.push(insn(JNE_K, MAJOR, 0, NEXT, m as i32));
    }
    if let Some(m) = r.minor {
        b.push(insn(JNE_K, MINOR, 0, NEXT, m as i32));
    }
    b.push(insn(MOV_K, 0, 0, 0, i32::from(r.allow)));
    b.push(insn(EXIT, 0, 0, 0, 0));
    let len = b.len() as i16;
    for (i, ins) in b.iter_mut().enumerate() {
        if ins.off == NEXT {
            ins.off = len - i as i16 - 1;
        }
    }
    b
}

/// The whole program for `rules`.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, TYPE, CTX, 0, 0),
        insn(MOV_X, ACC, TYPE, 0, 0),
        insn(AND_K, TYPE, 0, 0, 0xffff),
        insn(RSH_K, ACC, 0, 0, 16),
        insn(LDX_W, MAJOR, CTX, 4, 0),
        insn(LDX_W, MINOR, CTX, 8, 0),
    ];
    for r in rules.iter().rev() {
        p.extend(rule_block(r));
    }
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a valid `union bpf_attr` prefix of the size passed; the
    // pointers inside it reference buffers alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Loads the program for `rules`; on a verifier error the message says why.
pub fn load(rules: &[DeviceRule]) -> Result<OwnedFd, String> {
    let insns = program(rules);
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: c"Apache-2.0".as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..LoadAttr::default()
    };
    attr.prog_name[..7].copy_from_slice(b"isolab\0");
    match bpf(BPF_PROG_LOAD, &attr) {
        // SAFETY: a new descriptor returned by the kernel, owned by nobody else.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            // Load again with the verifier log, only to explain the refusal.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &attr);
            let end = log.iter().position(|b| *b == 0).unwrap_or(0);
            Err(format!(
                "the verifier refused the device program: {}",
                String::from_utf8_lossy(&log[..end]).trim()
            ))
        }
        Err(e) => Err(format!("bpf(BPF_PROG_LOAD) of the device program: {e}")),
    }
}

/// Attaches `prog` to the cgroup directory `cgroup` (after any programs its
/// ancestors hold, which must allow an access too).
pub fn attach(prog: &OwnedFd, cgroup: &OwnedFd) -> io::Result<()> {
    let attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &attr).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::super::devices::{allowed, default_rules};
    use super::*;

    /// Runs the program on one request: just enough of an interpreter for
    /// the instructions [`program`] emits.
    fn interpret(p: &[Insn], kind: DeviceKind, major: u32, minor: u32, acc: u8) -> u64 {
        let ty = match kind {
            DeviceKind::Block => 1,
            _ => 2,
        };
        let ctx = [(u32::from(acc) << 16) | ty, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = p[pc];
            let (d, s) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm = i.imm as i64 as u64;
            pc += 1;
            match i.code {
                LDX_W => r[d] = u64::from(ctx[i.off as usize / 4]),
                AND_K => r[d] &= imm,
                RSH_K => r[d] >>= imm,
                MOV_K => r[d] = imm,
                MOV_X => r[d] = r[s],
                JEQ_K if r[d] == imm => pc += i.off as usize,
                JNE_K if r[d] != imm => pc += i.off as usize,
                JEQ_K | JNE_K => {}
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("no exit");
    }

    #[test]
    fn the_program_decides_like_the_rules() {
        let mut rules = default_rules();
        rules.push(DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major: Some(8),
            minor: None,
            access: access::READ,
        });
        rules.push(DeviceRule {
            allow: false,
            kind: DeviceKind::Char,
            major: Some(1),
            minor: Some(9),
            access: access::WRITE,
        });
        let p = program(&rules);
        for kind in [DeviceKind::Char, DeviceKind::Block] {
            for (major, minor) in [(1, 3), (1, 9), (10, 232), (8, 0), (136, 4), (5, 2), (1, 1)] {
                for acc in 1..=7u8 {
                    assert_eq!(
                        interpret(&p, kind, major, minor, acc) == 1,
                        allowed(&rules, kind, major, minor, acc),
                        "{kind:?} {major}:{minor} access {acc}"
                    );
                }
            }
        }
    }

    #[test]
    fn jumps_stay_inside_the_program() {
        let p = program(&default_rules());
        for (i, ins) in p.iter().enumerate() {
            if matches!(ins.code, JEQ_K | JNE_K) {
                let target = i as i64 + 1 + i64::from(ins.off);
                assert!(
                    target > i as i64 && (target as usize) < p.len(),
                    "{i}: {ins:?}"
                );
            }
        }
        assert_eq!(p.last().unwrap().code, EXIT);
    }
}
