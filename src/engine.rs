//! The engine: one contact's messages handled strictly in arrival order, different contacts in
//! parallel, each turn run through the pure runtime and committed in one store transaction.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, RwLock, Weak};

use serde_json::Value;
use tokio::sync::{Notify, OwnedMutexGuard};

use crate::flow::runtime::{Effects, Input, Note};
use crate::flow::state::ContactState;
use crate::flow::{Bot, handle};
use crate::message::{InboundEvent, InboundMessage, Reply};
use crate::outbox::{Job, Outbox};
use crate::provider::degrade::degrade;
use crate::provider::http::HttpClient;
use crate::provider::{Capabilities, Channel, ParseError, Registry, RoutedEvent};
use crate::store::{
    ContactKey, Direction, NewLogEntry, Store, StoreError, StoredTimer, TurnCommit, Unrecognized,
};

/// Where the engine reads the time, so tests can move it.
pub trait Clock: Send + Sync + 'static {
    /// Unix seconds.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

/// Why a message could not be handled; nothing was committed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input could not become a message.
    #[error("{0}")]
    Input(String),
}

/// Why a webhook body could not be taken in.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not a body the provider accepts at all (400, nothing stored).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The store failed (the provider must retry).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What one webhook body held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ingested {
    /// Events handled.
    pub handled: usize,
    /// Payloads acknowledged and recorded as unrecognized.
    pub unrecognized: usize,
}

/// The engine over a store `S`.
pub struct Engine<S> {
    bot: RwLock<Arc<Bot>>,
    store: S,
    locks: ContactLocks,
    clock: Arc<dyn Clock>,
    timers_changed: Notify,
    channels: Arc<Registry>,
    outbox: Option<Outbox>,
}

impl<S: Store> Engine<S> {
    /// An engine running `bot` on `store`.
    pub fn new(bot: Bot, store: S, clock: Arc<dyn Clock>) -> Self {
        Self {
            bot: RwLock::new(Arc::new(bot)),
            store,
            locks: ContactLocks::default(),
            clock,
            timers_changed: Notify::new(),
            channels: Arc::default(),
            outbox: None,
        }
    }

    /// The engine sending through `channels`' providers via `outbox` (without it, replies
    /// only go to the transcript, as for the simulator).
    #[must_use]
    pub fn with_channels(mut self, channels: Arc<Registry>, outbox: Outbox) -> Self {
        self.channels = channels;
        self.outbox = Some(outbox);
        self
    }

    /// The configured channels.
    #[must_use]
    pub fn channels(&self) -> &Registry {
        &self.channels
    }

    /// Takes in one (verified) webhook body of `channel`: every event handled on the channel
    /// it belongs to (Meta routes by `phone_number_id`), everything else recorded as
    /// unrecognized. Returns once all of it is committed.
    ///
    /// # Errors
    /// The body is unusable, or the store failed.
    pub async fn ingest(
        &self,
        channel: &Arc<Channel>,
        body: &[u8],
    ) -> Result<Ingested, IngestError> {
        let parsed = channel.parse(body)?;
        let mut unrecognized: Vec<(String, Value)> = parsed
            .unrecognized
            .into_iter()
            .map(|payload| ("not a message or status".to_owned(), payload))
            .collect();
        let mut handled = 0;
        for routed in parsed.events {
            let Some(target) = self.target(channel, &routed) else {
                let reason = format!(
                    "no channel has phone_number_id {}",
                    routed.route.as_deref().unwrap_or_default()
                );
                unrecognized.push((reason, to_value(&routed.event)));
                continue;
            };
            self.handle_event(&target, routed.event).await?;
            handled += 1;
        }
        let now = self.now();
        for (reason, payload) in &unrecognized {
            let record = Unrecognized {
                channel: channel.id.clone(),
                at: now,
                reason: reason.clone(),
                payload: payload.clone(),
            };
            self.store
                .record_unrecognized(record)
                .await
                .map_err(EngineError::from)?;
        }
        Ok(Ingested {
            handled,
            unrecognized: unrecognized.len(),
        })
    }

    /// Pulls webhooks the providers gave up delivering while chatflow was down (Ivosights
    /// keeps them for this), and takes them in; a failure is logged, not fatal.
    pub async fn pull_pending(&self, http: &HttpClient) {
        for channel in self.channels.all() {
            let Some(request) = channel.provider.pending_request() else {
                continue;
            };
            let pulled = match http.execute(&request).await {
                Ok(response) if (200..300).contains(&response.status) => {
                    self.ingest(channel, &response.body).await
                }
                Ok(response) => {
                    tracing::warn!(message = "Pending notifications not pulled.", channel = %channel.id, status = response.status);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(message = "Pending notifications not pulled.", channel = %channel.id, %error);
                    continue;
                }
            };
            match pulled {
                Ok(ingested) => {
                    tracing::info!(message = "Pending notifications taken in.", channel = %channel.id, handled = ingested.handled)
                }
                Err(error) => {
                    tracing::warn!(message = "Pending notifications not usable.", channel = %channel.id, %error)
                }
            }
        }
    }

    /// The channel an event belongs to: by routing key when it has one, else the webhook's own.
    fn target(&self, own: &Arc<Channel>, routed: &RoutedEvent) -> Option<Arc<Channel>> {
        match &routed.route {
            None => Some(Arc::clone(own)),
            Some(route) if own.route_key.as_deref() == Some(route) => Some(Arc::clone(own)),
            Some(route) => self.channels.by_route(route).cloned(),
        }
    }

    /// Handles one event of a provider webhook on `channel`.
    ///
    /// # Errors
    /// The store failed; the webhook must not be acknowledged.
    pub async fn handle_event(
        &self,
        channel: &Channel,
        event: InboundEvent,
    ) -> Result<(), EngineError> {
        match event {
            InboundEvent::Message(message) => {
                let contact = ContactKey::new(&channel.id, &message.from);
                self.handle_message(&contact, |_, _| Ok(message)).await?;
            }
            InboundEvent::Status(status) => {
                let contact = ContactKey::new(&channel.id, &status.recipient);
                let key = format!(
                    "status:{}:{}:{}",
                    channel.id,
                    status.message_id,
                    status.status.as_str()
                );
                self.handle_input(&contact, Input::Status(&status), key)
                    .await?;
            }
            InboundEvent::Preference(change) => {
                let contact = ContactKey::new(&channel.id, &change.contact);
                let _turn = self.locks.lock(&contact).await;
                let mut state = self.load_or_new(&contact).await?;
                state.opted_out = change.opted_out;
                self.commit(&contact, state, None, Effects::default(), None, None)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs an input that is not a user message (a status) for a known contact.
    async fn handle_input(
        &self,
        contact: &ContactKey,
        input: Input<'_>,
        dedupe_key: String,
    ) -> Result<(), EngineError> {
        let _turn = self.locks.lock(contact).await;
        let Some(mut state) = self.store.load_contact(contact).await? else {
            return Ok(());
        };
        if self.store.seen(&dedupe_key).await? {
            return Ok(());
        }
        let bot = self.bot();
        let effects = handle(&bot, &mut state, input, self.now());
        self.commit(contact, state, None, effects, None, Some(dedupe_key))
            .await?;
        Ok(())
    }

    /// The bot currently running.
    #[must_use]
    pub fn bot(&self) -> Arc<Bot> {
        match self.bot.read() {
            Ok(bot) => Arc::clone(&bot),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The store, for read-only views.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current time.
    #[must_use]
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Handles one message from `contact`, built from its state (so a tapped button can carry
    /// the title it showed); returns the replies, committed with the new state.
    ///
    /// # Errors
    /// The input is invalid or the store failed; nothing was committed.
    pub async fn handle_message<F>(
        &self,
        contact: &ContactKey,
        build: F,
    ) -> Result<Vec<Reply>, EngineError>
    where
        F: FnOnce(&ContactState, i64) -> Result<InboundMessage, String>,
    {
        let _turn = self.locks.lock(contact).await;
        let mut state = self.load_or_new(contact).await?;
        let now = self.now();
        let message = build(&state, now).map_err(EngineError::Input)?;
        let dedupe_key = format!("message:{}:{}", contact.channel, message.id);
        if self.store.seen(&dedupe_key).await? {
            tracing::debug!(channel = %contact.channel, contact = %contact.id, id = %message.id, "redelivered message ignored");
            return Ok(Vec::new());
        }
        let bot = self.bot();
        let effects = handle(&bot, &mut state, Input::Message(&message), now);
        let inbound = NewLogEntry {
            at: now,
            direction: Direction::Inbound,
            message: to_value(&message),
        };
        self.commit(
            contact,
            state,
            Some(inbound),
            effects,
            None,
            Some(dedupe_key),
        )
        .await
    }

    /// Fires every timer due now, each in its contact's order; returns how many fired.
    ///
    /// # Errors
    /// The store failed; timers not yet fired stay for the next round.
    pub async fn fire_due_timers(&self) -> Result<usize, EngineError> {
        let due = self.store.due_timers(self.now(), 256).await?;
        let fired = due.len();
        for timer in due {
            self.fire(timer).await?;
        }
        Ok(fired)
    }

    async fn fire(&self, stored: StoredTimer) -> Result<(), EngineError> {
        let _turn = self.locks.lock(&stored.contact).await;
        let Some(mut state) = self.store.load_contact(&stored.contact).await? else {
            return Ok(self.store.drop_timer(stored.id).await?);
        };
        let bot = self.bot();
        let effects = handle(&bot, &mut state, stored.timer.input(), self.now());
        self.commit(&stored.contact, state, None, effects, Some(stored.id), None)
            .await?;
        Ok(())
    }

    /// Runs due timers until `shutdown` resolves: sleeps until the next due time (at most a
    /// minute), woken early when a turn sets an earlier timer.
    pub async fn run_timers(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.fire_due_timers().await {
                tracing::error!(message = "Timers could not fire; retrying.", %error);
            }
            let wait = match self.store.next_due().await {
                Ok(Some(due)) => (due - self.now()).clamp(0, 60),
                _ => 60,
            };
            let sleep = tokio::time::sleep(std::time::Duration::from_secs(wait.unsigned_abs()));
            tokio::select! {
                () = sleep => {}
                () = self.timers_changed.notified() => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// Sweeps the store hourly (and once at start) until `shutdown`: dedupe keys older than
    /// `dedupe_window` and log entries older than `log_retention` go.
    pub async fn run_sweeper(
        self: Arc<Self>,
        dedupe_window: crate::duration::Duration,
        log_retention: crate::duration::Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let now = self.now();
            let swept = self
                .store
                .sweep(
                    now - dedupe_window.as_secs_i64(),
                    now - log_retention.as_secs_i64(),
                )
                .await;
            match swept {
                Ok(swept) => tracing::debug!(?swept, "store swept"),
                Err(error) => {
                    tracing::error!(message = "Store sweep failed; retrying later.", %error)
                }
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                () = &mut shutdown => return,
            }
        }
    }

    async fn load_or_new(&self, contact: &ContactKey) -> Result<ContactState, StoreError> {
        Ok(self
            .store
            .load_contact(contact)
            .await?
            .unwrap_or_else(|| ContactState::new(&contact.channel, &contact.id)))
    }

    /// Degrades the replies for the contact's channel, commits the turn, then queues the sends.
    async fn commit(
        &self,
        contact: &ContactKey,
        mut state: ContactState,
        inbound: Option<NewLogEntry>,
        effects: Effects,
        fired_timer: Option<u64>,
        dedupe_key: Option<String>,
    ) -> Result<Vec<Reply>, EngineError> {
        let now = self.now();
        let channel = self.channels.channel(&contact.channel).cloned();
        let capabilities = channel
            .as_ref()
            .map_or(Capabilities::ALL, |c| c.provider.capabilities());
        let replies = render_for(&capabilities, effects.replies, &mut state);
        let inbound_id = inbound
            .as_ref()
            .and_then(|entry| entry.message["id"].as_str().map(str::to_owned));
        let mut log: Vec<NewLogEntry> = inbound.into_iter().collect();
        log.extend(replies.iter().map(|reply| NewLogEntry {
            at: now,
            direction: Direction::Outbound,
            message: to_value(reply),
        }));
        trace_notes(contact, &effects.notes);
        let sets_timers = !effects.timers.is_empty();
        self.store
            .commit_turn(TurnCommit {
                state,
                log,
                timers: effects.timers,
                fired_timer,
                dedupe_key,
                committed_at: now,
            })
            .await?;
        if sets_timers {
            self.timers_changed.notify_one();
        }
        if let (Some(channel), Some(outbox)) = (channel, &self.outbox)
            && channel.provider.delivers()
        {
            let read = inbound_id
                .and_then(|id| channel.provider.mark_read_request(&id))
                .map(Job::Request);
            let jobs = read.into_iter().chain(
                replies
                    .iter()
                    .map(|reply| Job::Message(Box::new(reply.message.clone()))),
            );
            outbox.enqueue(&channel, contact, jobs.collect());
        }
        Ok(replies)
    }
}

/// The replies as the channel can show them; a degraded menu is remembered so a numbered or
/// titled answer resolves to its option (routing step 4).
fn render_for(
    capabilities: &Capabilities,
    replies: Vec<Reply>,
    state: &mut ContactState,
) -> Vec<Reply> {
    if replies.is_empty() {
        return replies;
    }
    state.degraded_menu.clear();
    replies
        .into_iter()
        .map(|reply| {
            let degraded = degrade(&reply.message, reply.fallback_text.as_deref(), capabilities);
            if !degraded.menu.is_empty() {
                state.degraded_menu = degraded.menu;
            }
            Reply {
                message: degraded.message,
                fallback_text: reply.fallback_text,
            }
        })
        .collect()
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn trace_notes(contact: &ContactKey, notes: &[Note]) {
    for note in notes {
        match note {
            Note::Error { message } => {
                tracing::warn!(message = "Flow step failed.", channel = %contact.channel, contact = %contact.id, error = %message);
            }
            other => {
                tracing::debug!(channel = %contact.channel, contact = %contact.id, note = ?other)
            }
        }
    }
}

/// Contacts' turn locks, held weakly so unused ones can be dropped.
type LockShard = HashMap<ContactKey, Weak<tokio::sync::Mutex<()>>>;

/// One async mutex per contact, created on demand and dropped when unused; sharded so taking
/// one never contends on a global lock.
struct ContactLocks {
    shards: Box<[Mutex<LockShard>]>,
    hasher: RandomState,
}

impl Default for ContactLocks {
    fn default() -> Self {
        Self {
            shards: (0..64).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl ContactLocks {
    /// Waits for the contact's turn; waiters are served first come, first served.
    async fn lock(&self, contact: &ContactKey) -> OwnedMutexGuard<()> {
        let mutex = self.mutex(contact);
        mutex.lock_owned().await
    }

    fn mutex(&self, contact: &ContactKey) -> Arc<tokio::sync::Mutex<()>> {
        let index =
            usize::try_from(self.hasher.hash_one(contact) % self.shards.len() as u64).unwrap_or(0);
        let mut shard = match self.shards[index].lock() {
            Ok(shard) => shard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(mutex) = shard.get(contact).and_then(Weak::upgrade) {
            return mutex;
        }
        if shard.len() >= 1024 {
            shard.retain(|_, weak| weak.strong_count() > 0);
        }
        let mutex = Arc::new(tokio::sync::Mutex::new(()));
        shard.insert(contact.clone(), Arc::downgrade(&mutex));
        mutex
    }
}
