//! The Linux platform (placeholder until the next commit).
