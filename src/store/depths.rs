//! Queue depths kept as counters beside a backend that cannot count a tree cheaply (sled's
//! `len` scans the whole tree): counted once when the store opens, then moved by what each
//! committed write added or removed, so a metrics scrape reads four atomics.

use std::sync::atomic::{AtomicI64, Ordering};

use super::QueueDepths;

/// What one committed write added to (positive) or removed from (negative) each queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Delta {
    pub inbox: i64,
    pub outbox: i64,
    pub dead: i64,
    pub timers: i64,
}

/// The running counts of a store's queues.
#[derive(Debug, Default)]
pub(super) struct DepthCounters {
    inbox: AtomicI64,
    outbox: AtomicI64,
    dead: AtomicI64,
    timers: AtomicI64,
}

impl DepthCounters {
    /// Counters starting from `depths`, as counted when the store opened.
    pub(super) fn new(depths: QueueDepths) -> Self {
        let start = |depth: u64| AtomicI64::new(i64::try_from(depth).unwrap_or(i64::MAX));
        Self {
            inbox: start(depths.inbox),
            outbox: start(depths.outbox),
            dead: start(depths.dead),
            timers: start(depths.timers),
        }
    }

    /// Moves the counts by a write that was committed (never by one that failed or was retried).
    pub(super) fn apply(&self, delta: Delta) {
        self.inbox.fetch_add(delta.inbox, Ordering::Relaxed);
        self.outbox.fetch_add(delta.outbox, Ordering::Relaxed);
        self.dead.fetch_add(delta.dead, Ordering::Relaxed);
        self.timers.fetch_add(delta.timers, Ordering::Relaxed);
    }

    /// The counts now.
    pub(super) fn read(&self) -> QueueDepths {
        let read = |count: &AtomicI64| u64::try_from(count.load(Ordering::Relaxed)).unwrap_or(0);
        QueueDepths {
            inbox: read(&self.inbox),
            outbox: read(&self.outbox),
            dead: read(&self.dead),
            timers: read(&self.timers),
        }
    }
}

/// 1 when a removal found a record (the backend returned its old value), else 0.
pub(super) fn removed<T>(old: Option<T>) -> i64 {
    i64::from(old.is_some())
}

/// 1 when an insert made a new record (there was no old value), else 0.
pub(super) fn added<T>(old: Option<T>) -> i64 {
    i64::from(old.is_none())
}

/// A count of records as a delta.
pub(super) fn count(records: usize) -> i64 {
    i64::try_from(records).unwrap_or(i64::MAX)
}
