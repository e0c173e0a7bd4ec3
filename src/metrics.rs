//! What the engine did, counted for `GET /metrics` (OpenMetrics text, which Prometheus scrapes)
//! and for the per-flow funnel of `GET /api/stats/flows`.
//!
//! One [`Metrics`] belongs to the engine, which shares it with the outbox and the server. Counting
//! is an atomic add on the counter of a label set (prometheus-client finds it under a read lock
//! of its label map); no lock of ours is on the hot path. Label values come from fixed sets or
//! name a configured channel, flow or step — never a contact or a message's text — so the number
//! of series stays bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};
use serde::Serialize;

use crate::flow::{AbandonCause, Note};
use crate::message::{InboundMessage, Reply};
use crate::store::QueueDepths;

/// The content type of [`Metrics::encode`]'s text: OpenMetrics, which Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the latency histograms: a millisecond commit to a provider that
/// answers at the HTTP client's timeout.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// An enum whose variants are label values, each printed as the string beside it.
macro_rules! label_values {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$doc])* $variant,)+
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                use std::fmt::Write;
                encoder.write_str(match self {
                    $(Self::$variant => $text,)+
                })
            }
        }
    };
}

label_values! {
    /// What became of a webhook: each event of an acknowledged body counts once as accepted,
    /// duplicate or unrecognized; a refused body counts once.
    WebhookResult {
        /// Put in the inbox to be handled.
        Accepted => "accepted",
        /// Handled before (a provider redelivering): acknowledged, not handled again.
        Duplicate => "duplicate",
        /// A payload the provider module does not know, kept aside (DESIGN §10).
        Unrecognized => "unrecognized",
        /// Refused (401): bad or missing signature or credentials.
        BadSignature => "bad_signature",
        /// Refused (400): not a body the provider sends.
        Malformed => "malformed",
        /// Refused (413): over `body_limit`.
        TooLarge => "too_large",
    }
}

label_values! {
    /// How an attempt to send a message ended (read receipts are not counted).
    SendOutcome {
        /// The provider accepted it.
        Sent => "sent",
        /// It failed and is tried again later.
        Retried => "retried",
        /// It failed for good and went to the dead letters.
        DeadLettered => "dead_lettered",
        /// Refused as outside the 24-hour window: dead-lettered with its turn, the fallback
        /// template (if any) queued in its place.
        OutsideWindow => "outside_window",
    }
}

label_values! {
    /// What a dedupe key stopped from happening twice.
    DedupeHit {
        /// A provider message delivered again.
        Message => "message",
        /// A delivery status delivered again.
        Status => "status",
        /// An engine-started flow of a resumed broadcast that had already started.
        FlowStart => "flow_start",
    }
}

label_values! {
    /// What the FAQ collections did with a text message that no trigger took.
    FaqOutcome {
        /// An entry answered it.
        Answered => "answered",
        /// Close entries were offered as "did you mean".
        Suggested => "suggested",
        /// Nothing was close enough; the fallback flow (if any) followed.
        Missed => "missed",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WebhookLabels {
    channel: String,
    result: WebhookResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SendLabels {
    channel: String,
    outcome: SendOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DedupeLabels {
    kind: DedupeHit,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    flow: String,
    how: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FlowLabels {
    flow: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StepLabels {
    flow: String,
    step: String,
    cause: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FaqLabels {
    outcome: FaqOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

/// A histogram family whose histograms share [`LATENCY_BUCKETS`].
type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

/// One flow's funnel since the process started (Prometheus keeps the history).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowFunnel {
    /// Conversations that entered the flow.
    pub started: u64,
    /// Conversations that reached its end.
    pub completed: u64,
    /// Conversations that stopped short, by the step they were at (steps with none left out).
    pub abandoned: BTreeMap<String, u64>,
}

/// Every counter, gauge and histogram, and the registry that prints them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    since: i64,
    webhooks: Family<WebhookLabels, Counter>,
    messages_in: Family<KindLabels, Counter>,
    messages_out: Family<KindLabels, Counter>,
    sends: Family<SendLabels, Counter>,
    dedupe_hits: Family<DedupeLabels, Counter>,
    routed: Family<RouteLabels, Counter>,
    started: Family<FlowLabels, Counter>,
    completed: Family<FlowLabels, Counter>,
    abandoned: Family<StepLabels, Counter>,
    faq: Family<FaqLabels, Counter>,
    script_errors: Counter,
    handoffs: Counter,
    inbox: Gauge,
    outbox: Gauge,
    dead: Gauge,
    timers: Gauge,
    commit_latency: Histogram,
    send_latency: Latencies<ChannelLabels>,
}

impl Metrics {
    /// Metrics counted from zero, from `since` (Unix seconds) on.
    #[must_use]
    pub fn new(since: i64) -> Self {
        let mut registry = Registry::with_prefix("chatflow");
        let r = &mut registry;
        Self {
            webhooks: registered(
                r,
                "webhooks_received",
                "Webhook events by channel and result; a refused body counts once",
                Family::default(),
            ),
            messages_in: registered(
                r,
                "messages_in",
                "Messages handled from contacts, by kind",
                Family::default(),
            ),
            messages_out: registered(
                r,
                "messages_out",
                "Messages queued to contacts (replies and operator sends), by kind",
                Family::default(),
            ),
            sends: registered(
                r,
                "sends",
                "Attempts to send a message (read receipts not counted), by channel and outcome",
                Family::default(),
            ),
            dedupe_hits: registered(
                r,
                "dedupe_hits",
                "Repeats a dedupe key stopped, by kind",
                Family::default(),
            ),
            routed: registered(
                r,
                "routed",
                "Flows entered or answered, by flow and how: trigger kind, faq, fallback, answer, engine, status, goto, script, error; unrouted has no flow",
                Family::default(),
            ),
            started: registered(
                r,
                "flow_started",
                "Conversations that entered a flow",
                Family::default(),
            ),
            completed: registered(
                r,
                "flow_completed",
                "Conversations that reached a flow's end",
                Family::default(),
            ),
            abandoned: registered(
                r,
                "flow_abandoned",
                "Conversations that stopped before a flow's end, by the step they were at and why",
                Family::default(),
            ),
            faq: registered(
                r,
                "faq",
                "Text messages no trigger took, by what the FAQ did with them",
                Family::default(),
            ),
            script_errors: registered(
                r,
                "script_errors",
                "Templates, scripts and steps that failed (Rhai errors and exhausted limits included)",
                Counter::default(),
            ),
            handoffs: registered(
                r,
                "handoffs",
                "Contacts handed to a human (by a handoff step or the handoff route)",
                Counter::default(),
            ),
            inbox: registered(
                r,
                "inbox_pending",
                "Accepted webhook events not yet handled",
                Gauge::default(),
            ),
            outbox: registered(
                r,
                "outbox_pending",
                "Sends queued or in flight",
                Gauge::default(),
            ),
            dead: registered(
                r,
                "dead_letters",
                "Sends given up on, until retried or swept",
                Gauge::default(),
            ),
            timers: registered(
                r,
                "timers_pending",
                "Ask timeouts and reminders set and not yet fired",
                Gauge::default(),
            ),
            commit_latency: timed(
                r,
                "webhook_to_commit",
                "From a webhook's arrival to its event's turn committed",
                latency_histogram(),
            ),
            send_latency: timed(
                r,
                "provider_send",
                "Provider send requests, by channel",
                Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            ),
            since,
            registry,
        }
    }

    /// When counting started (Unix seconds): what `GET /api/stats/flows` counts from.
    #[must_use]
    pub fn since(&self) -> i64 {
        self.since
    }

    /// Counts `events` of a webhook on `channel` as `result`.
    pub fn webhook(&self, channel: &str, result: WebhookResult, events: usize) {
        if events == 0 {
            return;
        }
        let labels = WebhookLabels {
            channel: channel.to_owned(),
            result,
        };
        self.webhooks.get_or_create(&labels).inc_by(to_u64(events));
    }

    /// Counts a committed turn: the message it handled, the replies it queued and what the
    /// runtime noted (routing, funnel, FAQ, errors).
    pub fn turn(&self, inbound: Option<&InboundMessage>, replies: &[Reply], notes: &[Note]) {
        if let Some(message) = inbound {
            let kind = message.event_name();
            self.messages_in.get_or_create(&KindLabels { kind }).inc();
        }
        for reply in replies {
            let kind = reply.message.kind();
            self.messages_out.get_or_create(&KindLabels { kind }).inc();
        }
        for note in notes {
            self.note(note);
        }
    }

    /// Counts how one send attempt on `channel` ended.
    pub fn send(&self, channel: &str, outcome: SendOutcome) {
        let labels = SendLabels {
            channel: channel.to_owned(),
            outcome,
        };
        self.sends.get_or_create(&labels).inc();
    }

    /// Records how long a provider took to answer a send request on `channel`.
    pub fn send_took(&self, channel: &str, took: Duration) {
        let labels = ChannelLabels {
            channel: channel.to_owned(),
        };
        self.send_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Records how long a webhook event took from arrival to its committed turn.
    pub fn committed_after(&self, took: Duration) {
        self.commit_latency.observe(took.as_secs_f64());
    }

    /// Counts a repeat that a dedupe key stopped.
    pub fn dedupe_hit(&self, kind: DedupeHit) {
        self.dedupe_hits.get_or_create(&DedupeLabels { kind }).inc();
    }

    /// Sets the queue gauges, just before they are printed.
    pub fn set_queue_depths(&self, depths: QueueDepths) {
        let set = |gauge: &Gauge, depth: u64| gauge.set(i64::try_from(depth).unwrap_or(i64::MAX));
        set(&self.inbox, depths.inbox);
        set(&self.outbox, depths.outbox);
        set(&self.dead, depths.dead);
        set(&self.timers, depths.timers);
    }

    /// Everything, in the OpenMetrics text format (`# HELP`/`# TYPE` lines, `# EOF` last).
    ///
    /// # Errors
    /// A label value could not be written (never, for the labels this module makes).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// The funnel of `flow`, whose steps are `steps`, since [`Metrics::since`].
    #[must_use]
    pub fn funnel<'a>(&self, flow: &str, steps: impl IntoIterator<Item = &'a str>) -> FlowFunnel {
        let labels = FlowLabels {
            flow: flow.to_owned(),
        };
        let count =
            |family: &Family<FlowLabels, Counter>| family.get(&labels).map_or(0, |c| c.get());
        let abandoned = steps
            .into_iter()
            .map(|step| (step.to_owned(), self.abandoned_at(flow, step)))
            .filter(|&(_, count)| count > 0)
            .collect();
        FlowFunnel {
            started: count(&self.started),
            completed: count(&self.completed),
            abandoned,
        }
    }

    /// Conversations of `flow` abandoned at `step`, whatever the cause.
    fn abandoned_at(&self, flow: &str, step: &str) -> u64 {
        AbandonCause::ALL
            .iter()
            .filter_map(|cause| {
                let labels = StepLabels {
                    flow: flow.to_owned(),
                    step: step.to_owned(),
                    cause: cause.as_str(),
                };
                self.abandoned.get(&labels).map(|count| count.get())
            })
            .sum()
    }

    fn note(&self, note: &Note) {
        let flow_labels = |flow: &str| FlowLabels {
            flow: flow.to_owned(),
        };
        match note {
            Note::Started { flow, reason } => {
                self.route(flow, reason);
                self.started.get_or_create(&flow_labels(flow)).inc();
            }
            Note::Answered { flow, .. } => self.route(flow, "answer"),
            Note::Unrouted => self.route("", "unrouted"),
            Note::Ended { flow } => {
                self.completed.get_or_create(&flow_labels(flow)).inc();
            }
            Note::Abandoned { flow, step, cause } => {
                let labels = StepLabels {
                    flow: flow.clone(),
                    step: step.clone(),
                    cause: cause.as_str(),
                };
                self.abandoned.get_or_create(&labels).inc();
            }
            Note::FaqAnswered { .. } => self.faq_outcome(FaqOutcome::Answered),
            Note::FaqSuggested { .. } => self.faq_outcome(FaqOutcome::Suggested),
            Note::FaqMissed => self.faq_outcome(FaqOutcome::Missed),
            Note::Error { .. } => {
                self.script_errors.inc();
            }
            Note::Handoff { paused: true } => {
                self.handoffs.inc();
            }
            Note::Handoff { paused: false }
            | Note::AnswerRejected { .. }
            | Note::Paused
            | Note::OptOut { .. }
            | Note::ScriptLog { .. } => {}
        }
    }

    fn route(&self, flow: &str, how: &str) {
        let labels = RouteLabels {
            flow: flow.to_owned(),
            how: how.to_owned(),
        };
        self.routed.get_or_create(&labels).inc();
    }

    fn faq_outcome(&self, outcome: FaqOutcome) {
        self.faq.get_or_create(&FaqLabels { outcome }).inc();
    }
}

/// Registers `metric` under `name` and hands it back to be counted on.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Registers `metric` in seconds (its name ends in `_seconds`) and hands it back.
fn timed<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register_with_unit(name, help, Unit::Seconds, metric.clone());
    metric
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn to_u64(count: usize) -> u64 {
    u64::try_from(count).unwrap_or(u64::MAX)
}
