//! [`Tracker`]: `hf-hub`'s download progress, shown as an indicatif bar (bytes, rate, ETA) on a
//! terminal or as one line per file in a log, and the file's expected size kept for the check
//! after the download.

use std::cell::Cell;
use std::rc::Rc;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// One file's download progress.
pub(crate) struct Tracker {
    label: String,
    bar: Option<ProgressBar>,
    /// The size the server announced (set by `init`).
    expected: Rc<Cell<Option<u64>>>,
    announced: bool,
}

impl Tracker {
    /// A tracker for `label` (`repo/file`); `bar` draws a progress bar, else one line is
    /// printed when the transfer starts. The returned cell receives the announced size.
    pub(crate) fn new(label: String, bar: bool) -> (Self, Rc<Cell<Option<u64>>>) {
        let expected = Rc::new(Cell::new(None));
        let bar = bar.then(|| {
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            ProgressBar::new(0)
                .with_style(style)
                .with_message(label.clone())
        });
        let tracker = Self {
            label,
            bar,
            expected: Rc::clone(&expected),
            announced: false,
        };
        (tracker, expected)
    }
}

impl hf_hub::api::Progress for Tracker {
    fn init(&mut self, size: usize, _filename: &str) {
        self.expected.set(Some(size as u64));
        match &self.bar {
            Some(bar) => {
                bar.set_length(size as u64);
                bar.set_position(0);
            }
            None if !self.announced => {
                eprintln!("downloading {} ({})", self.label, HumanBytes(size as u64));
            }
            None => {}
        }
        self.announced = true;
    }

    fn update(&mut self, size: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(size as u64);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
