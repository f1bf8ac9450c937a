//! Loading guest images into guest memory.
//!
//! `linux` and `initramfs` are the Linux-guest path; `tiny` loads the
//! freestanding tiny guest.

pub mod initramfs;
pub mod linux;
pub mod tiny;
