//! Linux 64-bit boot protocol: loads `vmlinux` (ELF) or `bzImage` with
//! `linux-loader`, writes the zero page (e820, command line, initramfs).
//!
//! Contract with the VM builder: [`load`] puts everything in guest memory and
//! returns where to enter; the builder then sets up the vCPU in 64-bit mode at
//! CPL 0 with `rsi` = zero page address.

use std::path::PathBuf;

use vm_memory::{GuestAddress, GuestMemoryMmap};

/// What to boot.
#[derive(Debug, Clone)]
pub struct LinuxBoot {
    /// `vmlinux` ELF or `bzImage`.
    pub kernel: PathBuf,
    /// A cpio newc archive, if any.
    pub initramfs: Option<Vec<u8>>,
    /// Kernel command line.
    pub cmdline: String,
}

/// Where the loaded kernel is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxEntry {
    /// 64-bit entry point.
    pub entry: GuestAddress,
    /// The zero page (boot_params), passed in `rsi`.
    pub zero_page: GuestAddress,
}

/// Errors loading a Linux guest.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// Placeholder until the loader lands.
    #[error("the Linux loader is not built yet")]
    NotBuilt,
}

/// Loads the kernel, initramfs and command line into `mem`.
pub fn load(_mem: &GuestMemoryMmap, _boot: &LinuxBoot) -> Result<LinuxEntry, LinuxError> {
    Err(LinuxError::NotBuilt)
}
