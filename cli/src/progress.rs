//! A progress bar on stderr for reads that take long: shown only when stderr is a terminal and
//! only once the work has taken more than a second, so quick runs and pipelines never see it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before its bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Progress over a known number of bytes.
pub struct ByteProgress {
    total: u64,
    started: Instant,
    /// Whether a bar may be shown at all (stderr is a terminal).
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl ByteProgress {
    /// Progress over `total` bytes.
    pub fn new(total: u64) -> ByteProgress {
        ByteProgress { total, started: Instant::now(), enabled: std::io::stderr().is_terminal(), bar: None }
    }

    /// `done` of the total bytes are processed.
    pub fn set(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() >= SHOW_AFTER {
            let bar = ProgressBar::with_draw_target(Some(self.total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("sigtrace: reading {bar:30} {binary_bytes}/{binary_total_bytes} ({eta} left)") {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done.min(self.total));
        }
    }
}

impl Drop for ByteProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
