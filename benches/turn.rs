//! One message through a flow with `set` templates, an inline Rhai script, templated sends and an
//! `ask`, routed over 50 other flows: the pure runtime, then the engine on each store.
//!
//! `cargo bench --bench turn`; figures and what each group measures are in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chatflow::diagnostic::Diagnostics;
use chatflow::engine::{Engine, SystemClock};
use chatflow::flow::compile::compile_documents;
use chatflow::flow::loader::parse_document;
use chatflow::flow::runtime::Input;
use chatflow::flow::state::ContactState;
use chatflow::flow::{Bot, LoadOptions, Note, handle};
use chatflow::message::{Content, InboundMessage};
use chatflow::store::{ContactKey, MemoryStore, SledStore, Store};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// The flow under test: `set` with templates, a script with a loop and string building, a text
/// and a buttons message with templates, an `ask` answered by a button, a `switch`.
const ORDER: &str = r#"flow: order
triggers:
  - keywords: [new order, order]
steps:
  quote:
    set:
      customer: '{{ if contact.name == "" { "friend" } else { contact.name } }}'
      orders: "{{ if vars.orders == () { 1 } else { vars.orders + 1 } }}"
      qty: 4
      order_ref: "ORD-{{ contact.id }}-{{ now() }}"
    rhai: |
      fn money(cents) {
        let rest = cents % 100;
        `${cents / 100}.${if rest < 10 { "0" } else { "" }}${rest}`
      }
      let menu = [["margherita", 450], ["pepperoni", 600], ["hawaiian", 725], ["veggie", 375]];
      let total = 0;
      let lines = "";
      for i in 0..vars.qty {
        let item = menu[(i + vars.orders) % menu.len()];
        total += item[1];
        lines += `${i + 1}. ${item[0]}: ${money(item[1])}` + "\n";
      }
      if vars.orders > 1 {
        total -= total / 10;
        lines += "10% off for coming back\n";
      }
      vars.total = money(total);
      vars.summary = lines;
    send:
      - text: "Here is your order {{ vars.order_ref }}, {{ vars.customer }}:\n{{ vars.summary }}Total: {{ vars.total }} USD"
      - buttons:
          header: "Order {{ vars.orders }}"
          body: "Confirm {{ vars.qty }} pizzas for {{ vars.total }} USD?"
          footer: "Prices include tax"
          buttons:
            - { id: confirm, title: Confirm }
            - { id: change, title: Change }
    ask:
      save: answer
      type: choice
      retry: "Please tap Confirm or Change."
    switch:
      - if: 'vars.answer == "confirm"'
        goto: confirmed
      - else: changed
  confirmed:
    set:
      confirmed_at: '{{ format_time(now(), "%Y-%m-%d %H:%M", "Asia/Jakarta") }}'
    send:
      text: "Order {{ vars.order_ref }} confirmed at {{ vars.confirmed_at }}: {{ vars.total }} USD. Thank you, {{ vars.customer }}!"
    end: true
  changed:
    send: { text: "No problem, {{ vars.customer }}. Type *new order* to start again." }
    end: true
"#;

/// Flows beside the order flow, so routing works over a realistic trigger index.
const FILLER_FLOWS: usize = 50;

/// `now` for the pure runtime (2027-01-15).
const NOW: i64 = 1_800_000_000;

/// The contact every turn is for.
const PHONE: &str = "15550001111";

/// Message ids are unique across the whole run: the engine skips an id it has seen.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn filler(i: usize) -> String {
    format!(
        "flow: topic_{i}\n\
         triggers:\n  - keywords: [topic {i}, help with topic {i}, \"faq {i}\"]\n\
         steps:\n  answer:\n    send: {{ text: \"About topic {i}, {{{{ contact.name }}}}: see our site.\" }}\n"
    )
}

fn bot() -> Bot {
    let mut sources = vec![ORDER.to_owned()];
    sources.extend((0..FILLER_FLOWS).map(filler));
    let mut diagnostics = Diagnostics::default();
    let documents = sources
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            parse_document(Path::new(&format!("f{i}.yaml")), text, &mut diagnostics)
        })
        .collect();
    assert!(!diagnostics.has_errors(), "{diagnostics}");
    compile_documents(documents, &LoadOptions::default())
        .unwrap_or_else(|diagnostics| panic!("{diagnostics}"))
        .bot
}

fn message(from: &str, content: Content, now: i64) -> InboundMessage {
    InboundMessage {
        id: format!("wamid.bench{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        from: from.to_owned(),
        name: Some("Ann".to_owned()),
        timestamp: now,
        content,
        reply_to: None,
        referral: None,
    }
}

fn trigger(from: &str, now: i64) -> InboundMessage {
    let body = "New order".to_owned();
    message(from, Content::Text { body }, now)
}

fn answer(from: &str, now: i64) -> InboundMessage {
    let (id, title) = ("confirm".to_owned(), "Confirm".to_owned());
    message(from, Content::ButtonReply { id, title }, now)
}

/// Fails the run if a turn took an error path, so the figures are of the flow as written.
fn check(replies: usize, expected: usize, notes: &[Note]) {
    let errors: Vec<_> = notes
        .iter()
        .filter(|note| matches!(note, Note::Error { .. }))
        .collect();
    assert!(errors.is_empty(), "a step failed: {errors:?}");
    assert_eq!(replies, expected, "replies of the turn");
}

/// The states the two measured messages meet: a returning contact (two orders done), and the
/// same contact waiting on the order flow's `ask`.
fn prepared_states(bot: &Bot) -> (ContactState, ContactState) {
    let mut state = ContactState::new("simulator", PHONE);
    for _ in 0..2 {
        let effects = handle(bot, &mut state, Input::Message(&trigger(PHONE, NOW)), NOW);
        check(effects.replies.len(), 2, &effects.notes);
        let effects = handle(bot, &mut state, Input::Message(&answer(PHONE, NOW)), NOW);
        check(effects.replies.len(), 1, &effects.notes);
    }
    let summary = "1. hawaiian: 7.25\n2. veggie: 3.75\n3. margherita: 4.50\n4. pepperoni: 6.00\n\
                   10% off for coming back\n";
    assert_eq!(state.vars["summary"], summary, "the script built the order");
    assert_eq!(state.vars["total"], "19.35", "the script priced the order");
    assert_eq!(
        state.vars["answer"], "confirm",
        "the button answered the ask"
    );
    assert!(
        state.vars.contains_key("confirmed_at"),
        "the confirmed step ran"
    );
    let returning = state.clone();
    let effects = handle(bot, &mut state, Input::Message(&trigger(PHONE, NOW)), NOW);
    check(effects.replies.len(), 2, &effects.notes);
    assert!(state.conversation.is_some(), "the order flow waits");
    (returning, state)
}

fn runtime(c: &mut Criterion) {
    let bot = bot();
    let (returning, waiting) = prepared_states(&bot);
    let trigger = trigger(PHONE, NOW);
    let answer = answer(PHONE, NOW);
    let mut group = c.benchmark_group("runtime/handle");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, state, message) in [
        ("trigger", &returning, &trigger),
        ("answer", &waiting, &answer),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || state.clone(),
                |mut state| handle(&bot, &mut state, Input::Message(message), NOW),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One message through `engine`, checked: the replies it committed.
async fn say<S: Store>(
    engine: &Engine<S>,
    contact: &ContactKey,
    build: fn(&str, i64) -> InboundMessage,
    expected: usize,
) {
    let replies = engine
        .handle_message(contact, |_, now| Ok(build(&contact.id, now)))
        .await
        .expect("the turn is committed");
    assert_eq!(replies.len(), expected, "replies of the turn");
    black_box(replies);
}

/// Each measured message is followed (or preceded) by the other one, untimed, so the order flow
/// starts anew for the same contact every iteration.
fn engine_group<S: Store>(c: &mut Criterion, name: &str, store: S, samples: usize, secs: u64) {
    let rt = current_thread();
    let engine = Engine::new(bot(), store, Arc::new(SystemClock));
    let contact = ContactKey::new("simulator", PHONE);
    let mut group = c.benchmark_group(name);
    group
        .sample_size(samples)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(secs));
    group.bench_function("trigger", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                rt.block_on(say(&engine, &contact, trigger, 2));
                timed += start.elapsed();
                rt.block_on(say(&engine, &contact, answer, 1));
            }
            timed
        });
    });
    group.bench_function("answer", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(say(&engine, &contact, trigger, 2));
                let start = Instant::now();
                rt.block_on(say(&engine, &contact, answer, 1));
                timed += start.elapsed();
            }
            timed
        });
    });
    group.finish();
}

fn engine_memory(c: &mut Criterion) {
    engine_group(c, "engine/memory", MemoryStore::new(), 50, 4);
}

fn engine_sled(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SledStore::open(dir.path()).expect("sled opens");
    // A flush costs about a millisecond and varies with the disk: fewer, longer samples.
    engine_group(c, "engine/sled", store, 30, 8);
}

criterion_group!(benches, runtime, engine_memory, engine_sled);
criterion_main!(benches);
