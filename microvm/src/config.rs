//! What to run: the [`VmConfig`] given to [`crate::run`].

use std::path::PathBuf;
use std::time::Duration;

use crate::boot;

/// A VM to run.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Guest RAM in bytes (one region at GPA 0, below the MMIO hole).
    pub memory_bytes: u64,
    /// Number of vCPUs (the tiny guest uses exactly one).
    pub vcpus: u8,
    /// The guest to boot.
    pub image: GuestImage,
    /// Host file backing the virtio-blk device, if any.
    pub disk: Option<PathBuf>,
    /// Wall-clock limit; the guest is stopped and [`crate::VmExit::Timeout`] reported.
    pub timeout: Duration,
    /// Copy the guest's serial output to this process's stdout as it arrives.
    pub serial_echo: bool,
    /// Back guest RAM with transparent huge pages where the host allows it.
    pub hugepages: bool,
}

/// The guest image.
#[derive(Debug, Clone)]
pub enum GuestImage {
    /// The freestanding tiny guest: an ELF entered at CPL 3 in long mode.
    Tiny {
        /// The ELF file.
        elf: PathBuf,
        /// Workload arguments, passed through `TinyBootInfo`.
        cmdline: String,
    },
    /// A Linux kernel (+ initramfs) on the 64-bit boot protocol.
    Linux(boot::linux::LinuxBoot),
}

impl VmConfig {
    /// A tiny-guest configuration with the defaults (128 MiB, one vCPU, 30 s).
    pub fn tiny(elf: impl Into<PathBuf>, cmdline: impl Into<String>) -> VmConfig {
        VmConfig {
            memory_bytes: 128 << 20,
            vcpus: 1,
            image: GuestImage::Tiny {
                elf: elf.into(),
                cmdline: cmdline.into(),
            },
            disk: None,
            timeout: Duration::from_secs(30),
            serial_echo: false,
            hugepages: false,
        }
    }
}
