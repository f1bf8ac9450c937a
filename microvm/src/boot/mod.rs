//! Loading guest images into guest memory.
//!
//! `linux` and `initramfs` are the Linux-guest path; the tiny-guest loader
//! sits beside them.

pub mod initramfs;
pub mod linux;
