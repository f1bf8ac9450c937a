//! The terminal's progress bar: the one place isolab draws progress. The
//! libraries report through [`isolation::progress::Progress`].

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use isolation::progress::Progress;

/// A bar with an ETA on stderr (hidden when stderr is not a terminal), or a
/// spinner until the job says how many steps it has.
#[derive(Debug, Clone)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar on stderr; a spinner until [`Progress::start`] gives a length.
    pub fn stderr() -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(bar)
    }
}

impl Progress for Bar {
    fn start(&self, total: Option<u64>) {
        if let Some(total) = total {
            self.0.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, ETA {eta}  {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            self.0.set_length(total);
        }
        self.0.set_position(0);
    }

    fn step(&self, message: &str) {
        self.0.set_message(message.to_string());
        self.0.inc(1);
    }

    fn message(&self, message: &str) {
        self.0.set_message(message.to_string());
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
