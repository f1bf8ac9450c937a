//! Answers "can this host do X?" — one place for `isolab doctor`, for tests
//! (skip with a reason) and for `compare`/`bench` (fall back and say so).
//!
//! Everything here reads `/proc`, `/sys` or tries the thing in a throwaway
//! child; nothing is guessed from names alone. The functional KVM probes
//! (can the guest run CPL-0 code at speed, are exceptions delivered) need a
//! VM and live in `microvm::probe`; `isolation::doctor` combines both.

pub mod cgroup;
pub mod emulation;
pub mod features;
pub mod kvm;
pub mod namespaces;
pub mod peers;
pub mod testing;
pub mod time;

/// Is the current process running as root (effective uid 0)?
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
