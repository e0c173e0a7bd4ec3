//! Human handoff (issue 10): `POST /api/contacts/{channel}/{contact}/handoff` and the
//! `handoff: true` step silence the bot for a contact while their messages are still logged,
//! the bot takes the contact back on request or after `resume_after`, and the help desk named
//! by `handoff_webhook` hears of each change with the recent transcript.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use chatflow::engine::Engine;
use chatflow::handoff::HandoffWebhook;
use chatflow::provider::http::HttpClient;
use chatflow::server::{AdminAuth, AppState, app};
use chatflow::store::{MemoryStore, Store};
use common::VirtualClock;
use common::harness::{Captured, call, mock_provider, sent};

const ORDER: &str = r#"
flow: order
triggers: [{ keywords: [order] }]
steps:
  size:
    send: { text: "Which size?" }
    ask: { save: size }
  done: { send: { text: "A {{ vars.size }} pizza, coming up." } }
"#;

const HUMAN: &str = r#"
flow: human
triggers: [{ keywords: [human] }]
steps:
  hand_over:
    send: { text: "A colleague will answer you here." }
    handoff: { resume_after: 1h }
"#;

const START: i64 = 1_800_000_000;

/// The app and engine serving ORDER and HUMAN on the simulator, announcing to `webhook`.
struct Bot {
    router: axum::Router,
    engine: Arc<Engine<MemoryStore>>,
    clock: Arc<VirtualClock>,
}

fn bot(webhook: Option<&str>) -> Bot {
    let clock = VirtualClock::at(START);
    let http = HttpClient::with_timeout(Duration::from_secs(2)).expect("a client");
    let mut engine = Engine::new(
        common::bot(&[ORDER, HUMAN]),
        MemoryStore::new(),
        clock.clone(),
    );
    if let Some(url) = webhook {
        engine = engine.with_handoff_webhook(HandoffWebhook {
            url: url.to_owned(),
            http: http.clone(),
        });
    }
    let engine = Arc::new(engine);
    let state = AppState::new(Arc::clone(&engine), vec!["simulator".to_owned()], http);
    Bot {
        router: app(Arc::new(state), AdminAuth::default()),
        engine,
        clock,
    }
}

impl Bot {
    /// The texts of the bot's replies to `text` from contact 628111.
    async fn say(&self, text: &str) -> Vec<String> {
        let (status, answer) = call(
            &self.router,
            "POST",
            "/api/simulator/messages",
            Some(&json!({"from": "628111", "text": text})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["replies"]
            .as_array()
            .expect("replies")
            .iter()
            .map(|reply| {
                reply["text"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    async fn handoff(&self, body: Value) -> (StatusCode, Value) {
        call(
            &self.router,
            "POST",
            "/api/contacts/simulator/628111/handoff",
            Some(&body),
        )
        .await
    }

    /// Contact 628111 as the admin API shows them.
    async fn contact(&self) -> Value {
        let (status, view) =
            call(&self.router, "GET", "/api/contacts/simulator/628111", None).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        view
    }
}

#[tokio::test]
async fn while_a_human_has_the_contact_the_bot_is_silent_but_logs_every_message() {
    let bot = bot(None);
    assert_eq!(bot.say("order").await, ["Which size?"]);
    let (status, answer) = bot.handoff(json!({"paused": true})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["paused"], true);
    assert_eq!(answer["since"], START);

    assert!(bot.say("large").await.is_empty(), "the bot stays silent");
    assert!(bot.say("order").await.is_empty(), "even for a trigger");
    let view = bot.contact().await;
    assert_eq!(view["contact"]["handoff"], true);
    assert_eq!(
        view["conversation"],
        Value::Null,
        "the open question was dropped"
    );
    let logged: Vec<&str> = view["transcript"]
        .as_array()
        .expect("a transcript")
        .iter()
        .filter(|entry| entry["direction"] == "inbound")
        .filter_map(|entry| entry["message"]["content"]["body"].as_str())
        .collect();
    assert!(
        logged.ends_with(&["large", "order"]),
        "messages during handoff are logged: {logged:?}"
    );

    let metrics = bot.engine.metrics().encode().expect("metrics encode");
    assert!(
        metrics.contains("chatflow_handoffs_total 1\n"),
        "one handoff counted:\n{metrics}"
    );
    assert!(
        metrics.contains(r#"flow="order",step="size",cause="handed_over""#),
        "the dropped question counts as abandoned at its step:\n{metrics}"
    );

    let (status, answer) = bot.handoff(json!({"paused": false})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["paused"], false);
    assert_eq!(bot.say("order").await, ["Which size?"], "the bot is back");
}

#[tokio::test]
async fn the_bot_takes_the_contact_back_after_resume_after_and_not_before() {
    let bot = bot(None);
    bot.say("hello").await;
    let (status, answer) = bot
        .handoff(json!({"paused": true, "resume_after": "2h"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["resume_at"], START + 7200);

    bot.clock.advance(7199);
    bot.engine.fire_due_timers().await.expect("timers fire");
    assert!(bot.say("order").await.is_empty(), "still with the human");

    bot.clock.advance(1);
    assert_eq!(bot.engine.fire_due_timers().await.expect("timers fire"), 1);
    assert_eq!(bot.contact().await["contact"]["handoff"], false);
    assert_eq!(bot.say("order").await, ["Which size?"]);
}

#[tokio::test]
async fn a_handoff_step_with_resume_after_gives_the_contact_back_by_itself() {
    let bot = bot(None);
    assert_eq!(
        bot.say("human").await,
        ["A colleague will answer you here."]
    );
    assert!(bot.say("hello?").await.is_empty());
    bot.clock.advance(3600);
    assert_eq!(bot.engine.fire_due_timers().await.expect("timers fire"), 1);
    assert_eq!(bot.say("order").await, ["Which size?"]);
}

#[tokio::test]
async fn an_earlier_handoffs_timer_does_not_end_a_later_one() {
    let bot = bot(None);
    bot.say("hello").await;
    bot.handoff(json!({"paused": true, "resume_after": "1h"}))
        .await;
    bot.handoff(json!({"paused": false})).await;
    bot.clock.advance(60);
    bot.handoff(json!({"paused": true})).await;

    bot.clock.advance(3600);
    bot.engine.fire_due_timers().await.expect("timers fire");
    assert_eq!(
        bot.contact().await["contact"]["handoff"],
        true,
        "the second handoff has no resume_after"
    );
}

#[tokio::test]
async fn the_help_desk_hears_of_each_handoff_with_the_recent_transcript() {
    let (desk, received): (String, Captured) = mock_provider(json!({"ok": true})).await;
    let bot = bot(Some(&format!("{desk}/hooks/chatflow")));
    assert_eq!(
        bot.say("human").await,
        ["A colleague will answer you here."],
        "the handoff step"
    );
    let events = sent(&received, 1).await;
    let started = &events.first().expect("an event").json;
    assert_eq!(started["event"], "handoff_started");
    assert_eq!(started["contact"], "628111");
    assert_eq!(started["paused"], true);
    let texts: Vec<Value> = started["transcript"]
        .as_array()
        .expect("a transcript")
        .iter()
        .map(|entry| entry["message"].clone())
        .collect();
    assert_eq!(
        texts.first().map(|m| &m["content"]["body"]),
        Some(&json!("human"))
    );
    assert!(
        texts
            .iter()
            .any(|m| m["message"]["text"]["body"] == "A colleague will answer you here."),
        "{texts:?}"
    );

    assert!(bot.say("is anyone there?").await.is_empty());
    bot.handoff(json!({"paused": false})).await;
    let events = sent(&received, 2).await;
    assert_eq!(events.len(), 2, "one event per change, none for messages");
    assert_eq!(events[1].json["event"], "handoff_ended");
    assert_eq!(events[1].uri, "/hooks/chatflow");
}

#[tokio::test]
async fn bad_requests_are_refused_with_what_to_send() {
    let bot = bot(None);
    let (status, answer) = bot.handoff(json!({"paused": true})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown contact: {answer}");

    bot.say("hello").await;
    for body in [
        json!({"pause": true}),
        json!({"paused": "yes"}),
        json!({"paused": true, "resume_after": "soon"}),
        json!({"paused": false, "resume_after": "1h"}),
    ] {
        let (status, answer) = bot.handoff(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(bot.contact().await["contact"]["handoff"], false);
    assert!(
        bot.engine
            .store()
            .timers(None, 10)
            .await
            .expect("timers")
            .is_empty()
    );
}

#[tokio::test]
async fn handoff_needs_the_admin_token_when_one_is_set() {
    let engine = Arc::new(Engine::new(
        common::bot(&[ORDER]),
        MemoryStore::new(),
        VirtualClock::at(START),
    ));
    let http = HttpClient::new().expect("a client");
    let state = AppState::new(engine, vec!["simulator".to_owned()], http);
    let router = app(
        Arc::new(state),
        AdminAuth {
            token: Some(chatflow::provider::Secret::new("s3cret-token")),
        },
    );
    let (status, _) = call(
        &router,
        "POST",
        "/api/contacts/simulator/628111/handoff",
        Some(&json!({"paused": true})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
