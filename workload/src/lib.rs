//! The isolab workload: measurement kernels shared by every platform.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod schema;
