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
    Broadcast, Committed, ContactKey, DeadJob, Delivery, DeliveryState, DeliveryUpdate, InboxEntry,
    LogEntry, NewInboxEntry, NewJob, NewLogEntry, OutboxJob, Payload, QueueDepths, SentRecord,
    Store, StoreError, StoredTimer, Swept, TurnCommit, Unrecognized, fallback_key,
};

/// Conversation state, message log, timers and both queues held in process memory.
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
    /// One counter for every id and sequence number, as sled has.
    next_id: u64,
    unrecognized: Vec<Unrecognized>,
    /// Dedupe keys with the time they were committed.
    seen: HashMap<String, i64>,
    inbox: BTreeMap<u64, InboxEntry>,
    /// By contact, then id: a contact's jobs in sending order.
    outbox: BTreeMap<(ContactKey, u64), OutboxJob>,
    dead: BTreeMap<u64, DeadJob>,
    /// By channel and provider message id.
    sent: HashMap<(String, String), SentRecord>,
    /// Schedule key → last due time considered.
    schedule_fires: HashMap<String, i64>,
    /// Schedule key → the last due time that really fired.
    schedule_last_fired: HashMap<String, i64>,
    broadcasts: BTreeMap<String, Broadcast>,
}

impl Inner {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn append_log(&mut self, contact: &ContactKey, entries: Vec<NewLogEntry>) -> Vec<u64> {
        let mut seqs = Vec::with_capacity(entries.len());
        for entry in entries {
            let seq = self.id();
            self.logs
                .entry(contact.clone())
                .or_default()
                .push(LogEntry {
                    seq,
                    at: entry.at,
                    direction: entry.direction,
                    message: entry.message,
                    delivery: entry.delivery,
                });
            seqs.push(seq);
        }
        seqs
    }

    fn add_timer(&mut self, contact: &ContactKey, timer: TimerRequest) {
        let id = self.id();
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

    fn add_jobs(
        &mut self,
        contact: &ContactKey,
        jobs: Vec<NewJob>,
        seqs: &[u64],
        at: i64,
    ) -> Vec<OutboxJob> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let turn = self.id();
        let mut queued = Vec::with_capacity(jobs.len());
        for job in jobs {
            let job = OutboxJob {
                id: self.id(),
                contact: contact.clone(),
                payload: job.payload,
                fallback: job.fallback,
                turn,
                log_seq: job.log_index.and_then(|i| seqs.get(i).copied()),
                created_at: at,
                attempts: 0,
                next_attempt_at: at,
                in_flight: false,
                last_error: None,
            };
            self.outbox.insert((contact.clone(), job.id), job.clone());
            queued.push(job);
        }
        queued
    }

    /// Applies `update` to the contact's log entry if it is progress.
    fn update_delivery(&mut self, contact: &ContactKey, update: DeliveryUpdate) {
        let entry = self
            .logs
            .get_mut(contact)
            .and_then(|log| log.iter_mut().find(|entry| entry.seq == update.log_seq));
        if let Some(entry) = entry {
            entry.delivery = super::advance(entry.delivery.take(), update.delivery);
        }
    }

    fn bury(&mut self, job: &OutboxJob, reason: String, at: i64) -> DeadJob {
        self.outbox.remove(&(job.contact.clone(), job.id));
        if let Some(log_seq) = job.log_seq {
            let delivery = Delivery {
                state: DeliveryState::Dead,
                at,
                provider_id: None,
                error: Some(reason.clone()),
            };
            self.update_delivery(&job.contact, DeliveryUpdate { log_seq, delivery });
        }
        let dead = DeadJob {
            id: self.id(),
            died_at: at,
            reason,
            job: OutboxJob {
                in_flight: false,
                ..job.clone()
            },
        };
        self.dead.insert(dead.id, dead.clone());
        dead
    }
}

impl Store for MemoryStore {
    async fn load_contact(&self, contact: &ContactKey) -> Result<Option<ContactState>, StoreError> {
        Ok(self.lock()?.contacts.get(contact).cloned())
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<Committed, StoreError> {
        let contact = commit.contact();
        let mut inner = self.lock()?;
        for key in commit.dedupe_keys {
            inner.seen.insert(key, commit.committed_at);
        }
        if let Some(id) = commit.fired_timer {
            inner.remove_timer(id);
        }
        if let Some(seq) = commit.inbox_done {
            inner.inbox.remove(&seq);
        }
        for timer in commit.timers {
            inner.add_timer(&contact, timer);
        }
        if let Some(update) = commit.delivery {
            inner.update_delivery(&contact, update);
        }
        let log = inner.append_log(&contact, commit.log);
        let jobs = inner.add_jobs(&contact, commit.jobs, &log, commit.committed_at);
        inner.contacts.insert(contact, commit.state);
        Ok(Committed { log, jobs })
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
        let records = inner.sent.len() + inner.dead.len();
        inner.sent.retain(|_, sent| sent.at >= log_before);
        inner.dead.retain(|_, dead| dead.died_at >= log_before);
        Ok(Swept {
            dedupe_keys: keys - inner.seen.len(),
            log_entries: entries,
            sent_and_dead: records - inner.sent.len() - inner.dead.len(),
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

    async fn accept_inbound(
        &self,
        entries: Vec<NewInboxEntry>,
        unrecognized: Vec<Unrecognized>,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let mut inner = self.lock()?;
        inner.unrecognized.extend(unrecognized);
        let mut accepted = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = InboxEntry {
                seq: inner.id(),
                channel: entry.channel,
                received_at: entry.received_at,
                event: entry.event,
            };
            inner.inbox.insert(entry.seq, entry.clone());
            accepted.push(entry);
        }
        Ok(accepted)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn pending_inbound(&self) -> Result<Vec<InboxEntry>, StoreError> {
        Ok(self.lock()?.inbox.values().cloned().collect())
    }

    async fn finish_inbound(&self, seq: u64) -> Result<(), StoreError> {
        self.lock()?.inbox.remove(&seq);
        Ok(())
    }

    async fn pending_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>, StoreError> {
        Ok(self.lock()?.outbox.values().take(limit).cloned().collect())
    }

    async fn claim_job(
        &self,
        contact: &ContactKey,
        id: u64,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let mut inner = self.lock()?;
        let Some(job) = inner.outbox.get_mut(&(contact.clone(), id)) else {
            return Ok(None);
        };
        job.attempts += 1;
        job.in_flight = true;
        Ok(Some(job.clone()))
    }

    async fn ack_job(
        &self,
        job: &OutboxJob,
        provider_id: Option<String>,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.outbox.remove(&(job.contact.clone(), job.id));
        if let Some(log_seq) = job.log_seq {
            let delivery = Delivery {
                state: DeliveryState::Accepted,
                at,
                provider_id: provider_id.clone(),
                error: None,
            };
            inner.update_delivery(&job.contact, DeliveryUpdate { log_seq, delivery });
        }
        if let (Some(provider_id), Payload::Message { .. }) = (provider_id, &job.payload) {
            let record = super::sent_record(job, provider_id, at);
            let key = (job.contact.channel.clone(), record.provider_id.clone());
            inner.sent.insert(key, record);
        }
        Ok(())
    }

    async fn retry_job(
        &self,
        job: &OutboxJob,
        next_attempt_at: i64,
        error: String,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(stored) = inner.outbox.get_mut(&(job.contact.clone(), job.id)) {
            stored.reschedule(next_attempt_at, error);
        }
        Ok(())
    }

    async fn bury_job(
        &self,
        job: &OutboxJob,
        reason: String,
        at: i64,
    ) -> Result<DeadJob, StoreError> {
        Ok(self.lock()?.bury(job, reason, at))
    }

    async fn replace_with_fallback(
        &self,
        job: &OutboxJob,
        reason: String,
        at: i64,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let mut inner = self.lock()?;
        let siblings: Vec<OutboxJob> = inner
            .outbox
            .range((job.contact.clone(), 0)..=(job.contact.clone(), u64::MAX))
            .map(|(_, sibling)| sibling.clone())
            .filter(|sibling| sibling.turn == job.turn)
            .collect();
        for sibling in &siblings {
            inner.bury(sibling, reason.clone(), at);
        }
        let once = fallback_key(&job.contact, job.turn);
        let Some(replacement) = super::fallback_job(job, at) else {
            return Ok(None);
        };
        if inner.seen.insert(once, at).is_some() {
            return Ok(None);
        }
        inner
            .outbox
            .insert((job.contact.clone(), job.id), replacement.clone());
        Ok(Some(replacement))
    }

    async fn dead_jobs(&self, limit: usize) -> Result<Vec<DeadJob>, StoreError> {
        let inner = self.lock()?;
        let skip = inner.dead.len().saturating_sub(limit);
        Ok(inner.dead.values().skip(skip).cloned().collect())
    }

    async fn revive_job(&self, dead_id: u64, at: i64) -> Result<Option<OutboxJob>, StoreError> {
        let mut inner = self.lock()?;
        let Some(dead) = inner.dead.remove(&dead_id) else {
            return Ok(None);
        };
        let job = super::revived(dead.job, inner.id(), at);
        inner
            .outbox
            .insert((job.contact.clone(), job.id), job.clone());
        Ok(Some(job))
    }

    async fn clear_jobs(&self) -> Result<usize, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.outbox.len();
        inner.outbox.retain(|_, job| job.in_flight);
        Ok(before - inner.outbox.len())
    }

    async fn sent_record(
        &self,
        channel: &str,
        provider_id: &str,
    ) -> Result<Option<SentRecord>, StoreError> {
        let key = (channel.to_owned(), provider_id.to_owned());
        Ok(self.lock()?.sent.get(&key).cloned())
    }

    async fn contacts_page(
        &self,
        channel: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactState>, StoreError> {
        let inner = self.lock()?;
        let mut page: Vec<&ContactState> = inner
            .contacts
            .iter()
            .filter(|(key, _)| {
                key.channel == channel && after.is_none_or(|after| key.id.as_str() > after)
            })
            .map(|(_, state)| state)
            .collect();
        page.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(page.into_iter().take(limit).cloned().collect())
    }

    async fn timers(
        &self,
        contact: Option<&ContactKey>,
        limit: usize,
    ) -> Result<Vec<StoredTimer>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .timers
            .values()
            .filter(|timer| contact.is_none_or(|contact| &timer.contact == contact))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn schedule_fires(&self) -> Result<HashMap<String, i64>, StoreError> {
        Ok(self.lock()?.schedule_fires.clone())
    }

    async fn fire_schedule(
        &self,
        key: &str,
        due: i64,
        broadcast: Broadcast,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner
            .schedule_fires
            .get(key)
            .is_some_and(|&last| last >= due)
        {
            return Ok(false);
        }
        inner.schedule_fires.insert(key.to_owned(), due);
        inner.schedule_last_fired.insert(key.to_owned(), due);
        inner.broadcasts.insert(broadcast.id.clone(), broadcast);
        Ok(true)
    }

    async fn schedule_last_fired(&self) -> Result<HashMap<String, i64>, StoreError> {
        Ok(self.lock()?.schedule_last_fired.clone())
    }

    async fn skip_schedule(&self, key: &str, until: i64) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let last = inner.schedule_fires.entry(key.to_owned()).or_insert(until);
        *last = (*last).max(until);
        Ok(())
    }

    async fn save_broadcast(&self, broadcast: &Broadcast) -> Result<(), StoreError> {
        self.lock()?
            .broadcasts
            .insert(broadcast.id.clone(), broadcast.clone());
        Ok(())
    }

    async fn broadcasts(&self) -> Result<Vec<Broadcast>, StoreError> {
        let mut all: Vec<Broadcast> = self.lock()?.broadcasts.values().cloned().collect();
        all.sort_by_key(|broadcast| broadcast.created_at);
        Ok(all)
    }

    async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        let inner = self.lock()?;
        let depth = |len: usize| u64::try_from(len).unwrap_or(u64::MAX);
        Ok(QueueDepths {
            inbox: depth(inner.inbox.len()),
            outbox: depth(inner.outbox.len()),
            dead: depth(inner.dead.len()),
            timers: depth(inner.timers.len()),
        })
    }

    async fn finish_broadcast(&self, id: &str) -> Result<(), StoreError> {
        self.lock()?.broadcasts.remove(id);
        Ok(())
    }
}
