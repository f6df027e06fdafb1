//! Work over a slice on two cores, the result as if one thread had done it in order: the tail
//! of a large listing (building entries, measuring and writing table rows) is a few tens of
//! milliseconds of independent per-item work, and the machine usually has a second core idle.
//!
//! Each thread works with its own copy of a caller's state (name caches, say), so nothing is
//! shared mutably. A second thread is only a help: when none can be had (`pids.max`,
//! `RLIMIT_NPROC`), or it panicked, the calling thread does its part, so the result is the
//! same either way.

use std::sync::mpsc;

/// Below this many items a second thread costs more than it saves.
pub const MIN_ITEMS: usize = 4096;

/// Whether `items` things are worth a second thread on this machine.
fn worth_it(items: usize) -> bool {
    items >= MIN_ITEMS && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// `work` over each half of `items`, the second half on another thread with a clone of
/// `state`: the two results, first half's first.
pub fn halves<T, S, R>(
    items: &[T],
    state: &mut S,
    work: impl Fn(&mut S, &[T]) -> R + Sync,
) -> [R; 2]
where
    T: Sync,
    S: Clone + Send,
    R: Send,
{
    let (first, second) = items.split_at(items.len() / 2);
    if !worth_it(items.len()) {
        return [work(state, first), work(state, second)];
    }
    std::thread::scope(|scope| {
        let mut theirs = state.clone();
        let work = &work;
        let other = std::thread::Builder::new()
            .name("tail".into())
            .spawn_scoped(scope, move || work(&mut theirs, second))
            .ok();
        let mine = work(state, first);
        let theirs = other
            .and_then(|other| other.join().ok())
            .unwrap_or_else(|| work(state, second));
        [mine, theirs]
    })
}

/// `make` over `items` in chunks of `chunk`, and `take` of each result in the chunks' order:
/// another thread makes every other chunk with a clone of `state` while this one makes the
/// rest and takes them all. At most two chunks wait to be taken, so memory stays a few chunks
/// whatever the number of items. The first error of `take` ends the work and is returned.
pub fn chunks_in_order<T, S, R, E>(
    items: &[T],
    chunk: usize,
    state: &mut S,
    make: impl Fn(&mut S, &[T]) -> R + Sync,
    mut take: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    S: Clone + Send,
    R: Send,
{
    let chunk = chunk.max(1);
    if !worth_it(items.len()) {
        return items
            .chunks(chunk)
            .try_for_each(|part| take(make(state, part)));
    }
    std::thread::scope(|scope| {
        let (sender, made) = mpsc::sync_channel::<R>(2);
        let mut theirs = state.clone();
        let make = &make;
        // The other thread makes the odd chunks; it stops when this one stops taking.
        let other = std::thread::Builder::new()
            .name("tail".into())
            .spawn_scoped(scope, move || {
                for part in items.chunks(chunk).skip(1).step_by(2) {
                    if sender.send(make(&mut theirs, part)).is_err() {
                        return;
                    }
                }
            });
        let mut helped = other.is_ok();
        let mut take_all = || {
            for (index, part) in items.chunks(chunk).enumerate() {
                let result = match index % 2 {
                    1 if helped => match made.recv() {
                        Ok(result) => result,
                        // It panicked: the rest of its chunks are made here.
                        Err(_) => {
                            helped = false;
                            make(state, part)
                        }
                    },
                    _ => make(state, part),
                };
                take(result)?;
            }
            Ok(())
        };
        let taken = take_all();
        // Hang up first, so a helper blocked on a full channel stops; then join it, so its
        // panic (already made up for) is not the scope's.
        drop(made);
        if let Ok(other) = other {
            let _ = other.join();
        }
        taken
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state whose copies count the items each thread saw.
    #[derive(Clone, Default)]
    struct Seen(usize);

    #[test]
    fn halves_give_both_results_in_order_over_every_item() {
        let items: Vec<u64> = (0..10_000).collect();
        let mut seen = Seen::default();
        let sums = halves(&items, &mut seen, |seen, part| {
            seen.0 += part.len();
            part.iter().sum::<u64>()
        });
        assert_eq!(sums, [(0..5_000).sum::<u64>(), (5_000..10_000).sum()]);
        // Small inputs stay on this thread, with this state.
        let mut small = Seen::default();
        halves(&items[..10], &mut small, |seen, part| seen.0 += part.len());
        assert_eq!(small.0, 10);
    }

    #[test]
    fn chunks_are_taken_in_order_whoever_made_them() {
        let items: Vec<u32> = (0..20_000).collect();
        let mut got = Vec::new();
        let result: Result<(), ()> = chunks_in_order(
            &items,
            333,
            &mut Seen::default(),
            |_, part| part.to_vec(),
            |part| {
                got.extend(part);
                Ok(())
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(got, items);
    }

    #[test]
    fn the_first_error_stops_the_work_and_is_returned() {
        let items: Vec<u32> = (0..50_000).collect();
        let mut taken = 0;
        let result = chunks_in_order(
            &items,
            100,
            &mut Seen::default(),
            |_, part| part[0],
            |first| {
                taken += 1;
                if first >= 700 { Err(first) } else { Ok(()) }
            },
        );
        assert_eq!(result, Err(700));
        assert_eq!(taken, 8);
    }

    #[test]
    fn a_panicking_helper_leaves_its_chunks_to_this_thread() {
        let items: Vec<u32> = (0..10_000).collect();
        let main = std::thread::current().id();
        let mut got = Vec::new();
        let result: Result<(), ()> = chunks_in_order(
            &items,
            1000,
            &mut Seen::default(),
            |_, part| {
                // Only the other thread fails, and only on its second chunk.
                assert!(std::thread::current().id() == main || part[0] != 3000);
                part.to_vec()
            },
            |part| {
                got.extend(part);
                Ok(())
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(got, items);
    }
}
