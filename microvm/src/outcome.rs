//! What a run produced: [`VmOutcome`].

use std::time::Duration;

/// The result of one VM run.
#[derive(Debug, Clone)]
pub struct VmOutcome {
    /// How the guest stopped.
    pub exit: VmExit,
    /// Everything the guest wrote to the serial console.
    pub serial: Vec<u8>,
    /// The isolab device's output stream (port 0x502).
    pub output: Vec<u8>,
    /// Where the time went.
    pub timings: VmTimings,
    /// Memory used by the VMM and the guest.
    pub memory: VmMemory,
    /// Exit counters.
    pub stats: ExitStats,
}

/// How the guest stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmExit {
    /// The guest wrote its exit status to port 0x501.
    GuestExit {
        /// The value written.
        code: u32,
    },
    /// The guest asked for a reset (i8042 `0xfe` on port 0x64).
    Reset,
    /// The guest kernel powered off (or halted for good). With no ACPI
    /// there is no power-off register; the kernel's last console line
    /// (`reboot: Power down`, `reboot: System halted`) is the signal.
    PowerOff,
    /// Triple fault (`KVM_EXIT_SHUTDOWN`).
    Shutdown,
    /// The guest halted with nothing to wake it (no interrupt controller).
    Halted,
    /// KVM could not go on emulating the guest.
    InternalError {
        /// `kvm_run.internal.suberror`.
        suberror: u32,
        /// What KVM reported, readably.
        detail: String,
    },
    /// The hardware refused to enter the guest.
    FailEntry {
        /// `hardware_entry_failure_reason`.
        reason: u64,
    },
    /// The wall-clock timeout stopped the guest.
    Timeout,
    /// The host's KVM cannot do what the guest needed (e.g. a
    /// software-assisted KVM cannot deliver exceptions to a 64-bit guest).
    HostLimitation {
        /// What happened and why it is the host, not the guest.
        detail: String,
    },
    /// A KVM exit this VMM does not handle.
    Unhandled {
        /// What KVM reported.
        detail: String,
    },
}

impl VmExit {
    /// On a software-assisted KVM an internal error is the host's limit (it
    /// cannot deliver exceptions or interrupts to a 64-bit guest), not a
    /// guest or VMM fault: reclassify it as [`VmExit::HostLimitation`].
    pub fn classify(self, kind: hostcaps::kvm::KvmKind) -> VmExit {
        match (self, kind) {
            (VmExit::InternalError { detail, .. }, hostcaps::kvm::KvmKind::SoftwareAssisted) => {
                VmExit::HostLimitation {
                    detail: format!(
                        "{detail}; this host's KVM is software-assisted (no VT-x/AMD-V underneath) and cannot \
                         deliver exceptions or interrupts to a 64-bit guest, which hardware KVM can"
                    ),
                }
            }
            (exit, _) => exit,
        }
    }

    /// A one-line explanation for users.
    pub fn explain(&self) -> String {
        match self {
            VmExit::GuestExit { code } => format!("guest exited with status {code}"),
            VmExit::Reset => "guest requested a reset (i8042)".into(),
            VmExit::PowerOff => "guest powered off".into(),
            VmExit::Shutdown => "guest triple-faulted (KVM_EXIT_SHUTDOWN)".into(),
            VmExit::Halted => "guest halted with interrupts disabled".into(),
            VmExit::InternalError { suberror, detail } => {
                format!("KVM internal error (suberror {suberror}): {detail}")
            }
            VmExit::FailEntry { reason } => format!("VM entry failed (reason {reason:#x})"),
            VmExit::Timeout => "stopped by the timeout".into(),
            VmExit::HostLimitation { detail } => format!("host limitation: {detail}"),
            VmExit::Unhandled { detail } => format!("unhandled VM exit: {detail}"),
        }
    }
}

/// Durations, all measured from the start of [`crate::run`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VmTimings {
    /// Until just before the first `KVM_RUN`: VMM set-up.
    pub setup: Duration,
    /// Until the guest's first write to the ready port 0x500.
    pub ready: Option<Duration>,
    /// Until the guest's init first wrote the init port 0x505 (Linux guest).
    pub init: Option<Duration>,
    /// Until the guest stopped.
    pub total: Duration,
}

/// Memory accounting, taken at the end of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmMemory {
    /// Resident bytes of this process's mappings other than guest RAM
    /// (from `/proc/self/smaps`).
    pub vmm_overhead_bytes: u64,
    /// Resident bytes of guest RAM (`mincore` over the guest mapping).
    pub guest_touched_bytes: u64,
}

/// Exit counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitStats {
    /// Port-I/O exits.
    pub io_exits: u64,
    /// MMIO exits.
    pub mmio_exits: u64,
    /// Accesses to ports or addresses no device claims, or that a device
    /// refused (e.g. garbage written to the isolab device).
    pub stray_io: u64,
    /// `hlt` exits.
    pub hlt_exits: u64,
    /// All `KVM_RUN` returns, including interrupted ones.
    pub total_exits: u64,
    /// Virtio-blk requests completed.
    pub blk_requests: u64,
    /// Virtio-blk requests refused as malformed.
    pub blk_bad_requests: u64,
    /// Guest output bytes dropped because a capture buffer was full.
    pub dropped_output: u64,
    /// How the virtio-blk device reached its backing file; `None` without a disk.
    pub disk_mode: Option<DiskMode>,
    /// Virtio-blk bytes moved with `O_DIRECT` (host page cache bypassed).
    pub blk_direct_bytes: u64,
    /// Virtio-blk bytes moved through the host page cache (all of them in
    /// [`DiskMode::Buffered`]; unaligned pieces in [`DiskMode::Direct`]).
    pub blk_buffered_bytes: u64,
    /// Virtio-net frames sent to the tap.
    pub net_tx_frames: u64,
    /// Virtio-net frames delivered to the guest.
    pub net_rx_frames: u64,
    /// Virtio-net chains refused as malformed.
    pub net_bad_chains: u64,
    /// Virtio-net frames dropped (tap full, guest buffer too small).
    pub net_dropped: u64,
}

/// How the virtio-blk device reaches its backing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskMode {
    /// The file is also open with `O_DIRECT`: transfers whose guest buffer,
    /// length and offset are aligned bypass the host page cache; the others
    /// go through a second, buffered descriptor. (tmpfs accepts `O_DIRECT`
    /// since Linux 6.6, but its files live in memory anyway, as they do for
    /// a native `O_DIRECT` workload on the same tmpfs.)
    Direct,
    /// The filesystem refused `O_DIRECT` (`EINVAL`, e.g. tmpfs before Linux
    /// 6.6): all I/O goes through the host page cache.
    Buffered,
}

impl DiskMode {
    /// `direct` or `buffered`, as in the result schema's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskMode::Direct => "direct",
            DiskMode::Buffered => "buffered",
        }
    }
}
