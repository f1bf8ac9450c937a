//! The isolab workload: measurement kernels shared by every platform.
//!
//! The core (`no_std` + `alloc`) holds the kernels ([`kernels`]), the result
//! schema ([`schema`]), argument parsing ([`args`]) and the [`Platform`] trait.
//! With the `std` feature (default) the [`linux`] platform and the static
//! `isolab-workload` binary are built too; the tiny guest uses the core with
//! its own bare platform.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod args;
pub mod cpuid;
pub mod error;
pub mod kernels;
#[cfg(feature = "std")]
pub mod linux;
pub mod platform;
pub mod report;
pub mod runner;
pub mod schema;
pub mod sha256;
pub mod stats;

pub use args::{Command, Config, Probe};
pub use error::WorkloadError;
pub use platform::{BLOCK_ALIGN, BlockDevice, BlockError, Platform};
pub use runner::run;
