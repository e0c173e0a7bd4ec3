//! The durable send queue (DESIGN §1): jobs are committed with the turn that produced them, and
//! this worker sends them — one contact's strictly in order (the next waits until the provider
//! accepted the previous one), contacts in parallel, each channel paced by its `rate_limit`.
//!
//! Every attempt is claimed in the store first (attempt counted, job marked in flight, flushed),
//! so after a crash only the jobs in flight at that instant can be sent twice — and a job that
//! crashes the process every time still reaches `max_attempts`. Failures are acted on by their
//! classification ([`SendFailure`]): retried with backoff and jitter (honouring `Retry-After`),
//! replaced by the turn's fallback template outside the 24-hour window, or dead-lettered.

mod backoff;
mod rate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot, watch};
use tracing::Instrument;

pub use backoff::Backoff;
pub use rate::TokenBucket;

use crate::engine::Clock;
use crate::metrics::{Metrics, SendOutcome};
use crate::per_contact::{ContactLocks, ContactQueues, Drain};
use crate::provider::http::HttpClient;
use crate::provider::{Channel, HttpRequest, Registry, SendFailure};
use crate::store::{ContactKey, OutboxJob, Payload, Store, StoreError, TurnCommit};

/// How the outbox retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Attempts before a job is dead-lettered (config `max_attempts`).
    pub max_attempts: u32,
    /// Waits between attempts.
    pub backoff: Backoff,
    /// The longest `Retry-After` obeyed; a provider asking for more gets this.
    pub max_retry_after: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff: Backoff::default(),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

/// How the first attempt of a job went, for `POST /api/contacts/{channel}/{contact}/messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAttempt {
    /// The provider accepted it, with this message id.
    Sent(Option<String>),
    /// It failed and will be retried.
    Retrying {
        /// What the provider (or the network) said.
        error: String,
    },
    /// It failed for good and was dead-lettered.
    Refused {
        /// The provider's HTTP status, if it answered.
        status: Option<u16>,
        /// What it said.
        error: String,
        /// The dead letter's id.
        dead_id: Option<u64>,
    },
}

/// An item of a contact's send queue: a job id and the earliest time to attempt it.
#[derive(Debug, Clone, Copy)]
struct Queued {
    id: u64,
    not_before: i64,
}

/// The outbox worker; cheap to clone.
pub struct Outbox<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Outbox<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<S> {
    store: Arc<S>,
    channels: Arc<Registry>,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    locks: Arc<ContactLocks>,
    metrics: Arc<Metrics>,
    settings: OutboxSettings,
    queues: Arc<ContactQueues<Queued>>,
    buckets: HashMap<String, TokenBucket>,
    waiters: Mutex<HashMap<u64, oneshot::Sender<FirstAttempt>>>,
    /// Set on shutdown: no attempt starts after it.
    stopping: watch::Sender<bool>,
    /// Attempts under way, and a signal when that drops to zero.
    in_flight: AtomicUsize,
    idle: Notify,
}

/// What one attempt ended with.
enum Outcome {
    Accepted(Option<String>),
    Failed {
        decision: SendFailure,
        detail: String,
        status: Option<u16>,
    },
}

impl<S: Store> Outbox<S> {
    /// The worker for `channels`, sending through `http`; it shares the engine's store, clock,
    /// contact locks (an opted-out answer changes the contact's state) and metrics.
    pub fn new(
        store: Arc<S>,
        channels: Arc<Registry>,
        http: HttpClient,
        clock: Arc<dyn Clock>,
        locks: Arc<ContactLocks>,
        metrics: Arc<Metrics>,
        settings: OutboxSettings,
    ) -> Self {
        let buckets = channels
            .all()
            .iter()
            .filter_map(|channel| {
                TokenBucket::new(channel.rate_limit).map(|bucket| (channel.id.clone(), bucket))
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                store,
                channels,
                http,
                clock,
                locks,
                metrics,
                settings,
                queues: Arc::default(),
                buckets,
                waiters: Mutex::default(),
                stopping: watch::Sender::new(false),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// Starts sending `jobs` (just committed), each behind its contact's earlier jobs.
    pub fn enqueue(&self, jobs: &[OutboxJob]) {
        for job in jobs {
            self.push(
                &job.contact,
                Queued {
                    id: job.id,
                    not_before: job.next_attempt_at,
                },
            );
        }
    }

    /// Queues everything pending in the store (after a restart); returns how many jobs there
    /// were and how many of them were in flight when the process stopped.
    ///
    /// # Errors
    /// The store could not be read.
    pub async fn recover(&self) -> Result<(usize, usize), StoreError> {
        let pending = self.shared.store.pending_jobs(usize::MAX).await?;
        let in_flight = pending.iter().filter(|job| job.in_flight).count();
        self.enqueue(&pending);
        Ok((pending.len(), in_flight))
    }

    /// The outcome of job `id`'s next attempt; call it before [`Outbox::enqueue`] queues the
    /// job, so the outcome cannot be missed.
    pub fn watch_first_attempt(&self, id: u64) -> oneshot::Receiver<FirstAttempt> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.shared.waiters).insert(id, sender);
        receiver
    }

    /// Stops starting attempts and waits (at most `within`) for those under way to finish;
    /// what is left stays in the store for the next start.
    pub async fn stop(&self, within: Duration) {
        self.shared.stopping.send_replace(true);
        let drained = async {
            loop {
                // Created before the check, so a wake-up between the two is not missed.
                let idle = self.shared.idle.notified();
                if self.shared.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(within, drained).await.is_err() {
            tracing::warn!(
                message = "Sends still in flight at shutdown; they are retried on the next start.",
                in_flight = self.shared.in_flight.load(Ordering::SeqCst)
            );
        }
    }

    fn push(&self, contact: &ContactKey, item: Queued) {
        let shared = Arc::clone(&self.shared);
        self.shared
            .queues
            .push(contact, [item], |drain| shared.work(drain));
    }
}

impl<S: Store> Shared<S> {
    /// A contact's worker: its jobs one at a time, each until accepted or given up.
    async fn work(self: Arc<Self>, mut drain: Drain<Queued>) {
        let contact = drain.contact().clone();
        while let Some(item) = drain.next().await {
            if *self.stopping.borrow() {
                return;
            }
            if let Err(error) = self.deliver(&contact, item).await {
                tracing::error!(message = "Outbox store failed; the send is retried on the next start.", channel = %contact.channel, contact = %contact.id, job = item.id, %error);
            }
        }
    }

    /// Sends one job, retrying as its failures allow, until it is accepted, dead-lettered, or
    /// shutdown interrupts the wait for its next attempt.
    async fn deliver(&self, contact: &ContactKey, item: Queued) -> Result<(), StoreError> {
        let mut not_before =
            Duration::from_secs(u64::try_from(item.not_before - self.clock.now()).unwrap_or(0));
        loop {
            if !self.wait(not_before).await {
                return Ok(());
            }
            if let Some(bucket) = self.buckets.get(&contact.channel) {
                bucket.acquire().await;
            }
            let Some(job) = self.store.claim_job(contact, item.id).await? else {
                return Ok(());
            };
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let span = attempt_span(&job);
            let outcome = self.attempt(&job).instrument(span.clone()).await;
            let next = self.record(&job, outcome).instrument(span).await;
            if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.idle.notify_waiters();
            }
            match next? {
                Some(wait) => not_before = wait,
                None => return Ok(()),
            }
        }
    }

    /// Sleeps `duration` unless shutdown starts; whether to go on.
    async fn wait(&self, duration: Duration) -> bool {
        let mut stopping = self.stopping.subscribe();
        if *stopping.borrow() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => !*self.stopping.borrow(),
            _ = stopping.wait_for(|stop| *stop) => false,
        }
    }

    /// One attempt: the request built anew (signed requests carry a timestamp), sent, and the
    /// answer classified by the channel's provider.
    async fn attempt(&self, job: &OutboxJob) -> Outcome {
        let Some(channel) = self.channels.channel(&job.contact.channel) else {
            return Outcome::Failed {
                decision: SendFailure::DoNotRetry,
                detail: format!(
                    "channel {} is no longer configured; add it back to chatflow.yaml and retry the dead letter",
                    job.contact.channel
                ),
                status: None,
            };
        };
        let request = match request_for(channel, job) {
            Ok(Some(request)) => request,
            Ok(None) => return Outcome::Accepted(None),
            Err(detail) => {
                return Outcome::Failed {
                    decision: SendFailure::DoNotRetry,
                    detail,
                    status: None,
                };
            }
        };
        let started = Instant::now();
        let answer = self.http.execute(&request).await;
        self.metrics.send_took(&channel.id, started.elapsed());
        match answer {
            Ok(response) => match channel.provider.read_response(&response) {
                Ok(sent) => Outcome::Accepted(sent.provider_id),
                Err(error) => Outcome::Failed {
                    decision: error.decision,
                    detail: error.detail,
                    status: Some(response.status),
                },
            },
            Err(error) => Outcome::Failed {
                decision: SendFailure::Retry,
                detail: error.to_string(),
                status: None,
            },
        }
    }

    /// Records an attempt's outcome; returns the wait before the next attempt of the same job
    /// (`None`: the job is done with).
    async fn record(
        &self,
        job: &OutboxJob,
        outcome: Outcome,
    ) -> Result<Option<Duration>, StoreError> {
        let now = self.clock.now();
        let (decision, detail, status) = match outcome {
            Outcome::Accepted(provider_id) => {
                tracing::debug!(channel = %job.contact.channel, contact = %job.contact.id, job = job.id, ?provider_id, "sent");
                self.store.ack_job(job, provider_id.clone(), now).await?;
                self.count(job, SendOutcome::Sent);
                self.notify(job.id, FirstAttempt::Sent(provider_id));
                return Ok(None);
            }
            Outcome::Failed {
                decision,
                detail,
                status,
            } => (decision, detail, status),
        };
        tracing::warn!(message = "Send failed.", channel = %job.contact.channel, contact = %job.contact.id, job = job.id, attempt = job.attempts, decision = ?decision, error = %detail);
        if let Payload::MarkRead { .. } = job.payload {
            // Blue ticks are not worth delaying the replies queued behind them.
            self.store.ack_job(job, None, now).await?;
            return Ok(None);
        }
        let retry_in = match decision {
            SendFailure::Retry => Some(self.settings.backoff.after(job.attempts)),
            SendFailure::RateLimited(after) => Some(after.map_or_else(
                || self.settings.backoff.after(job.attempts),
                |after| after.min(self.settings.max_retry_after),
            )),
            _ => None,
        };
        if let Some(wait) = retry_in
            && job.attempts < self.settings.max_attempts
        {
            let next = now + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2) + 1;
            self.store.retry_job(job, next, detail.clone()).await?;
            self.count(job, SendOutcome::Retried);
            self.notify(job.id, FirstAttempt::Retrying { error: detail });
            return Ok(Some(wait));
        }
        let reason = match decision {
            SendFailure::Retry | SendFailure::RateLimited(_) => {
                format!("gave up after {} attempts: {detail}", job.attempts)
            }
            SendFailure::OutsideWindow => {
                return self.outside_window(job, detail, status, now).await;
            }
            SendFailure::OptedOut => {
                self.opt_out(&job.contact, now).await?;
                format!("the contact opted out: {detail}")
            }
            SendFailure::DoNotRetry => format!("refused: {detail}"),
        };
        let dead = self.store.bury_job(job, reason, now).await?;
        self.count(job, SendOutcome::DeadLettered);
        tracing::error!(message = "Send dead-lettered.", channel = %job.contact.channel, contact = %job.contact.id, dead = dead.id, reason = %dead.reason);
        self.notify(
            job.id,
            FirstAttempt::Refused {
                status,
                error: detail,
                dead_id: Some(dead.id),
            },
        );
        Ok(None)
    }

    /// The 24-hour window is closed: the turn's messages give way to its fallback template,
    /// sent once, in the same place in the contact's queue.
    async fn outside_window(
        &self,
        job: &OutboxJob,
        detail: String,
        status: Option<u16>,
        now: i64,
    ) -> Result<Option<Duration>, StoreError> {
        let reason = match &job.fallback {
            Some(_) => format!(
                "outside the 24-hour window; the fallback template was sent instead: {detail}"
            ),
            None => format!(
                "outside the 24-hour window and no outside_window template is configured (step or channel): {detail}"
            ),
        };
        let replacement = self.store.replace_with_fallback(job, reason, now).await?;
        self.count(job, SendOutcome::OutsideWindow);
        self.notify(
            job.id,
            FirstAttempt::Refused {
                status,
                error: detail,
                dead_id: None,
            },
        );
        Ok(replacement.map(|_| Duration::ZERO))
    }

    /// The provider says the contact opted out: engine-started messages stop until they write
    /// a start word.
    async fn opt_out(&self, contact: &ContactKey, now: i64) -> Result<(), StoreError> {
        let _turn = self.locks.lock(contact).await;
        let Some(mut state) = self.store.load_contact(contact).await? else {
            return Ok(());
        };
        if state.opted_out {
            return Ok(());
        }
        state.opted_out = true;
        self.store
            .commit_turn(TurnCommit::state_only(state, now))
            .await?;
        Ok(())
    }

    /// Counts how an attempt to send a message ended (read receipts are not counted).
    fn count(&self, job: &OutboxJob, outcome: SendOutcome) {
        if let Payload::Message { .. } = job.payload {
            self.metrics.send(&job.contact.channel, outcome);
        }
    }

    fn notify(&self, id: u64, attempt: FirstAttempt) {
        if let Some(waiter) = lock(&self.waiters).remove(&id) {
            let _ = waiter.send(attempt);
        }
    }
}

/// The span of one send attempt, so its log lines (and the one written when it closes, with
/// its duration) say which job, contact and attempt they are about.
fn attempt_span(job: &OutboxJob) -> tracing::Span {
    tracing::info_span!(
        "send",
        channel = %job.contact.channel,
        contact = %job.contact.id,
        job = job.id,
        attempt = job.attempts,
    )
}

/// The provider request for `job`; `None` when the provider has nothing to send for it (no
/// mark-as-read API); an error when the message cannot be built (a flow bug, never retried).
fn request_for(channel: &Channel, job: &OutboxJob) -> Result<Option<HttpRequest>, String> {
    match &job.payload {
        Payload::Message { message } => channel
            .provider
            .send_request(&job.contact.id, message)
            .map(Some)
            .map_err(|error| format!("the message cannot be sent on {}: {error}", channel.id)),
        Payload::MarkRead { message_id } => Ok(channel.provider.mark_read_request(message_id)),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
