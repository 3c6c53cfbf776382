//! [`Settling`]: moving a model's mapped weights into huge-page memory on a background thread,
//! once, after its first token (so loading never waits for it).

use std::sync::{Mutex, Once};
use std::thread::JoinHandle;

use crate::buffer::Settler;

/// A model's one background move of its mapped weights into huge pages.
pub(crate) struct Settling {
    started: Once,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Default for Settling {
    fn default() -> Self {
        Self {
            started: Once::new(),
            thread: Mutex::new(None),
        }
    }
}

impl Settling {
    /// Starts settling the buffers `settlers` gives, once per model, on a thread of its own
    /// (no thread when there is nothing to settle).
    pub(crate) fn start(&self, settlers: impl FnOnce() -> Vec<Settler>) {
        self.started.call_once(|| {
            let settlers = settlers();
            if settlers.is_empty() {
                return;
            }
            let spawned = std::thread::Builder::new()
                .name("minigpt-settle".into())
                .spawn(move || {
                    for s in &settlers {
                        if !s.settle() {
                            return; // the model was dropped
                        }
                    }
                });
            // A thread that cannot start leaves the weights mapped: slower, still correct.
            if let Ok(handle) = spawned {
                *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
            }
        });
    }

    /// Waits until the background move (if one was started) has finished.
    pub(crate) fn wait(&self) {
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            // A panic there left some weights mapped, which reads the same values.
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Settling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Settling")
    }
}
