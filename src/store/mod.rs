//! Where chatflow keeps what must survive a restart: contacts with their conversation state,
//! the message log, and due timers.
//!
//! A small trait of transactional methods (DESIGN §2) so backends can differ — sled embedded by
//! default, in memory for `chat` and tests, PostgreSQL later — and one contract suite
//! (`tests/store_contract.rs`) that every backend must pass. Handling one input is one
//! [`Store::commit_turn`]: the contact's new state, its log entries, the timers it set and the
//! timer it consumed, all or nothing, durable before it returns.

mod depths;
mod memory;
mod queue;
mod sled_store;

use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::flow::runtime::TimerRequest;
use crate::flow::state::ContactState;

pub use memory::MemoryStore;
pub use queue::{
    Audience, Broadcast, DeadJob, Delivery, DeliveryState, DeliveryUpdate, InboxEntry,
    NewInboxEntry, NewJob, OutboxJob, Payload, SentRecord,
};
use queue::{advance, fallback_job, revived, sent_record};
pub use sled_store::SledStore;

/// A contact: a WhatsApp number (or provider user id) on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContactKey {
    /// The channel id, e.g. `simulator` or `main`.
    pub channel: String,
    /// Digits without `+`, or the provider's user id.
    pub id: String,
}

impl ContactKey {
    /// The key of `id` on `channel`.
    pub fn new(channel: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            id: id.into(),
        }
    }
}

/// Which way a logged message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the contact.
    Inbound,
    /// To the contact.
    Outbound,
}

/// A message to append to a contact's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLogEntry {
    /// Unix seconds.
    pub at: i64,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The normalized inbound message, or the outbound reply in the Meta shape.
    pub message: Value,
    /// For a reply to be sent through a provider: where its delivery starts (queued).
    pub delivery: Option<Delivery>,
}

/// A logged message, numbered in the order the store accepted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Increases with every entry of one contact, in the order they were committed.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The normalized inbound message, or the outbound reply in the Meta shape.
    pub message: Value,
    /// Where a reply sent through a provider is: queued, accepted, delivered, read…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// A timer waiting in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTimer {
    /// Unique, assigned by the store; pass it back in [`TurnCommit::fired_timer`].
    pub id: u64,
    /// Whose timer it is.
    pub contact: ContactKey,
    /// What it does and when.
    pub timer: TimerRequest,
}

/// A webhook payload no provider module understood: acknowledged (so the provider stops
/// retrying), kept, and counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unrecognized {
    /// The channel it came in on.
    pub channel: String,
    /// Unix seconds.
    pub at: i64,
    /// Why it was not handled.
    pub reason: String,
    /// The payload as received.
    pub payload: Value,
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Dedupe keys forgotten.
    pub dedupe_keys: usize,
    /// Log entries removed.
    pub log_entries: usize,
    /// Sent-message records (for status tracking) and dead letters removed.
    pub sent_and_dead: usize,
}

/// How many records wait in each queue: what the metrics gauges show, read on every scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Accepted webhook events not yet handled.
    pub inbox: u64,
    /// Sends queued or in flight.
    pub outbox: u64,
    /// Sends given up on, until retried or swept.
    pub dead: u64,
    /// Timers set and not yet fired (ask timeouts, reminders).
    pub timers: u64,
}

/// Everything one handled input changes, committed at once.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnCommit {
    /// The contact's state after the turn (its key is `state.channel`/`state.id`).
    pub state: ContactState,
    /// Messages to append, in order (the inbound message first, then the replies).
    pub log: Vec<NewLogEntry>,
    /// Timers the turn set.
    pub timers: Vec<TimerRequest>,
    /// The timer this turn handled, removed in the same transaction so it fires once.
    pub fired_timer: Option<u64>,
    /// The provider's id of what the turn handled (message id, or status id and status), and
    /// any other once-only marks, remembered in the same transaction so a redelivery is
    /// recognized.
    pub dedupe_keys: Vec<String>,
    /// Unix seconds of the turn, which the dedupe keys' expiry counts from.
    pub committed_at: i64,
    /// Sends to queue, in order.
    pub jobs: Vec<NewJob>,
    /// The inbox entry the turn handled, removed with it.
    pub inbox_done: Option<u64>,
    /// A delivery status the turn records on one of the contact's logged messages.
    pub delivery: Option<DeliveryUpdate>,
}

/// What a committed turn was given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// The new log entries' sequence numbers, in order.
    pub log: Vec<u64>,
    /// The queued jobs, in order, for the outbox worker.
    pub jobs: Vec<OutboxJob>,
}

impl TurnCommit {
    /// A commit that only saves a contact's state (an opt-out the provider reported, say).
    #[must_use]
    pub fn state_only(state: ContactState, at: i64) -> Self {
        Self {
            state,
            log: Vec::new(),
            timers: Vec::new(),
            fired_timer: None,
            dedupe_keys: Vec::new(),
            committed_at: at,
            jobs: Vec::new(),
            inbox_done: None,
            delivery: None,
        }
    }

    /// The contact the commit is for.
    #[must_use]
    pub fn contact(&self) -> ContactKey {
        ContactKey::new(&self.state.channel, &self.state.id)
    }
}

/// A store failure; the operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (disk, database, lock).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// A stored record could not be read back (written by an incompatible version?).
    #[error("stored record {key} is unreadable: {reason}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why.
        reason: String,
    },
}

/// The storage operations the engine needs, each small and transactional.
pub trait Store: Send + Sync + 'static {
    /// The contact's state, if the contact is known.
    fn load_contact(
        &self,
        contact: &ContactKey,
    ) -> impl Future<Output = Result<Option<ContactState>, StoreError>> + Send;

    /// Applies one turn atomically and durably.
    fn commit_turn(
        &self,
        commit: TurnCommit,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// The contact's last `limit` log entries, oldest first.
    fn transcript(
        &self,
        contact: &ContactKey,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LogEntry>, StoreError>> + Send;

    /// Up to `limit` timers due at or before `now`, earliest first.
    fn due_timers(
        &self,
        now: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredTimer>, StoreError>> + Send;

    /// The earliest due time of any timer, to sleep until it.
    fn next_due(&self) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Whether a turn with this dedupe key was committed (a provider redelivering a webhook).
    fn seen(&self, dedupe_key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes a timer whose contact no longer exists or whose input cannot run.
    fn drop_timer(&self, id: u64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets dedupe keys committed before `seen_before` and log entries older than
    /// `log_before`, so the store does not grow without bound; returns how many went.
    fn sweep(
        &self,
        seen_before: i64,
        log_before: i64,
    ) -> impl Future<Output = Result<Swept, StoreError>> + Send;

    /// Keeps a webhook payload that was acknowledged but not understood, for inspection.
    fn record_unrecognized(
        &self,
        record: Unrecognized,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The last `limit` unrecognized payloads, oldest first.
    fn unrecognized(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Unrecognized>, StoreError>> + Send;

    /// Puts a webhook's events in the inbox and its unrecognized payloads aside, in one
    /// transaction; returns the entries, numbered in arrival order. They are durable after the
    /// next [`Store::flush`], which the caller awaits before acknowledging the webhook (so that
    /// numbering and flushing are separate, and concurrent webhooks share one flush).
    fn accept_inbound(
        &self,
        entries: Vec<NewInboxEntry>,
        unrecognized: Vec<Unrecognized>,
    ) -> impl Future<Output = Result<Vec<InboxEntry>, StoreError>> + Send;

    /// Waits until everything written so far is durable; concurrent callers share one flush.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inbox entries not yet handled, in arrival order (what a crash left behind).
    fn pending_inbound(&self) -> impl Future<Output = Result<Vec<InboxEntry>, StoreError>> + Send;

    /// Removes an inbox entry that needed no turn (a redelivery, a status for nobody).
    fn finish_inbound(&self, seq: u64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Pending jobs, each contact's in the order they are to be sent, at most `limit`.
    fn pending_jobs(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxJob>, StoreError>> + Send;

    /// Marks a job in flight and counts the attempt, durably, before it is sent; `None` when
    /// the job is no longer pending (cleared, or replaced by its fallback).
    fn claim_job(
        &self,
        contact: &ContactKey,
        id: u64,
    ) -> impl Future<Output = Result<Option<OutboxJob>, StoreError>> + Send;

    /// The provider accepted `job`: it leaves the outbox; its log entry and the sent-message
    /// record (by `provider_id`) say so.
    fn ack_job(
        &self,
        job: &OutboxJob,
        provider_id: Option<String>,
        at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// An attempt failed and another follows at `next_attempt_at`.
    fn retry_job(
        &self,
        job: &OutboxJob,
        next_attempt_at: i64,
        error: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives up on `job`: it moves to the dead letters and its log entry says why.
    fn bury_job(
        &self,
        job: &OutboxJob,
        reason: String,
        at: i64,
    ) -> impl Future<Output = Result<DeadJob, StoreError>> + Send;

    /// The provider refused `job` as outside the 24-hour window: it and the other pending jobs
    /// of its turn are dead-lettered with `reason`, and — unless the turn's fallback was already
    /// sent — its fallback template takes its place in the queue (same id) and is returned.
    fn replace_with_fallback(
        &self,
        job: &OutboxJob,
        reason: String,
        at: i64,
    ) -> impl Future<Output = Result<Option<OutboxJob>, StoreError>> + Send;

    /// Dead letters, oldest first, at most `limit`.
    fn dead_jobs(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadJob>, StoreError>> + Send;

    /// Puts a dead letter back in the outbox as a new job (at the end of its contact's queue,
    /// attempts reset); `None` if there is no such dead letter.
    fn revive_job(
        &self,
        dead_id: u64,
        at: i64,
    ) -> impl Future<Output = Result<Option<OutboxJob>, StoreError>> + Send;

    /// Drops every pending job that is not in flight; returns how many.
    fn clear_jobs(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// What was sent as the provider's message `provider_id` on `channel`.
    fn sent_record(
        &self,
        channel: &str,
        provider_id: &str,
    ) -> impl Future<Output = Result<Option<SentRecord>, StoreError>> + Send;

    /// Contacts of `channel` with ids after `after` (all from the start when `None`), in id
    /// order, at most `limit`: how audiences are walked without loading every contact.
    fn contacts_page(
        &self,
        channel: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ContactState>, StoreError>> + Send;

    /// Timers, earliest first, at most `limit`; only `contact`'s when given.
    fn timers(
        &self,
        contact: Option<&ContactKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredTimer>, StoreError>> + Send;

    /// When each schedule (by key) last fired, Unix seconds.
    fn schedule_fires(
        &self,
    ) -> impl Future<Output = Result<std::collections::HashMap<String, i64>, StoreError>> + Send;

    /// When each schedule (by key) last really fired (not skipped, not first seen), Unix seconds.
    fn schedule_last_fired(
        &self,
    ) -> impl Future<Output = Result<std::collections::HashMap<String, i64>, StoreError>> + Send;

    /// Records that schedule `key` fired for `due` and queues its broadcast, atomically and
    /// durably; `false` (and nothing written) if it already fired for `due` or later — so a due
    /// time fires once, across restarts too.
    fn fire_schedule(
        &self,
        key: &str,
        due: i64,
        broadcast: Broadcast,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Notes that schedule `key` has been considered up to `until` without firing (a missed
    /// time beyond `catch_up`, or its first sight), so it is not considered again.
    fn skip_schedule(
        &self,
        key: &str,
        until: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a broadcast (new, or its progress).
    fn save_broadcast(
        &self,
        broadcast: &Broadcast,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many records wait in each queue; cheap (no scan of the queues), since it is read on
    /// every metrics scrape.
    fn queue_depths(&self) -> impl Future<Output = Result<QueueDepths, StoreError>> + Send;

    /// Broadcasts not finished, oldest first.
    fn broadcasts(&self) -> impl Future<Output = Result<Vec<Broadcast>, StoreError>> + Send;

    /// Removes a finished broadcast.
    fn finish_broadcast(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The dedupe key marking that the fallback template of `turn` was sent to `contact`.
#[must_use]
pub fn fallback_key(contact: &ContactKey, turn: u64) -> String {
    format!("fallback:{}:{}:{turn}", contact.channel, contact.id)
}
