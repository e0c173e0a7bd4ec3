//! Dispatch: one contact's messages are handled one at a time in arrival order (no lost update,
//! no reordering), different contacts in parallel; due timers fire once, through the store.

mod common;

use common::{bot, say};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chatflow::engine::{Clock, Engine};
use chatflow::store::{ContactKey, MemoryStore, Store};

const COUNTER: &str = r#"flow: count
triggers: [{event: text}]
steps:
  add:
    set: { n: "{{ if vars.n == () { 1 } else { vars.n + 1 } }}" }
    send: { text: "{{ vars.n }}" }
"#;

const REMINDER: &str = r#"flow: remind_me
triggers: [{keywords: [later]}]
steps:
  s:
    send: { text: "I will remind you." }
    remind: { in: 2h, flow: nudge }
"#;

const NUDGE: &str = "flow: nudge\nsteps:\n  s: { send: { text: \"Reminder!\" } }\n";

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_messages_of_one_contact_never_lose_an_update() {
    let engine = Arc::new(Engine::new(
        bot(&[COUNTER]),
        MemoryStore::new(),
        Arc::new(TestClock(AtomicI64::new(0))),
    ));
    let contact = ContactKey::new("simulator", "1");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (engine, contact) = (Arc::clone(&engine), contact.clone());
            tokio::spawn(async move { say(&engine, &contact, "+1").await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.expect("the task ends"));
    }
    answers.sort_by_key(|a| a.parse::<u32>().unwrap_or(0));
    let expected: Vec<String> = (1..=50).map(|n| n.to_string()).collect();
    assert_eq!(
        answers, expected,
        "every message saw the previous one's update"
    );
    let transcript = engine
        .store()
        .transcript(&contact, 200)
        .await
        .expect("a transcript");
    let replies: Vec<String> = transcript
        .iter()
        .filter_map(|entry| {
            entry.message["message"]["text"]["body"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        replies, expected,
        "the log holds the replies in the order they were handled"
    );
}

#[tokio::test]
async fn reminders_fire_once_when_due() {
    let clock = Arc::new(TestClock(AtomicI64::new(1_800_000_000)));
    let clock_handle: Arc<dyn Clock> = clock.clone();
    let engine = Engine::new(bot(&[REMINDER, NUDGE]), MemoryStore::new(), clock_handle);
    let contact = ContactKey::new("simulator", "1");
    assert_eq!(
        say(&engine, &contact, "later").await,
        ["I will remind you."]
    );
    assert_eq!(
        engine.fire_due_timers().await.expect("fires"),
        0,
        "not due yet"
    );
    clock.0.fetch_add(2 * 3600, Ordering::SeqCst);
    assert_eq!(engine.fire_due_timers().await.expect("fires"), 1);
    assert_eq!(
        engine.fire_due_timers().await.expect("fires"),
        0,
        "fired once"
    );
    let transcript = engine
        .store()
        .transcript(&contact, 10)
        .await
        .expect("a transcript");
    let last = transcript.last().expect("entries");
    assert_eq!(last.message["message"]["text"]["body"], "Reminder!");
}
