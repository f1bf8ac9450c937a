//! A small container runtime: namespaces, `pivot_root`, cgroups v1/v2,
//! capabilities, `no_new_privs` and seccomp, built on `nix`/`libc`.
//!
//! ```no_run
//! use container::{ContainerSpec, Stdio};
//! let report = container::run(
//!     &ContainerSpec::with_rootfs("/srv/rootfs", "/bin/true").memory(64 << 20).stdout(Stdio::Piped),
//! )?;
//! assert!(report.success());
//! # Ok::<(), container::Error>(())
//! ```
//!
//! The parent prepares everything (mount plan, seccomp BPF, argv) and clones
//! the child into new namespaces; the child only makes syscalls, reports each
//! failure as (step, errno) over a socket and execs the program as PID 1.

pub mod cgroup;
pub mod clean;
mod console;
mod enter;
mod error;
mod init;
pub mod mounts;
pub mod net;
pub mod oci;
mod process;
pub mod rootfs;
pub mod rootless;
pub mod security;
mod signals;
pub mod spec;
pub mod syscall;
mod sysctl;
pub mod validate;

pub use cgroup::{CgroupChoice, CgroupPlacement, CgroupStats, DeviceRule};
pub use enter::{Entered, enter};
pub use error::{Error, Result};
pub use process::{
    Detached, ExitStatus, RunReport, Running, Timestamps, preserve_fds, run, spawn, start_outcome,
};
pub use spec::{ContainerSpec, Hardening, Lifecycle, NetMode, Resources, RootSpec, Stdio, Volume};
pub use validate::MIN_MEMORY_BYTES;
