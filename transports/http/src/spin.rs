//! Spinning before sleep: a worker that has just been busy keeps polling for I/O for a short
//! budget instead of sleeping in `epoll_wait`.
//!
//! A proxied request crosses two extra socket hops, and each hop to a sleeping thread costs
//! a wake-up: on a virtual machine an inter-processor interrupt and a halted vCPU coming
//! back, measured here at 30–40 µs each, more than the gateway's own work on the request.
//! While a worker spins, the client's request and the upstream's answer are found by a
//! zero-timeout poll instead, so at low concurrency the gateway adds its processing time
//! and little else. The cost is CPU: at most one worker spins at a time (a shared token),
//! only for `budget` after a request last started or finished on it, it yields the core to
//! any other runnable thread between polls, and an idle gateway spins not at all.
//! `-spin-us 0` turns it off.
//!
//! Spinning only pays while the worker has at most one request in flight: with more, events
//! arrive often enough on their own. Measured with 64 concurrent clients against a static
//! upstream on a shared 2-core machine, an unconditional, impolite spinner cost 15 % of the
//! throughput (39–44 instead of 34 µs of gateway CPU per request); this one costs nothing
//! measurable there and keeps the gain at concurrency 1.
//!
//! The spinner is an ordinary task that yields in a loop: a yielding task makes tokio's
//! single-threaded scheduler poll the I/O driver with a zero timeout before running it again,
//! so the runtime's own poller does the spinning and other tasks run as soon as they are
//! ready. The runtime's unpark hook restarts the spinner whenever the thread wakes from a
//! real sleep.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Most requests in flight on a worker for its spinner to keep spinning.
const MAX_IN_FLIGHT: usize = 1;

/// Most wake-ups skipped after spins that found nothing to do (see [`Spinner`]).
const MAX_SKIP: u32 = 256;

thread_local! {
    /// Requests in flight on this worker (its tasks never leave its thread).
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
    /// Requests started plus requests finished on this worker: the spinner's sign of life.
    static ACTIVITY: Cell<u64> = const { Cell::new(0) };
}

/// Counts one request in flight on this worker while it lives.
#[derive(Debug)]
pub struct InFlight(());

impl InFlight {
    /// Starts counting a request.
    pub fn start() -> Self {
        IN_FLIGHT.with(|n| n.set(n.get() + 1));
        ACTIVITY.with(|n| n.set(n.get().wrapping_add(1)));
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
        ACTIVITY.with(|n| n.set(n.get().wrapping_add(1)));
    }
}

fn busy() -> bool {
    IN_FLIGHT.with(Cell::get) > MAX_IN_FLIGHT
}

/// Held by the one worker spinning right now, so spinning never takes more than one core.
#[derive(Debug, Default)]
pub struct SpinToken(AtomicBool);

impl SpinToken {
    fn try_acquire(&self) -> bool {
        !self.0.swap(true, Ordering::Acquire)
    }

    fn release(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One worker's spinner.
///
/// Adaptive: a spin pays only when a request starts or finishes while it runs, after the
/// work that woke the thread (that is the wake-up it saves). A worker woken by something
/// else, e.g. the chunks of its open streams or a slow upstream's answers, would otherwise
/// spin after every wake-up and burn a container's CPU quota for nothing; so after a spin
/// that saw no request activity the spinner sits out the next wake-ups, twice as many each
/// time (up to [`MAX_SKIP`]), and a spin that did see activity halves that.
#[derive(Debug)]
pub struct Spinner {
    budget: Duration,
    token: Arc<SpinToken>,
    woke: Arc<Notify>,
}

impl Spinner {
    /// A spinner that keeps polling for `budget` after the worker was last busy (zero: off).
    pub fn new(budget: Duration, token: Arc<SpinToken>) -> Self {
        Self {
            budget,
            token,
            woke: Arc::new(Notify::new()),
        }
    }

    /// Hooks the worker's runtime so a wake-up from sleep restarts the spinner.
    pub fn install(&self, builder: &mut tokio::runtime::Builder) {
        if self.budget.is_zero() {
            return;
        }
        let woke = self.woke.clone();
        builder.on_thread_unpark(move || woke.notify_one());
    }

    /// Starts the spinner on the current (worker) runtime.
    pub fn spawn(self) {
        if !self.budget.is_zero() {
            tokio::spawn(self.run());
        }
    }

    async fn run(self) {
        let mut backoff = Backoff::default();
        loop {
            self.woke.notified().await;
            if busy() || !backoff.take_turn() || !self.token.try_acquire() {
                continue;
            }
            // The work that woke the thread runs first; only what happens after it is what
            // the spin may save a wake-up for.
            tokio::task::yield_now().await;
            let mut busy_at = Instant::now();
            let mut seen = ACTIVITY.with(Cell::get);
            let first = seen;
            loop {
                // Politely: a thread of another process waiting for this core (a client or
                // upstream on the same machine) runs first; on an idle core this returns at once.
                std::thread::yield_now();
                tokio::task::yield_now().await;
                let now = Instant::now();
                let activity = ACTIVITY.with(Cell::get);
                if activity != seen {
                    seen = activity;
                    busy_at = now;
                }
                if now.duration_since(busy_at) >= self.budget || busy() {
                    break;
                }
            }
            self.token.release();
            backoff.record(ACTIVITY.with(Cell::get) != first);
        }
    }
}

/// How many wake-ups the spinner sits out after spins that found no request activity.
#[derive(Debug, Default)]
struct Backoff {
    /// Wake-ups to skip after the next wasted spin.
    skip: u32,
    /// Wake-ups left to skip now.
    left: u32,
}

impl Backoff {
    /// Whether this wake-up may spin.
    fn take_turn(&mut self) -> bool {
        if self.left > 0 {
            self.left -= 1;
            return false;
        }
        true
    }

    /// A spin ended; `useful` when a request started or finished during it.
    fn record(&mut self, useful: bool) {
        if useful {
            self.skip /= 2;
        } else {
            self.skip = (self.skip * 2).clamp(1, MAX_SKIP);
        }
        self.left = self.skip;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_counts_live_guards() {
        assert!(!busy());
        let a = InFlight::start();
        assert!(!busy());
        let b = InFlight::start();
        assert!(busy());
        drop(a);
        drop(b);
        assert!(!busy());
    }

    #[test]
    fn wasted_spins_make_the_spinner_sit_out_more_wake_ups() {
        let mut b = Backoff::default();
        assert!(b.take_turn());
        b.record(false);
        assert!(!b.take_turn(), "one wake-up skipped after a wasted spin");
        assert!(b.take_turn());
        b.record(false);
        assert!(!b.take_turn() && !b.take_turn());
        assert!(b.take_turn());
        for _ in 0..20 {
            b.record(false);
        }
        assert_eq!(b.left, MAX_SKIP, "capped");
        b.record(true);
        assert_eq!(b.left, MAX_SKIP / 2, "a useful spin halves the backoff");
        for _ in 0..10 {
            b.record(true);
        }
        assert!(b.take_turn(), "useful spins bring it back to every wake-up");
    }

    #[test]
    fn one_spinner_holds_the_token() {
        let t = SpinToken::default();
        assert!(t.try_acquire());
        assert!(!t.try_acquire());
        t.release();
        assert!(t.try_acquire());
    }

    #[test]
    fn spinner_stops_after_its_budget_and_releases_the_token() {
        let token = Arc::new(SpinToken::default());
        let spinner = Spinner::new(Duration::from_millis(2), token.clone());
        let mut b = tokio::runtime::Builder::new_current_thread();
        b.enable_all();
        spinner.install(&mut b);
        let rt = b.build().unwrap();
        let watcher = {
            let token = token.clone();
            // Checks from another thread while the runtime sleeps, long after the budget.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(60));
                token.0.load(Ordering::Acquire)
            })
        };
        rt.block_on(async move {
            let woke = spinner.woke.clone();
            spinner.spawn();
            woke.notify_one();
            tokio::task::yield_now().await;
            assert!(token.0.load(Ordering::Acquire), "spinning after a wake-up");
            tokio::time::sleep(Duration::from_millis(120)).await;
        });
        assert!(!watcher.join().unwrap(), "stopped once idle");
    }
}
