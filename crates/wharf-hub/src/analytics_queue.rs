//! The capture queue between the requests of pulls and the analytics writer: shards (twice
//! as many as cores), each thread that serves requests pushing into its own, a mutex no other
//! thread takes but the writer emptying it a few times a second, so recording an event is an
//! uncontended lock and a push. `put_back` may leave the queue over its capacity by what it
//! returns (less than one batch, or what followed a batch the database refused). One queue
//! shared by every thread (a tokio channel) cost 0.8 µs of CPU per event on this machine's
//! two cores, in the atomics both cores fight over for every send:
//! 7% of a cached manifest GET.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

/// Hands out shards to threads in turn, the first time each records an event.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD: usize = NEXT_THREAD.fetch_add(1, Relaxed);
}

/// A bounded queue of `T`, sharded by thread.
pub(crate) struct CaptureQueue<T> {
    shards: Box<[CachePadded<Mutex<Shard<T>>>]>,
    /// The queue's capacity, split over the shards: shard `i` holds `per_shard` events, and
    /// one more when `i < extra`.
    per_shard: usize,
    extra: usize,
    /// A shard this full asks the writer for a run (`push` says so, once until it is
    /// taken): a batch, or half a shard when shards are smaller (many cores, a small queue).
    kick_at: usize,
}

struct Shard<T> {
    events: Vec<T>,
    /// `push` said `Full` since the shard was last taken.
    announced: bool,
    pushed: u64,
    dropped: u64,
}

/// What `push` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Queued, and its shard is now full enough for the writer (see `kick_at`).
    Full,
    /// The shard was full: the event was dropped.
    Dropped,
}

impl<T> CaptureQueue<T> {
    /// A queue of about `capacity` events in all, over a shard for each of twice the
    /// machine's cores (threads beyond that share shards).
    pub(crate) fn new(capacity: usize, batch: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_shards(capacity, batch, (cores * 2).clamp(2, 64))
    }

    fn with_shards(capacity: usize, batch: usize, shards: usize) -> Self {
        Self {
            shards: (0..shards)
                .map(|_| {
                    CachePadded::new(Mutex::new(Shard {
                        events: Vec::new(),
                        announced: false,
                        pushed: 0,
                        dropped: 0,
                    }))
                })
                .collect(),
            per_shard: capacity / shards,
            extra: capacity % shards,
            kick_at: batch.min(capacity / shards / 2).max(1),
        }
    }

    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, Shard<T>> {
        self.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn capacity_of(&self, i: usize) -> usize {
        self.per_shard + usize::from(i < self.extra)
    }

    /// Queues an event in the calling thread's shard, or when that one is full in the next
    /// shard with room (so the queue as a whole holds exactly its capacity); never waits
    /// for anything but a shard's lock, which otherwise only the writer's brief swap takes.
    pub(crate) fn push(&self, event: T) -> Pushed {
        let n = self.shards.len();
        let home = THREAD.with(|t| *t) % n;
        for k in 0..n {
            let i = (home + k) % n;
            let mut shard = self.lock(i);
            if shard.events.len() < self.capacity_of(i) {
                shard.events.push(event);
                shard.pushed += 1;
                if shard.events.len() >= self.kick_at && !shard.announced {
                    shard.announced = true;
                    return Pushed::Full;
                }
                return Pushed::Queued;
            }
        }
        self.lock(home).dropped += 1;
        Pushed::Dropped
    }

    /// Takes the events of every shard that holds at least `at_least` (every event with 1),
    /// in no particular order.
    pub(crate) fn take(&self, at_least: usize) -> Vec<T> {
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            let n = shard.events.len();
            if n == 0 || n < at_least {
                continue;
            }
            // The next run's room, sized by this one (an idle shard keeps none).
            let fresh = Vec::with_capacity(n.min(self.kick_at));
            let events = std::mem::replace(&mut shard.events, fresh);
            shard.announced = false;
            drop(shard);
            if out.is_empty() {
                out = events;
            } else {
                out.extend(events);
            }
        }
        out
    }

    /// Takes the events of shards full enough for the writer (`kick_at`).
    pub(crate) fn take_full(&self) -> Vec<T> {
        self.take(self.kick_at)
    }

    /// How many events make a shard full enough for the writer.
    pub(crate) fn kick_at(&self) -> usize {
        self.kick_at
    }

    /// Puts events back (the part of a take too small to be stored on its own).
    pub(crate) fn put_back(&self, events: Vec<T>) {
        let i = THREAD.with(|t| *t) % self.shards.len();
        self.lock(i).events.extend(events);
    }

    /// Events waiting.
    pub(crate) fn len(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.lock(i).events.len())
            .sum()
    }

    /// Events queued and events dropped since the start.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (0..self.shards.len()).fold((0, 0), |(p, d), i| {
            let s = self.lock(i);
            (p + s.pushed, d + s.dropped)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_and_each_full_batch_is_announced_once() {
        // 9 events over 2 shards: this thread's holds 4 or 5, the other the rest; each asks
        // for the writer at 2.
        let q = CaptureQueue::with_shards(9, 2, 2);
        let pushed: Vec<_> = (0..11).map(|i| q.push(i)).collect();
        let count = |p: Pushed| pushed.iter().filter(|&x| *x == p).count();
        assert_eq!(count(Pushed::Dropped), 2, "{pushed:?}");
        assert_eq!(count(Pushed::Full), 2, "{pushed:?}");
        assert_eq!(&pushed[9..], [Pushed::Dropped, Pushed::Dropped]);
        assert_eq!(q.len(), 9);
        assert_eq!(q.counts(), (9, 2));
        let mut taken = q.take_full();
        taken.sort();
        assert_eq!(taken, (0..9).collect::<Vec<_>>());
        assert_eq!(q.len(), 0);
        // Taken, a shard announces itself again.
        assert_eq!(q.push(9), Pushed::Queued);
        assert_eq!(q.push(10), Pushed::Full);
        // Fewer events than shards: some shards hold none, and the queue still holds all.
        let q = CaptureQueue::with_shards(2, 1, 4);
        let pushed: Vec<_> = (0..3).map(|i| q.push(i)).collect();
        assert_eq!(pushed, [Pushed::Full, Pushed::Full, Pushed::Dropped]);
    }

    #[test]
    fn events_of_every_thread_are_taken_and_a_partial_shard_waits_for_take_all() {
        let q = std::sync::Arc::new(CaptureQueue::with_shards(1_000, 10, 4));
        assert_eq!(q.kick_at(), 10);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        q.push(t * 100 + i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(q.len(), 100);
        let full = q.take_full();
        // Every shard that holds 10 or more was taken whole.
        assert!(full.len() >= 25, "{}", full.len());
        q.put_back(vec![1_000]);
        let mut all = full;
        all.extend(q.take(1));
        all.sort();
        let mut want: Vec<_> = (0..4)
            .flat_map(|t| (0..25).map(move |i| t * 100 + i))
            .collect();
        want.push(1_000);
        assert_eq!(all, want);
        assert_eq!(q.len(), 0);
    }
}
