//! The VM backend (`isolab-vm`): the bundle in the micro VM, its rootfs as
//! the guest's root (see `isolation::vm_linux::bundle`).
//!
//! `create` checks the bundle and builds everything the VM needs (rootfs
//! image, initramfs with the process) in this process, so a bad bundle fails
//! `create` itself; then it forks the VMM process, whose pid is the
//! container's. The VMM waits first for `create` to record it (a byte on a
//! pipe; end of file means `create` failed, and it exits), then in `accept`
//! on the start gate. `start` connects; the VMM closes the connection (an
//! empty reply: started) and boots the guest with the caller's stdio (the
//! console, echoed), then exits with the program's status (128+n for signal
//! n, 125 when the VM could not run it). `kill` signals the VMM, which stops
//! the VM with it; the image has no name, so `delete` finds nothing else.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use container::ContainerSpec;
use isolation::vm_linux::{self, VmLinux, bundle};
use isolation::{Exit, Invocation, IsolationError, Limits};

use crate::backend::Pending;
use crate::{Error, Result};

/// A container's VM has no wall-clock limit; this bounds the timer only.
const NO_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn isolation_error(e: IsolationError) -> Error {
    match e {
        IsolationError::Container(c) => Error::Container(c),
        IsolationError::Unsupported { reason, .. } => Error::Unsupported {
            field: "isolab-vm".into(),
            reason,
        },
        other => Error::Usage(other.to_string()),
    }
}

/// The VMM process, waiting to be recorded and started.
struct PendingVm {
    pid: i32,
    /// Writing a byte lets the VMM go on to wait for `start`.
    detach: OwnedFd,
}

impl Pending for PendingVm {
    fn pid(&self) -> i32 {
        self.pid
    }
    fn cgroup_paths(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
    fn detach(self: Box<Self>) -> Result<()> {
        let mut f = std::fs::File::from(self.detach);
        std::io::Write::write_all(&mut f, b"1").map_err(|e| Error::io("release the VMM", e))
    }
}

/// Prepares the VM for `spec` and forks its VMM, paused before boot.
pub(crate) fn create(spec: &ContainerSpec) -> Result<Box<dyn Pending>> {
    let gate = spec.lifecycle.start_gate.ok_or_else(|| {
        Error::Usage("the VM backend is created through `isolab-vm create`".into())
    })?;
    vm_linux::linux_guest_support().map_err(|reason| Error::Unsupported {
        field: "isolab-vm".into(),
        reason,
    })?;
    let own = Invocation::Program {
        program: String::new(),
        args: Vec::new(),
    };
    let (rootfs, process) = bundle::from_spec(spec, &own).map_err(isolation_error)?;
    let vm = VmLinux {
        quiet: true,
        stream_output: true,
        ..VmLinux::new()
    };
    let limits = Limits {
        timeout: NO_TIMEOUT,
        ..Limits::default()
    };
    let cache = isolation::kernel::cache_root();
    let (prepared, _) = bundle::prepare_loaded(&vm, spec, &rootfs, &process, &limits, &cache)
        .map_err(isolation_error)?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("pipe", e.into()))?;
    // SAFETY: `create` runs no other thread (mkfs ran as a child process and
    // was waited for), so the child may go on running Rust code.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::io("fork the VMM", e.into()))? {
        nix::unistd::ForkResult::Child => {
            drop(write);
            let status = vmm(&prepared, read, gate);
            std::process::exit(status)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(read);
            Ok(Box::new(PendingVm {
                pid: child.as_raw(),
                detach: write,
            }))
        }
    }
}

/// The VMM process: waits to be recorded, then for `start`, then runs the
/// VM; returns the exit status.
fn vmm(prepared: &vm_linux::Prepared, detach: OwnedFd, gate: RawFd) -> i32 {
    let mut byte = [0u8; 1];
    if std::fs::File::from(detach).read(&mut byte).ok() != Some(1) {
        return 125; // `create` failed before recording us
    }
    // Our own session: a signal to `create`'s process group is not ours.
    let _ = nix::unistd::setsid();
    // SAFETY: accept4 on the listening gate this process inherited; no peer
    // address is asked for.
    let conn = unsafe {
        libc::accept4(
            gate,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    if conn < 0 {
        eprintln!(
            "isolab-vm: waiting for start: {}",
            std::io::Error::last_os_error()
        );
        return 125;
    }
    // SAFETY: both descriptors are ours; closing the connection with
    // nothing written tells `start` the container started.
    unsafe {
        drop(OwnedFd::from_raw_fd(conn));
        drop(OwnedFd::from_raw_fd(gate));
    }
    let outcome = microvm::run(&prepared.config)
        .map_err(IsolationError::from)
        .and_then(|out| vm_linux::interpret(prepared, out));
    match outcome.map(|o| o.exit) {
        Ok(Exit::Exited { code }) => code,
        Ok(Exit::Signaled { signal }) => 128 + signal,
        Ok(Exit::Timeout) => 124,
        Ok(Exit::OomKilled) => 137,
        Ok(Exit::VmStopped { detail }) => {
            eprintln!("isolab-vm: {detail}");
            125
        }
        Err(e) => {
            eprintln!("isolab-vm: {e}");
            125
        }
    }
}
