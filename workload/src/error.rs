//! Why a probe run failed.

use alloc::string::String;

use crate::args::ArgError;
use crate::platform::{BlockError, NetError};

/// Everything that can stop a workload run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The command line is wrong.
    #[error(transparent)]
    Args(#[from] ArgError),
    /// The `io` probe's target failed.
    #[error("io probe: {0}")]
    Block(#[from] BlockError),
    /// The `net` probe failed.
    #[error("net probe: {0}")]
    Net(#[from] NetError),
    /// A buffer of the requested size could not be allocated.
    #[error("{probe} probe: cannot allocate {bytes} bytes for {what} (lower the size option)")]
    OutOfMemory {
        /// Probe that asked.
        probe: &'static str,
        /// What the memory was for.
        what: &'static str,
        /// Bytes requested.
        bytes: u64,
    },
    /// A deterministic computation gave different answers in one run: the
    /// machine (or its emulation) is not computing correctly.
    #[error("{probe} probe: result changed between repetitions ({first} then {later})")]
    Unstable {
        /// Probe.
        probe: &'static str,
        /// First repetition's result.
        first: String,
        /// A later repetition's different result.
        later: String,
    },
}
