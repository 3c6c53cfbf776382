//! The engine's threads: the caller and `threads - 1` helpers that spin between parallel
//! loops instead of sleeping, the way llama.cpp's workers wait at a barrier.
//!
//! A batch-1 decode step is ~60 short parallel loops (49 matrix products of 0.1–6 ms, the
//! attention heads, the norms). On rayon's pool the idle worker went to sleep between them and
//! was woken by a futex call for the next, a context switch per loop (PERFORMANCE.md, "Thread
//! team"). Here an idle helper spins for up to [`SPIN`] before parking, which covers the gaps
//! inside a step and between steps.
//!
//! One caller at a time uses the team; a second concurrent caller (or a loop started from
//! inside a loop) runs its loop alone on its own thread instead of waiting.

// Unsafe code: one raw pointer to a borrowed closure, shared with the helpers while the
// caller waits, and raw element pointers for `for_each_mut`.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// A loop body with its lifetime erased (see [`Team::run`]).
type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// Bumped for every loop; helpers wait for it to change.
    epoch: AtomicUsize,
    /// The current loop: its body (valid while `pending > 0`) and item count.
    job: Mutex<Option<(SendJob, usize)>>,
    /// Next unclaimed item.
    next: AtomicUsize,
    /// Helpers that have not finished the current loop.
    pending: AtomicUsize,
    /// A helper's body panicked during the current loop.
    panicked: AtomicBool,
    /// Parked helpers wait here for `epoch` to change.
    park: Mutex<()>,
    wake: Condvar,
    parked: AtomicUsize,
}

#[derive(Clone, Copy)]
struct SendJob(Job);
// SAFETY: the body is `Sync` (calling it from several threads at once is sound), and
// `Team::run` keeps it alive until every helper is done with it.
unsafe impl Send for SendJob {}

/// The process's team (sized by rayon's thread count, so `RAYON_NUM_THREADS` applies).
pub struct Team {
    shared: Arc<Shared>,
    helpers: usize,
    caller: Mutex<()>,
}

/// The team, started on first use.
pub fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| Team::new(rayon::current_num_threads()))
}

impl Team {
    fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            job: Mutex::new(None),
            next: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            park: Mutex::new(()),
            wake: Condvar::new(),
            parked: AtomicUsize::new(0),
        });
        let helpers = threads.saturating_sub(1);
        for i in 0..helpers {
            let s = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("minigpt-helper-{i}"))
                .spawn(move || helper(&s))
                .expect("could not start a helper thread");
        }
        Self {
            shared,
            helpers,
            caller: Mutex::new(()),
        }
    }

    /// Threads that run a loop (the caller included).
    pub fn threads(&self) -> usize {
        self.helpers + 1
    }

    /// Calls `f(i)` for every `i < n`, on the caller and the helpers; returns when all are
    /// done. Items are claimed one at a time, so uneven items balance.
    pub fn run(&self, n: usize, f: impl Fn(usize) + Sync) {
        let guard = match self.caller.try_lock() {
            Ok(g) if self.helpers > 0 && n > 1 => g,
            _ => {
                (0..n).for_each(f);
                return;
            }
        };
        let s = &*self.shared;
        let body: &(dyn Fn(usize) + Sync) = &f;
        // SAFETY: only the lifetime is erased; `body` outlives every use, because this
        // function returns only after `pending` is back to zero (no helper holds it then).
        let job: Job = unsafe { std::mem::transmute::<_, Job>(body) };
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = Some((SendJob(job), n));
        s.next.store(0, Ordering::Relaxed);
        s.pending.store(self.helpers, Ordering::Relaxed);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        if s.parked.load(Ordering::SeqCst) > 0 {
            let _p = s.park.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        // If `f` panics here, helpers may still hold it: wait for them before unwinding.
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| claim(s, &f)));
        let mut spins = 0u32;
        while s.pending.load(Ordering::Acquire) > 0 {
            pause(&mut spins);
        }
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        drop(guard);
        if let Err(e) = mine {
            std::panic::resume_unwind(e);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a parallel loop's body panicked on a helper thread");
        }
    }

    /// Calls `f` on every element of `items`, each once, on the team.
    pub fn for_each_mut<T: Send>(&self, items: &mut [T], f: impl Fn(&mut T) + Sync) {
        let base = Ptr(items.as_mut_ptr());
        let n = items.len();
        self.run(n, move |i| {
            // SAFETY: `i < n`, and `run` hands out every index exactly once, so no two calls
            // get the same element; `items` is borrowed mutably for the whole loop.
            f(unsafe { &mut *base.at(i) })
        });
    }
}

/// Claims and runs items until none are left.
fn claim(s: &Shared, f: &(impl Fn(usize) + Sync + ?Sized)) {
    let n = s
        .job
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map_or(0, |(_, n)| n);
    loop {
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        f(i);
    }
}

/// One step of a spin-wait: a CPU pause, and every 256th step a yield to the scheduler, so a
/// waiter gives its core to a thread it waits for when other processes crowd the machine
/// (pure spinning was costly under a parallel build: PERFORMANCE.md, "Thread team").
fn pause(spins: &mut u32) {
    *spins = spins.wrapping_add(1);
    if spins.is_multiple_of(256) {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

fn helper(s: &Shared) {
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let e = s.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            pause(&mut spins);
            // The clock only every 64 pauses.
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                continue;
            }
            let mut g = s.park.lock().unwrap_or_else(|e| e.into_inner());
            // SeqCst with the caller's epoch bump and `parked` check: either it sees this
            // helper parked and notifies, or this check sees the new epoch.
            s.parked.fetch_add(1, Ordering::SeqCst);
            while s.epoch.load(Ordering::SeqCst) == seen {
                g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            s.parked.fetch_sub(1, Ordering::SeqCst);
        }
        let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((SendJob(job), _)) = job {
            // SAFETY: the caller keeps the body alive until `pending` reaches zero, which
            // happens only after this call returns.
            let f = unsafe { &*job };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| claim(s, f))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        s.pending.fetch_sub(1, Ordering::Release);
    }
}

/// A raw element pointer shared by the threads of [`Team::for_each_mut`].
struct Ptr<T>(*mut T);
impl<T> Clone for Ptr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ptr<T> {}
// SAFETY: each thread dereferences distinct elements (see `for_each_mut`), so sending the
// pointer sends at most exclusive access to `T: Send` values.
unsafe impl<T: Send> Send for Ptr<T> {}
// SAFETY: as above: sharing the pointer never gives two threads the same element.
unsafe impl<T: Send> Sync for Ptr<T> {}

impl<T> Ptr<T> {
    /// Element `i` (a method, so closures capture the whole wrapper).
    fn at(self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_and_mutations_land() {
        let t = Team::new(3);
        for n in [0usize, 1, 2, 7, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            t.run(n, |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "n = {n}"
            );
            let mut v: Vec<usize> = (0..n).collect();
            t.for_each_mut(&mut v, |x| *x *= 3);
            assert!(v.iter().enumerate().all(|(i, &x)| x == 3 * i));
        }
    }

    #[test]
    fn a_loop_inside_a_loop_runs_alone_instead_of_waiting() {
        let t = Team::new(2);
        let total = AtomicUsize::new(0);
        t.run(4, |_| {
            t.run(5, |_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 20);
    }

    #[test]
    fn a_panic_in_a_body_reaches_the_caller_and_the_team_still_works() {
        let t = Team::new(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.run(64, |i| assert!(i != 40, "boom"));
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        t.run(64, |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 64);
    }
}
