//! A small KVM virtual machine monitor on the rust-vmm crates.
//!
//! [`run`] is the one entry point: it builds a VM from a [`VmConfig`], runs
//! it to completion (or to the timeout) and returns a [`VmOutcome`]. The
//! pieces are split the way a reader meets them:
//!
//! - [`vstate`]: guest memory, the VM and its vCPUs, the run loop;
//! - [`arch`]: the x86-64 state a guest is entered with (GDT, page tables,
//!   registers, CPUID, MP table);
//! - [`devices`]: port-I/O and MMIO buses, serial, i8042, the isolab device,
//!   virtio-mmio with virtio-blk;
//! - [`boot`]: loading the tiny guest (ELF) or a Linux kernel;
//! - [`builder`]: wires it all together;
//! - [`probe`]: functional probes of what this host's KVM can do.

#![warn(missing_docs)]

pub mod accounting;
pub mod arch;
pub mod boot;
pub mod builder;
pub mod config;
pub mod devices;
pub mod error;
pub mod outcome;
pub mod probe;

pub mod vstate;

pub use builder::run;
pub use config::{GuestImage, NetConfig, VmConfig};
pub use error::Error;
pub use outcome::{ExitStats, VmExit, VmMemory, VmOutcome, VmTimings};
