//! Running flows, as a pure function: (contact state, input, clock) → (new state, effects).
//!
//! The runtime knows no provider and no store. It routes the input (DESIGN §6 routing order),
//! runs steps in their documented order, asks and checks answers, and returns what to send and
//! which timers to set; the engine applies those effects.

use serde_json::{Value, json};

use crate::faq::FaqHit;
use crate::flow::answer;
use crate::flow::bot::{Bot, FaqAnswer, MessageTemplate, RemindAt, Step, Target, reply_from_dsl};
use crate::flow::normalize::normalize;
use crate::flow::router::{RouteMatch, RouteQuery};
use crate::flow::state::{ContactState, Conversation};
use crate::flow::template::RenderMode;
use crate::message::inbound::Content;
use crate::message::{DeliveryStatus, InboundMessage, Reply};
use crate::script::{Bindings, Jump, ScriptEffects, with_clock};

/// Steps one input may run without waiting for an answer before it is taken for a loop.
pub const MAX_STEPS_PER_TURN: usize = 64;

/// What happened to the contact.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// The contact sent a message.
    Message(&'a InboundMessage),
    /// A message we sent changed status.
    Status(&'a DeliveryStatus),
    /// The engine starts a flow by itself (reminder, schedule, broadcast).
    StartFlow {
        /// The flow's id.
        flow: &'a str,
    },
    /// An operator paused the bot for the contact (a human takes over) or gave it back.
    Handoff {
        /// `true`: the bot stays silent.
        paused: bool,
        /// Give the contact back to the bot after this many seconds.
        resume_after: Option<i64>,
    },
    /// A paused contact's `resume_after` ran out.
    ResumeHandoff {
        /// When the handoff it ends began; a later handoff makes this timer stale.
        since: i64,
    },
    /// An ask's `timeout` ran out.
    AskTimeout {
        /// The flow that asked.
        flow: &'a str,
        /// The step that asked.
        step: &'a str,
        /// When it asked; a later ask makes this timer stale.
        asked_at: i64,
    },
}

/// A timer the engine must set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimerRequest {
    /// Deliver [`Input::AskTimeout`] at `due`.
    AskTimeout {
        /// The flow that asked.
        flow: String,
        /// The step that asked.
        step: String,
        /// When it asked.
        asked_at: i64,
        /// Unix seconds.
        due: i64,
    },
    /// Deliver [`Input::StartFlow`] at `due`.
    StartFlow {
        /// The flow to start.
        flow: String,
        /// Unix seconds.
        due: i64,
    },
    /// Deliver [`Input::ResumeHandoff`] at `due`.
    ResumeHandoff {
        /// When the handoff began.
        since: i64,
        /// Unix seconds.
        due: i64,
    },
}

/// What the runtime did, for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A flow started.
    Started {
        /// The flow.
        flow: String,
        /// Why: the trigger kind, `fallback`, `goto`, `remind`…
        reason: String,
    },
    /// An answer was not valid.
    AnswerRejected {
        /// The asking step.
        step: String,
        /// Why.
        reason: String,
    },
    /// The message answered (validly or not) the ask a flow waited on.
    Answered {
        /// The flow.
        flow: String,
        /// The asking step.
        step: String,
    },
    /// A conversation stopped before its flow's end; the funnel counts it at the step it was at.
    Abandoned {
        /// The flow.
        flow: String,
        /// The step it was at: the one waiting for an answer, or the one that failed.
        step: String,
        /// Why it stopped.
        cause: AbandonCause,
    },
    /// The contact is in handoff; the bot stayed silent.
    Paused,
    /// A human took over (`paused`) or gave the contact back to the bot.
    Handoff {
        /// `true`: the bot is now silent for the contact.
        paused: bool,
    },
    /// A flow reached its end: a last step, `end: true`, `end_flow()`, a hand-over to a person,
    /// or a `goto` into another flow (which notes that flow as started). Every [`Note::Started`]
    /// is followed, in that turn or a later one, by one `Ended` or one [`Note::Abandoned`].
    Ended {
        /// The flow.
        flow: String,
    },
    /// Nothing matched and there is no fallback flow.
    Unrouted,
    /// The contact sent an opt-out (or opt-in) word.
    OptOut {
        /// `true`: opted out.
        opted_out: bool,
    },
    /// A text message reached the FAQ collections and none answered or offered a question.
    FaqMissed,
    /// An FAQ entry answered the message.
    FaqAnswered {
        /// The collection's id.
        collection: String,
        /// The entry's index in it.
        entry: usize,
        /// How well the message matched, 0..=1 (1 for a tapped suggestion).
        score: f64,
    },
    /// FAQ entries were offered as "did you mean" suggestions.
    FaqSuggested {
        /// Collection id, entry index and score of each.
        entries: Vec<(String, usize, f64)>,
    },
    /// A script called `log(…)`.
    ScriptLog {
        /// The line it logged.
        message: String,
    },
    /// A template, script or step failed; the flow ended.
    Error {
        /// What failed, with flow and step.
        message: String,
    },
}

/// Why a conversation stopped before its flow's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbandonCause {
    /// Its ask waited longer than `conversation_timeout`.
    Expired,
    /// Its ask's `timeout` ran out and the step has no `on_timeout`.
    TimedOut,
    /// Answers stayed invalid past `max_retries` and the step has no `on_fail`.
    Retries,
    /// Another flow started: an interrupt, or one the engine started (schedule, reminder…).
    Replaced,
    /// A template, script or step failed.
    Failed,
    /// The contact sent an opt-out word.
    OptedOut,
    /// A reload removed the asking step (or its ask).
    Removed,
    /// An operator took the contact over while the flow waited for an answer.
    HandedOver,
}

impl AbandonCause {
    /// Every cause, so a count kept per cause can be summed.
    pub const ALL: [Self; 8] = [
        Self::Expired,
        Self::TimedOut,
        Self::Retries,
        Self::Replaced,
        Self::Failed,
        Self::OptedOut,
        Self::Removed,
        Self::HandedOver,
    ];

    /// The cause as metrics and logs name it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::TimedOut => "timed_out",
            Self::Retries => "retries",
            Self::Replaced => "replaced",
            Self::Failed => "failed",
            Self::OptedOut => "opted_out",
            Self::Removed => "removed",
            Self::HandedOver => "handed_over",
        }
    }
}

/// Everything the engine must do after one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Messages to send, in order.
    pub replies: Vec<Reply>,
    /// Timers to set.
    pub timers: Vec<TimerRequest>,
    /// What happened.
    pub notes: Vec<Note>,
}

/// Handles one input for one contact at `now` (Unix seconds).
pub fn handle(bot: &Bot, state: &mut ContactState, input: Input<'_>, now: i64) -> Effects {
    with_clock(now, || {
        let mut turn = Turn::new(bot, state, now, input);
        match input {
            Input::Message(message) => turn.message(message),
            Input::Status(status) => turn.status(status),
            Input::StartFlow { flow } => turn.start_named(flow, "engine"),
            Input::Handoff {
                paused,
                resume_after,
            } => turn.operator_handoff(paused, resume_after),
            Input::ResumeHandoff { since } => {
                if turn.state.handoff && turn.state.handoff_since == Some(since) {
                    turn.set_handoff(false, None);
                }
            }
            Input::AskTimeout {
                flow,
                step,
                asked_at,
            } => turn.timeout(flow, step, asked_at),
        }
        turn.effects
    })
}

/// One input being handled.
struct Turn<'a> {
    bot: &'a Bot,
    state: &'a mut ContactState,
    now: i64,
    message: Value,
    bindings: Option<Bindings>,
    effects: Effects,
    /// Where a script of the current step asked to go instead of the step's own ask/goto.
    jump: Option<Jump>,
    /// How many replies there were when the current step started.
    step_replies: usize,
}

impl TimerRequest {
    /// Unix seconds when the timer is due.
    #[must_use]
    pub fn due(&self) -> i64 {
        match self {
            Self::AskTimeout { due, .. }
            | Self::StartFlow { due, .. }
            | Self::ResumeHandoff { due, .. } => *due,
        }
    }

    /// The input the timer delivers when it fires.
    #[must_use]
    pub fn input(&self) -> Input<'_> {
        match self {
            Self::AskTimeout {
                flow,
                step,
                asked_at,
                ..
            } => Input::AskTimeout {
                flow,
                step,
                asked_at: *asked_at,
            },
            Self::StartFlow { flow, .. } => Input::StartFlow { flow },
            Self::ResumeHandoff { since, .. } => Input::ResumeHandoff { since: *since },
        }
    }
}

impl<'a> Turn<'a> {
    fn new(bot: &'a Bot, state: &'a mut ContactState, now: i64, input: Input<'_>) -> Self {
        let message = match input {
            Input::Message(message) => message_view(message, &state.channel),
            _ => json!({}),
        };
        Self {
            bot,
            state,
            now,
            message,
            bindings: None,
            effects: Effects::default(),
            jump: None,
            step_replies: 0,
        }
    }

    fn note(&mut self, note: Note) {
        self.effects.notes.push(note);
    }

    /// The bindings for templates, rebuilt after vars or tags change.
    fn bindings(&mut self) -> &mut Bindings {
        let state = &*self.state;
        let message = &self.message;
        self.bindings.get_or_insert_with(|| {
            Bindings::new(
                &state.template_view(),
                &Value::Object(state.vars.clone()),
                message,
            )
        })
    }

    fn invalidate(&mut self) {
        self.bindings = None;
    }

    /// Sets a variable in the state and, when built, in the bindings (cheaper than rebuilding
    /// them from the whole state).
    fn set_var(&mut self, name: String, value: Value) {
        let updated = match &mut self.bindings {
            Some(bindings) => bindings.set_var(&name, &value),
            None => true,
        };
        self.state.vars.insert(name, value);
        if !updated {
            self.invalidate();
        }
    }

    fn message(&mut self, message: &InboundMessage) {
        self.state.last_inbound_at = Some(self.now);
        if let Some(name) = &message.name {
            self.state.name = Some(name.clone());
        }
        if self.opt_out_word(message) {
            return;
        }
        if self.state.handoff {
            self.note(Note::Paused);
            return;
        }
        let resolved = self.resolve_degraded_menu(message);
        if let Some(resolved) = &resolved {
            self.message = message_view(resolved, &self.state.channel);
            self.invalidate();
        }
        let message = resolved.as_ref().unwrap_or(message);
        self.expire_abandoned();
        if self.state.conversation.is_some() {
            if let Some(hit) = self.route(message, true) {
                return self.start_routed(hit);
            }
            if self.answer(message) {
                return;
            }
        }
        if self.chosen_faq(message) {
            return;
        }
        match self.route(message, false) {
            Some(hit) => self.start_routed(hit),
            None if self.faq(message) => {}
            None => match self.bot.fallback_flow {
                Some(flow) => self.start(flow, "fallback"),
                None => self.note(Note::Unrouted),
            },
        }
    }

    /// Routing step 7: the best FAQ entry answers when it scores at least its collection's
    /// threshold; between the thresholds the top questions are offered as a list; below,
    /// nothing (the fallback flow follows).
    fn faq(&mut self, message: &InboundMessage) -> bool {
        let Content::Text { body } = &message.content else {
            return false;
        };
        let bot = self.bot;
        let hits = bot.faq_index.search(body, &self.state.channel, 3);
        let Some(best) = hits.first().copied() else {
            return self.faq_missed();
        };
        let collection = &bot.faqs[best.collection];
        if crate::faq::answers(&hits, collection.threshold) {
            return self.answer_faq(best);
        }
        let offered: Vec<FaqHit> = hits
            .into_iter()
            .filter(|hit| hit.score >= bot.faqs[hit.collection].suggest_threshold)
            .collect();
        if offered.is_empty() {
            return self.faq_missed();
        }
        self.note(Note::FaqSuggested {
            entries: offered
                .iter()
                .map(|hit| (bot.faqs[hit.collection].id.clone(), hit.entry, hit.score))
                .collect(),
        });
        let list = faq_suggestions(bot, &offered);
        self.effects.replies.push(Reply {
            message: list,
            fallback_text: None,
            outside_window: None,
        });
        true
    }

    /// Notes that the FAQ collections, if there are any, had nothing for the message; false.
    fn faq_missed(&mut self) -> bool {
        if !self.bot.faqs.is_empty() {
            self.note(Note::FaqMissed);
        }
        false
    }

    /// A tapped "did you mean" row (`faq:<collection>:<entry>`) answers that entry.
    fn chosen_faq(&mut self, message: &InboundMessage) -> bool {
        let Some(id) = message.reply_id() else {
            return false;
        };
        let Some((collection, entry)) = id
            .strip_prefix("faq:")
            .and_then(|rest| rest.rsplit_once(':'))
        else {
            return false;
        };
        let Some(c) = self.bot.faqs.iter().position(|f| f.id == collection) else {
            return false;
        };
        let Some(e) = entry
            .parse()
            .ok()
            .filter(|&e| e < self.bot.faqs[c].entries.len())
        else {
            return false;
        };
        self.answer_faq(FaqHit {
            collection: c,
            entry: e,
            score: 1.0,
        })
    }

    /// Answers with an entry: its messages, or the flow it names.
    fn answer_faq(&mut self, hit: FaqHit) -> bool {
        let bot = self.bot;
        let collection = &bot.faqs[hit.collection];
        self.note(Note::FaqAnswered {
            collection: collection.id.clone(),
            entry: hit.entry,
            score: hit.score,
        });
        match &collection.entries[hit.entry].answer {
            FaqAnswer::Messages(messages) => {
                if let Err(message) = self.send(messages, None) {
                    self.note(Note::Error {
                        message: format!("FAQ {} entry {}: {message}", collection.id, hit.entry),
                    });
                }
            }
            FaqAnswer::Goto(flow) => self.start(*flow, "faq"),
        }
        true
    }

    /// Routing step 2: a stop word opts the contact out of engine-started messages (and ends
    /// what they were doing), a start word opts them back in; each is confirmed.
    fn opt_out_word(&mut self, message: &InboundMessage) -> bool {
        let Content::Text { body } = &message.content else {
            return false;
        };
        let word = normalize(body);
        let words = &self.bot.opt_out;
        let (opted_out, reply) = if words.stop.contains(&word) {
            (true, words.stop_reply.clone())
        } else if words.start.contains(&word) {
            (false, words.start_reply.clone())
        } else {
            return false;
        };
        self.state.opted_out = opted_out;
        self.abandon(AbandonCause::OptedOut);
        self.note(Note::OptOut { opted_out });
        let text = crate::message::outbound::Text {
            preview_url: None,
            body: reply,
        };
        self.effects.replies.push(Reply {
            message: crate::message::Outbound::Text { text },
            fallback_text: None,
            outside_window: None,
        });
        true
    }

    /// Routing step 4: after a menu was sent as numbered text, `2` or an option's title is
    /// read as tapping that option, whether or not an ask waits.
    fn resolve_degraded_menu(&self, message: &InboundMessage) -> Option<InboundMessage> {
        let menu = &self.state.degraded_menu;
        let Content::Text { body } = &message.content else {
            return None;
        };
        let text = normalize(body);
        let by_number = text
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| menu.get(i));
        let choice = by_number.or_else(|| menu.iter().find(|c| normalize(&c.title) == text))?;
        let content = Content::ButtonReply {
            id: choice.id.clone(),
            title: choice.title.clone(),
        };
        Some(InboundMessage {
            content,
            ..message.clone()
        })
    }

    fn expire_abandoned(&mut self) {
        let timeout = self.bot.conversation_timeout.as_secs_i64();
        let expired = self.state.conversation.as_ref();
        if expired.is_some_and(|conversation| self.now - conversation.asked_at > timeout) {
            self.abandon(AbandonCause::Expired);
        }
    }

    /// Ends the waiting conversation, if there is one, short of its flow's end.
    fn abandon(&mut self, cause: AbandonCause) {
        if let Some(left) = self.state.conversation.take() {
            self.note(Note::Abandoned {
                flow: left.flow,
                step: left.step,
                cause,
            });
        }
    }

    fn route(&mut self, message: &InboundMessage, interrupts_only: bool) -> Option<RouteMatch> {
        let bot = self.bot;
        let channel = self.state.channel.clone();
        let query = RouteQuery {
            channel: &channel,
            interrupts_only,
        };
        // Built only if a trigger has a `when` to evaluate.
        let mut guard = |expr: &crate::script::Expr| {
            bot.engine.eval_bool(expr, self.bindings()).unwrap_or(false)
        };
        bot.router.route(&bot.flows, message, &query, &mut guard)
    }

    fn start_routed(&mut self, hit: RouteMatch) {
        for (name, value) in hit.captures {
            self.set_var(name, Value::String(value));
        }
        let reason = format!("{:?}", hit.kind).to_lowercase();
        self.start(hit.flow, &reason);
    }

    fn status(&mut self, status: &DeliveryStatus) {
        if self.state.handoff || self.state.opted_out {
            return;
        }
        let bot = self.bot;
        let channel = self.state.channel.clone();
        let query = RouteQuery {
            channel: &channel,
            interrupts_only: false,
        };
        let bindings = self.bindings();
        let mut guard =
            |expr: &crate::script::Expr| bot.engine.eval_bool(expr, bindings).unwrap_or(false);
        if let Some(hit) = bot
            .router
            .route_status(&bot.flows, status, &query, &mut guard)
        {
            self.message = json!({"type": "status", "status": status.status.as_str(), "id": status.message_id});
            self.invalidate();
            self.start(hit.flow, "status");
        }
    }

    fn start_named(&mut self, flow: &str, reason: &str) {
        if self.state.handoff || self.state.opted_out {
            return;
        }
        match self.bot.flow(flow) {
            Some((idx, _)) => self.start(idx, reason),
            None => self.note(Note::Error {
                message: format!("flow \"{flow}\" no longer exists"),
            }),
        }
    }

    fn timeout(&mut self, flow: &str, step: &str, asked_at: i64) {
        let current = self.state.conversation.as_ref();
        if !current.is_some_and(|c| c.flow == flow && c.step == step && c.asked_at == asked_at) {
            return;
        }
        let asking = self.bot.step(flow, step);
        let on_timeout = asking.and_then(|t| self.step_of(t).ask.as_ref()?.on_timeout);
        match (asking, on_timeout) {
            (Some(asking), Some(target)) => {
                self.state.conversation = None;
                let target = self.enter(asking, target, "goto");
                self.run(target);
            }
            _ => self.abandon(AbandonCause::TimedOut),
        }
    }

    fn start(&mut self, flow: usize, reason: &str) {
        self.abandon(AbandonCause::Replaced);
        let target = Target {
            flow,
            step: self.bot.flows[flow].start,
        };
        self.note(Note::Started {
            flow: self.bot.flows[flow].id.clone(),
            reason: reason.to_owned(),
        });
        self.run(target);
    }

    /// Moving from `from` to `to`: entering another flow ends `from`'s (it reached its exit)
    /// and starts `to`'s, `how` saying why (`goto`, `script`).
    fn enter(&mut self, from: Target, to: Target, how: &str) -> Target {
        if from.flow != to.flow {
            let (flow, _) = self.names(from);
            self.note(Note::Ended { flow });
            self.note(Note::Started {
                flow: self.bot.flows[to.flow].id.clone(),
                reason: how.to_owned(),
            });
        }
        to
    }

    fn step_of(&self, target: Target) -> &'a Step {
        &self.bot.flows[target.flow].steps[target.step]
    }

    /// An operator takes over (the question waiting is dropped, so the bot doesn't take the
    /// human's conversation for an answer later) or gives the contact back.
    fn operator_handoff(&mut self, paused: bool, resume_after: Option<i64>) {
        if paused {
            self.abandon(AbandonCause::HandedOver);
        }
        self.set_handoff(paused, resume_after);
    }

    /// Pauses the bot for the contact, to resume after `resume_after` seconds if given, or
    /// gives it back.
    fn set_handoff(&mut self, paused: bool, resume_after: Option<i64>) {
        if paused {
            self.state.handoff_since = Some(self.now);
            if let Some(after) = resume_after {
                self.effects.timers.push(TimerRequest::ResumeHandoff {
                    since: self.now,
                    due: self.now.saturating_add(after),
                });
            }
        } else {
            self.state.handoff_since = None;
        }
        self.state.handoff = paused;
        self.note(Note::Handoff { paused });
    }

    fn names(&self, target: Target) -> (String, String) {
        let flow = &self.bot.flows[target.flow];
        (flow.id.clone(), flow.steps[target.step].name.clone())
    }

    /// Runs steps from `target` until one asks or the flow ends.
    fn run(&mut self, mut target: Target) {
        for _ in 0..MAX_STEPS_PER_TURN {
            if let Err(message) = self.execute(target) {
                return self.fail(target, &message);
            }
            let step = self.step_of(target);
            if let Some(resume_after) = step.handoff {
                self.set_handoff(true, resume_after);
                return self.end(target);
            }
            if let Some(jump) = self.jump.take() {
                match self.follow(target, jump) {
                    Ok(Some(next)) => {
                        target = self.enter(target, next, "script");
                        continue;
                    }
                    Ok(None) => return self.end(target),
                    Err(message) => return self.fail(target, &message),
                }
            }
            if step.ask.is_some() {
                return self.wait(target);
            }
            match self.movement(target) {
                Ok(Some(next)) => target = self.enter(target, next, "goto"),
                Ok(None) => return self.end(target),
                Err(message) => return self.fail(target, &message),
            }
        }
        self.fail(target, &format!("more than {MAX_STEPS_PER_TURN} steps ran without waiting for an answer; look for a goto loop"));
    }

    fn end(&mut self, target: Target) {
        self.state.conversation = None;
        let (flow, _) = self.names(target);
        self.note(Note::Ended { flow });
    }

    /// Reports a failed step and hands the contact to `error_flow` (unless that flow failed).
    fn fail(&mut self, target: Target, message: &str) {
        self.state.conversation = None;
        let (flow, step) = self.names(target);
        self.note(Note::Error {
            message: format!("flow \"{flow}\" step \"{step}\": {message}"),
        });
        self.note(Note::Abandoned {
            flow,
            step,
            cause: AbandonCause::Failed,
        });
        if let Some(error_flow) = self.bot.error_flow.filter(|&f| f != target.flow) {
            self.start(error_flow, "error");
        }
    }

    /// A step's body in the documented order: set, scripts, tags, send, remind.
    fn execute(&mut self, target: Target) -> Result<(), String> {
        self.step_replies = self.effects.replies.len();
        let step = self.step_of(target);
        let engine = &self.bot.engine;
        for (name, value) in &step.set {
            let value = value
                .render(engine, self.bindings(), RenderMode::Typed)
                .map_err(|e| e.to_string())?;
            self.set_var(name.clone(), value);
        }
        for program in &step.scripts {
            let bindings = self.bindings();
            let asked = engine.run(program, bindings).map_err(|e| e.to_string())?;
            // The bindings hold the vars the script left; only `vars` can change in a script.
            match bindings.vars() {
                Value::Object(vars) => self.state.vars = vars,
                _ => self.invalidate(),
            }
            self.apply_script(asked, step.outside_window.as_deref())?;
        }
        for (templates, add) in [(&step.tag, true), (&step.untag, false)] {
            for template in templates {
                let tag = template
                    .render_text(engine, self.bindings())
                    .map_err(|e| e.to_string())?;
                if add {
                    self.state.tags.insert(tag)
                } else {
                    self.state.tags.remove(&tag)
                };
                self.invalidate();
            }
        }
        self.send(&step.send, step.outside_window.as_deref())?;
        if let Some(remind) = &step.remind {
            let due = match &remind.when {
                RemindAt::After(after) => self.now + after.as_secs_i64(),
                RemindAt::At(template) => {
                    let text = template
                        .render_text(engine, self.bindings())
                        .map_err(|e| e.to_string())?;
                    parse_instant(&text)?
                }
            };
            let flow = self.bot.flows[remind.flow].id.clone();
            self.effects
                .timers
                .push(TimerRequest::StartFlow { flow, due });
        }
        Ok(())
    }

    /// Applies what a script asked of the conversation, in the script's place in the step:
    /// its log lines, tags, messages and reminders now, its jump after the step.
    fn apply_script(
        &mut self,
        asked: ScriptEffects,
        outside_window: Option<&crate::message::Outbound>,
    ) -> Result<(), String> {
        for message in asked.logs {
            self.note(Note::ScriptLog { message });
        }
        for (tag, add) in asked.tags {
            if add {
                self.state.tags.insert(tag);
            } else {
                self.state.tags.remove(&tag);
            }
            self.invalidate();
        }
        for message in asked.sends {
            let mut reply = reply_from_dsl(message).map_err(|e| format!("send(): {e}"))?;
            reply.outside_window = outside_window.map(|template| Box::new(template.clone()));
            self.effects.replies.push(reply);
        }
        for (flow, after) in asked.reminders {
            let Some((_, found)) = self.bot.flow(&flow) else {
                return Err(format!(
                    "remind(\"{flow}\", …): there is no flow \"{flow}\""
                ));
            };
            self.effects.timers.push(TimerRequest::StartFlow {
                flow: found.id.clone(),
                due: self.now + after,
            });
        }
        if asked.jump.is_some() {
            self.jump = asked.jump;
        }
        Ok(())
    }

    /// Where a script's jump leads from `target`: a step of its flow, another flow's start, or
    /// the end (`None`).
    fn follow(&mut self, target: Target, jump: Jump) -> Result<Option<Target>, String> {
        match jump {
            Jump::Step(name) => {
                let flow = &self.bot.flows[target.flow];
                let step = flow.step_by_name.get(&name).ok_or_else(|| {
                    format!(
                        "goto(\"{name}\"): flow \"{}\" has no step \"{name}\"",
                        flow.id
                    )
                })?;
                Ok(Some(Target {
                    flow: target.flow,
                    step: *step,
                }))
            }
            Jump::Flow(name) => {
                let (flow, found) = self
                    .bot
                    .flow(&name)
                    .ok_or_else(|| format!("goto_flow(\"{name}\"): there is no flow \"{name}\""))?;
                Ok(Some(Target {
                    flow,
                    step: found.start,
                }))
            }
            Jump::End => Ok(None),
        }
    }

    /// Renders and queues `messages`, each carrying the step's `outside_window` template.
    fn send(
        &mut self,
        messages: &[MessageTemplate],
        outside_window: Option<&crate::message::Outbound>,
    ) -> Result<(), String> {
        for message in messages {
            let mut reply = message
                .render(&self.bot.engine, self.bindings())
                .map_err(|e| e.to_string())?;
            reply.outside_window = outside_window.map(|template| Box::new(template.clone()));
            self.effects.replies.push(reply);
        }
        Ok(())
    }

    fn wait(&mut self, target: Target) {
        let (flow, step) = self.names(target);
        // The step's own messages and its scripts' `send`s offer the options.
        let options = self.effects.replies[self.step_replies.min(self.effects.replies.len())..]
            .iter()
            .flat_map(|r| r.message.choices())
            .collect();
        let ask = self.step_of(target).ask.as_ref();
        if let Some(timeout) = ask.and_then(|ask| ask.timeout) {
            self.effects.timers.push(TimerRequest::AskTimeout {
                flow: flow.clone(),
                step: step.clone(),
                asked_at: self.now,
                due: self.now + timeout.as_secs_i64(),
            });
        }
        // Still the conversation that was answered: it keeps its start.
        let started_at = self
            .state
            .conversation
            .as_ref()
            .filter(|c| c.flow == flow)
            .map_or(self.now, |c| c.started_at);
        self.state.conversation = Some(Conversation {
            flow,
            step,
            retries: 0,
            asked_at: self.now,
            started_at,
            options,
        });
    }

    /// Where a finished step goes: switch, goto, next; `None` ends the flow.
    fn movement(&mut self, target: Target) -> Result<Option<Target>, String> {
        let step = self.step_of(target);
        for branch in &step.switch {
            let taken = match &branch.condition {
                None => true,
                Some(condition) => self
                    .bot
                    .engine
                    .eval_bool(condition, self.bindings())
                    .map_err(|e| e.to_string())?,
            };
            if taken {
                return Ok(Some(branch.target));
            }
        }
        Ok(step.goto.or(step.next))
    }

    /// Treats the message as the answer to the waiting ask; false when there is no valid ask
    /// any more (the flow changed under it), so the message routes normally.
    fn answer(&mut self, message: &InboundMessage) -> bool {
        let Some(conversation) = self.state.conversation.clone() else {
            return false;
        };
        let asking = self.bot.step(&conversation.flow, &conversation.step);
        let Some((target, ask)) = asking.and_then(|t| Some((t, self.step_of(t).ask.as_ref()?)))
        else {
            self.abandon(AbandonCause::Removed);
            return false;
        };
        self.note(Note::Answered {
            flow: conversation.flow.clone(),
            step: conversation.step.clone(),
        });
        match answer::accept(ask.kind, message, &conversation.options) {
            Ok(value) => {
                if let Some(save) = &ask.save {
                    self.set_var(save.clone(), value);
                }
                match self.movement(target) {
                    Ok(Some(next)) => {
                        let next = self.enter(target, next, "goto");
                        self.run(next);
                    }
                    Ok(None) => self.end(target),
                    Err(error) => self.fail(target, &error),
                }
            }
            Err(rejection) => self.reject(target, conversation, &rejection.to_string()),
        }
        true
    }

    fn reject(&mut self, target: Target, mut conversation: Conversation, reason: &str) {
        let step = self.step_of(target);
        let Some(ask) = step.ask.as_ref() else { return };
        self.note(Note::AnswerRejected {
            step: step.name.clone(),
            reason: reason.to_owned(),
        });
        conversation.retries += 1;
        if conversation.retries > ask.max_retries {
            let Some(on_fail) = ask.on_fail else {
                return self.abandon(AbandonCause::Retries);
            };
            self.state.conversation = None;
            let on_fail = self.enter(target, on_fail, "goto");
            return self.run(on_fail);
        }
        let prompt = if ask.retry.is_empty() {
            &step.send
        } else {
            &ask.retry
        };
        if let Err(error) = self.send(prompt, step.outside_window.as_deref()) {
            return self.fail(target, &error);
        }
        conversation.asked_at = self.now;
        if let Some(timeout) = ask.timeout {
            self.effects.timers.push(TimerRequest::AskTimeout {
                flow: conversation.flow.clone(),
                step: conversation.step.clone(),
                asked_at: self.now,
                due: self.now + timeout.as_secs_i64(),
            });
        }
        self.state.conversation = Some(conversation);
    }
}

/// RFC 3339 or Unix seconds, for `remind: {at: …}`.
fn parse_instant(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| {
            format!("remind at \"{text}\" is not an RFC 3339 time like 2027-01-31T09:00:00+07:00")
        })
}

/// `message` as templates see it; a media file's `url` is chatflow's own media route, which
/// fetches it from the provider on demand (provider URLs expire in minutes).
fn message_view(message: &InboundMessage, channel: &str) -> Value {
    let mut view = json!({
        "type": message.event_name(),
        "id": message.id,
        "from": message.from,
        "timestamp": message.timestamp,
        "text": message.text().map(str::to_owned),
        "reply_id": message.reply_id().map(str::to_owned),
    });
    let extra = match &message.content {
        Content::Location(location) => Some(("location", serde_json::to_value(location))),
        Content::Order(order) => Some(("order", serde_json::to_value(order))),
        Content::FlowReply { response, .. } => Some(("flow_response", Ok(response.clone()))),
        Content::Media(media) => {
            let mut media = media.clone();
            if let Some(id) = &media.id {
                media.url = Some(format!("/api/media/{channel}/{id}"));
            }
            Some(("media", serde_json::to_value(media)))
        }
        Content::Contacts { contacts } => Some(("contacts", Ok(Value::from(contacts.clone())))),
        Content::Reaction { emoji, message_id } => Some((
            "reaction",
            Ok(json!({"emoji": emoji, "message_id": message_id})),
        )),
        _ => None,
    };
    if let (Some((key, Ok(value))), Value::Object(map)) = (extra, &mut view) {
        map.insert(key.to_owned(), value);
    }
    view
}

/// Title length of a list row (WhatsApp's limit).
const ROW_TITLE_CHARS: usize = 24;
/// Description length of a list row (WhatsApp's limit).
const ROW_DESCRIPTION_CHARS: usize = 72;

/// "Did you mean…": the offered entries as a list whose rows answer them when tapped.
fn faq_suggestions(bot: &Bot, offered: &[FaqHit]) -> crate::message::Outbound {
    use crate::message::outbound::{Body, Choice, Interactive, ListAction, ListSection};
    let rows = offered
        .iter()
        .map(|hit| {
            let collection = &bot.faqs[hit.collection];
            let question = collection.entries[hit.entry]
                .questions
                .first()
                .map_or("", String::as_str);
            Choice {
                id: format!("faq:{}:{}", collection.id, hit.entry),
                title: cut(question, ROW_TITLE_CHARS),
                description: Some(cut(question, ROW_DESCRIPTION_CHARS)),
            }
        })
        .collect();
    crate::message::Outbound::Interactive {
        interactive: Interactive::List {
            header: None,
            body: Body {
                text: "Did you mean one of these?".to_owned(),
            },
            footer: None,
            action: ListAction {
                button: "Choose".to_owned(),
                sections: vec![ListSection {
                    title: Some("Questions".to_owned()),
                    rows,
                }],
            },
        },
    }
}

/// `text` cut to `chars` characters, with an ellipsis when cut.
fn cut(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(chars - 1).collect();
    out.push('…');
    out
}
