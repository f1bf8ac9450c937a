//! Progress of a long job (the benchmark matrix, a guest-kernel build),
//! reported to whoever shows it. Libraries never draw: the CLI implements
//! [`Progress`] with a terminal bar.

/// Receives the progress of a long job. Every method has an empty default,
/// so a receiver implements only what it shows.
pub trait Progress {
    /// The job starts; it has `total` steps, when that is known.
    fn start(&self, total: Option<u64>) {
        let _ = total;
    }

    /// One step is done; `message` says what runs now.
    fn step(&self, message: &str) {
        let _ = message;
    }

    /// What runs now, without a step done.
    fn message(&self, message: &str) {
        let _ = message;
    }

    /// The job is over.
    fn finish(&self) {}
}

/// Shows nothing (tests, `--json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
