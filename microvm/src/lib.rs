//! A small KVM virtual machine monitor on the rust-vmm crates.

pub mod boot;

/// Errors of the VMM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading a Linux guest failed.
    #[error(transparent)]
    Linux(#[from] boot::linux::LinuxError),
}
