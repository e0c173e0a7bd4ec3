//! The engine: webhook events accepted into a durable inbox, one contact's handled strictly in
//! arrival order and different contacts in parallel, each turn run through the pure runtime and
//! committed in one store transaction together with the sends it queues and the inbox entry it
//! consumed; the outbox worker sends them after.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::flow::runtime::{Effects, Input, Note};
use crate::flow::state::ContactState;
use crate::flow::{Bot, handle};
use crate::handoff::HandoffWebhook;
use crate::message::{DeliveryStatus, InboundEvent, InboundMessage, Outbound, Reply};
use crate::metrics::{DedupeHit, Metrics, WebhookResult};
use crate::outbox::{FirstAttempt, Outbox, OutboxSettings};
use crate::per_contact::{ContactLocks, ContactQueues, Drain};
use crate::provider::degrade::degrade;
use crate::provider::http::HttpClient;
use crate::provider::{Capabilities, Channel, ParseError, Registry, RoutedEvent, SendFailure};
use crate::store::{
    Committed, ContactKey, Delivery, DeliveryState, DeliveryUpdate, Direction, InboxEntry,
    NewInboxEntry, NewJob, NewLogEntry, OutboxJob, Payload, Store, StoreError, StoredTimer,
    TurnCommit, Unrecognized,
};

/// Where the engine reads the time, so tests can move it.
pub trait Clock: Send + Sync + 'static {
    /// Unix seconds.
    fn now(&self) -> i64;

    /// Unix milliseconds, for sleeping until a due second starts (not a second late).
    fn now_millis(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn now_millis(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
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
    /// Events accepted into the inbox (handled right after, in each contact's order).
    pub accepted: usize,
    /// Events skipped because they were handled before (a provider redelivering).
    pub duplicates: usize,
    /// Payloads acknowledged and recorded as unrecognized.
    pub unrecognized: usize,
}

/// What an operator's send (`POST /api/contacts/{channel}/{contact}/messages`) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorSend {
    /// Logged to the contact's transcript; the channel does not deliver (the simulator).
    Logged,
    /// The first attempt's outcome, or `None` when it did not finish within the wait.
    Attempted {
        /// The outbox job.
        job: u64,
        /// How it went.
        first: Option<FirstAttempt>,
    },
}

/// The engine over a store `S`.
pub struct Engine<S> {
    bot: RwLock<Arc<Bot>>,
    store: Arc<S>,
    locks: Arc<ContactLocks>,
    clock: Arc<dyn Clock>,
    timers_changed: Notify,
    channels: Arc<Registry>,
    outbox: Option<Outbox<S>>,
    /// What the engine did, counted; shared with the outbox and the server.
    metrics: Arc<Metrics>,
    /// Accepted webhook events, fed to one worker per contact.
    inbox: Arc<ContactQueues<Arrival>>,
    /// Held while numbering and queueing a webhook's events, so queue order is arrival order.
    inbox_order: tokio::sync::Mutex<()>,
    /// Inbox entries queued and not yet handled, and a signal when that reaches zero.
    unhandled: AtomicUsize,
    all_handled: Notify,
    /// One pace per channel shared by every broadcast on it, so broadcasts together keep to
    /// their share of the channel's rate.
    broadcast_paces:
        std::sync::Mutex<std::collections::HashMap<String, Arc<crate::outbox::TokenBucket>>>,
    /// Told of every handoff change, when configured.
    handoff_webhook: Option<Arc<HandoffWebhook>>,
}

/// An inbox entry on its way to its contact's worker, with when its webhook arrived (`None` for
/// an entry recovered at start, whose wait includes the downtime).
struct Arrival {
    entry: InboxEntry,
    at: Option<Instant>,
}

/// Everything one turn commits, gathered before the store is called.
struct PendingTurn {
    contact: ContactKey,
    state: ContactState,
    inbound: Option<InboundMessage>,
    effects: Effects,
    fired_timer: Option<u64>,
    dedupe_keys: Vec<String>,
    inbox_done: Option<u64>,
    delivery: Option<DeliveryUpdate>,
    /// Sent ahead of the turn's replies (an outside-window fallback a status asked for).
    extra: Vec<Reply>,
    /// The engine started this turn by itself (a timer, schedule, broadcast or status): the
    /// 24-hour window applies to what it sends.
    engine_started: bool,
}

impl PendingTurn {
    fn new(contact: &ContactKey, state: ContactState, effects: Effects) -> Self {
        Self {
            contact: contact.clone(),
            state,
            inbound: None,
            effects,
            fired_timer: None,
            dedupe_keys: Vec::new(),
            inbox_done: None,
            delivery: None,
            extra: Vec::new(),
            engine_started: false,
        }
    }
}

impl<S: Store> Engine<S> {
    /// An engine running `bot` on `store`.
    pub fn new(bot: Bot, store: S, clock: Arc<dyn Clock>) -> Self {
        Self {
            bot: RwLock::new(Arc::new(bot)),
            store: Arc::new(store),
            locks: Arc::default(),
            metrics: Arc::new(Metrics::new(clock.now())),
            clock,
            timers_changed: Notify::new(),
            channels: Arc::default(),
            outbox: None,
            inbox: Arc::default(),
            inbox_order: tokio::sync::Mutex::new(()),
            unhandled: AtomicUsize::new(0),
            all_handled: Notify::new(),
            broadcast_paces: std::sync::Mutex::default(),
            handoff_webhook: None,
        }
    }

    /// The engine announcing handoff changes to `webhook`.
    #[must_use]
    pub fn with_handoff_webhook(mut self, webhook: HandoffWebhook) -> Self {
        self.handoff_webhook = Some(Arc::new(webhook));
        self
    }

    /// The pace broadcasts on `channel` share, made by `make` the first time (`None`: unpaced).
    pub fn broadcast_pace(
        &self,
        channel: &str,
        make: impl FnOnce() -> Option<crate::outbox::TokenBucket>,
    ) -> Option<Arc<crate::outbox::TokenBucket>> {
        let mut paces = self
            .broadcast_paces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pace) = paces.get(channel) {
            return Some(Arc::clone(pace));
        }
        let pace = Arc::new(make()?);
        paces.insert(channel.to_owned(), Arc::clone(&pace));
        Some(pace)
    }

    /// The engine sending through `channels`' providers with `http` (without it, replies only
    /// go to the transcript, as for the simulator).
    #[must_use]
    pub fn with_channels(
        mut self,
        channels: Arc<Registry>,
        http: HttpClient,
        settings: OutboxSettings,
    ) -> Self {
        self.outbox = Some(Outbox::new(
            Arc::clone(&self.store),
            Arc::clone(&channels),
            http,
            Arc::clone(&self.clock),
            Arc::clone(&self.locks),
            Arc::clone(&self.metrics),
            settings,
        ));
        self.channels = channels;
        self
    }

    /// What the engine did so far, counted (for `GET /metrics` and tests).
    #[must_use]
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The configured channels.
    #[must_use]
    pub fn channels(&self) -> &Registry {
        &self.channels
    }

    /// The outbox worker, when the engine delivers through providers.
    #[must_use]
    pub fn outbox(&self) -> Option<&Outbox<S>> {
        self.outbox.as_ref()
    }

    /// Takes in one (verified) webhook body of `channel`: its events are put in the inbox,
    /// each on the channel it belongs to (Meta routes by `phone_number_id`), everything else
    /// recorded as unrecognized; returns once that is durable. Handling follows in the
    /// background, in each contact's arrival order.
    ///
    /// # Errors
    /// The body is unusable, or the store failed (the provider must retry).
    pub async fn ingest(
        self: &Arc<Self>,
        channel: &Arc<Channel>,
        body: &[u8],
    ) -> Result<Ingested, IngestError> {
        let arrived = Instant::now();
        let malformed = |_: &ParseError| {
            self.metrics
                .webhook(&channel.id, WebhookResult::Malformed, 1);
        };
        let parsed = channel.parse(body).inspect_err(malformed)?;
        let now = self.now();
        let unrecognized_record = |reason: String, payload: Value| Unrecognized {
            channel: channel.id.clone(),
            at: now,
            reason,
            payload,
        };
        let mut unrecognized: Vec<Unrecognized> = parsed
            .unrecognized
            .into_iter()
            .map(|payload| unrecognized_record("not a message or status".to_owned(), payload))
            .collect();
        let mut entries = Vec::new();
        let mut duplicates = 0;
        for routed in parsed.events {
            let Some(target) = self.target(channel, &routed) else {
                let reason = format!(
                    "no channel has phone_number_id {}",
                    routed.route.as_deref().unwrap_or_default()
                );
                unrecognized.push(unrecognized_record(reason, to_value(&routed.event)));
                continue;
            };
            if self.handled_before(&target.id, &routed.event).await? {
                duplicates += 1;
                continue;
            }
            entries.push(NewInboxEntry {
                channel: target.id.clone(),
                received_at: now,
                event: routed.event,
            });
        }
        let unrecognized_count = unrecognized.len();
        let accepted = {
            let _order = self.inbox_order.lock().await;
            let accepted = self
                .store
                .accept_inbound(entries, unrecognized)
                .await
                .map_err(EngineError::from)?;
            for entry in &accepted {
                self.dispatch(entry.clone(), Some(arrived));
            }
            accepted.len()
        };
        self.store.flush().await.map_err(EngineError::from)?;
        for (result, events) in [
            (WebhookResult::Accepted, accepted),
            (WebhookResult::Duplicate, duplicates),
            (WebhookResult::Unrecognized, unrecognized_count),
        ] {
            self.metrics.webhook(&channel.id, result, events);
        }
        Ok(Ingested {
            accepted,
            duplicates,
            unrecognized: unrecognized_count,
        })
    }

    /// Whether `event` was handled already (a redelivered message or status).
    async fn handled_before(
        &self,
        channel: &str,
        event: &InboundEvent,
    ) -> Result<bool, EngineError> {
        let (key, hit) = match event {
            InboundEvent::Message(message) => {
                (message_key(channel, &message.id), DedupeHit::Message)
            }
            InboundEvent::Status(status) => (status_key(channel, status), DedupeHit::Status),
            InboundEvent::Preference(_) => return Ok(false),
        };
        let seen = self.store.seen(&key).await?;
        if seen {
            self.metrics.dedupe_hit(hit);
        }
        Ok(seen)
    }

    /// Queues an accepted inbox entry, whose webhook arrived `at`, behind its contact's
    /// earlier ones.
    fn dispatch(self: &Arc<Self>, entry: InboxEntry, at: Option<Instant>) {
        let contact = ContactKey::new(&entry.channel, event_contact(&entry.event));
        self.unhandled.fetch_add(1, Ordering::SeqCst);
        let engine = Arc::clone(self);
        self.inbox.push(&contact, [Arrival { entry, at }], |drain| {
            engine.work_inbox(drain)
        });
    }

    /// A contact's inbox worker: its entries one at a time, in arrival order.
    async fn work_inbox(self: Arc<Self>, mut drain: Drain<Arrival>) {
        while let Some(arrival) = drain.next().await {
            self.handle_entry(arrival).await;
            if self.unhandled.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.all_handled.notify_waiters();
            }
        }
    }

    /// Handles one inbox entry, retrying a failing store a few times; if it keeps failing the
    /// entry stays in the inbox and is handled on the next start.
    async fn handle_entry(&self, Arrival { entry, at }: Arrival) {
        let Some(channel) = self.channels.channel(&entry.channel).cloned() else {
            tracing::warn!(message = "Inbox entry of a channel no longer configured; dropped.", channel = %entry.channel, seq = entry.seq);
            if let Err(error) = self.store.finish_inbound(entry.seq).await {
                tracing::error!(message = "Inbox entry could not be dropped.", %error);
            }
            return;
        };
        for attempt in 1..=3u32 {
            match self
                .handle_inbound(&channel, entry.event.clone(), Some(entry.seq))
                .await
            {
                Ok(()) => {
                    if let Some(at) = at {
                        self.metrics.committed_after(at.elapsed());
                    }
                    return;
                }
                Err(error) => {
                    tracing::error!(message = "Event not handled; retrying.", channel = %entry.channel, seq = entry.seq, attempt, %error);
                    tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt))).await;
                }
            }
        }
        tracing::error!(message = "Event left in the inbox; it is handled on the next start.", channel = %entry.channel, seq = entry.seq);
    }

    /// Picks up what a stop left behind: unhandled inbox entries (handled now, in order) and
    /// pending sends (queued again). Call once at start, before serving webhooks.
    ///
    /// # Errors
    /// The store could not be read.
    pub async fn recover(self: &Arc<Self>) -> Result<(), EngineError> {
        // Sends first: the recovered events' turns queue new replies, which go behind them.
        if let Some(outbox) = &self.outbox {
            let (jobs, in_flight) = outbox.recover().await?;
            if in_flight > 0 {
                tracing::warn!(
                    message = "Sends were in flight at the last stop; they are sent again, and may arrive twice.",
                    in_flight
                );
            }
            if jobs > 0 {
                tracing::info!(
                    message = "Sending replies queued before the last stop.",
                    jobs
                );
            }
        }
        let pending = self.store.pending_inbound().await?;
        if !pending.is_empty() {
            tracing::info!(
                message = "Handling events accepted before the last stop.",
                count = pending.len()
            );
        }
        let _order = self.inbox_order.lock().await;
        for entry in pending {
            self.dispatch(entry, None);
        }
        Ok(())
    }

    /// Waits (at most `within`) until every accepted event is handled; whether it was.
    pub async fn drain_inbox(&self, within: std::time::Duration) -> bool {
        let drained = async {
            loop {
                let notified = self.all_handled.notified();
                if self.unhandled.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(within, drained).await.is_ok()
    }

    /// Pulls webhooks the providers gave up delivering while chatflow was down (Ivosights
    /// keeps them for this), and takes them in; a failure is logged, not fatal.
    pub async fn pull_pending(self: &Arc<Self>, http: &HttpClient) {
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
                    tracing::info!(message = "Pending notifications taken in.", channel = %channel.id, accepted = ingested.accepted)
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

    /// Handles one event of a provider webhook on `channel` right away (tests, and the inbox
    /// workers through [`Engine::ingest`]).
    ///
    /// # Errors
    /// The store failed; nothing was committed.
    pub async fn handle_event(
        &self,
        channel: &Channel,
        event: InboundEvent,
    ) -> Result<(), EngineError> {
        self.handle_inbound(channel, event, None).await
    }

    /// Handles one event in its own span (see [`event_span`]).
    async fn handle_inbound(
        &self,
        channel: &Channel,
        event: InboundEvent,
        inbox_seq: Option<u64>,
    ) -> Result<(), EngineError> {
        let span = event_span(&ContactKey::new(&channel.id, event_contact(&event)));
        self.inbound_turn(channel, event, inbox_seq)
            .instrument(span)
            .await
    }

    async fn inbound_turn(
        &self,
        channel: &Channel,
        event: InboundEvent,
        inbox_seq: Option<u64>,
    ) -> Result<(), EngineError> {
        match event {
            InboundEvent::Message(message) => {
                let contact = ContactKey::new(&channel.id, &message.from);
                self.message_turn(&contact, |_, _| Ok(message), inbox_seq)
                    .await?;
            }
            InboundEvent::Status(status) => self.status_turn(channel, &status, inbox_seq).await?,
            InboundEvent::Preference(change) => {
                let contact = ContactKey::new(&channel.id, &change.contact);
                let _turn = self.locks.lock(&contact).await;
                let mut state = self.load_or_new(&contact).await?;
                state.opted_out = change.opted_out;
                let mut turn = PendingTurn::new(&contact, state, Effects::default());
                turn.inbox_done = inbox_seq;
                self.commit(turn).await?;
            }
        }
        Ok(())
    }

    /// A delivery status: the log entry of the message it names is updated, status flows run,
    /// and an outside-window or opted-out failure is acted on as at send time.
    async fn status_turn(
        &self,
        channel: &Channel,
        status: &DeliveryStatus,
        inbox_seq: Option<u64>,
    ) -> Result<(), EngineError> {
        let sent = self
            .store
            .sent_record(&channel.id, &status.message_id)
            .await?;
        let contact = match &sent {
            Some(sent) => sent.contact.clone(),
            None => ContactKey::new(&channel.id, &status.recipient),
        };
        let _turn = self.locks.lock(&contact).await;
        let key = status_key(&channel.id, status);
        let state = if self.store.seen(&key).await? {
            self.metrics.dedupe_hit(DedupeHit::Status);
            None
        } else {
            self.store.load_contact(&contact).await?
        };
        let Some(mut state) = state else {
            if let Some(seq) = inbox_seq {
                self.store.finish_inbound(seq).await?;
            }
            return Ok(());
        };
        let failure = channel.provider.status_failure(status);
        if failure == Some(SendFailure::OptedOut) {
            state.opted_out = true;
        }
        let bot = self.bot();
        let effects = turn(&bot, || {
            handle(&bot, &mut state, Input::Status(status), self.now())
        });
        record_outcome(&state, &effects);
        let mut turn = PendingTurn::new(&contact, state, effects);
        turn.dedupe_keys.push(key);
        turn.inbox_done = inbox_seq;
        turn.engine_started = true;
        if let Some(sent) = &sent {
            turn.delivery = sent.log_seq.map(|log_seq| DeliveryUpdate {
                log_seq,
                delivery: Delivery {
                    state: DeliveryState::from_status(status.status),
                    at: status.timestamp,
                    provider_id: Some(status.message_id.clone()),
                    error: status_error(status),
                },
            });
            if failure == Some(SendFailure::OutsideWindow)
                && let Some(template) = &sent.fallback
            {
                let once = crate::store::fallback_key(&contact, sent.turn);
                if !self.store.seen(&once).await? {
                    turn.dedupe_keys.push(once);
                    turn.extra.push(Reply {
                        message: (**template).clone(),
                        fallback_text: None,
                        outside_window: None,
                    });
                }
            }
        }
        self.commit(turn).await?;
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

    /// Runs `bot` from the next turn on (a reload); turns under way finish on the old one.
    /// Conversations keep their flow and step by name: one whose step is gone ends when the
    /// contact next writes, and that message routes as if no conversation were waiting.
    pub fn replace_bot(&self, bot: Bot) {
        let bot = Arc::new(bot);
        match self.bot.write() {
            Ok(mut current) => *current = bot,
            Err(poisoned) => *poisoned.into_inner() = bot,
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
        self.message_turn(contact, build, None)
            .instrument(event_span(contact))
            .await
    }

    async fn message_turn<F>(
        &self,
        contact: &ContactKey,
        build: F,
        inbox_seq: Option<u64>,
    ) -> Result<Vec<Reply>, EngineError>
    where
        F: FnOnce(&ContactState, i64) -> Result<InboundMessage, String>,
    {
        let _turn = self.locks.lock(contact).await;
        let mut state = self.load_or_new(contact).await?;
        let now = self.now();
        let message = build(&state, now).map_err(EngineError::Input)?;
        let key = message_key(&contact.channel, &message.id);
        if self.store.seen(&key).await? {
            self.metrics.dedupe_hit(DedupeHit::Message);
            tracing::debug!(channel = %contact.channel, contact = %contact.id, id = %message.id, "redelivered message ignored");
            if let Some(seq) = inbox_seq {
                self.store.finish_inbound(seq).await?;
            }
            return Ok(Vec::new());
        }
        let bot = self.bot();
        let effects = turn(&bot, || {
            handle(&bot, &mut state, Input::Message(&message), now)
        });
        record_outcome(&state, &effects);
        let mut turn = PendingTurn::new(contact, state, effects);
        turn.inbound = Some(message);
        turn.dedupe_keys.push(key);
        turn.inbox_done = inbox_seq;
        self.commit(turn).await
    }

    /// Sends `message` to `contact` as the business (an operator through the admin API): logged
    /// and queued like a reply, without a fallback template (it is attempted as asked), then
    /// waits up to `within` for its first attempt.
    ///
    /// # Errors
    /// The store failed; nothing was queued.
    pub async fn send_as_business(
        &self,
        contact: &ContactKey,
        message: Outbound,
        within: std::time::Duration,
    ) -> Result<OperatorSend, EngineError> {
        let committed = {
            let _turn = self.locks.lock(contact).await;
            let state = self.load_or_new(contact).await?;
            let effects = Effects {
                replies: vec![Reply {
                    message,
                    fallback_text: None,
                    outside_window: None,
                }],
                ..Effects::default()
            };
            self.commit_only(PendingTurn::new(contact, state, effects), false)
                .await?
        };
        let (Some(outbox), Some(job)) = (&self.outbox, committed.jobs.first()) else {
            return Ok(OperatorSend::Logged);
        };
        let first = outbox.watch_first_attempt(job.id);
        outbox.enqueue(&committed.jobs);
        let first = tokio::time::timeout(within, first)
            .await
            .ok()
            .and_then(Result::ok);
        Ok(OperatorSend::Attempted { job: job.id, first })
    }

    /// Starts `flow` for `contact` by the engine's own doing (a schedule or broadcast): like an
    /// interrupt, it replaces what the contact was doing; contacts in handoff or opted out are
    /// skipped, and so is one for whom `when` is false. `dedupe_key` makes it happen once (a
    /// resumed broadcast). Returns how many messages it queued, `None` when it did not start.
    ///
    /// # Errors
    /// The store failed; nothing was committed.
    pub async fn start_flow(
        &self,
        contact: &ContactKey,
        flow: &str,
        when: Option<&crate::script::Expr>,
        dedupe_key: String,
    ) -> Result<Option<usize>, EngineError> {
        let _turn = self.locks.lock(contact).await;
        if self.store.seen(&dedupe_key).await? {
            self.metrics.dedupe_hit(DedupeHit::FlowStart);
            return Ok(None);
        }
        let mut state = self.load_or_new(contact).await?;
        if state.handoff || state.opted_out {
            return Ok(None);
        }
        let bot = self.bot();
        if let Some(when) = when
            && !guard(&bot, &state, when)
        {
            return Ok(None);
        }
        let now = self.now();
        let effects = turn(&bot, || {
            handle(&bot, &mut state, Input::StartFlow { flow }, now)
        });
        let mut pending = PendingTurn::new(contact, state, effects);
        pending.dedupe_keys.push(dedupe_key);
        pending.engine_started = true;
        let replies = self.commit(pending).await?;
        Ok(Some(replies.len()))
    }

    /// Pauses the bot for `contact` (a human takes over; given `resume_after`, the bot takes
    /// the contact back then) or gives the contact back now. Returns the new state, `None` for
    /// an unknown contact.
    ///
    /// # Errors
    /// The store failed; nothing changed.
    pub async fn set_handoff(
        &self,
        contact: &ContactKey,
        paused: bool,
        resume_after: Option<crate::duration::Duration>,
    ) -> Result<Option<ContactState>, EngineError> {
        let _turn = self.locks.lock(contact).await;
        let Some(mut state) = self.store.load_contact(contact).await? else {
            return Ok(None);
        };
        let bot = self.bot();
        let input = Input::Handoff {
            paused,
            resume_after: resume_after.map(crate::duration::Duration::as_secs_i64),
        };
        let effects = handle(&bot, &mut state, input, self.now());
        let shown = state.clone();
        self.commit(PendingTurn::new(contact, state, effects))
            .await?;
        Ok(Some(shown))
    }

    /// Puts dead letter `dead_id` back in the outbox and starts sending it; `None` if there is
    /// no such dead letter.
    ///
    /// # Errors
    /// The store failed.
    pub async fn retry_dead(&self, dead_id: u64) -> Result<Option<OutboxJob>, EngineError> {
        let Some(job) = self.store.revive_job(dead_id, self.now()).await? else {
            return Ok(None);
        };
        if let Some(outbox) = &self.outbox {
            outbox.enqueue(std::slice::from_ref(&job));
        }
        Ok(Some(job))
    }

    /// Fires every timer due now, each in its contact's order; returns how many fired.
    ///
    /// # Errors
    /// The store failed; timers not yet fired stay for the next round.
    pub async fn fire_due_timers(&self) -> Result<usize, EngineError> {
        use futures_util::{StreamExt, TryStreamExt};
        let due = self.store.due_timers(self.now(), 256).await?;
        let fired = due.len();
        // Different contacts' timers fire concurrently, so their commits share flushes; one
        // contact's fire in due order.
        let mut by_contact: Vec<(ContactKey, Vec<StoredTimer>)> = Vec::new();
        for timer in due {
            match by_contact
                .iter_mut()
                .find(|(contact, _)| *contact == timer.contact)
            {
                Some((_, timers)) => timers.push(timer),
                None => by_contact.push((timer.contact.clone(), vec![timer])),
            }
        }
        futures_util::stream::iter(by_contact)
            .map(|(_, timers)| async move {
                for timer in timers {
                    let span = timer_span(&timer);
                    self.fire(timer).instrument(span).await?;
                }
                Ok::<_, EngineError>(())
            })
            .buffer_unordered(TIMER_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(fired)
    }

    async fn fire(&self, stored: StoredTimer) -> Result<(), EngineError> {
        let _turn = self.locks.lock(&stored.contact).await;
        let Some(mut state) = self.store.load_contact(&stored.contact).await? else {
            return Ok(self.store.drop_timer(stored.id).await?);
        };
        let bot = self.bot();
        let effects = turn(&bot, || {
            handle(&bot, &mut state, stored.timer.input(), self.now())
        });
        record_outcome(&state, &effects);
        let mut turn = PendingTurn::new(&stored.contact, state, effects);
        turn.fired_timer = Some(stored.id);
        turn.engine_started = true;
        self.commit(turn).await?;
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
            let wait_ms = match self.store.next_due().await {
                Ok(Some(due)) => {
                    (due.saturating_mul(1000) - self.clock.now_millis()).clamp(0, 60_000)
                }
                _ => 60_000,
            };
            let sleep =
                tokio::time::sleep(std::time::Duration::from_millis(wait_ms.unsigned_abs()));
            tokio::select! {
                () = sleep => {}
                () = self.timers_changed.notified() => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// Sweeps the store hourly (and once at start) until `shutdown`: dedupe keys older than
    /// `dedupe_window` and log entries, sent-message records and dead letters older than
    /// `log_retention` go.
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

    /// Commits the turn, then starts sending what it queued; returns the replies as the
    /// channel shows them.
    async fn commit(&self, turn: PendingTurn) -> Result<Vec<Reply>, EngineError> {
        let handoff_changed = self.handoff_webhook.is_some()
            && turn
                .effects
                .notes
                .iter()
                .any(|note| matches!(note, Note::Handoff { .. }));
        let announced = handoff_changed.then(|| turn.state.clone());
        let (replies, committed) = self.commit_parts(turn, true).await?;
        if let Some(outbox) = &self.outbox {
            outbox.enqueue(&committed.jobs);
        }
        if let Some(state) = announced {
            self.announce_handoff(state);
        }
        Ok(replies)
    }

    /// Tells the help desk about a committed handoff change, in the background (a slow help
    /// desk must not hold the contact's turn).
    fn announce_handoff(&self, state: ContactState) {
        let Some(webhook) = self.handoff_webhook.clone() else {
            return;
        };
        let store = Arc::clone(&self.store);
        let at = self.now();
        tokio::spawn(async move {
            let key = ContactKey::new(state.channel.clone(), state.id.clone());
            let transcript = store
                .transcript(&key, crate::handoff::TRANSCRIPT_LENGTH)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(message = "No transcript for the handoff webhook.", %error);
                    Vec::new()
                });
            webhook
                .announce(crate::handoff::event(&state, at, &transcript))
                .await;
        });
    }

    /// Commits the turn without starting its sends (the caller does, after it is ready to
    /// watch them).
    async fn commit_only(
        &self,
        turn: PendingTurn,
        with_fallbacks: bool,
    ) -> Result<Committed, EngineError> {
        Ok(self.commit_parts(turn, with_fallbacks).await?.1)
    }

    /// Degrades the replies for the contact's channel and commits the turn with its log
    /// entries and, on a delivering channel, its outbox jobs (the contact's message marked read
    /// first, then each reply carrying its fallback template unless `with_fallbacks` is off).
    async fn commit_parts(
        &self,
        turn: PendingTurn,
        with_fallbacks: bool,
    ) -> Result<(Vec<Reply>, Committed), EngineError> {
        let PendingTurn {
            contact,
            mut state,
            inbound,
            effects,
            fired_timer,
            dedupe_keys,
            inbox_done,
            delivery,
            extra,
            engine_started,
        } = turn;
        let now = self.now();
        let configured = self.channels.channel(&contact.channel);
        let capabilities = configured.map_or(Capabilities::ALL, |c| c.provider.capabilities());
        let channel = configured.filter(|channel| channel.provider.delivers());
        let mut all = extra;
        all.extend(effects.replies);
        if engine_started
            && let Some(channel) = channel
            && channel.provider.enforces_window()
            && !in_window(state.last_inbound_at, now)
        {
            all = outside_window(all, channel, &contact);
        }
        let replies = render_for(&capabilities, all, &mut state);
        let mut log = Vec::new();
        let mut jobs = Vec::new();
        if let Some(message) = &inbound {
            let mut logged = to_value(message);
            if let Some(faq) = faq_of(&effects.notes) {
                logged["faq"] = faq;
            }
            log.push(NewLogEntry {
                at: now,
                direction: Direction::Inbound,
                message: logged,
                delivery: None,
            });
            if let Some(channel) = channel
                && channel.provider.mark_read_request(&message.id).is_some()
            {
                jobs.push(NewJob {
                    payload: Payload::MarkRead {
                        message_id: message.id.clone(),
                    },
                    fallback: None,
                    log_index: None,
                });
            }
        }
        for reply in &replies {
            let queued = channel.map(|channel| {
                let fallback = if with_fallbacks {
                    reply
                        .outside_window
                        .clone()
                        .or_else(|| channel.outside_window.clone())
                } else {
                    None
                };
                NewJob {
                    payload: Payload::Message {
                        message: Box::new(reply.message.clone()),
                    },
                    fallback,
                    log_index: Some(log.len()),
                }
            });
            log.push(NewLogEntry {
                at: now,
                direction: Direction::Outbound,
                message: to_value(reply),
                delivery: queued.as_ref().map(|_| Delivery {
                    state: DeliveryState::Queued,
                    at: now,
                    provider_id: None,
                    error: None,
                }),
            });
            jobs.extend(queued);
        }
        trace_notes(&contact, &effects.notes);
        let sets_timers = !effects.timers.is_empty();
        let committed = self
            .store
            .commit_turn(TurnCommit {
                state,
                log,
                timers: effects.timers,
                fired_timer,
                dedupe_keys,
                committed_at: now,
                jobs,
                inbox_done,
                delivery,
            })
            .await?;
        self.metrics
            .turn(inbound.as_ref(), &replies, &effects.notes);
        if sets_timers {
            self.timers_changed.notify_one();
        }
        Ok((replies, committed))
    }
}

/// Contacts whose due timers fire at once.
const TIMER_CONCURRENCY: usize = 64;

/// WhatsApp's customer-service window: 24 hours since the contact last wrote.
const WINDOW_SECS: i64 = 24 * 3600;

/// Whether a contact who last wrote at `last_inbound_at` may get free-form messages at `now`.
fn in_window(last_inbound_at: Option<i64>, now: i64) -> bool {
    last_inbound_at.is_some_and(|at| now - at < WINDOW_SECS)
}

/// What an engine-started turn may send outside the window: templates as they are; in place
/// of the rest, the first reply's fallback template (the step's `outside_window`, else the
/// channel's) once; without one, nothing — logged, so the author can add one.
fn outside_window(replies: Vec<Reply>, channel: &Channel, contact: &ContactKey) -> Vec<Reply> {
    let mut sendable = Vec::new();
    let mut replaced = false;
    for reply in replies {
        if matches!(reply.message, Outbound::Template { .. }) {
            sendable.push(reply);
            continue;
        }
        let template = reply
            .outside_window
            .clone()
            .or_else(|| channel.outside_window.clone());
        match template {
            Some(template) if !replaced => {
                replaced = true;
                sendable.push(Reply {
                    message: *template,
                    fallback_text: None,
                    outside_window: None,
                });
            }
            Some(_) => {}
            None => {
                tracing::warn!(message = "Message not sent: the 24-hour window is closed and there is no outside_window template (step or channel).", channel = %contact.channel, contact = %contact.id);
            }
        }
    }
    sendable
}

/// A `when` guard for an engine-started flow, over the contact's state; an error counts as
/// false (and is logged).
fn guard(bot: &Bot, state: &ContactState, when: &crate::script::Expr) -> bool {
    let mut bindings = crate::script::Bindings::new(
        &state.template_view(),
        &Value::Object(state.vars.clone()),
        &Value::Null,
    );
    bot.engine
        .eval_bool(when, &mut bindings)
        .inspect_err(|error| tracing::warn!(message = "A `when` guard failed; the contact is skipped.", contact = %state.id, %error))
        .unwrap_or(false)
}

/// Runs one turn of `bot`; when its scripts may block on HTTP, on a thread where blocking is
/// allowed (tokio's multi-threaded runtime hands the worker's other tasks to another thread).
fn turn<T>(bot: &Bot, body: impl FnOnce() -> T) -> T {
    let may_block = bot.uses_http
        && tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
            runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
    if may_block {
        tokio::task::block_in_place(body)
    } else {
        body()
    }
}

/// What the FAQ matcher did with the message, for its log entry: the entry that answered and
/// its score, or the entries offered.
fn faq_of(notes: &[Note]) -> Option<Value> {
    notes.iter().find_map(|note| match note {
        Note::FaqAnswered {
            collection,
            entry,
            score,
        } => Some(serde_json::json!({"answered": {"collection": collection, "entry": entry, "score": score}})),
        Note::FaqSuggested { entries } => Some(serde_json::json!({"suggested": entries})),
        _ => None,
    })
}

/// The dedupe key of a provider message.
fn message_key(channel: &str, id: &str) -> String {
    format!("message:{channel}:{id}")
}

/// The dedupe key of a delivery status: a message goes through several, each handled once.
fn status_key(channel: &str, status: &DeliveryStatus) -> String {
    format!(
        "status:{channel}:{}:{}",
        status.message_id,
        status.status.as_str()
    )
}

/// The contact an event is about, whose queue it goes in.
fn event_contact(event: &InboundEvent) -> &str {
    match event {
        InboundEvent::Message(message) => &message.from,
        InboundEvent::Status(status) => &status.recipient,
        InboundEvent::Preference(change) => &change.contact,
    }
}

/// A failed status's errors as one line for the log entry.
fn status_error(status: &DeliveryStatus) -> Option<String> {
    let errors: Vec<String> = status
        .errors
        .iter()
        .map(|error| match &error.title {
            Some(title) => format!("({}) {title}", error.code),
            None => format!("({})", error.code),
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
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
                outside_window: reply.outside_window,
            }
        })
        .collect()
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The span of one handled event — a message, status or preference change: its channel and
/// contact, and the flow and step the turn ended in once it ran ([`record_outcome`]), so every
/// line logged while handling it, and the line written when it closes, say whose it was.
fn event_span(contact: &ContactKey) -> tracing::Span {
    tracing::info_span!(
        "event",
        channel = %contact.channel,
        contact = %contact.id,
        flow = tracing::field::Empty,
        step = tracing::field::Empty,
    )
}

/// The span of one fired timer (a reminder, an ask timeout, a scheduled start), like
/// [`event_span`] with the timer's id.
fn timer_span(timer: &StoredTimer) -> tracing::Span {
    tracing::info_span!(
        "timer",
        channel = %timer.contact.channel,
        contact = %timer.contact.id,
        timer = timer.id,
        flow = tracing::field::Empty,
        step = tracing::field::Empty,
    )
}

/// Records on the current span where the turn ended: the flow and step waiting for an answer,
/// else the last flow that ran (it ended); nothing when no flow ran (an FAQ answer, a status).
fn record_outcome(state: &ContactState, effects: &Effects) {
    use tracing::field::display;
    let span = tracing::Span::current();
    if let Some(conversation) = &state.conversation {
        span.record("flow", display(&conversation.flow));
        span.record("step", display(&conversation.step));
        return;
    }
    let last_flow = effects.notes.iter().rev().find_map(|note| match note {
        Note::Started { flow, .. } | Note::Ended { flow } => Some(flow.as_str()),
        _ => None,
    });
    if let Some(flow) = last_flow {
        span.record("flow", display(flow));
    }
}

fn trace_notes(contact: &ContactKey, notes: &[Note]) {
    for note in notes {
        match note {
            Note::Error { message } => {
                tracing::warn!(message = "Flow step failed.", channel = %contact.channel, contact = %contact.id, error = %message);
            }
            Note::ScriptLog { message } => {
                tracing::info!(message = "Script log.", channel = %contact.channel, contact = %contact.id, line = %message);
            }
            other => {
                tracing::debug!(channel = %contact.channel, contact = %contact.id, note = ?other)
            }
        }
    }
}
