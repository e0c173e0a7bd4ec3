//! A loaded bot: every flow compiled — names resolved to indices, templates and conditions to
//! Rhai ASTs, messages pre-built where they hold no template — ready to run per message.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::duration::Duration;
use crate::flow::model::AskKind;
use crate::flow::router::Router;
use crate::flow::template::{RenderMode, Template, ValueTemplate};
use crate::message::limits;
use crate::message::{MessageSpec, Reply};
use crate::script::{Bindings, EvalError, Expr, Program, ScriptEngine};

/// Index of a flow in [`Bot::flows`].
pub type FlowIdx = usize;
/// Index of a step in [`Flow::steps`].
pub type StepIdx = usize;

/// Everything the runtime needs, built once per load and shared read-only.
#[derive(Debug)]
pub struct Bot {
    /// The flows, sorted by id.
    pub flows: Vec<Flow>,
    /// Flow index by id.
    pub flow_by_id: HashMap<String, FlowIdx>,
    /// The trigger index.
    pub router: Router,
    /// FAQ collections, answered after triggers (matching lands with the FAQ matcher).
    pub faqs: Vec<FaqCollection>,
    /// Started when nothing else matches.
    pub fallback_flow: Option<FlowIdx>,
    /// Started when a step fails; `None` ends the flow.
    pub error_flow: Option<FlowIdx>,
    /// An ask left unanswered this long counts as abandoned.
    pub conversation_timeout: Duration,
    /// Opt-out and opt-in words (routing step 2).
    pub opt_out: OptOutWords,
    /// The engine every template, condition and script runs on.
    pub engine: ScriptEngine,
    /// Some script calls `http_get`/`http_post`, so a turn may block on the network and the
    /// engine runs turns where blocking is allowed.
    pub uses_http: bool,
    /// The `schedule:` triggers, which the scheduler runs (the router never sees them).
    pub schedules: Vec<Scheduled>,
    /// Every FAQ collection's questions, indexed for matching (routing step 7).
    pub faq_index: crate::faq::FaqIndex,
}

/// A `schedule:` trigger, compiled.
#[derive(Debug)]
pub struct Scheduled {
    /// `flow#index` of the trigger: what its last fire is stored under, stable across reloads
    /// as long as the trigger keeps its place.
    pub key: String,
    /// The flow it starts.
    pub flow: FlowIdx,
    /// When.
    pub cron: crate::flow::schedule::CronSchedule,
    /// The expression and zone as written, for `GET /api/schedules`.
    pub expression: String,
    /// IANA zone name.
    pub timezone: String,
    /// Who.
    pub audience: crate::store::Audience,
    /// The channel whose contacts get it.
    pub channel: String,
    /// The trigger's `when`, evaluated per contact.
    pub when: Option<Expr>,
    /// How late a missed due time may still fire.
    pub catch_up: Duration,
}

impl Bot {
    /// The flow called `id`.
    #[must_use]
    pub fn flow(&self, id: &str) -> Option<(FlowIdx, &Flow)> {
        self.flow_by_id.get(id).map(|&idx| (idx, &self.flows[idx]))
    }

    /// The step `step` of flow `flow`, by names, as stored in a conversation.
    #[must_use]
    pub fn step(&self, flow: &str, step: &str) -> Option<Target> {
        let (flow_idx, flow) = self.flow(flow)?;
        flow.step_by_name.get(step).map(|&step| Target {
            flow: flow_idx,
            step,
        })
    }
}

/// Opt-out words, normalized, with their confirmations.
#[derive(Debug, Default)]
pub struct OptOutWords {
    /// Words that stop engine-started messages to the contact.
    pub stop: std::collections::HashSet<String>,
    /// Words that resume them.
    pub start: std::collections::HashSet<String>,
    /// Sent after a stop word.
    pub stop_reply: String,
    /// Sent after a start word.
    pub start_reply: String,
}

impl OptOutWords {
    /// The config's words, normalized like any message text.
    #[must_use]
    pub fn new(config: &crate::config::OptOut) -> Self {
        let words = |list: &[String]| {
            list.iter()
                .map(|w| crate::flow::normalize::normalize(w))
                .filter(|w| !w.is_empty())
                .collect()
        };
        Self {
            stop: words(&config.stop),
            start: words(&config.start),
            stop_reply: config.stop_reply.clone(),
            start_reply: config.start_reply.clone(),
        }
    }
}

/// One compiled flow.
#[derive(Debug)]
pub struct Flow {
    /// The flow's id.
    pub id: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Higher wins among triggers of one kind.
    pub priority: i32,
    /// Triggers fire even while another flow waits for an answer.
    pub interrupt: bool,
    /// Only these channels, when set.
    pub channels: Option<Vec<String>>,
    /// The first step.
    pub start: StepIdx,
    /// The steps in file order.
    pub steps: Vec<Step>,
    /// Step index by name.
    pub step_by_name: HashMap<String, StepIdx>,
}

impl Flow {
    /// True when the flow serves `channel`.
    #[must_use]
    pub fn serves(&self, channel: &str) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|channels| channels.iter().any(|c| c == channel))
    }
}

/// A resolved place to go: a step of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The flow.
    pub flow: FlowIdx,
    /// The step within it.
    pub step: StepIdx,
}

/// One compiled step, its parts in the order they run.
#[derive(Debug, Default)]
pub struct Step {
    /// The step's name.
    pub name: String,
    /// `set`: variable name and value template, in order.
    pub set: Vec<(String, ValueTemplate)>,
    /// `script` then `rhai`.
    pub scripts: Vec<Program>,
    /// Tags to add.
    pub tag: Vec<Template>,
    /// Tags to remove.
    pub untag: Vec<Template>,
    /// Messages to send.
    pub send: Vec<MessageTemplate>,
    /// Pause the bot for a human: `Some(None)` until given back, `Some(Some(seconds))` at
    /// most that long.
    pub handoff: Option<Option<i64>>,
    /// Start a flow later.
    pub remind: Option<Remind>,
    /// Wait for an answer.
    pub ask: Option<Ask>,
    /// Conditional moves, in order; a branch without condition is the `else`.
    pub switch: Vec<Branch>,
    /// Unconditional move.
    pub goto: Option<Target>,
    /// Move read after `goto`.
    pub next: Option<Target>,
    /// The template sent instead of this step's messages when the 24-hour window is closed.
    pub outside_window: Option<Box<crate::message::Outbound>>,
}

/// A compiled `switch` branch.
#[derive(Debug)]
pub struct Branch {
    /// `None` for `else`.
    pub condition: Option<Expr>,
    /// Where to go.
    pub target: Target,
}

/// A compiled `ask`.
#[derive(Debug)]
pub struct Ask {
    /// Variable the answer goes into.
    pub save: Option<String>,
    /// What a valid answer is.
    pub kind: AskKind,
    /// Re-prompt; empty means re-send the step's messages.
    pub retry: Vec<MessageTemplate>,
    /// Re-prompts before `on_fail`.
    pub max_retries: u32,
    /// After too many invalid answers; `None` ends the flow.
    pub on_fail: Option<Target>,
    /// How long to wait for an answer.
    pub timeout: Option<Duration>,
    /// Where to go when the wait runs out; `None` ends the flow.
    pub on_timeout: Option<Target>,
}

/// A compiled `remind`.
#[derive(Debug)]
pub struct Remind {
    /// When the flow starts.
    pub when: RemindAt,
    /// Which flow.
    pub flow: FlowIdx,
}

/// When a reminder fires.
#[derive(Debug)]
pub enum RemindAt {
    /// After a delay.
    After(Duration),
    /// At an instant, from a template rendering RFC 3339 or Unix seconds.
    At(Template),
}

/// An FAQ collection as loaded.
#[derive(Debug)]
pub struct FaqCollection {
    /// The collection's id.
    pub id: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Scores below this do not answer.
    pub threshold: f64,
    /// Between this and `threshold`, suggestions are offered.
    pub suggest_threshold: f64,
    /// Only these channels, when set.
    pub channels: Option<Vec<String>>,
    /// Groups of words and phrases meaning the same (first member first).
    pub synonyms: Vec<Vec<String>>,
    /// The entries.
    pub entries: Vec<FaqEntry>,
}

/// One FAQ entry.
#[derive(Debug)]
pub struct FaqEntry {
    /// Its phrasings.
    pub questions: Vec<String>,
    /// What answering it does.
    pub answer: FaqAnswer,
    /// The text customers read in its answer (empty for `goto`): the matcher searches it too,
    /// weaker than the questions, so "do you take OVO" finds the entry whose answer lists OVO.
    pub answer_text: String,
    /// Reporting labels.
    pub tags: Vec<String>,
    /// Language of the questions.
    pub locale: Option<String>,
}

/// What an FAQ entry does when it matches.
#[derive(Debug)]
pub enum FaqAnswer {
    /// Send these messages.
    Messages(Vec<MessageTemplate>),
    /// Start this flow.
    Goto(FlowIdx),
}

/// A message to send, pre-built when it has no template.
#[derive(Debug, Clone)]
pub enum MessageTemplate {
    /// The same every time.
    Static(Box<Reply>),
    /// Rendered per send, then checked against WhatsApp's limits.
    Dynamic(ValueTemplate),
}

/// Why a templated message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An expression failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The rendered message is not a valid message.
    #[error("rendered message is invalid: {0}")]
    Invalid(String),
}

impl MessageTemplate {
    /// Renders and builds the Meta-shaped reply; over-long rendered texts are cut to fit.
    pub fn render(
        &self,
        engine: &ScriptEngine,
        bindings: &mut Bindings,
    ) -> Result<Reply, RenderError> {
        let tree = match self {
            Self::Static(reply) => return Ok(reply.as_ref().clone()),
            Self::Dynamic(tree) => tree,
        };
        let value = tree.render(engine, bindings, RenderMode::Text)?;
        reply_from_dsl(value)
    }
}

/// A message in DSL form built at run time (a rendered template, a script's `send`) as the
/// reply to send; over-long texts are cut to fit WhatsApp's limits.
///
/// # Errors
/// The value is not a valid DSL message.
pub fn reply_from_dsl(value: serde_json::Value) -> Result<Reply, RenderError> {
    let spec: MessageSpec =
        serde_json::from_value(value).map_err(|error| RenderError::Invalid(error.to_string()))?;
    let mut message = spec
        .to_outbound()
        .map_err(|error| RenderError::Invalid(error.to_string()))?;
    for note in limits::fit(&mut message) {
        tracing::warn!(message = "Rendered message cut to fit WhatsApp's limits.", %note);
    }
    Ok(Reply {
        message,
        fallback_text: spec.fallback_text,
        outside_window: None,
    })
}
