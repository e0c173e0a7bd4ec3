//! Conversation tests (DESIGN §9): dialogues in YAML run against the flows in process, each file
//! on a fresh in-memory contact, the bot's replies matched one to one as partial DSL forms.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::diagnostic::Diagnostics;
use crate::duration::Duration;
use crate::flow::loader::{SourceFile, deserialize_at, parse_yaml};
use crate::flow::runtime::{Input, TimerRequest};
use crate::flow::{Bot, ContactState, handle};
use crate::message::outbound::Choice;
use crate::message::{InboundMessage, dsl_form};
use crate::simulator::{Sender, SimulatedInput};
use crate::source::{SourceMap, YamlPath};

/// 2027-01-04T09:00:00Z, a Monday morning: the clock every test starts at.
pub const TEST_EPOCH: i64 = 1_799_053_200;

/// One conversation test file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationTest {
    /// What the dialogue shows.
    pub test: String,
    /// The user's number (digits).
    #[serde(default = "default_from")]
    pub from: String,
    /// The user's profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The channel (default `simulator`).
    #[serde(default = "default_channel")]
    pub channel: String,
    /// Variables the contact starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<serde_json::Map<String, Value>>,
    /// Tags the contact starts with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The turns.
    pub steps: Vec<TestStep>,
}

fn default_from() -> String {
    "15550001111".to_owned()
}

fn default_channel() -> String {
    "simulator".to_owned()
}

/// One turn: the user says something (or time passes), and what the bot must answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestStep {
    /// What the user sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserTurn>,
    /// Let this much time pass; timers due by then fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Duration>,
    /// The replies, in order, each a partial match of the reply in DSL form; omit to not check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<Vec<Value>>,
    /// Variables after the turn (partial match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<serde_json::Map<String, Value>>,
    /// The flow waiting for an answer after the turn; `null` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Option<String>>,
    /// Tags the contact must have after the turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// What the user sends: text, or one of the simulator's keyed forms.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum UserTurn {
    /// Typed text.
    Text(String),
    /// `{text | button | list | location | message}`, as the HTTP simulator takes them.
    Keyed(Box<SimulatedInput>),
}

/// The result of one test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The test's name.
    pub name: String,
    /// Its file.
    pub file: PathBuf,
    /// Why it failed, with a diff; `None` when it passed.
    pub failure: Option<String>,
}

/// Reads one conversation test file.
///
/// # Errors
/// Problems with the file, at `path:line:col`.
pub fn read(path: &Path) -> Result<ConversationTest, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let text = std::fs::read_to_string(path).map_err(|error| {
        let mut d = Diagnostics::default();
        d.push(crate::diagnostic::Diagnostic::error(
            path,
            Default::default(),
            format!("cannot read test: {error}"),
        ));
        d
    })?;
    let file = SourceFile {
        path: path.to_path_buf(),
        map: SourceMap::parse(&text),
    };
    let parsed = parse_yaml(path, &text, &mut diagnostics).and_then(|value| {
        deserialize_at::<ConversationTest>(&file, &value, &YamlPath::root(), &mut diagnostics)
    });
    parsed.ok_or(diagnostics)
}

/// Runs one test against `bot`.
#[must_use]
pub fn run(bot: &Bot, test: &ConversationTest, file: &Path) -> Outcome {
    let mut runner = Runner::new(test);
    let failure = test.steps.iter().enumerate().find_map(|(index, step)| {
        runner
            .step(bot, step)
            .err()
            .map(|why| format!("step {} {}: {why}", index + 1, describe(step)))
    });
    Outcome {
        name: test.test.clone(),
        file: file.to_path_buf(),
        failure,
    }
}

struct Runner {
    state: ContactState,
    now: i64,
    timers: Vec<TimerRequest>,
    last_options: Vec<Choice>,
    counter: usize,
}

impl Runner {
    fn new(test: &ConversationTest) -> Self {
        let mut state = ContactState::new(&test.channel, &test.from);
        state.name = test.name.clone();
        state.vars = test.vars.clone().unwrap_or_default();
        state.tags = test.tags.iter().cloned().collect();
        Self {
            state,
            now: TEST_EPOCH,
            timers: Vec::new(),
            last_options: Vec::new(),
            counter: 0,
        }
    }

    fn step(&mut self, bot: &Bot, step: &TestStep) -> Result<(), String> {
        let mut replies = Vec::new();
        let mut errors = Vec::new();
        if let Some(wait) = step.wait {
            self.now += wait.as_secs_i64();
            replies.extend(self.fire_timers(bot, &mut errors));
        }
        if let Some(turn) = &step.user {
            let message = self.inbound(turn)?;
            self.now += 1;
            let effects = handle(bot, &mut self.state, Input::Message(&message), self.now);
            errors.extend(step_errors(&effects.notes));
            self.timers.extend(effects.timers);
            replies.extend(effects.replies.into_iter().map(|r| r.message));
        }
        if let Some(options) = replies
            .iter()
            .rev()
            .map(|m| m.choices())
            .find(|c| !c.is_empty())
        {
            self.last_options = options;
        }
        let actual: Vec<Value> = replies.iter().map(dsl_form).collect();
        self.check(step, &actual).map_err(|failure| {
            if errors.is_empty() {
                failure
            } else {
                format!("{failure}\nthe flow reported: {}", errors.join("; "))
            }
        })
    }

    fn fire_timers(
        &mut self,
        bot: &Bot,
        errors: &mut Vec<String>,
    ) -> Vec<crate::message::Outbound> {
        let mut replies = Vec::new();
        loop {
            self.timers.sort_by_key(TimerRequest::due);
            let Some(timer) = self.timers.first().filter(|t| t.due() <= self.now).cloned() else {
                break;
            };
            self.timers.remove(0);
            let effects = handle(bot, &mut self.state, timer.input(), timer.due());
            errors.extend(step_errors(&effects.notes));
            self.timers.extend(effects.timers);
            replies.extend(effects.replies.into_iter().map(|r| r.message));
        }
        replies
    }

    fn inbound(&mut self, turn: &UserTurn) -> Result<InboundMessage, String> {
        self.counter += 1;
        let text;
        let input = match turn {
            UserTurn::Text(body) => {
                text = SimulatedInput::text(body.clone());
                &text
            }
            UserTurn::Keyed(keyed) => keyed,
        };
        let id = format!("wamid.test{}", self.counter);
        let sender = Sender {
            from: &self.state.id,
            name: self.state.name.as_deref(),
            id: &id,
            now: self.now,
            options: &self.last_options,
        };
        input.to_message(sender).map_err(|error| error.to_string())
    }

    fn check(&self, step: &TestStep, actual: &[Value]) -> Result<(), String> {
        if let Some(expected) = &step.bot {
            let matches = expected.len() == actual.len()
                && expected
                    .iter()
                    .zip(actual)
                    .all(|(e, a)| partial_match(e, a));
            if !matches {
                return Err(format!(
                    "the bot's replies differ\n{}",
                    diff(
                        &Value::from(expected.clone()),
                        &Value::from(actual.to_vec())
                    )
                ));
            }
        }
        if let Some(vars) = &step.vars {
            let actual = Value::Object(self.state.vars.clone());
            let expected = Value::Object(vars.clone());
            if !partial_match(&expected, &actual) {
                return Err(format!("vars differ\n{}", diff(&expected, &actual)));
            }
        }
        if let Some(waiting) = &step.waiting {
            let actual = self.state.conversation.as_ref().map(|c| c.flow.clone());
            if &actual != waiting {
                return Err(format!(
                    "expected the flow waiting to be {waiting:?}, it is {actual:?}"
                ));
            }
        }
        if let Some(tags) = &step.tags {
            let missing: Vec<&String> = tags
                .iter()
                .filter(|t| !self.state.tags.contains(*t))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "the contact lacks tags {missing:?}; it has {:?}",
                    self.state.tags
                ));
            }
        }
        Ok(())
    }
}

/// True when every key and item of `expected` is in `actual`; lists must have the same length.
/// A string expected where a `{body}` map is (text with options) compares with its body.
/// Numbers compare with their type: `3` does not match `3.0`, so typed answers are checked.
#[must_use]
pub fn partial_match(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => expected
            .iter()
            .all(|(key, value)| actual.get(key).is_some_and(|a| partial_match(value, a))),
        (Value::Array(expected), Value::Array(actual)) => {
            expected.len() == actual.len()
                && expected
                    .iter()
                    .zip(actual)
                    .all(|(e, a)| partial_match(e, a))
        }
        (Value::String(_), Value::Object(actual)) => actual
            .get("body")
            .is_some_and(|body| partial_match(expected, body)),
        _ => expected == actual,
    }
}

/// A unified diff of the YAML forms, `-` expected and `+` actual, the actual side cut down to
/// the keys the expectation names so only real differences show.
fn diff(expected: &Value, actual: &Value) -> String {
    let actual = prune(actual, expected);
    let expected = serde_yaml::to_string(expected).unwrap_or_default();
    let actual = serde_yaml::to_string(&actual).unwrap_or_default();
    similar::TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(20)
        .header("expected", "actual")
        .to_string()
}

/// `actual` without the map keys `expected` does not mention (lists item by item; items
/// beyond the expectation are kept whole).
fn prune(actual: &Value, expected: &Value) -> Value {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => Value::Object(
            actual
                .iter()
                .filter_map(|(key, value)| {
                    expected.get(key).map(|e| (key.clone(), prune(value, e)))
                })
                .collect(),
        ),
        (Value::Array(actual), Value::Array(expected)) => Value::Array(
            actual
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    expected
                        .get(i)
                        .map_or_else(|| value.clone(), |e| prune(value, e))
                })
                .collect(),
        ),
        (Value::Object(actual), Value::String(_)) if actual.contains_key("body") => {
            actual.get("body").cloned().unwrap_or_default()
        }
        _ => actual.clone(),
    }
}

fn describe(step: &TestStep) -> String {
    let mut parts = IndexMap::new();
    if let Some(wait) = &step.wait {
        parts.insert("wait", json!(wait.to_string()));
    }
    if let Some(user) = &step.user {
        parts.insert("user", serde_json::to_value(user).unwrap_or_default());
    }
    format!("({})", serde_json::to_string(&parts).unwrap_or_default())
}

/// The failures a turn reported (a script error, say), to explain a reply that did not come.
fn step_errors(notes: &[crate::flow::Note]) -> impl Iterator<Item = String> + '_ {
    notes.iter().filter_map(|note| match note {
        crate::flow::Note::Error { message } => Some(message.clone()),
        _ => None,
    })
}
