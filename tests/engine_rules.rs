//! The routing order, tie-breaks, step movement, goto resolution and value typing of DESIGN §6,
//! each shown on the smallest bot that exercises it.

mod common;

use chatflow::flow::{AbandonCause, Bot, ContactState, Effects, Input, LoadOptions, Note, handle};
use chatflow::message::inbound::Content;
use chatflow::message::{InboundMessage, dsl_form};
use common::bot;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;

fn flow(id: &str, extra: &str, reply: &str) -> String {
    format!("flow: {id}\n{extra}\nsteps:\n  only:\n    send: {{ text: \"{reply}\" }}\n")
}

fn text(body: &str) -> InboundMessage {
    message(Content::Text {
        body: body.to_owned(),
    })
}

fn message(content: Content) -> InboundMessage {
    InboundMessage {
        id: "wamid.1".into(),
        from: "15550001111".into(),
        name: Some("Ann".into()),
        timestamp: NOW,
        content,
        reply_to: None,
        referral: None,
    }
}

fn say(bot: &Bot, state: &mut ContactState, message: &InboundMessage) -> Effects {
    handle(bot, state, Input::Message(message), NOW)
}

fn replies(effects: &Effects) -> Vec<Value> {
    effects
        .replies
        .iter()
        .map(|r| dsl_form(&r.message))
        .collect()
}

fn reply_texts(effects: &Effects) -> Vec<String> {
    replies(effects)
        .iter()
        .map(|r| {
            r["text"]
                .as_str()
                .map_or_else(|| r.to_string(), str::to_owned)
        })
        .collect()
}

fn new_contact() -> ContactState {
    ContactState::new("simulator", "15550001111")
}

#[test]
fn button_beats_keywords_beats_contains_beats_regex_beats_event() {
    let files = [
        flow("a_event", "triggers: [{event: text}]", "event"),
        flow("b_regex", "triggers: [{regex: 'pizza'}]", "regex"),
        flow("c_contains", "triggers: [{contains: [pizza]}]", "contains"),
        flow("d_keywords", "triggers: [{keywords: [pizza]}]", "keywords"),
        flow("e_button", "triggers: [{button: pizza}]", "button"),
    ];
    let all: Vec<&str> = files.iter().map(String::as_str).collect();
    let check = |files: &[&str], message: &InboundMessage, expected: &str| {
        let effects = say(&bot(files), &mut new_contact(), message);
        assert_eq!(reply_texts(&effects), vec![expected.to_owned()]);
    };
    let tap = message(Content::ButtonReply {
        id: "pizza".into(),
        title: "pizza".into(),
    });
    check(&all, &tap, "button");
    check(&all[..4], &text("Pizza!"), "keywords");
    check(&all[..3], &text("a pizza please"), "contains");
    check(&all[..2], &text("pizzas"), "regex");
    check(&all[..1], &text("anything"), "event");
}

#[test]
fn within_a_kind_priority_then_longest_match_then_flow_id_win() {
    let low = flow(
        "alpha",
        "priority: 0\ntriggers: [{contains: [pizza]}]",
        "alpha",
    );
    let high = flow(
        "beta",
        "priority: 5\ntriggers: [{contains: [pizza]}]",
        "beta",
    );
    let b = bot(&[&low, &high]);
    assert_eq!(
        reply_texts(&say(&b, &mut new_contact(), &text("pizza now"))),
        ["beta"]
    );

    let short = flow("alpha", "triggers: [{contains: [pizza]}]", "short");
    let long = flow("beta", "triggers: [{contains: [large pizza]}]", "long");
    let b = bot(&[&short, &long]);
    assert_eq!(
        reply_texts(&say(&b, &mut new_contact(), &text("one large pizza"))),
        ["long"]
    );

    let first = flow("alpha", "triggers: [{contains: [pizza]}]", "alpha");
    let second = flow("beta", "triggers: [{contains: [pizza]}]", "beta");
    let b = bot(&[&second, &first]);
    assert_eq!(
        reply_texts(&say(&b, &mut new_contact(), &text("pizza"))),
        ["alpha"]
    );
}

#[test]
fn contains_respects_word_boundaries_and_normalization() {
    let b = bot(&[&flow("p", "triggers: [{contains: [pizza]}]", "yes")]);
    assert!(
        say(&b, &mut new_contact(), &text("pizzas"))
            .replies
            .is_empty()
    );
    assert_eq!(
        reply_texts(&say(&b, &mut new_contact(), &text("¡PIZZÄ, por favor!"))),
        ["yes"]
    );
}

#[test]
fn a_false_when_guard_drops_the_candidate() {
    let guarded = flow(
        "alpha",
        "priority: 9\ntriggers: [{keywords: [hi], when: 'vars.plan == \"pro\"'}]",
        "pro",
    );
    let plain = flow("beta", "triggers: [{keywords: [hi]}]", "plain");
    let b = bot(&[&guarded, &plain]);
    assert_eq!(
        reply_texts(&say(&b, &mut new_contact(), &text("hi"))),
        ["plain"]
    );
    let mut pro = new_contact();
    pro.vars.insert("plan".into(), json!("pro"));
    assert_eq!(reply_texts(&say(&b, &mut pro, &text("hi"))), ["pro"]);
}

#[test]
fn regex_named_groups_are_saved_as_strings() {
    let f = "flow: order\ntriggers: [{regex: '^i want (?P<qty>\\d+) pizzas?$'}]\nsteps:\n  s:\n    send: { text: \"{{ vars.qty }} coming\" }\n";
    let b = bot(&[f]);
    let mut state = new_contact();
    let effects = say(&b, &mut state, &text("  I want 3 pizzas "));
    assert_eq!(reply_texts(&effects), ["3 coming"]);
    assert_eq!(state.vars["qty"], json!("3"));
}

#[test]
fn nothing_matching_starts_the_fallback_flow() {
    let b = bot(&[&flow("fallback", "", "sorry")]);
    assert_eq!(
        reply_texts(&say(&b, &mut new_contact(), &text("???"))),
        ["sorry"]
    );
    let b = bot(&[&flow("other", "", "x")]);
    let effects = say(&b, &mut new_contact(), &text("???"));
    assert!(effects.replies.is_empty());
    assert!(effects.notes.contains(&Note::Unrouted));
}

const ASKING: &str = "flow: ask\ntriggers: [{keywords: [go]}]\nsteps:\n  q:\n    send: { text: \"How many?\" }\n    ask: { save: qty, type: integer, retry: \"A number, please.\", max_retries: 1, on_fail: failed }\n    next: done\n  done:\n    send: { text: \"{{ vars.qty * 2 }}\" }\n  failed:\n    send: { text: \"Let's stop here.\" }\n";

#[test]
fn an_answer_is_typed_saved_and_moves_on() {
    let b = bot(&[ASKING]);
    let mut state = new_contact();
    assert_eq!(
        reply_texts(&say(&b, &mut state, &text("go"))),
        ["How many?"]
    );
    assert_eq!(reply_texts(&say(&b, &mut state, &text(" 21 "))), ["42"]);
    assert_eq!(state.vars["qty"], json!(21));
    assert!(state.conversation.is_none());
}

#[test]
fn invalid_answers_are_reprompted_then_go_to_on_fail() {
    let b = bot(&[ASKING]);
    let mut state = new_contact();
    say(&b, &mut state, &text("go"));
    assert_eq!(
        reply_texts(&say(&b, &mut state, &text("lots"))),
        ["A number, please."]
    );
    assert_eq!(
        reply_texts(&say(&b, &mut state, &text("many"))),
        ["Let's stop here."]
    );
    assert!(state.conversation.is_none());
}

#[test]
fn an_interrupt_flow_wins_over_the_waiting_ask_and_others_do_not() {
    let cancel = "flow: cancel\ninterrupt: true\ntriggers: [{keywords: [cancel]}]\nsteps:\n  c:\n    send: { text: \"Cancelled.\" }\n";
    let other = flow("other", "triggers: [{keywords: ['5']}]", "other");
    let b = bot(&[ASKING, cancel, &other]);
    let mut state = new_contact();
    say(&b, &mut state, &text("go"));
    assert_eq!(
        reply_texts(&say(&b, &mut state, &text("Cancel!"))),
        ["Cancelled."]
    );
    assert!(state.conversation.is_none());
    say(&b, &mut state, &text("go"));
    assert_eq!(
        reply_texts(&say(&b, &mut state, &text("5"))),
        ["10"],
        "a non-interrupt trigger answers the ask"
    );
}

#[test]
fn an_ask_older_than_conversation_timeout_is_abandoned() {
    let b = bot(&[ASKING, &flow("fallback", "", "fresh start")]);
    let mut state = new_contact();
    say(&b, &mut state, &text("go"));
    let later = NOW + 25 * 3600;
    let effects = handle(&b, &mut state, Input::Message(&text("12")), later);
    assert_eq!(reply_texts(&effects), ["fresh start"]);
    assert!(
        effects
            .notes
            .iter()
            .any(|n| matches!(n, Note::Abandoned { flow, .. } if flow == "ask"))
    );
}

#[test]
fn switch_takes_the_first_true_branch_then_goto_then_next_and_never_falls_through() {
    let f = r#"flow: s
triggers: [{keywords: [go]}]
steps:
  first:
    set: { n: 7 }
    switch:
      - if: 'vars.n > 10'
        goto: big
      - if: 'vars.n > 5'
        goto: medium
      - else: small
  big: { send: { text: big } }
  medium:
    send: { text: medium }
    goto: jumped
    next: small
  small: { send: { text: small } }
  jumped: { send: { text: jumped } }
"#;
    let b = bot(&[f]);
    assert_eq!(
        reply_texts(&say(&b, &mut new_contact(), &text("go"))),
        ["medium", "jumped"]
    );
}

#[test]
fn goto_resolves_a_step_first_then_a_flow_then_flow_dot_step() {
    let main = "flow: main\ntriggers: [{keywords: [go]}]\nsteps:\n  a:\n    send: { text: a }\n    goto: other\n  other:\n    send: { text: own step }\n    goto: elsewhere.second\n";
    let elsewhere = "flow: elsewhere\nsteps:\n  first: { send: { text: first } }\n  second: { send: { text: second } }\n";
    let other = "flow: other\nsteps:\n  x: { send: { text: other flow } }\n";
    let b = bot(&[main, elsewhere, other]);
    assert_eq!(
        reply_texts(&say(&b, &mut new_contact(), &text("go"))),
        ["a", "own step", "second"]
    );
}

#[test]
fn a_lone_expression_keeps_its_type_and_mixed_text_is_a_string() {
    let f = r#"flow: t
triggers: [{keywords: [go]}]
steps:
  s:
    set:
      qty: "{{ 2 + 1 }}"
      total: "{{ vars.qty * 40 }}"
      label: "{{ vars.qty }} pizzas"
      flag: "{{ vars.qty > 2 }}"
      nothing: "[{{ vars.missing }}]"
"#;
    let b = bot(&[f]);
    let mut state = new_contact();
    say(&b, &mut state, &text("go"));
    assert_eq!(
        Value::Object(state.vars),
        json!({"qty": 3, "total": 120, "label": "3 pizzas", "flag": true, "nothing": "[]"})
    );
}

#[test]
fn a_goto_loop_is_stopped_and_reported() {
    let f = "flow: l\ntriggers: [{keywords: [go]}]\nsteps:\n  a: { goto: b }\n  b: { goto: a }\n";
    let effects = say(&bot(&[f]), &mut new_contact(), &text("go"));
    assert!(
        effects
            .notes
            .iter()
            .any(|n| matches!(n, Note::Error { message } if message.contains("goto loop"))),
        "{:?}",
        effects.notes
    );
}

#[test]
fn ask_timeouts_and_reminders_become_timers_and_fire_once() {
    let f = "flow: t\ntriggers: [{keywords: [go]}]\nsteps:\n  q:\n    send: { text: \"Still there?\" }\n    remind: { in: 2h, flow: later }\n    ask: { timeout: 10m, on_timeout: nudge }\n  nudge: { send: { text: nudged } }\n";
    let later = flow("later", "", "reminder");
    let b = bot(&[f, &later]);
    let mut state = new_contact();
    let effects = say(&b, &mut state, &text("go"));
    assert_eq!(effects.timers.len(), 2, "{:?}", effects.timers);
    let timeout = Input::AskTimeout {
        flow: "t",
        step: "q",
        asked_at: NOW,
    };
    assert_eq!(
        reply_texts(&handle(&b, &mut state, timeout, NOW + 600)),
        ["nudged"]
    );
    assert!(
        handle(&b, &mut state, timeout, NOW + 600)
            .replies
            .is_empty(),
        "a stale timer does nothing"
    );
    let remind = Input::StartFlow { flow: "later" };
    assert_eq!(
        reply_texts(&handle(&b, &mut state, remind, NOW + 7200)),
        ["reminder"]
    );
}

#[test]
fn a_contact_in_handoff_gets_no_bot_reply() {
    let f = "flow: h\ntriggers: [{keywords: [human]}]\nsteps:\n  s:\n    send: { text: \"Connecting you to a person.\" }\n    handoff: true\n";
    let b = bot(&[f, &flow("fallback", "", "bot")]);
    let mut state = new_contact();
    assert_eq!(
        reply_texts(&say(&b, &mut state, &text("human"))),
        ["Connecting you to a person."]
    );
    assert!(state.handoff);
    let effects = say(&b, &mut state, &text("hello?"));
    assert!(effects.replies.is_empty());
    assert_eq!(effects.notes, vec![Note::Paused]);
}

#[test]
fn tags_are_added_and_removed_in_step_order() {
    let f = "flow: t\ntriggers: [{keywords: [go]}]\nsteps:\n  s:\n    tag: [vip, \"plan-{{ 1 + 1 }}\"]\n    untag: vip\n";
    let mut state = new_contact();
    say(&bot(&[f]), &mut state, &text("go"));
    assert_eq!(
        state.tags.into_iter().collect::<Vec<_>>(),
        vec!["plan-2".to_owned()]
    );
}

#[test]
fn a_failing_step_hands_the_contact_to_the_error_flow() {
    let broken = "flow: broken\ntriggers: [{keywords: [go]}]\nsteps:\n  s:\n    set: { n: \"{{ parse_int(\\\"x\\\") + 1 }}\" }\n    send: { text: never }\n";
    let sorry = flow(
        "oops",
        "",
        "Something went wrong; type menu to start again.",
    );
    let options = LoadOptions {
        error_flow: Some("oops".into()),
        ..LoadOptions::default()
    };
    let b = common::compile(&[broken, &sorry], &options)
        .map(|l| l.bot)
        .unwrap_or_else(|d| panic!("{d}"));
    let effects = say(&b, &mut new_contact(), &text("go"));
    assert_eq!(
        reply_texts(&effects),
        ["Something went wrong; type menu to start again."]
    );
    assert!(effects.notes.iter().any(
        |n| matches!(n, Note::Error { message } if message.contains("flow \"broken\" step \"s\""))
    ));
}

#[test]
fn a_conversation_keeps_its_start_time_across_questions() {
    let f = "flow: two\ntriggers: [{keywords: [go]}]\nsteps:\n  a:\n    send: { text: first }\n    ask: { save: a }\n    next: b\n  b:\n    send: { text: second }\n    ask: { save: b }\n";
    let b = bot(&[f]);
    let mut state = new_contact();
    say(&b, &mut state, &text("go"));
    handle(&b, &mut state, Input::Message(&text("one")), NOW + 60);
    let conversation = state.conversation.expect("waits on the second question");
    assert_eq!(
        (
            conversation.step.as_str(),
            conversation.started_at,
            conversation.asked_at
        ),
        ("b", NOW, NOW + 60)
    );
}

#[test]
fn stop_words_opt_out_of_engine_started_flows_before_anything_else() {
    let waiting = "flow: ask\ntriggers: [{keywords: [go]}]\nsteps:\n  q:\n    send: { text: \"How many?\" }\n    ask: { type: integer }\n";
    let b = bot(&[waiting, &flow("later", "", "reminder")]);
    let mut state = new_contact();
    say(&b, &mut state, &text("go"));
    let effects = say(&b, &mut state, &text("Stop!"));
    assert_eq!(
        reply_texts(&effects),
        ["You will get no more messages from us. Reply START to subscribe again."]
    );
    assert!(
        state.opted_out && state.conversation.is_none(),
        "a stop word ends the waiting ask"
    );
    let reminder = Input::StartFlow { flow: "later" };
    assert!(
        handle(&b, &mut state, reminder, NOW).replies.is_empty(),
        "no engine-started message"
    );
    assert_eq!(
        reply_texts(&say(&b, &mut state, &text("start"))),
        ["Welcome back! You will get our messages again."]
    );
    assert!(!state.opted_out);
    assert_eq!(
        reply_texts(&handle(&b, &mut state, reminder, NOW)),
        ["reminder"]
    );
}

/// The funnel notes of `effects`, in order, as `started flow`, `ended flow` or
/// `abandoned flow.step cause`.
fn funnel(effects: &Effects) -> Vec<String> {
    effects
        .notes
        .iter()
        .filter_map(|note| match note {
            Note::Started { flow, reason } => Some(format!("started {flow} ({reason})")),
            Note::Ended { flow } => Some(format!("ended {flow}")),
            Note::Abandoned { flow, step, cause } => {
                Some(format!("abandoned {flow}.{step} {}", cause.as_str()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_started_flow_ends_once_completed_or_abandoned_at_its_step() {
    let asking = "flow: ask\ntriggers: [{keywords: [go]}]\nsteps:\n  q:\n    send: { text: \"How many?\" }\n    ask: { type: integer, max_retries: 0, timeout: 10m }\n";
    let stop = "flow: stop\ninterrupt: true\ntriggers: [{keywords: [stop it]}]\nsteps:\n  s:\n    send: { text: stopped }\n";
    let hop = "flow: hop\ntriggers: [{keywords: [hop]}]\nsteps:\n  s:\n    goto: land\n";
    let broken = "flow: broken\ntriggers: [{keywords: [break]}]\nsteps:\n  s:\n    set: { n: \"{{ parse_int(\\\"x\\\") + 1 }}\" }\n";
    let b = bot(&[asking, stop, hop, broken, &flow("land", "", "landed")]);
    let mut state = new_contact();
    let mut said = |message: &str| funnel(&say(&b, &mut state, &text(message)));
    assert_eq!(said("go"), ["started ask (keywords)"]);
    assert_eq!(
        said("stop it"),
        [
            "abandoned ask.q replaced",
            "started stop (keywords)",
            "ended stop"
        ]
    );
    said("go");
    assert_eq!(said("many"), ["abandoned ask.q retries"]);
    assert_eq!(
        said("hop"),
        [
            "started hop (keywords)",
            "ended hop",
            "started land (goto)",
            "ended land"
        ]
    );
    assert_eq!(
        said("break"),
        ["started broken (keywords)", "abandoned broken.s failed"]
    );

    said("go");
    let timeout = Input::AskTimeout {
        flow: "ask",
        step: "q",
        asked_at: NOW,
    };
    let timed_out = handle(&b, &mut state, timeout, NOW + 600);
    assert_eq!(funnel(&timed_out), ["abandoned ask.q timed_out"]);
    say(&b, &mut state, &text("go"));
    let expired = handle(&b, &mut state, Input::Message(&text("3")), NOW + 25 * 3600);
    assert_eq!(funnel(&expired)[0], "abandoned ask.q expired");
}

#[test]
fn an_answered_ask_is_noted_with_its_flow_and_step() {
    let b = bot(&[ASKING]);
    let mut state = new_contact();
    say(&b, &mut state, &text("go"));
    let effects = say(&b, &mut state, &text("4"));
    assert!(effects.notes.contains(&Note::Answered {
        flow: "ask".into(),
        step: "q".into()
    }));
    assert_eq!(funnel(&effects), ["ended ask"]);
}

#[test]
fn a_text_no_trigger_or_faq_entry_takes_is_an_faq_miss() {
    let faq = "faq: shop\nentries:\n  - questions: [\"when are you open\"]\n    answer: { text: \"9 to 5\" }\n";
    let b = bot(&[faq, &flow("fallback", "", "sorry")]);
    let answered = say(&b, &mut new_contact(), &text("when are you open"));
    assert!(matches!(answered.notes[0], Note::FaqAnswered { .. }));
    let missed = say(&b, &mut new_contact(), &text("purple elephants"));
    assert_eq!(missed.notes[0], Note::FaqMissed);
    assert_eq!(
        funnel(&missed),
        ["started fallback (fallback)", "ended fallback"]
    );
    let without_faq = bot(&[&flow("fallback", "", "sorry")]);
    let effects = say(&without_faq, &mut new_contact(), &text("purple elephants"));
    assert!(!effects.notes.contains(&Note::FaqMissed), "no FAQ, no miss");
}

#[test]
fn abandon_causes_have_distinct_names() {
    let names: std::collections::HashSet<&str> = AbandonCause::ALL
        .iter()
        .map(|cause| cause.as_str())
        .collect();
    assert_eq!(names.len(), AbandonCause::ALL.len());
}
