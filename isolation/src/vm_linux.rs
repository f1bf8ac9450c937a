//! `VmLinux`: our VMM booting the project's Linux guest kernel with an
//! initramfs whose `/init` is the static workload.
//!
//! The run is split in three steps that are tested separately: [`prepare`]
//! (kernel, initramfs, command line, VM configuration: no KVM needed),
//! `microvm::run`, and [`interpret`] (console split, exit, boot times).

pub mod bundle;
pub mod console;
pub mod initramfs_cache;
pub mod rootfs_image;

use std::path::{Path, PathBuf};
use std::time::Duration;

use microvm::boot::linux::{CmdlineBuilder, LinuxBoot};
use microvm::outcome::VmTimings;
use microvm::{GuestImage, NetConfig, VmConfig, VmExit, VmOutcome};
use workload::args::Probe;

use super::disk::{Disk, io_request, prepare_disk, seen_as};
use super::{
    Accounting, BootTimes, Exit, Invocation, Isolation, IsolationError, IsolationKind, Limits,
    Outcome, parse_results,
};
use crate::kernel::{self, KernelSource};
use console::InitEnd;
use initramfs_cache::InitramfsSpec;

/// Guest RAM when the limits do not say.
pub const DEFAULT_MEMORY: u64 = 128 << 20;
/// Where busybox comes from for arbitrary programs (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";
/// The io probe's disk inside the guest.
pub const GUEST_DISK: &str = "/dev/vda";

/// The Linux-guest isolation.
#[derive(Debug, Clone, Default)]
pub struct VmLinux {
    /// Kernel to boot (`--kernel`); else `ISOLAB_KERNEL`, else the cached build.
    pub kernel: Option<PathBuf>,
    /// Extra kernel parameters (`--cmdline`).
    pub extra_cmdline: String,
    /// Copy the guest console to stdout while it runs.
    pub serial_echo: bool,
    /// Boot with `quiet`: far fewer console exits (what boot-time benchmarks
    /// want); the boot split comes from the init marker either way, and
    /// panics and power-off are still logged.
    pub quiet: bool,
    /// Run this OCI bundle's rootfs and process instead of the initramfs
    /// (see [`bundle`]).
    pub bundle: Option<PathBuf>,
    /// Stream a bundle program's output to our stdout as it runs (the
    /// console is echoed; the outcome then keeps no copy).
    pub stream_output: bool,
}

/// Everything needed to start the VM, decided before touching KVM.
#[derive(Debug)]
pub struct Prepared {
    /// The VM to run.
    pub config: VmConfig,
    /// Where the kernel came from.
    pub kernel_source: KernelSource,
    /// Notes for the outcome.
    pub notes: Vec<String>,
    /// The io probe's disk, kept (open) for the run.
    pub disk: Option<Disk>,
    /// True when running an arbitrary program rather than the probes.
    pub program: bool,
    /// True for a bundle run: `/init` writes the ready marker only once the
    /// program's root is set up, so an exit without it is a set-up failure.
    pub bundle: bool,
}

impl VmLinux {
    /// The isolation with the default kernel and command line.
    pub fn new() -> Self {
        Self::default()
    }
}

/// `Ok` when this host can run a Linux guest to `/init`; the error says why
/// not. The verdict is microvm's functional probe (`linux_guest_supported`:
/// exceptions delivered and CPL-0 code at native speed), run once per process.
pub fn linux_guest_support() -> Result<(), String> {
    microvm::probe::linux_guest_verdict()
}

impl Isolation for VmLinux {
    fn kind(&self) -> IsolationKind {
        IsolationKind::VmLinux
    }

    fn run(&self, invocation: &Invocation, limits: &Limits) -> Result<Outcome, IsolationError> {
        linux_guest_support().map_err(|reason| IsolationError::Unsupported {
            kind: self.kind(),
            reason,
        })?;
        // The tap link and the `net` probe's peer live until the run ends
        // (dropping them removes the tap, whatever happened).
        let (invocation, mut net, net_note) = vm_net(self, invocation)?;
        let mut prepared = match &self.bundle {
            Some(dir) => bundle::prepare(self, dir, &invocation, limits, &kernel::cache_root())?.0,
            None => prepare(self, &invocation, limits, &kernel::cache_root())?,
        };
        if let Some((link, _)) = &net {
            prepared.config.net = Some(NetConfig {
                tap: link.name.clone(),
                mac: link.guest_mac(),
                guest: link.guest,
                host: link.host,
                prefix: container::net::tap::PREFIX,
            });
            prepared.notes.push(format!(
                "net: virtio-net + tap {} (host {}/{}, guest {})",
                link.name,
                link.host,
                container::net::tap::PREFIX,
                link.guest
            ));
        }
        let out = microvm::run(&prepared.config)?;
        let mut outcome = interpret(&prepared, out)?;
        if prepared.bundle && self.stream_output {
            // Already shown as it ran.
            outcome.stdout.clear();
            outcome.console.clear();
        }
        outcome.notes.extend(net_note);
        if let Some((link, _)) = &mut net {
            outcome.notes.extend(
                link.remove()
                    .into_iter()
                    .map(|e| format!("left behind: {e}")),
            );
        }
        Ok(outcome)
    }
}

/// A tap link and the peer on its host end.
type VmNet = (container::net::TapLink, crate::net::NetPeers);

/// For a `net` probe: the tap link with its peer and the invocation pointed
/// at the peer. When the tap cannot be made (no `CAP_NET_ADMIN`, no
/// `/dev/net/tun`) or the VM runs a bundle, the probe is left out with the
/// reason in a note, or the run refused if it was the only probe.
fn vm_net(
    vm: &VmLinux,
    invocation: &Invocation,
) -> Result<(Invocation, Option<VmNet>, Option<String>), IsolationError> {
    let cfg = match invocation {
        Invocation::Probes(cfg) if cfg.probes.contains(&Probe::Net) => cfg,
        _ => return Ok((invocation.clone(), None, None)),
    };
    let made = match vm.bundle {
        Some(_) => Err("a bundle's VM gets no tap link".to_string()),
        None => crate::net::vm_network()
            .map_err(|e| format!("the guest's tap link could not be made: {e}")),
    };
    match made {
        Ok((link, peers)) => {
            let pointed = if crate::net::wants_peer(cfg) {
                peers.point(cfg)
            } else {
                cfg.clone()
            };
            Ok((Invocation::Probes(pointed), Some((link, peers)), None))
        }
        Err(reason) => match crate::net::without_net(cfg, &reason) {
            Some(Ok(rest)) => Ok((
                Invocation::Probes(rest),
                None,
                Some(format!("net probe not run: {reason}")),
            )),
            _ => Err(IsolationError::Unsupported {
                kind: IsolationKind::VmLinux,
                reason,
            }),
        },
    }
}

/// Resolves the kernel, builds (or reuses) the initramfs and the command line.
pub fn prepare(
    vm: &VmLinux,
    invocation: &Invocation,
    limits: &Limits,
    cache_root: &Path,
) -> Result<Prepared, IsolationError> {
    let (kernel, kernel_source) = kernel::resolve(vm.kernel.as_deref())
        .map_err(|e| IsolationError::BadInput(e.to_string()))?;
    let mut notes = vec![format!(
        "guest kernel: {} ({kernel_source:?})",
        kernel.display()
    )];

    let disk = io_disk(invocation)?;
    if let Some(d) = &disk {
        notes.push(format!("io disk: {} as /dev/vda", d.describe()));
    }

    let init = std::fs::read(
        crate::artifacts::workload_binary().map_err(|e| IsolationError::BadInput(e.to_string()))?,
    )
    .map_err(|source| IsolationError::Io {
        context: "reading the workload binary".into(),
        source,
    })?;
    let (cmdline, busybox, program) = guest_cmdline(vm, invocation, disk.is_some())?;
    let spec = InitramfsSpec {
        init,
        busybox,
        disk_node: disk.is_some(),
    };
    let initramfs = initramfs_cache::get(&cache_root.join("initramfs"), &spec).map_err(|e| {
        IsolationError::Io {
            context: "preparing the initramfs".into(),
            source: std::io::Error::other(e),
        }
    })?;

    let vcpus = limits.cpus.map_or(1, |c| c.ceil().clamp(1.0, 255.0) as u8);
    let config = VmConfig {
        memory_bytes: limits.memory.unwrap_or(DEFAULT_MEMORY),
        vcpus,
        image: GuestImage::Linux(LinuxBoot {
            kernel,
            initramfs: Some(initramfs),
            cmdline,
        }),
        disk: disk.as_ref().map(Disk::path),
        timeout: limits.timeout,
        serial_echo: vm.serial_echo,
        hugepages: false,
        net: None,
    };
    Ok(Prepared {
        config,
        kernel_source,
        notes,
        disk,
        program,
        bundle: false,
    })
}

/// The io probe's disk of `--io-size` bytes, on the host side as for every
/// isolation; `None` for a program or when no io probe was asked for.
fn io_disk(invocation: &Invocation) -> Result<Option<Disk>, IsolationError> {
    Ok(match invocation {
        Invocation::Probes(cfg) => io_request(cfg)
            .map(|(size, target)| prepare_disk(target.as_deref(), size))
            .transpose()?,
        Invocation::Program { .. } => None,
    })
}

/// The kernel command line with init's arguments, busybox when a program
/// runs (it may need a shell), and whether this is a program run.
fn guest_cmdline(
    vm: &VmLinux,
    invocation: &Invocation,
    has_disk: bool,
) -> Result<(String, Option<Busybox>, bool), IsolationError> {
    let mut builder = CmdlineBuilder::new()
        .quiet(vm.quiet)
        .params(&vm.extra_cmdline);
    let (busybox, program) = match invocation {
        Invocation::Probes(cfg) => {
            // The guest sees only its own disk, whatever the host's target was.
            let target = has_disk.then(|| GUEST_DISK.to_string());
            builder = builder.init_args(seen_as(cfg, target).to_args());
            (None, false)
        }
        Invocation::Program { program, args } => {
            // The workload as init runs the program (`exec` mode): it mounts
            // /proc, /sys, /dev and /tmp, reaps orphans and reports the
            // program's status on the exit port, as a container runtime would.
            // No `--` before the program: the kernel would end init's
            // arguments there.
            builder = builder.init_args(
                ["exec", program.as_str()]
                    .into_iter()
                    .map(String::from)
                    .chain(args.iter().cloned()),
            );
            (Some(busybox()?), true)
        }
    };
    let cmdline = builder
        .build()
        .map_err(|e| IsolationError::BadInput(e.to_string()))?;
    Ok((cmdline, busybox, program))
}

/// Busybox and its applet names, for running arbitrary programs.
/// A static busybox binary and its applet names, for the initramfs.
type Busybox = (Vec<u8>, Vec<String>);

fn busybox() -> Result<Busybox, IsolationError> {
    let missing = |why: String| {
        IsolationError::BadInput(format!(
            "running a program in the Linux guest needs a static busybox at {BUSYBOX} ({why}); run `apt-get install busybox-static`"
        ))
    };
    let bin = std::fs::read(BUSYBOX).map_err(|e| missing(e.to_string()))?;
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|e| missing(e.to_string()))?;
    let applets = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    Ok((bin, applets))
}

/// Turns the VMM's outcome into the common [`Outcome`].
pub fn interpret(prepared: &Prepared, out: VmOutcome) -> Result<Outcome, IsolationError> {
    let con = console::split(&out.serial);
    let mut notes = prepared.notes.clone();
    let exit = match (&out.exit, con.init_ended) {
        (VmExit::GuestExit { .. }, _) if prepared.bundle && out.timings.ready.is_none() => {
            Exit::VmStopped {
                detail: format!(
                    "the guest could not start the bundle's process: {}",
                    con.non_kernel.lines().last().unwrap_or("no message")
                ),
            }
        }
        (VmExit::GuestExit { code }, _) => Exit::Exited { code: *code as i32 },
        // PID 1 exiting panics the kernel (`panic=1` then resets): the panic
        // message carries its status.
        (VmExit::Reset, Some(InitEnd::Exited(code))) => Exit::Exited { code },
        (VmExit::Reset, Some(InitEnd::Signaled(signal))) => Exit::Signaled { signal },
        (VmExit::Reset, None) => Exit::VmStopped {
            detail: match &con.panic {
                Some(p) => format!("guest kernel panic: {p}"),
                None => "guest reset without reporting an exit status".into(),
            },
        },
        // `poweroff`/`halt` in the guest: a clean shutdown, as QEMU exits 0.
        (VmExit::PowerOff, Some(InitEnd::Exited(code))) => Exit::Exited { code },
        (VmExit::PowerOff, _) => Exit::Exited { code: 0 },
        (VmExit::Timeout, _) => Exit::Timeout,
        (other, _) => Exit::VmStopped {
            detail: other.explain(),
        },
    };
    if let VmExit::HostLimitation { .. } = out.exit {
        notes
            .push("the guest stopped at a limitation of this host's KVM, not a guest fault".into());
    }

    let stdout = if !out.output.is_empty() {
        out.output.clone()
    } else if prepared.program {
        con.non_kernel.clone().into_bytes()
    } else {
        con.results.clone().into_bytes()
    };
    let results = if prepared.program {
        Vec::new()
    } else {
        parse_results(&stdout)?
    };
    let boot = boot_times(&out.timings, con.init_started);
    let mut console_text = con.kernel_log;
    if !prepared.program && !con.program_output.is_empty() {
        console_text.push_str(&con.program_output);
    }
    Ok(Outcome {
        kind: IsolationKind::VmLinux,
        exit,
        boot,
        results,
        stdout,
        console: console_text.into_bytes(),
        accounting: Accounting {
            overhead_bytes: Some(out.memory.vmm_overhead_bytes),
            guest_touched_bytes: Some(out.memory.guest_touched_bytes),
            ..Accounting::default()
        },
        notes,
    })
}

/// Boot time split on the host's clock: VMM set-up (until the first
/// `KVM_RUN`), kernel (until init wrote the init port), init (until the
/// ready marker). Without the init marker (a program as PID 1) the kernel
/// share comes from the kernel's own log (`Run /init as init process`, on
/// its clock, which starts shortly after entry).
fn boot_times(timings: &VmTimings, init_logged: Option<Duration>) -> Option<BootTimes> {
    let ready = timings.ready?;
    let setup = timings.setup;
    let (kernel, init) = match timings.init {
        Some(at) => (
            Some(at.saturating_sub(setup)),
            Some(ready.saturating_sub(at)),
        ),
        None => (
            init_logged.map(|k| k.min(ready.saturating_sub(setup))),
            None,
        ),
    };
    Some(BootTimes {
        total: ready,
        setup: Some(setup),
        kernel,
        init,
    })
}

#[cfg(test)]
mod tests;
