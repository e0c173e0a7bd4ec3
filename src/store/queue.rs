//! The records of the two durable queues around a turn: the inbox (events a webhook delivered,
//! kept until handled) and the outbox (sends a turn queued, kept until the provider accepted
//! them or they were dead-lettered), plus what a send leaves behind for status tracking.

use serde::{Deserialize, Serialize};

use crate::message::{InboundEvent, Outbound, StatusKind};

use super::ContactKey;

/// An event accepted from a webhook: durable before the webhook is answered, removed in the
/// transaction that commits its handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// Position in arrival order, assigned by the store.
    pub seq: u64,
    /// The channel whose flows handle it.
    pub channel: String,
    /// Unix seconds it was accepted.
    pub received_at: i64,
    /// What the provider reported.
    pub event: InboundEvent,
}

/// An event to put in the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInboxEntry {
    /// The channel whose flows handle it.
    pub channel: String,
    /// Unix seconds it was accepted.
    pub received_at: i64,
    /// What the provider reported.
    pub event: InboundEvent,
}

/// What an outbox job sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// A message, in the Meta shape, already degraded for the channel.
    Message {
        /// The message.
        message: Box<Outbound>,
    },
    /// Tells the provider the contact's message was read (blue ticks); best effort.
    MarkRead {
        /// The provider's id of the contact's message.
        message_id: String,
    },
}

/// A send to queue with a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What to send.
    pub payload: Payload,
    /// The template to send instead if the provider says the 24-hour window is closed.
    pub fallback: Option<Box<Outbound>>,
    /// Index into the turn's `log` of the entry this job delivers, for status tracking.
    pub log_index: Option<usize>,
}

/// A send waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxJob {
    /// Unique and increasing: a contact's jobs are sent in id order.
    pub id: u64,
    /// Who it goes to (the channel sends it).
    pub contact: ContactKey,
    /// What to send.
    pub payload: Payload,
    /// The template to send instead if the provider says the 24-hour window is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Box<Outbound>>,
    /// Jobs queued by one turn share it, so the turn's fallback template is sent once.
    pub turn: u64,
    /// The log entry (its `seq`) this job delivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_seq: Option<u64>,
    /// Unix seconds it was queued.
    pub created_at: i64,
    /// Attempts started so far (counted before each attempt, so a send that crashes the process
    /// still counts).
    pub attempts: u32,
    /// Unix seconds before which it is not attempted.
    pub next_attempt_at: i64,
    /// An attempt started and its outcome was not recorded: after a crash, the provider may have
    /// accepted it, so it is the one kind of job that can be sent twice.
    #[serde(default)]
    pub in_flight: bool,
    /// What the last failed attempt said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl OutboxJob {
    /// The job after a failed attempt: no longer in flight, next tried at `next_attempt_at`.
    pub(super) fn reschedule(&mut self, next_attempt_at: i64, error: String) {
        self.in_flight = false;
        self.next_attempt_at = next_attempt_at;
        self.last_error = Some(error);
    }
}

/// A job given up on, kept for an operator to inspect and retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadJob {
    /// Unique id of the dead letter (`POST /api/outbox/dead/{id}/retry`).
    pub id: u64,
    /// Unix seconds it was given up.
    pub died_at: i64,
    /// Why.
    pub reason: String,
    /// The job as it was.
    pub job: OutboxJob,
}

/// What the provider accepted, remembered by its message id so later status webhooks find the
/// log entry and the fallback template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentRecord {
    /// Who it went to.
    pub contact: ContactKey,
    /// The provider's message id.
    pub provider_id: String,
    /// The log entry it delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_seq: Option<u64>,
    /// The turn that queued it.
    pub turn: u64,
    /// Its fallback template, for an outside-window failure reported later as a status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Box<Outbound>>,
    /// Unix seconds it was accepted.
    pub at: i64,
}

/// Where a sent message is, as the message log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting in the outbox.
    Queued,
    /// The provider accepted it.
    Accepted,
    /// WhatsApp sent it.
    Sent,
    /// It reached the phone.
    Delivered,
    /// The contact saw it.
    Read,
    /// A voice message was played.
    Played,
    /// It could not be delivered (a status said so).
    Failed,
    /// The outbox gave up on it (see `GET /api/outbox/dead`).
    Dead,
}

impl DeliveryState {
    /// The state a delivery status reports.
    #[must_use]
    pub fn from_status(status: StatusKind) -> Self {
        match status {
            StatusKind::Sent => Self::Sent,
            StatusKind::Delivered => Self::Delivered,
            StatusKind::Read => Self::Read,
            StatusKind::Played => Self::Played,
            StatusKind::Failed => Self::Failed,
        }
    }

    /// Whether moving from `self` to `next` is progress: statuses can arrive out of order, and
    /// a late `delivered` must not hide a `read`.
    #[must_use]
    pub fn advances_to(self, next: Self) -> bool {
        next > self
    }
}

/// A logged outbound message's delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it is.
    pub state: DeliveryState,
    /// Unix seconds of the last change.
    pub at: i64,
    /// The provider's message id, once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// Why it failed or died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A change to a logged message's delivery, committed with a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryUpdate {
    /// The log entry's sequence number (of the turn's contact).
    pub log_seq: u64,
    /// The new delivery; applied only if it advances the logged one.
    pub delivery: Delivery,
}

/// The delivery after `update`: kept when the update is not progress (statuses arrive out of
/// order), the provider id carried over when the update has none.
pub(super) fn advance(current: Option<Delivery>, update: Delivery) -> Option<Delivery> {
    match current {
        Some(current) if !current.state.advances_to(update.state) => Some(current),
        Some(current) => Some(Delivery {
            provider_id: update.provider_id.or(current.provider_id),
            ..update
        }),
        None => Some(update),
    }
}

/// What to remember of `job`, accepted as `provider_id`.
pub(super) fn sent_record(job: &OutboxJob, provider_id: String, at: i64) -> SentRecord {
    SentRecord {
        contact: job.contact.clone(),
        provider_id,
        log_seq: job.log_seq,
        turn: job.turn,
        fallback: job.fallback.clone(),
        at,
    }
}

/// The job sending `job`'s fallback template in its place, if it has one.
pub(super) fn fallback_job(job: &OutboxJob, at: i64) -> Option<OutboxJob> {
    let template = job.fallback.clone()?;
    Some(OutboxJob {
        payload: Payload::Message { message: template },
        fallback: None,
        log_seq: None,
        attempts: 0,
        next_attempt_at: at,
        in_flight: false,
        last_error: None,
        ..job.clone()
    })
}

/// A dead letter's job queued again as job `id`, attempts reset.
pub(super) fn revived(job: OutboxJob, id: u64, at: i64) -> OutboxJob {
    OutboxJob {
        id,
        attempts: 0,
        next_attempt_at: at,
        in_flight: false,
        last_error: None,
        ..job
    }
}

/// Who an engine-started flow is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Contacts with any of these tags.
    Tags(Vec<String>),
    /// These contact ids (created if new).
    Contacts(Vec<String>),
    /// Every contact of the channel.
    All,
}

/// A flow started for many contacts — a schedule's fire or `POST /api/broadcast` — worked
/// through in pages, its progress stored so a restart resumes where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadcast {
    /// Unique: `schedule:<key>:<due>` for a schedule's fire, `api:<n>` for the API's.
    pub id: String,
    /// The flow to start.
    pub flow: String,
    /// Who gets it.
    pub audience: Audience,
    /// The channel whose contacts get it.
    pub channel: String,
    /// The last contact id done (contacts are worked through in id order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Contacts the flow was started for so far.
    #[serde(default)]
    pub started: u64,
    /// Unix seconds it was created.
    pub created_at: i64,
}
