//! Where chatflow keeps what must survive a restart: contacts with their conversation state,
//! the message log, and due timers.
//!
//! A small trait of transactional methods (DESIGN §2) so backends can differ — sled embedded by
//! default, in memory for `chat` and tests, PostgreSQL later — and one contract suite
//! (`tests/store_contract.rs`) that every backend must pass. Handling one input is one
//! [`Store::commit_turn`]: the contact's new state, its log entries, the timers it set and the
//! timer it consumed, all or nothing, durable before it returns.

mod memory;
mod sled_store;

use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::flow::runtime::TimerRequest;
use crate::flow::state::ContactState;

pub use memory::MemoryStore;
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
    /// The provider's id of what the turn handled (message id, or status id and status),
    /// remembered in the same transaction so a redelivery is recognized.
    pub dedupe_key: Option<String>,
    /// Unix seconds of the turn, which the dedupe key's expiry counts from.
    pub committed_at: i64,
}

impl TurnCommit {
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

    /// Applies one turn atomically and durably; returns the new log entries' sequence numbers.
    fn commit_turn(
        &self,
        commit: TurnCommit,
    ) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send;

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
}
