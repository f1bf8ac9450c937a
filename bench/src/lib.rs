//! The isolab harness: isolations, capability report, benchmark matrix,
//! statistics, results and reports.

pub mod artifacts;
pub mod clean;
pub mod compare;
pub mod doctor;
pub mod isolation;
pub mod kernel;
pub mod matrix;
pub mod peers;
pub mod report;
pub mod results;
pub mod soak;
pub mod stats;
