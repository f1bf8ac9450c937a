//! cpio "newc" initramfs archives built in memory.
