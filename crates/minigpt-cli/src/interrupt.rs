//! Ctrl-C (SIGINT) and SIGTERM as a request to stop cleanly: long commands poll
//! [`requested`] between units of work, save what they have and return [`Interrupted`], which
//! `main` turns into exit 130. A second signal exits at once. The handlers are `signal-hook`'s.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use signal_hook::consts::{SIGINT, SIGTERM};

static REQUESTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// A command stopped by Ctrl-C or SIGTERM after saving its work. `main` prints the note (when
/// there is one) and exits with [`EXIT_INTERRUPTED`].
#[derive(Debug)]
pub struct Interrupted(pub &'static str);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Routes SIGINT and SIGTERM to [`requested`] from now on.
pub fn install() -> std::io::Result<()> {
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal: a second signal
        // (the flag already set) exits at once.
        signal_hook::flag::register_conditional_shutdown(
            sig,
            i32::from(EXIT_INTERRUPTED),
            Arc::clone(&REQUESTED),
        )?;
        signal_hook::flag::register(sig, Arc::clone(&REQUESTED))?;
    }
    // Say at once that the signal was heard: the work in flight (a batch, a training step)
    // may take a while. A thread polls the flag, since a signal handler may not print.
    std::thread::spawn(|| {
        while !requested() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    Ok(())
}

/// The flag [`requested`] reads, for code that polls it without this module (the decoding
/// loop checks it before every step).
pub fn flag() -> Arc<AtomicBool> {
    Arc::clone(&REQUESTED)
}

/// True once Ctrl-C (or SIGTERM) arrived. The first call that sees it says so on stderr (the
/// polling thread within 50 ms, or the command's own check if that comes first).
pub fn requested() -> bool {
    static SAID: std::sync::Once = std::sync::Once::new();
    let on = REQUESTED.load(Ordering::SeqCst);
    if on {
        SAID.call_once(|| {
            eprintln!(
                "stopping: finishing the work in flight and saving it (Ctrl-C again stops at once)"
            );
        });
    }
    on
}
