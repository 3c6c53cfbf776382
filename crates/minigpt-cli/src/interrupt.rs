//! Ctrl-C (SIGINT) and SIGTERM as a request to stop cleanly: long commands poll
//! [`requested`] between units of work, save what they have and exit 130. A second signal
//! exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: i32 = 130;

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap and `_exit`.
    if REQUESTED.swap(true, Ordering::SeqCst) {
        #[allow(unsafe_code)]
        // SAFETY: `_exit` is async-signal-safe.
        unsafe {
            libc::_exit(EXIT_INTERRUPTED)
        };
    }
}

/// Routes SIGINT and SIGTERM to [`requested`] from now on.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        #[allow(unsafe_code)]
        // SAFETY: the handler only touches an atomic and calls `_exit`, both allowed in a
        // signal handler; `signal` itself has no other preconditions.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
}

/// True once Ctrl-C (or SIGTERM) arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
