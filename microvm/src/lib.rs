//! A small KVM virtual machine monitor on the rust-vmm crates.

/// Errors of the VMM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until the monitor lands.
    #[error("the micro VM is not built yet")]
    NotBuilt,
}
