//! Architecture-specific guest state. Only x86-64 is supported.

pub mod x86_64;
