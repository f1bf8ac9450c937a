//! The isolab benchmark harness: the matrix of rounds over every isolation
//! (from the `isolation` crate) and the peers, its statistics, the results
//! schema written to `results.json`, and soak runs. The report is drawn from
//! these results by the `report` crate.

pub mod fio;
pub mod frontend;
pub mod matrix;
pub mod peers;
pub mod results;
pub mod soak;
pub mod stats;
