//! The virtual machine's state: guest memory, the VM, its vCPUs.
//!
//! These types are deliberately thin over `kvm-ioctls` so a reader can see
//! each KVM step; `tests/real_mode.rs` drives them by hand.

pub mod kick;
pub mod memory;
pub mod threads;
pub mod vcpu;
pub mod vm;
