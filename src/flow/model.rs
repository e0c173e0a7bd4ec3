//! The flow file language as authors write it (DESIGN §6): the serde types the loader reads and
//! the JSON Schema (`chatflow schema`) is derived from, so the two cannot drift.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de;
use serde::{Deserialize, Serialize};

use crate::shape::ByShape;

use crate::duration::Duration;
use crate::message::MessageSpec;

/// One flow file: a bot conversation with its triggers and steps.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    /// The flow's id, used by `goto`, `remind` and `fallback_flow`.
    pub flow: String,
    /// What the flow is for, for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Higher wins when triggers of several flows of the same kind match.
    #[serde(default)]
    pub priority: i32,
    /// `true`: its triggers also fire while another flow waits for an answer.
    #[serde(default)]
    pub interrupt: bool,
    /// Only serve these channels (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// Any one starts the flow.
    #[serde(default)]
    pub triggers: Vec<TriggerSpec>,
    /// The first step (default: the first step listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The steps, by name, in file order.
    pub steps: IndexMap<String, StepSpec>,
}

/// One value or a list of them, so `keywords: hi` and `keywords: [hi, hello]` both read.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> ByShape<'de> for OneOrMany<T> {
    const EXPECTING: &'static str = "one value or a list";

    fn from_str<E: de::Error>(text: &str) -> Result<Self, E> {
        T::deserialize(de::value::StrDeserializer::new(text)).map(Self::One)
    }

    fn from_bool<E: de::Error>(value: bool) -> Result<Self, E> {
        T::deserialize(de::value::BoolDeserializer::new(value)).map(Self::One)
    }

    fn from_i64<E: de::Error>(value: i64) -> Result<Self, E> {
        T::deserialize(de::value::I64Deserializer::new(value)).map(Self::One)
    }

    fn from_f64<E: de::Error>(value: f64) -> Result<Self, E> {
        T::deserialize(de::value::F64Deserializer::new(value)).map(Self::One)
    }

    fn from_map<A: de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Self::One)
    }

    fn from_seq<A: de::SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Self::Many)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::shape::deserialize(deserializer)
    }
}

impl<T> OneOrMany<T> {
    /// The values as a slice, whichever way they were written.
    #[must_use]
    pub fn as_slice(&self) -> &[T] {
        match self {
            Self::One(value) => std::slice::from_ref(value),
            Self::Many(values) => values,
        }
    }
}

/// A trigger: exactly one of `keywords`, `contains`, `regex`, `button`, `event`, `schedule`,
/// with an optional `when` guard.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// The whole message, normalized (case, accents, spacing, edge punctuation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keywords: Option<OneOrMany<String>>,
    /// A word or phrase anywhere in the message, on word boundaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<OneOrMany<String>>,
    /// A case-insensitive regular expression over the trimmed message; named groups go to vars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// An interactive reply (button, list row, template quick reply) with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<OneOrMany<String>>,
    /// A message kind, or a delivery status such as `status_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventKind>,
    /// Start the flow on a cron schedule for an audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// A Rhai condition; the trigger only fires when it is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

/// Message kinds and delivery statuses an `event:` trigger can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Typed text.
    Text,
    /// A picture.
    Image,
    /// An audio file.
    Audio,
    /// A video.
    Video,
    /// A document.
    Document,
    /// A sticker.
    Sticker,
    /// A voice note.
    Voice,
    /// A shared location.
    Location,
    /// Shared contact cards.
    Contacts,
    /// A catalog cart.
    Order,
    /// A completed WhatsApp Flow.
    FlowReply,
    /// An emoji reaction.
    Reaction,
    /// A kind WhatsApp could not deliver.
    Unsupported,
    /// Any message at all.
    Any,
    /// One of our messages was sent.
    StatusSent,
    /// One of our messages was delivered.
    StatusDelivered,
    /// One of our messages was read.
    StatusRead,
    /// One of our messages failed.
    StatusFailed,
}

impl EventKind {
    /// The name as written in YAML.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
            Self::Voice => "voice",
            Self::Location => "location",
            Self::Contacts => "contacts",
            Self::Order => "order",
            Self::FlowReply => "flow_reply",
            Self::Reaction => "reaction",
            Self::Unsupported => "unsupported",
            Self::Any => "any",
            Self::StatusSent => "status_sent",
            Self::StatusDelivered => "status_delivered",
            Self::StatusRead => "status_read",
            Self::StatusFailed => "status_failed",
        }
    }

    /// True for the delivery-status events.
    #[must_use]
    pub fn is_status(self) -> bool {
        matches!(
            self,
            Self::StatusSent | Self::StatusDelivered | Self::StatusRead | Self::StatusFailed
        )
    }
}

/// `schedule: {cron, timezone, audience, catch_up}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// 5 fields (minute first, Vixie semantics) or 6–7 (seconds first).
    pub cron: String,
    /// IANA time zone name, e.g. `Asia/Jakarta` (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Who receives the flow.
    pub audience: AudienceSpec,
    /// A due time missed while the engine was down fires on start if less late than this (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<Duration>,
}

/// Who a scheduled or broadcast flow is for: exactly one of `tags`, `contacts`, `all`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceSpec {
    /// Contacts with any of these tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// These contact ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    /// Every known contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// The channel (default: the one non-simulator channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// One step. It runs `set`, `script`/`rhai`, `tag`/`untag`, `send`, `handoff`, `remind`, then
/// waits on `ask`, then moves by `switch`, `goto`, `next` or `end`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Variables to assign from templates; `"{{ expr }}"` alone keeps the expression's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<IndexMap<String, serde_json::Value>>,
    /// A Rhai file in the scripts directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Inline Rhai code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhai: Option<String>,
    /// Tags to add to the contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<OneOrMany<String>>,
    /// Tags to remove from the contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untag: Option<OneOrMany<String>>,
    /// One message or a list, in DSL form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<OneOrMany<MessageSpec>>,
    /// `true` pauses the bot for this contact so a human can take over;
    /// `{resume_after: 24h}` also gives the contact back to the bot then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffSpec>,
    /// Start another flow for this contact later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind: Option<RemindSpec>,
    /// Wait for the user's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<AskSpec>,
    /// Branches: the first whose `if` is true, else the `else`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<Vec<BranchSpec>>,
    /// A step of this flow, a flow, or `FLOW.STEP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goto: Option<String>,
    /// Like `goto`, read after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// `true` ends the flow after this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<bool>,
    /// A template sent instead of this step's messages outside the 24-hour window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_window: Option<crate::message::spec::TemplateSpec>,
}

/// `remind: {in | at, flow}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemindSpec {
    /// After this long.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub after: Option<Duration>,
    /// At this instant: RFC 3339, or a template rendering to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The flow to start.
    pub flow: String,
}

/// `ask:` — wait for an answer, check it, save it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AskSpec {
    /// The variable the answer is saved into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<String>,
    /// What counts as a valid answer (default `any`).
    #[serde(default, rename = "type")]
    pub kind: AskKind,
    /// Re-prompt after an invalid answer (default: the step's `send` again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Re-prompts allowed before `on_fail` (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Where to go after too many invalid answers (default: end the flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<String>,
    /// How long to wait before `on_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Where to go when nobody answers in time (default: end the flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<String>,
}

/// The kinds of answer an `ask` accepts, and so what it saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AskKind {
    /// Any text.
    Text,
    /// A decimal number (`1,5` and `1.5`).
    Number,
    /// A whole number.
    Integer,
    /// An email address, lower-cased.
    Email,
    /// A phone number, saved as `+` and digits.
    Phone,
    /// A date, saved as `YYYY-MM-DD`.
    Date,
    /// One of the options of the step's buttons or list, saved as its id.
    Choice,
    /// A shared location.
    Location,
    /// An image, video, audio, document or sticker.
    Media,
    /// A completed WhatsApp Flow.
    FlowReply,
    /// Anything: the text, or the message itself.
    #[default]
    Any,
}

impl AskKind {
    /// The name as written in YAML.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Date => "date",
            Self::Choice => "choice",
            Self::Location => "location",
            Self::Media => "media",
            Self::FlowReply => "flow_reply",
            Self::Any => "any",
        }
    }
}

/// `retry: "text"` or a full message (or list of messages).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RetrySpec {
    /// A text message.
    Text(String),
    /// One or more messages in DSL form.
    Messages(Box<OneOrMany<MessageSpec>>),
}

impl<'de> ByShape<'de> for RetrySpec {
    const EXPECTING: &'static str = "a text, a message or a list of messages";

    fn from_str<E: de::Error>(text: &str) -> Result<Self, E> {
        Ok(Self::Text(text.to_owned()))
    }

    fn from_map<A: de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        OneOrMany::from_map(map).map(|m| Self::Messages(Box::new(m)))
    }

    fn from_seq<A: de::SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        OneOrMany::from_seq(seq).map(|m| Self::Messages(Box::new(m)))
    }
}

crate::deserialize_by_shape!(RetrySpec);

/// `handoff: true`, or `handoff: {resume_after: 24h}` to give the contact back to the bot if
/// no human has by then.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HandoffSpec {
    /// `true` pauses the bot until a human gives the contact back; `false` does nothing.
    Pause(bool),
    /// Pauses the bot, resuming after a while.
    Until(HandoffUntil),
}

/// `{resume_after: 24h}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffUntil {
    /// The bot takes the contact back after this long.
    pub resume_after: Duration,
}

impl<'de> ByShape<'de> for HandoffSpec {
    const EXPECTING: &'static str = "true, or {resume_after: 24h}";

    fn from_bool<E: de::Error>(value: bool) -> Result<Self, E> {
        Ok(Self::Pause(value))
    }

    fn from_map<A: de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        HandoffUntil::deserialize(de::value::MapAccessDeserializer::new(map)).map(Self::Until)
    }
}

crate::deserialize_by_shape!(HandoffSpec);

/// One `switch` branch: `{if, goto}` or `{else}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchSpec {
    /// A Rhai condition.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Where to go when `if` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goto: Option<String>,
    /// Where to go when no `if` was true.
    #[serde(default, rename = "else", skip_serializing_if = "Option::is_none")]
    pub otherwise: Option<String>,
}

/// An FAQ collection file (top-level `faq:`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaqFile {
    /// The collection's id.
    pub faq: String,
    /// Scores below this do not answer (0..1, default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Between this and `threshold` a "did you mean" list is offered (default 0.6 × threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggest_threshold: Option<f64>,
    /// Only serve these channels (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// Groups of words or phrases customers use for the same thing (`[fee, charge, cost]`),
    /// read as the group's first member; they apply to every FAQ collection of the bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synonyms: Option<Vec<Vec<String>>>,
    /// The questions and answers.
    pub entries: Vec<FaqEntrySpec>,
}

/// One FAQ entry: several phrasings, and an answer or a flow to start.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaqEntrySpec {
    /// Ways a customer may ask it.
    pub questions: Vec<String>,
    /// The answer, in DSL form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<OneOrMany<MessageSpec>>,
    /// A flow to start instead of answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goto: Option<String>,
    /// Labels for reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// The language of the questions, e.g. `id`, `es`, `en`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}
