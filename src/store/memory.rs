//! A store that lives in memory and is gone when the process exits.
//!
//! For `chatflow chat` without `--data` (sled allows one process per directory and `serve` may
//! hold `./data`) and for tests. It passes the same contract suite as the sled backend, so a bot
//! tried here behaves the same when served. One `std::sync::Mutex` guards plain maps; it is never
//! held across an `.await`, which is what makes every method atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::flow::runtime::TimerRequest;
use crate::flow::state::ContactState;

use super::{
    ContactKey, LogEntry, NewLogEntry, Store, StoreError, StoredTimer, Swept, TurnCommit,
    Unrecognized,
};

/// Conversation state, message log and timers held in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store, for a session that needs nothing to survive it.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The maps, or an error if a thread panicked while changing them (they may be half-written).
    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner.lock().map_err(|_| {
            StoreError::Backend(
                "in-memory store is unusable after a panic in another task".to_owned(),
            )
        })
    }
}

/// Everything behind the lock.
#[derive(Debug, Default)]
struct Inner {
    contacts: HashMap<ContactKey, ContactState>,
    logs: HashMap<ContactKey, Vec<LogEntry>>,
    /// Ordered by due time, then id, so the earliest timer is first.
    timers: BTreeMap<(i64, u64), StoredTimer>,
    /// Due time of each timer id, to find it in `timers` by id alone.
    timer_due: HashMap<u64, i64>,
    next_seq: u64,
    next_timer_id: u64,
    unrecognized: Vec<Unrecognized>,
    /// Dedupe keys with the time they were committed.
    seen: HashMap<String, i64>,
}

impl Inner {
    fn append_log(&mut self, contact: &ContactKey, entries: Vec<NewLogEntry>) -> Vec<u64> {
        let log = self.logs.entry(contact.clone()).or_default();
        let mut seqs = Vec::with_capacity(entries.len());
        for entry in entries {
            let seq = self.next_seq;
            self.next_seq += 1;
            log.push(LogEntry {
                seq,
                at: entry.at,
                direction: entry.direction,
                message: entry.message,
            });
            seqs.push(seq);
        }
        seqs
    }

    fn add_timer(&mut self, contact: &ContactKey, timer: TimerRequest) {
        let id = self.next_timer_id;
        self.next_timer_id += 1;
        let due = timer.due();
        let contact = contact.clone();
        self.timer_due.insert(id, due);
        self.timers
            .insert((due, id), StoredTimer { id, contact, timer });
    }

    fn remove_timer(&mut self, id: u64) {
        if let Some(due) = self.timer_due.remove(&id) {
            self.timers.remove(&(due, id));
        }
    }
}

impl Store for MemoryStore {
    async fn load_contact(&self, contact: &ContactKey) -> Result<Option<ContactState>, StoreError> {
        Ok(self.lock()?.contacts.get(contact).cloned())
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<u64>, StoreError> {
        let contact = commit.contact();
        let mut inner = self.lock()?;
        if let Some(key) = &commit.dedupe_key {
            inner.seen.insert(key.clone(), commit.committed_at);
        }
        if let Some(id) = commit.fired_timer {
            inner.remove_timer(id);
        }
        for timer in commit.timers {
            inner.add_timer(&contact, timer);
        }
        let seqs = inner.append_log(&contact, commit.log);
        inner.contacts.insert(contact, commit.state);
        Ok(seqs)
    }

    async fn transcript(
        &self,
        contact: &ContactKey,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let inner = self.lock()?;
        let Some(log) = inner.logs.get(contact) else {
            return Ok(Vec::new());
        };
        Ok(log[log.len().saturating_sub(limit)..].to_vec())
    }

    async fn due_timers(&self, now: i64, limit: usize) -> Result<Vec<StoredTimer>, StoreError> {
        let inner = self.lock()?;
        let due = inner.timers.range(..=(now, u64::MAX)).take(limit);
        Ok(due.map(|(_, timer)| timer.clone()).collect())
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.lock()?.timers.keys().next().map(|&(due, _)| due))
    }

    async fn seen(&self, dedupe_key: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.seen.contains_key(dedupe_key))
    }

    async fn sweep(&self, seen_before: i64, log_before: i64) -> Result<Swept, StoreError> {
        let mut inner = self.lock()?;
        let keys = inner.seen.len();
        inner.seen.retain(|_, at| *at >= seen_before);
        let mut entries = 0;
        for log in inner.logs.values_mut() {
            let before = log.len();
            log.retain(|entry| entry.at >= log_before);
            entries += before - log.len();
        }
        Ok(Swept {
            dedupe_keys: keys - inner.seen.len(),
            log_entries: entries,
        })
    }

    async fn drop_timer(&self, id: u64) -> Result<(), StoreError> {
        self.lock()?.remove_timer(id);
        Ok(())
    }

    async fn record_unrecognized(&self, record: Unrecognized) -> Result<(), StoreError> {
        self.lock()?.unrecognized.push(record);
        Ok(())
    }

    async fn unrecognized(&self, limit: usize) -> Result<Vec<Unrecognized>, StoreError> {
        let inner = self.lock()?;
        let skip = inner.unrecognized.len().saturating_sub(limit);
        Ok(inner.unrecognized[skip..].to_vec())
    }
}
