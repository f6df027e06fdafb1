//! At most one listing per interval, however many scrapers ask.
//!
//! A scrape takes the latest listing while it is younger than the interval; otherwise the
//! first scrape to ask makes a new one, and every scrape arriving while it runs waits for it
//! instead of starting its own. A listing costs a socket dump and a process scan (a large
//! host: tenths of a second of CPU); a scrape served from the cache costs a copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One listing, rendered, as every scrape in its interval serves it.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// Whether a socket source could be read (`lsports_up`).
    pub up: bool,
    /// How long the listing took (`lsports_scrape_duration_seconds`).
    pub duration: Duration,
    /// The series of the listing (and of its audit), in the exposition format.
    pub series: Vec<u8>,
}

/// Makes listings.
pub type Lister = dyn Fn() -> Listed + Send + Sync;

/// The latest listing, and whether a new one is being made.
#[derive(Default)]
struct State {
    latest: Option<(Instant, Arc<Listed>)>,
    running: bool,
}

/// The listings shared by every scrape.
pub struct Cache {
    interval: Duration,
    lister: Box<Lister>,
    state: Mutex<State>,
    done: Condvar,
    listings: AtomicU64,
}

impl Cache {
    /// A cache making at most one listing per `interval` with `lister`.
    pub fn new(interval: Duration, lister: Box<Lister>) -> Cache {
        Cache {
            interval,
            lister,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            listings: AtomicU64::new(0),
        }
    }

    /// How many listings were made (`lsports_listings_total`).
    pub fn listings(&self) -> u64 {
        self.listings.load(Ordering::Relaxed)
    }

    /// The listing to serve now: the latest one if it was begun less than an interval ago,
    /// the one being made if there is one, else a new one.
    pub fn get(&self) -> Arc<Listed> {
        let mut state = lock(&self.state);
        loop {
            let fresh =
                (state.latest.as_ref()).filter(|(begun, _)| begun.elapsed() < self.interval);
            if let Some((_, listed)) = fresh {
                return Arc::clone(listed);
            }
            if !state.running {
                break;
            }
            state = self
                .done
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.running = true;
        drop(state);
        let running = Running(self);
        let begun = Instant::now();
        let listed = Arc::new((self.lister)());
        self.listings.fetch_add(1, Ordering::Relaxed);
        lock(&self.state).latest = Some((begun, Arc::clone(&listed)));
        drop(running);
        listed
    }
}

/// Marks the listing done when dropped, also if the lister panicked, so that the waiting
/// scrapes never wait forever: one of them makes the next listing.
struct Running<'a>(&'a Cache);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).running = false;
        self.0.done.notify_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn slow_lister(calls: Arc<AtomicU64>) -> Box<Lister> {
        Box::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            Listed {
                up: true,
                ..Listed::default()
            }
        })
    }

    #[test]
    fn concurrent_scrapes_share_one_listing() {
        let calls = Arc::new(AtomicU64::new(0));
        let cache = Arc::new(Cache::new(
            Duration::from_secs(3600),
            slow_lister(calls.clone()),
        ));
        let barrier = Arc::new(Barrier::new(50));
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let (cache, barrier) = (cache.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    cache.get().up
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().unwrap());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.listings(), 1);
    }

    #[test]
    fn a_listing_older_than_the_interval_is_made_again() {
        let calls = Arc::new(AtomicU64::new(0));
        let cache = Cache::new(Duration::from_millis(100), slow_lister(calls.clone()));
        cache.get();
        cache.get();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(120));
        cache.get();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panicking_lister_does_not_leave_scrapes_waiting() {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let cache = Arc::new(Cache::new(
            Duration::from_secs(3600),
            Box::new(move || {
                if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first listing fails");
                }
                Listed::default()
            }),
        ));
        let first = cache.clone();
        assert!(std::thread::spawn(move || first.get()).join().is_err());
        cache.get();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
