//! x86-64: where things sit in guest memory, and the CPU state a guest is
//! entered with.

pub mod cpuid;
pub mod gdt;
pub mod layout;
pub mod mptable;
pub mod paging;
pub mod regs;
