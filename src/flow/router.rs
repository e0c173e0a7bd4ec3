//! The trigger index: which flow an inbound message starts (DESIGN §6, routing order step 6).
//!
//! Built once per load: one hash map for keywords, one Aho-Corasick automaton for `contains`,
//! one `RegexSet` for `regex`, hash maps for reply ids and events. Matching cost does not grow
//! with the number of flows.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexSet};

use crate::flow::bot::{Flow, FlowIdx};
use crate::flow::model::EventKind;
use crate::flow::normalize::{is_word_char, normalize};
use crate::message::{DeliveryStatus, InboundMessage};
use crate::script::Expr;

/// Trigger kinds in the order they win (DESIGN §6: button > keywords > contains > regex > event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TriggerKind {
    /// An interactive reply id.
    Button,
    /// The whole normalized message.
    Keywords,
    /// A phrase on word boundaries.
    Contains,
    /// A regular expression.
    Regex,
    /// A message kind or delivery status.
    Event,
}

/// What a trigger matches, compiled; the input of [`Router::build`].
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Whole-message phrases (normalized at build time).
    Keywords(Vec<String>),
    /// Phrases anywhere (normalized at build time).
    Contains(Vec<String>),
    /// A compiled case-insensitive regex.
    Regex(Regex),
    /// Reply ids.
    Button(Vec<String>),
    /// A message kind or status.
    Event(EventKind),
}

/// One trigger of one flow.
#[derive(Debug, Clone)]
pub struct TriggerDef {
    /// The flow it starts.
    pub flow: FlowIdx,
    /// What it matches.
    pub matcher: Matcher,
    /// Its `when` guard.
    pub when: Option<Expr>,
}

/// The chosen flow, and what the trigger captured.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    /// The flow to start.
    pub flow: FlowIdx,
    /// Which kind of trigger won.
    pub kind: TriggerKind,
    /// Regex named groups, as strings.
    pub captures: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    flow: FlowIdx,
    trigger: usize,
}

/// The index over every flow's triggers.
#[derive(Debug, Default)]
pub struct Router {
    triggers: Vec<TriggerDef>,
    keywords: HashMap<String, Vec<Candidate>>,
    contains: Option<AhoCorasick>,
    contains_phrases: Vec<(usize, Candidate)>,
    regex_set: Option<RegexSet>,
    regexes: Vec<Candidate>,
    buttons: HashMap<String, Vec<Candidate>>,
    events: HashMap<EventKind, Vec<Candidate>>,
}

/// Where a candidate ranks within its kind: higher priority, longer match, then flow id.
struct Ranked<'a> {
    candidate: Candidate,
    priority: i32,
    length: usize,
    flow_id: &'a str,
}

/// The scope a routing decision is made in.
pub struct RouteQuery<'a> {
    /// The channel the message came in on.
    pub channel: &'a str,
    /// Only `interrupt: true` flows (a flow waits for an answer).
    pub interrupts_only: bool,
}

impl Router {
    /// Indexes `triggers`; flows' own fields (priority, id) are read at match time.
    ///
    /// # Errors
    /// Fails only if the automaton or the regex set cannot be built (patterns were checked one
    /// by one before, so this means a size limit was hit).
    pub fn build(triggers: Vec<TriggerDef>) -> Result<Self, String> {
        let mut router = Self::default();
        let mut phrases = Vec::new();
        let mut patterns = Vec::new();
        for (index, trigger) in triggers.iter().enumerate() {
            let candidate = Candidate {
                flow: trigger.flow,
                trigger: index,
            };
            match &trigger.matcher {
                Matcher::Keywords(words) => {
                    for word in words {
                        router
                            .keywords
                            .entry(word.clone())
                            .or_default()
                            .push(candidate);
                    }
                }
                Matcher::Contains(words) => {
                    for word in words {
                        router
                            .contains_phrases
                            .push((word.chars().count(), candidate));
                        phrases.push(word.clone());
                    }
                }
                Matcher::Regex(regex) => {
                    patterns.push(regex.as_str().to_owned());
                    router.regexes.push(candidate);
                }
                Matcher::Button(ids) => {
                    for id in ids {
                        router
                            .buttons
                            .entry(id.clone())
                            .or_default()
                            .push(candidate);
                    }
                }
                Matcher::Event(kind) => router.events.entry(*kind).or_default().push(candidate),
            }
        }
        if !phrases.is_empty() {
            router.contains = Some(AhoCorasick::new(&phrases).map_err(|e| e.to_string())?);
        }
        if !patterns.is_empty() {
            router.regex_set = Some(RegexSet::new(&patterns).map_err(|e| e.to_string())?);
        }
        router.triggers = triggers;
        Ok(router)
    }

    /// The best trigger for an inbound message, kinds in order, `when` checked by `guard`.
    pub fn route(
        &self,
        flows: &[Flow],
        message: &InboundMessage,
        query: &RouteQuery<'_>,
        guard: &mut dyn FnMut(&Expr) -> bool,
    ) -> Option<RouteMatch> {
        let text = message.text().unwrap_or_default();
        let normalized = normalize(text);
        let pick = |kind, found: Vec<(Candidate, usize)>, guard: &mut dyn FnMut(&Expr) -> bool| {
            self.best(flows, found, query, guard)
                .map(|flow| RouteMatch {
                    flow,
                    kind,
                    captures: Vec::new(),
                })
        };
        if let Some(id) = message.reply_id() {
            let found = self
                .buttons
                .get(id)
                .map(|c| with_length(c, 0))
                .unwrap_or_default();
            if let Some(hit) = pick(TriggerKind::Button, found, guard) {
                return Some(hit);
            }
        }
        if !normalized.is_empty() {
            let found = self
                .keywords
                .get(&normalized)
                .map(|c| with_length(c, 0))
                .unwrap_or_default();
            if let Some(hit) = pick(TriggerKind::Keywords, found, guard) {
                return Some(hit);
            }
            if let Some(hit) = pick(
                TriggerKind::Contains,
                self.contains_matches(&normalized),
                guard,
            ) {
                return Some(hit);
            }
        }
        if let Some(hit) = self.regex_match(flows, text.trim(), query, guard) {
            return Some(hit);
        }
        let found = self.events_for(&[message_event(message), Some(EventKind::Any)]);
        pick(TriggerKind::Event, found, guard)
    }

    /// The flow a delivery status starts (`event: status_failed` and friends), if any.
    pub fn route_status(
        &self,
        flows: &[Flow],
        status: &DeliveryStatus,
        query: &RouteQuery<'_>,
        guard: &mut dyn FnMut(&Expr) -> bool,
    ) -> Option<RouteMatch> {
        let kind = match status.status {
            crate::message::StatusKind::Sent => EventKind::StatusSent,
            crate::message::StatusKind::Delivered => EventKind::StatusDelivered,
            crate::message::StatusKind::Read => EventKind::StatusRead,
            crate::message::StatusKind::Failed => EventKind::StatusFailed,
            crate::message::StatusKind::Played => return None,
        };
        let found = self.events_for(&[Some(kind)]);
        self.best(flows, found, query, guard)
            .map(|flow| RouteMatch {
                flow,
                kind: TriggerKind::Event,
                captures: Vec::new(),
            })
    }

    fn events_for(&self, kinds: &[Option<EventKind>]) -> Vec<(Candidate, usize)> {
        let mut found = Vec::new();
        for (specificity, kind) in kinds.iter().rev().enumerate() {
            if let Some(candidates) = kind.and_then(|kind| self.events.get(&kind)) {
                found.extend(with_length(candidates, specificity));
            }
        }
        found
    }

    fn contains_matches(&self, normalized: &str) -> Vec<(Candidate, usize)> {
        let Some(automaton) = &self.contains else {
            return Vec::new();
        };
        automaton
            .find_overlapping_iter(normalized)
            .filter(|hit| on_word_boundaries(normalized, hit.start(), hit.end()))
            .map(|hit| {
                let (length, candidate) = self.contains_phrases[hit.pattern().as_usize()];
                (candidate, length)
            })
            .collect()
    }

    fn regex_match(
        &self,
        flows: &[Flow],
        trimmed: &str,
        query: &RouteQuery<'_>,
        guard: &mut dyn FnMut(&Expr) -> bool,
    ) -> Option<RouteMatch> {
        let set = self.regex_set.as_ref()?;
        let mut found = Vec::new();
        for index in set.matches(trimmed).iter() {
            let candidate = self.regexes[index];
            let Matcher::Regex(regex) = &self.triggers[candidate.trigger].matcher else {
                continue;
            };
            let length = regex
                .find(trimmed)
                .map_or(0, |m| m.as_str().chars().count());
            found.push((candidate, length));
        }
        let flow = self.best_candidate(flows, found, query, guard)?;
        let Matcher::Regex(regex) = &self.triggers[flow.trigger].matcher else {
            return None;
        };
        Some(RouteMatch {
            flow: flow.flow,
            kind: TriggerKind::Regex,
            captures: captures(regex, trimmed),
        })
    }

    fn best(
        &self,
        flows: &[Flow],
        found: Vec<(Candidate, usize)>,
        query: &RouteQuery<'_>,
        guard: &mut dyn FnMut(&Expr) -> bool,
    ) -> Option<FlowIdx> {
        self.best_candidate(flows, found, query, guard)
            .map(|c| c.flow)
    }

    /// Ranks candidates of one kind and returns the first whose flow serves the query and whose
    /// guard holds.
    fn best_candidate(
        &self,
        flows: &[Flow],
        found: Vec<(Candidate, usize)>,
        query: &RouteQuery<'_>,
        guard: &mut dyn FnMut(&Expr) -> bool,
    ) -> Option<Candidate> {
        let mut ranked: Vec<Ranked<'_>> = found
            .into_iter()
            .filter_map(|(candidate, length)| {
                let flow = flows.get(candidate.flow)?;
                let eligible =
                    flow.serves(query.channel) && (!query.interrupts_only || flow.interrupt);
                eligible.then_some(Ranked {
                    candidate,
                    priority: flow.priority,
                    length,
                    flow_id: &flow.id,
                })
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(b.length.cmp(&a.length))
                .then(a.flow_id.cmp(b.flow_id))
                .then(a.candidate.trigger.cmp(&b.candidate.trigger))
        });
        ranked.into_iter().map(|r| r.candidate).find(|c| {
            self.triggers[c.trigger]
                .when
                .as_ref()
                .is_none_or(&mut *guard)
        })
    }
}

fn with_length(candidates: &[Candidate], length: usize) -> Vec<(Candidate, usize)> {
    candidates.iter().map(|&c| (c, length)).collect()
}

fn on_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
}

fn captures(regex: &Regex, text: &str) -> Vec<(String, String)> {
    let Some(caps) = regex.captures(text) else {
        return Vec::new();
    };
    regex
        .capture_names()
        .flatten()
        .filter_map(|name| {
            caps.name(name)
                .map(|m| (name.to_owned(), m.as_str().to_owned()))
        })
        .collect()
}

/// The event kind of a message for `event:` triggers; replies to buttons have none but `any`.
fn message_event(message: &InboundMessage) -> Option<EventKind> {
    Some(match message.event_name() {
        "text" => EventKind::Text,
        "image" => EventKind::Image,
        "audio" => EventKind::Audio,
        "voice" => EventKind::Voice,
        "video" => EventKind::Video,
        "document" => EventKind::Document,
        "sticker" => EventKind::Sticker,
        "location" => EventKind::Location,
        "contacts" => EventKind::Contacts,
        "order" => EventKind::Order,
        "flow_reply" => EventKind::FlowReply,
        "reaction" => EventKind::Reaction,
        "unsupported" => EventKind::Unsupported,
        _ => return None,
    })
}
