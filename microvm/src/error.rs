//! Why a VM could not be started. A guest that misbehaves once running is not
//! an error: it is a [`crate::VmExit`].

use std::path::PathBuf;

/// Errors of the VMM: bad input, or the host refusing something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading a Linux guest failed.
    #[error(transparent)]
    Linux(#[from] crate::boot::linux::LinuxError),
    /// `memory_bytes` was 0.
    #[error("guest memory size is 0; give the VM some memory (e.g. 128M)")]
    MemoryZero,
    /// `memory_bytes` is not a whole number of 4 KiB pages.
    #[error("guest memory size {requested} bytes is not a multiple of 4 KiB")]
    MemoryUnaligned {
        /// Requested bytes.
        requested: u64,
    },
    /// More memory than the host has available.
    #[error(
        "guest memory {requested} bytes is more than this host can give (MemAvailable in /proc/meminfo: {available} bytes)"
    )]
    MemoryTooLarge {
        /// Requested bytes.
        requested: u64,
        /// `MemAvailable` of the host.
        available: u64,
    },
    /// Guest RAM would overlap the MMIO hole at 0xd000_0000.
    #[error(
        "guest memory {requested} bytes overlaps the MMIO window at {limit:#x}; the guest ABI allows at most {limit} bytes"
    )]
    MemoryAboveMmioHole {
        /// Requested bytes.
        requested: u64,
        /// The largest allowed size.
        limit: u64,
    },
    /// Too little memory for the image, its boot data and its stack.
    #[error("guest memory {requested} bytes is too small: the image needs at least {needed} bytes")]
    MemoryTooSmall {
        /// Requested bytes.
        requested: u64,
        /// Minimum bytes for this image.
        needed: u64,
    },
    /// `vcpus` out of range.
    #[error("vCPU count {requested} is out of range (1..={max})")]
    VcpuCount {
        /// Requested vCPUs.
        requested: u8,
        /// The most this VMM supports.
        max: u8,
    },
    /// The tiny guest runs on one vCPU only.
    #[error("the tiny guest runs on exactly one vCPU, {requested} requested")]
    TinyVcpus {
        /// Requested vCPUs.
        requested: u8,
    },
    /// The guest image could not be read.
    #[error("cannot read guest image {path}: {source}")]
    ImageUnreadable {
        /// The image path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The guest image is not a 64-bit little-endian x86-64 ELF executable.
    #[error("guest image {path} is not an x86-64 ELF executable: {reason}")]
    ImageNotElf {
        /// The image path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `PT_LOAD` segment does not fit guest memory or the file.
    #[error("guest image {path}: {reason}")]
    ImageSegment {
        /// The image path.
        path: PathBuf,
        /// Which segment and why.
        reason: String,
    },
    /// The tiny guest's command line does not fit its slot.
    #[error("tiny guest command line is {len} bytes, at most {max} fit")]
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The slot size.
        max: usize,
    },
    /// The disk image could not be opened for reading and writing.
    #[error("cannot open disk image {path}: {source}")]
    DiskUnreadable {
        /// The disk path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The tap interface for virtio-net could not be attached.
    #[error("cannot attach to tap interface {name}: {source}")]
    TapUnavailable {
        /// The interface name.
        name: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A network device was asked for a guest that has no driver for it.
    #[error("the tiny guest has no virtio-net driver; a network device needs the Linux guest")]
    NetNeedsLinux,
    /// A KVM ioctl failed (including opening `/dev/kvm`).
    #[error("KVM {op} failed: {source}")]
    Kvm {
        /// What we asked KVM to do.
        op: &'static str,
        /// The error KVM returned.
        source: kvm_ioctls::Error,
    },
    /// KVM did not accept a model-specific register the boot state needs.
    #[error("KVM refused to set MSR {index:#x} for the boot state")]
    MsrRefused {
        /// The MSR.
        index: u32,
    },
    /// Guest memory could not be created or written.
    #[error("guest memory: {0}")]
    GuestMemory(String),
    /// A host resource (thread, eventfd, signal handler) could not be set up.
    #[error("host resource {what}: {source}")]
    Host {
        /// Which resource.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps a KVM ioctl error with the operation's name.
    pub(crate) fn kvm(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
        move |source| Error::Kvm { op, source }
    }
}
