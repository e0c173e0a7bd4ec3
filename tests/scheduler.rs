//! The scheduler as users notice it (DESIGN §6, issue 8): cron schedules fire at the wall-clock
//! time of their zone, once per due time — across DST changes and restarts — and catch up on
//! what was missed only while it is fresh; reminders and ask timeouts arrive when due;
//! broadcasts skip who opted out or was handed to a human, keep to the channel's rate limit and
//! leave room for replies; outside WhatsApp's 24-hour window a template goes instead of text.
//!
//! Most tests move a virtual clock and call `fire_due_schedules` / `fire_due_timers` themselves;
//! the real-time tests run `run_schedules` and `run_timers` for a few seconds against a mock
//! provider on 127.0.0.1.

mod common;

use common::VirtualClock;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use chatflow::config::Config;
use chatflow::engine::{Clock, Engine, SystemClock};
use chatflow::flow;
use chatflow::provider::Registry;
use chatflow::provider::http::HttpClient;
use chatflow::scheduler::{broadcast, fire_due_schedules, resume_broadcasts, run_schedules};
use chatflow::server::{AdminAuth, AppState, app};
use chatflow::store::{Audience, ContactKey, Direction, MemoryStore, SledStore, Store};

use common::faulty::{FaultyProvider, Outcome, Received, faulty_provider};
use common::harness::{call, fast_retries, post};
use common::say;

const SECRET: &str = "s3cret";
const PHONE_ID: &str = "1000";

// ---------------------------------------------------------------------------------------------
// The bots of the tests.

const SUBSCRIBE: &str = r#"flow: subscribe
triggers: [{keywords: [subscribe]}]
steps:
  s:
    set: { plan: pro }
    tag: [subscribers]
    send: { text: "Subscribed." }
"#;

const PAUSE: &str = r#"flow: pause
triggers: [{keywords: [pause digest]}]
steps:
  s:
    set: { plan: paused }
    send: { text: "Digest paused." }
"#;

const AGENT: &str = r#"flow: agent
triggers: [{keywords: [agent]}]
steps:
  s:
    send: { text: "A colleague will answer you here." }
    handoff: true
"#;

/// Every morning at 9 in Jakarta, for subscribers on the pro plan.
const JAKARTA_DIGEST: &str = r#"flow: digest
triggers:
  - schedule: { cron: "0 9 * * *", timezone: Asia/Jakarta, audience: { tags: [subscribers] } }
    when: 'vars.plan == "pro"'
steps:
  morning:
    send: { text: "Good morning! Today's digest is ready." }
"#;

const NEWS: &str = r#"flow: news
steps:
  s:
    send: { text: "This week's news." }
"#;

const REMIND_ME: &str = r#"flow: remind_me
triggers: [{keywords: [later]}]
steps:
  s:
    send: { text: "I will remind you." }
    remind: { in: 2h, flow: nudge }
"#;

const NUDGE: &str = r#"flow: nudge
steps:
  s:
    send: { text: "Reminder: your cart is waiting." }
"#;

/// A daily UTC schedule at 09:00 for contact 1; `more` adds keys to its `schedule:` map
/// (`", catch_up: 4h"`).
fn daily_at_nine(more: &str) -> String {
    format!(
        r#"flow: morning
triggers:
  - schedule: {{ cron: "0 9 * * *", audience: {{ contacts: ["1"] }}{more} }}
steps:
  s:
    send: {{ text: "Good morning." }}
"#
    )
}

// ---------------------------------------------------------------------------------------------
// Plumbing.

/// chatflow running `flows` with the extra `config` lines (channels, …) on `store`, reading the
/// time from `clock`; the HTTP app over it for the admin routes.
struct Chatflow<S> {
    engine: Arc<Engine<S>>,
    router: axum::Router,
}

fn chatflow<S: Store>(
    flows: &[&str],
    config: &str,
    store: S,
    clock: Arc<dyn Clock>,
) -> Chatflow<S> {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().expect("a temp dir");
    let flows_dir = dir.path().join("flows");
    std::fs::create_dir(&flows_dir).expect("a flows dir");
    for (i, text) in flows.iter().enumerate() {
        std::fs::write(flows_dir.join(format!("f{i}.yaml")), text).expect("a flow written");
    }
    let text = format!(
        "flows_dir: {}\nscripts_dir: {root}/scripts\n{config}",
        flows_dir.display()
    );
    let path = dir.path().join("chatflow.yaml");
    std::fs::write(&path, text).expect("config written");
    let config = Config::load(&path, &|_| None).unwrap_or_else(|d| panic!("{d}"));
    let bot = flow::load(&config.load_options())
        .unwrap_or_else(|d| panic!("{d}"))
        .bot;
    let registry = Arc::new(Registry::from_config(&config).unwrap_or_else(|e| panic!("{e:?}")));
    let http = HttpClient::with_timeout(Duration::from_millis(500)).expect("a client");
    let engine = Engine::new(bot, store, clock).with_channels(
        Arc::clone(&registry),
        http.clone(),
        fast_retries(),
    );
    let engine = Arc::new(engine);
    let state = AppState::new(Arc::clone(&engine), registry.simulator_channels(), http);
    Chatflow {
        router: app(Arc::new(state), AdminAuth::default()),
        engine,
    }
}

/// A Meta channel `main` sending to `provider`, with extra channel keys in `extra`.
fn meta_channel(provider: &FaultyProvider, extra: &str) -> String {
    format!(
        "channels:\n  - id: main\n    provider: meta\n    base_url: {}\n    phone_number_id: \"{PHONE_ID}\"\n    access_token: t\n    app_secret: {SECRET}\n    verify_token: v\n{extra}",
        provider.base
    )
}

/// The instant a wall-clock reading `YYYY-MM-DD HH:MM:SS` in `zone` shows (the first of two in
/// a repeated hour).
fn at(zone: &str, reading: &str) -> i64 {
    let zone: Tz = zone.parse().expect("an IANA zone");
    let naive = NaiveDateTime::parse_from_str(reading, "%Y-%m-%d %H:%M:%S").expect("a reading");
    zone.from_local_datetime(&naive)
        .earliest()
        .expect("a valid reading")
        .timestamp()
}

/// What a clock on the wall in `zone` shows at `instant`, with the zone's abbreviation.
fn wall(zone: &str, instant: i64) -> String {
    let zone: Tz = zone.parse().expect("an IANA zone");
    DateTime::from_timestamp(instant, 0)
        .expect("an instant")
        .with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// What the contact got, in order: texts, and templates as `template NAME`.
async fn got<S: Store>(engine: &Engine<S>, contact: &ContactKey) -> Vec<String> {
    got_at(engine, contact)
        .await
        .into_iter()
        .map(|(_, message)| message)
        .collect()
}

/// What the contact got, with when it was logged.
async fn got_at<S: Store>(engine: &Engine<S>, contact: &ContactKey) -> Vec<(i64, String)> {
    engine
        .store()
        .transcript(contact, 1000)
        .await
        .expect("a transcript")
        .into_iter()
        .filter(|entry| entry.direction == Direction::Outbound)
        .map(|entry| (entry.at, shown(&entry.message["message"])))
        .collect()
}

/// A Meta-shaped outbound message as a line: its text, or `template NAME`.
fn shown(message: &Value) -> String {
    match message["type"].as_str() {
        Some("template") => format!(
            "template {}",
            message["template"]["name"].as_str().unwrap_or("?")
        ),
        _ => message["text"]["body"].as_str().unwrap_or("?").to_owned(),
    }
}

/// Waits (at most 10 s) until every broadcast the engine started has been worked through.
async fn broadcasts_done<S: Store>(engine: &Engine<S>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending = engine.store().broadcasts().await.expect("broadcasts");
        if pending.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "broadcasts still running after 10 s: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Fires due schedules and waits for the broadcasts they started; how many started.
async fn fire<S: Store>(engine: &Arc<Engine<S>>) -> usize {
    let started = fire_due_schedules(engine).await.expect("schedules fire");
    broadcasts_done(engine).await;
    started
}

/// The sends (not mark-as-read requests) the provider read, per recipient, in arrival order.
fn sends_by_contact(received: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut by_contact: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in received.iter().filter(|r| r.json["status"] != "read") {
        let to = request.json["to"].as_str().unwrap_or("?");
        by_contact
            .entry(to.trim_start_matches('+').to_owned())
            .or_default()
            .push(shown(&request.json));
    }
    by_contact
}

/// What `id` was sent, per `sends_by_contact`; nothing when it is not there.
fn sent_to<'a>(sends: &'a BTreeMap<String, Vec<String>>, id: &str) -> Vec<&'a str> {
    sends
        .get(id)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

/// Waits until the provider read `count` requests (at most 5 s), then a little longer, so a
/// request too many would show; every request read.
async fn settled(provider: &FaultyProvider, count: usize) -> Vec<Received> {
    provider.wait_for(count, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    provider.received()
}

/// Posts a signed Meta webhook in which `from` writes `text`.
async fn webhook_text(router: &axum::Router, from: &str, id: &str, text: &str) -> StatusCode {
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_ID},
        "messages": [{"from": from, "id": id, "timestamp": "1749416383", "type": "text", "text": {"body": text}}],
    });
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]}).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let (status, _) = post(
        router,
        "/webhooks/main",
        body.as_bytes(),
        &[("x-hub-signature-256", signature)],
    )
    .await;
    status
}

/// `POST /api/broadcast` with `body`, which must be accepted.
async fn post_broadcast(router: &axum::Router, body: Value) {
    let (status, answer) = call(router, "POST", "/api/broadcast", Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert!(answer["broadcast"].is_string(), "{answer}");
}

fn simulator(id: &str) -> ContactKey {
    ContactKey::new("simulator", id)
}

fn memory(flows: &[&str], clock: &Arc<VirtualClock>) -> Chatflow<MemoryStore> {
    let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
    chatflow(flows, "", MemoryStore::new(), clock)
}

// ---------------------------------------------------------------------------------------------
// 1. A cron schedule in a non-UTC zone, for an audience.

#[tokio::test]
async fn a_jakarta_schedule_reaches_its_audience_at_nine_local_time_and_no_one_else() {
    const ZONE: &str = "Asia/Jakarta";
    let clock = VirtualClock::at(at(ZONE, "2027-01-04 20:00:00"));
    let cf = memory(&[JAKARTA_DIGEST, SUBSCRIBE, PAUSE, AGENT], &clock);
    let engine = &cf.engine;
    let (ann, bob, cat, dan, eve) = (
        simulator("6281100000001"),
        simulator("6281100000002"),
        simulator("6281100000003"),
        simulator("6281100000004"),
        simulator("6281100000005"),
    );
    for contact in [&ann, &cat, &dan, &eve] {
        assert_eq!(say(engine, contact, "subscribe").await, ["Subscribed."]);
    }
    assert!(
        say(engine, &bob, "hello").await.is_empty(),
        "bob never subscribed"
    );
    assert_eq!(say(engine, &cat, "STOP").await, [say_stop_reply()]);
    assert_eq!(
        say(engine, &dan, "agent").await,
        ["A colleague will answer you here."]
    );
    assert_eq!(say(engine, &eve, "pause digest").await, ["Digest paused."]);
    assert_eq!(fire(engine).await, 0, "first sight: counting starts now");

    clock.set(at(ZONE, "2027-01-05 08:59:59"));
    assert_eq!(fire(engine).await, 0, "not yet 09:00 in Jakarta");
    assert_eq!(got(engine, &ann).await, ["Subscribed."]);

    let nine = at(ZONE, "2027-01-05 09:00:00");
    clock.set(nine);
    assert_eq!(fire(engine).await, 1, "09:00 in Jakarta");
    assert_eq!(
        got_at(engine, &ann).await.last(),
        Some(&(nine, "Good morning! Today's digest is ready.".to_owned())),
        "the tagged subscriber gets it at 09:00 WIB ({})",
        wall(ZONE, nine)
    );
    assert!(got(engine, &bob).await.is_empty(), "bob is not tagged");
    assert_eq!(
        got(engine, &cat).await,
        ["Subscribed.", &say_stop_reply()],
        "cat opted out"
    );
    assert_eq!(
        got(engine, &dan).await,
        ["Subscribed.", "A colleague will answer you here."],
        "dan is with a human"
    );
    assert_eq!(
        got(engine, &eve).await,
        ["Subscribed.", "Digest paused."],
        "eve's `when` is false"
    );

    clock.set(at(ZONE, "2027-01-05 09:00:30"));
    assert_eq!(fire(engine).await, 0, "once per due time");
    assert_eq!(got(engine, &ann).await.len(), 2, "ann got the digest once");
}

fn say_stop_reply() -> String {
    chatflow::config::OptOut::default().stop_reply
}

// ---------------------------------------------------------------------------------------------
// 2. Both DST changes.

/// Walks the clock minute by minute over [from, to], firing schedules each minute; the wall
/// readings in `zone` at which a schedule fired.
async fn fires_minute_by_minute(
    engine: &Arc<Engine<MemoryStore>>,
    clock: &VirtualClock,
    zone: &str,
    from: i64,
    to: i64,
) -> Vec<String> {
    let mut fired = Vec::new();
    let mut now = from;
    while now <= to {
        clock.set(now);
        for _ in 0..fire(engine).await {
            fired.push(wall(zone, now));
        }
        now += 60;
    }
    fired
}

/// The New York wall-clock times a daily `cron` fires between `from` and `to` (local readings),
/// stepping the clock minute by minute; checks each fire sent its message at that time.
async fn new_york_fires(cron: &str, from: &str, to: &str) -> Vec<String> {
    const NY: &str = "America/New_York";
    let schedule = format!(
        "flow: early\ntriggers:\n  - schedule: {{ cron: \"{cron}\", timezone: {NY}, audience: {{ contacts: [\"1\"] }} }}\nsteps:\n  s:\n    send: {{ text: \"Early bird.\" }}\n"
    );
    let from = at(NY, from);
    let clock = VirtualClock::at(from);
    let cf = memory(&[&schedule], &clock);
    assert_eq!(fire(&cf.engine).await, 0, "first sight");
    let fired = fires_minute_by_minute(&cf.engine, &clock, NY, from, at(NY, to)).await;
    let messages: Vec<String> = got_at(&cf.engine, &simulator("1"))
        .await
        .into_iter()
        .map(|(at, text)| format!("{} {text}", wall(NY, at)))
        .collect();
    let expected: Vec<String> = fired.iter().map(|at| format!("{at} Early bird.")).collect();
    assert_eq!(messages, expected, "one message per fire, at its time");
    fired
}

#[tokio::test]
async fn a_time_skipped_by_spring_forward_fires_once_at_the_end_of_the_gap() {
    let fired = new_york_fires("30 2 * * *", "2026-03-07 12:00:00", "2026-03-09 12:00:00").await;
    assert_eq!(
        fired,
        [
            "Sun 2026-03-08 03:00:00 EDT", // 02:30 does not exist that night
            "Mon 2026-03-09 02:30:00 EDT",
        ]
    );
}

#[tokio::test]
async fn a_time_repeated_by_fall_back_fires_once_on_its_first_pass() {
    let fired = new_york_fires("30 1 * * *", "2026-10-31 12:00:00", "2026-11-02 12:00:00").await;
    assert_eq!(
        fired,
        [
            "Sun 2026-11-01 01:30:00 EDT", // and not again at 01:30 EST an hour later
            "Mon 2026-11-02 01:30:00 EST",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Restarts.

/// chatflow on the sled store in `dir`.
fn on_disk(flows: &[&str], dir: &Path, clock: &Arc<VirtualClock>) -> Arc<Engine<SledStore>> {
    on_disk_with(flows, "", dir, clock)
}

/// chatflow on the sled store in `dir`, with extra `config` lines.
fn on_disk_with(
    flows: &[&str],
    config: &str,
    dir: &Path,
    clock: &Arc<VirtualClock>,
) -> Arc<Engine<SledStore>> {
    let store = SledStore::open(dir).expect("the store opens");
    let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
    chatflow(flows, config, store, clock).engine
}

/// Drops the engine once the tasks it spawned let go of it, so its store can be opened again.
async fn stop(engine: Arc<Engine<SledStore>>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&engine) > 1 {
        assert!(Instant::now() < deadline, "the engine is still in use");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(engine);
}

#[tokio::test]
async fn a_restart_between_due_times_fires_neither_twice_nor_never() {
    let flow = daily_at_nine("");
    let dir = tempfile::tempdir().expect("a temp dir");
    let one = simulator("1");
    let clock = VirtualClock::at(at("UTC", "2027-01-04 08:00:00"));

    let first = on_disk(&[&flow], dir.path(), &clock);
    assert_eq!(fire(&first).await, 0, "first sight");
    clock.set(at("UTC", "2027-01-04 09:00:00"));
    assert_eq!(fire(&first).await, 1);
    assert_eq!(got(&first, &one).await, ["Good morning."]);
    stop(first).await;

    // Started again at the same instant: the 09:00 fire is on disk.
    let second = on_disk(&[&flow], dir.path(), &clock);
    assert_eq!(resume_broadcasts(&second).await.expect("resumed"), 0);
    assert_eq!(fire(&second).await, 0, "09:00 fired before the restart");
    assert_eq!(got(&second, &one).await, ["Good morning."]);
    clock.set(at("UTC", "2027-01-05 09:00:00"));
    assert_eq!(fire(&second).await, 1, "the next day's 09:00");
    assert_eq!(fire(&second).await, 0);
    assert_eq!(got(&second, &one).await, ["Good morning."; 2]);
    stop(second).await;

    // Down across the next due time, back 20 minutes later: it fires once, on start.
    clock.set(at("UTC", "2027-01-06 09:20:00"));
    let third = on_disk(&[&flow], dir.path(), &clock);
    assert_eq!(fire(&third).await, 1, "missed while down, within catch_up");
    assert_eq!(fire(&third).await, 0);
    assert_eq!(got(&third, &one).await, ["Good morning."; 3]);
    stop(third).await;
}

/// A simulator channel paced at 10 messages a second, so a broadcast takes a while.
const SLOW_CHANNEL: &str = "channels:\n  - id: slow\n    provider: simulator\n    rate_limit: 10\n";

#[test]
fn a_broadcast_cut_short_by_a_stop_resumes_on_the_next_start_and_reaches_everyone_once() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let clock = VirtualClock::at(at("UTC", "2027-01-04 12:00:00"));
    let audience: Vec<String> = (1..=20).map(|n| format!("6281{n:07}")).collect();
    let contacts: Vec<ContactKey> = audience
        .iter()
        .map(|id| ContactKey::new("slow", id))
        .collect();

    // The process stops half a second in: its runtime, and the broadcast with it, is dropped.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let engine = on_disk_with(&[NEWS], SLOW_CHANNEL, dir.path(), &clock);
        broadcast(
            &engine,
            "news",
            Audience::Contacts(audience.clone()),
            Some("slow"),
        )
        .await
        .expect("the broadcast starts");
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    drop(runtime);

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let engine = on_disk_with(&[NEWS], SLOW_CHANNEL, dir.path(), &clock);
        let mut before = 0;
        for contact in &contacts {
            before += got(&engine, contact).await.len();
        }
        assert!(
            0 < before && before < contacts.len(),
            "the stop cut the broadcast short ({before} of {} reached)",
            contacts.len()
        );
        assert_eq!(resume_broadcasts(&engine).await.expect("resumed"), 1);
        broadcasts_done(&engine).await;
        for contact in &contacts {
            assert_eq!(
                got(&engine, contact).await,
                ["This week's news."],
                "{} got the news exactly once",
                contact.id
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 4. Catch-up.

#[tokio::test]
async fn a_due_time_missed_by_half_an_hour_fires_once_and_one_missed_by_three_hours_is_skipped() {
    let flow = daily_at_nine("");
    let one = simulator("1");
    let clock = VirtualClock::at(at("UTC", "2027-01-04 08:00:00"));
    let cf = memory(&[&flow], &clock);
    let engine = &cf.engine;
    assert_eq!(fire(engine).await, 0, "first sight");

    let half_past = at("UTC", "2027-01-04 09:30:00");
    clock.set(half_past);
    assert_eq!(fire(engine).await, 1, "30 min late, catch_up 1h");
    clock.advance(60);
    assert_eq!(fire(engine).await, 0, "once");
    assert_eq!(
        got_at(engine, &one).await,
        [(half_past, "Good morning.".to_owned())]
    );

    clock.set(at("UTC", "2027-01-05 12:00:00"));
    assert_eq!(fire(engine).await, 0, "3 h late: skipped");
    clock.advance(60);
    assert_eq!(fire(engine).await, 0, "and not later either");
    assert_eq!(got(engine, &one).await, ["Good morning."], "no message");

    let next_nine = at("UTC", "2027-01-06 09:00:00");
    clock.set(next_nine);
    assert_eq!(fire(engine).await, 1, "the next due time still fires");
    assert_eq!(
        got_at(engine, &one).await.last(),
        Some(&(next_nine, "Good morning.".to_owned()))
    );
}

#[tokio::test]
async fn a_longer_catch_up_lets_an_older_miss_fire() {
    let flow = daily_at_nine(", catch_up: 4h");
    let clock = VirtualClock::at(at("UTC", "2027-01-04 08:00:00"));
    let cf = memory(&[&flow], &clock);
    assert_eq!(fire(&cf.engine).await, 0, "first sight");
    clock.set(at("UTC", "2027-01-04 12:00:00"));
    assert_eq!(fire(&cf.engine).await, 1, "3 h late, catch_up 4h");
    assert_eq!(got(&cf.engine, &simulator("1")).await, ["Good morning."]);
}

#[tokio::test]
async fn several_missed_times_fire_once_as_the_latest() {
    let every_five_minutes = r#"flow: digest
triggers:
  - schedule: { cron: "*/5 * * * *", audience: { contacts: ["1"] } }
steps:
  s:
    send: { text: "{{ format_time(now(), \"%H:%M\") }} digest" }
"#;
    let clock = VirtualClock::at(at("UTC", "2027-01-04 08:00:00"));
    let cf = memory(&[every_five_minutes], &clock);
    assert_eq!(fire(&cf.engine).await, 0, "first sight");
    clock.set(at("UTC", "2027-01-04 08:50:30"));
    assert_eq!(fire(&cf.engine).await, 1, "ten missed times, one fire");
    assert_eq!(got(&cf.engine, &simulator("1")).await, ["08:50 digest"]);
}

// ---------------------------------------------------------------------------------------------
// 5. Reminders, ask timeouts and the conversation timeout.

const ORDER: &str = r#"flow: order
triggers: [{keywords: [order]}]
steps:
  size:
    send: { text: "Small or large?" }
    ask: { save: size, timeout: 10m, on_timeout: nudge }
    next: thanks
  nudge:
    send: { text: "Still there? Write order to start again." }
  thanks:
    send: { text: "A {{vars.size}} pizza is on its way." }
    remind: { in: 2h, flow: feedback }
"#;

const FEEDBACK: &str = r#"flow: feedback
steps:
  s:
    send: { text: "How was your pizza?" }
"#;

const SURVEY: &str = r#"flow: survey
triggers: [{keywords: [survey]}]
steps:
  rate:
    send: { text: "Rate us from 1 to 5." }
    ask: { save: rating, type: integer }
    next: thanks
  thanks:
    send: { text: "Thanks for the {{vars.rating}}." }
"#;

const FALLBACK: &str = r#"flow: fallback
steps:
  s:
    send: { text: "Sorry, I did not get that." }
"#;

#[tokio::test]
async fn an_unanswered_question_times_out_to_its_on_timeout_step_when_the_clock_gets_there() {
    let clock = VirtualClock::at(at("UTC", "2027-01-04 12:00:00"));
    let cf = memory(&[ORDER, FEEDBACK, FALLBACK], &clock);
    let (engine, one) = (&cf.engine, simulator("1"));
    assert_eq!(say(engine, &one, "order").await, ["Small or large?"]);

    clock.advance(10 * 60 - 1);
    engine.fire_due_timers().await.expect("timers fire");
    assert_eq!(got(engine, &one).await, ["Small or large?"], "not yet");

    clock.advance(1);
    engine.fire_due_timers().await.expect("timers fire");
    assert_eq!(
        got(engine, &one).await,
        [
            "Small or large?",
            "Still there? Write order to start again."
        ]
    );
    assert_eq!(
        say(engine, &one, "large").await,
        ["Sorry, I did not get that."],
        "the question is no longer waiting"
    );
}

#[tokio::test]
async fn an_answered_question_does_not_time_out_and_the_reminder_comes_two_hours_later() {
    let clock = VirtualClock::at(at("UTC", "2027-01-04 12:00:00"));
    let cf = memory(&[ORDER, FEEDBACK, FALLBACK], &clock);
    let (engine, one) = (&cf.engine, simulator("1"));
    assert_eq!(say(engine, &one, "order").await, ["Small or large?"]);
    clock.advance(60);
    assert_eq!(
        say(engine, &one, "large").await,
        ["A large pizza is on its way."]
    );
    let answered = clock.now();
    let so_far = ["Small or large?", "A large pizza is on its way."];

    clock.advance(10 * 60);
    engine.fire_due_timers().await.expect("timers fire");
    assert_eq!(
        got(engine, &one).await,
        so_far,
        "the answered question's timeout does nothing"
    );

    clock.set(answered + 2 * 3600 - 1);
    engine.fire_due_timers().await.expect("timers fire");
    assert_eq!(got(engine, &one).await, so_far, "a second early");

    clock.set(answered + 2 * 3600);
    engine.fire_due_timers().await.expect("timers fire");
    engine.fire_due_timers().await.expect("timers fire");
    assert_eq!(
        got_at(engine, &one).await[2..],
        [(answered + 2 * 3600, "How was your pizza?".to_owned())],
        "two hours after the answer, once"
    );
    assert!(
        engine
            .store()
            .timers(None, 10)
            .await
            .expect("timers")
            .is_empty(),
        "nothing left pending"
    );
}

#[tokio::test]
async fn a_question_left_longer_than_the_conversation_timeout_no_longer_takes_answers() {
    let clock = VirtualClock::at(at("UTC", "2027-01-04 12:00:00"));
    let cf = memory(&[SURVEY, FALLBACK], &clock);
    let (engine, late, prompt) = (&cf.engine, simulator("1"), simulator("2"));
    assert_eq!(say(engine, &late, "survey").await, ["Rate us from 1 to 5."]);
    assert_eq!(
        say(engine, &prompt, "survey").await,
        ["Rate us from 1 to 5."]
    );

    clock.advance(3600);
    assert_eq!(say(engine, &prompt, "5").await, ["Thanks for the 5."]);
    clock.advance(24 * 3600);
    assert_eq!(
        say(engine, &late, "5").await,
        ["Sorry, I did not get that."],
        "25 h later (conversation_timeout 24h) the survey is over"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Opt-out and back in.

#[tokio::test]
async fn stop_keeps_broadcasts_away_until_start() {
    let clock = VirtualClock::at(at("UTC", "2027-01-04 12:00:00"));
    let cf = memory(&[SUBSCRIBE, NEWS], &clock);
    let (engine, ann, bob) = (&cf.engine, simulator("1"), simulator("2"));
    let news = json!({"flow": "news", "audience": {"tags": ["subscribers"]}});
    for contact in [&ann, &bob] {
        assert_eq!(say(engine, contact, "subscribe").await, ["Subscribed."]);
    }
    assert_eq!(say(engine, &bob, "STOP").await, [say_stop_reply()]);

    post_broadcast(&cf.router, news.clone()).await;
    broadcasts_done(engine).await;
    assert_eq!(
        got(engine, &ann).await,
        ["Subscribed.", "This week's news."]
    );
    assert_eq!(got(engine, &bob).await, ["Subscribed.", &say_stop_reply()]);

    let start_reply = chatflow::config::OptOut::default().start_reply;
    assert_eq!(
        say(engine, &bob, "START").await,
        std::slice::from_ref(&start_reply)
    );
    post_broadcast(&cf.router, news).await;
    broadcasts_done(engine).await;
    assert_eq!(
        got(engine, &bob).await,
        [
            "Subscribed.",
            &say_stop_reply(),
            &start_reply,
            "This week's news."
        ]
    );
    assert_eq!(
        got(engine, &ann).await,
        ["Subscribed.", "This week's news.", "This week's news."]
    );
}

#[tokio::test]
async fn a_broadcast_to_everyone_reaches_every_contact_of_the_channel_but_who_opted_out() {
    let clock = VirtualClock::at(at("UTC", "2027-01-04 12:00:00"));
    let cf = memory(&[SUBSCRIBE, NEWS], &clock);
    let (engine, ann, bob, carl) = (&cf.engine, simulator("1"), simulator("2"), simulator("3"));
    assert_eq!(say(engine, &ann, "subscribe").await, ["Subscribed."]);
    assert!(say(engine, &carl, "hello").await.is_empty());
    assert_eq!(say(engine, &bob, "STOP").await, [say_stop_reply()]);

    post_broadcast(
        &cf.router,
        json!({"flow": "news", "audience": {"all": true}}),
    )
    .await;
    broadcasts_done(engine).await;
    assert_eq!(
        got(engine, &ann).await.last().map(String::as_str),
        Some("This week's news.")
    );
    assert_eq!(
        got(engine, &carl).await,
        ["This week's news."],
        "untagged too"
    );
    assert_eq!(got(engine, &bob).await, [say_stop_reply()], "opted out");
}

// ---------------------------------------------------------------------------------------------
// 7. The 24-hour window.

#[tokio::test]
async fn outside_the_24_hour_window_a_scheduled_or_broadcast_flow_sends_its_template_instead() {
    const OLD: &str = "15550000001";
    const FRESH: &str = "15550000002";
    const DAY_AGO: &str = "15550000003";
    const DAY_AGO_LESS_A_SECOND: &str = "15550000004";
    let provider =
        faulty_provider(|request| Outcome::meta_accepted(&format!("wamid.out{}", request.index)))
            .await;
    let news = format!(
        r#"flow: news
triggers:
  - schedule: {{ cron: "0 9 * * *", audience: {{ contacts: ["{OLD}", "{FRESH}", "{DAY_AGO}", "{DAY_AGO_LESS_A_SECOND}"] }} }}
steps:
  s:
    send:
      - text: "Fresh news today."
      - text: "Read more on our site."
"#
    );
    let promo = r#"flow: promo
steps:
  offer:
    send: { text: "20% off today." }
    outside_window: { name: promo_reopen, language: en }
"#;
    let invoice = r#"flow: invoice
steps:
  s:
    send: { template: { name: invoice_ready, language: en } }
"#;
    let clock = VirtualClock::at(at("UTC", "2027-01-04 08:00:00"));
    let handle: Arc<dyn Clock> = Arc::clone(&clock) as Arc<dyn Clock>;
    let cf = chatflow(
        &[&news, promo, invoice],
        &meta_channel(
            &provider,
            "    outside_window: { name: reopen_chat, language: en }\n",
        ),
        MemoryStore::new(),
        handle,
    );
    let engine = &cf.engine;
    let (old, fresh) = (ContactKey::new("main", OLD), ContactKey::new("main", FRESH));
    assert!(say(engine, &old, "hi").await.is_empty());
    clock.set(at("UTC", "2027-01-04 09:00:00"));
    assert!(
        say(engine, &ContactKey::new("main", DAY_AGO), "hi")
            .await
            .is_empty()
    );
    clock.advance(1);
    let just_inside = ContactKey::new("main", DAY_AGO_LESS_A_SECOND);
    assert!(say(engine, &just_inside, "hi").await.is_empty());
    clock.set(at("UTC", "2027-01-05 08:00:00"));
    assert!(say(engine, &fresh, "hi").await.is_empty());
    assert_eq!(fire(engine).await, 0, "first sight");

    clock.set(at("UTC", "2027-01-05 09:00:00"));
    assert_eq!(fire(engine).await, 1);
    let received = provider.wait_for(6, Duration::from_secs(5)).await;
    let sends = sends_by_contact(&received);
    assert_eq!(
        sent_to(&sends, OLD),
        ["template reopen_chat"],
        "wrote 25 h ago: the channel's template, once for the two texts"
    );
    assert_eq!(
        sent_to(&sends, FRESH),
        ["Fresh news today.", "Read more on our site."],
        "wrote 1 h ago: the texts"
    );
    assert_eq!(
        sent_to(&sends, DAY_AGO),
        ["template reopen_chat"],
        "wrote exactly 24 h ago: the window has closed"
    );
    assert_eq!(
        sent_to(&sends, DAY_AGO_LESS_A_SECOND),
        ["Fresh news today.", "Read more on our site."],
        "wrote 24 h less a second ago: still open"
    );

    for flow in ["promo", "invoice"] {
        let audience = Audience::Contacts(vec![OLD.to_owned(), FRESH.to_owned()]);
        broadcast(engine, flow, audience, None)
            .await
            .expect("the broadcast starts");
        broadcasts_done(engine).await;
    }
    let received = settled(&provider, 10).await;
    let sends = sends_by_contact(&received);
    assert_eq!(
        sent_to(&sends, OLD),
        [
            "template reopen_chat",
            "template promo_reopen", // the step's own wins over the channel's
            "template invoice_ready", // a template goes as it is
        ]
    );
    assert_eq!(
        sent_to(&sends, FRESH),
        [
            "Fresh news today.",
            "Read more on our site.",
            "20% off today.",
            "template invoice_ready",
        ]
    );
    assert_eq!(received.len(), 10, "nothing else was sent");
}

#[tokio::test]
async fn outside_the_window_without_any_template_nothing_is_sent() {
    const OLD: &str = "15550000001";
    const FRESH: &str = "15550000002";
    let provider =
        faulty_provider(|request| Outcome::meta_accepted(&format!("wamid.out{}", request.index)))
            .await;
    let clock = VirtualClock::at(at("UTC", "2027-01-04 08:00:00"));
    let handle: Arc<dyn Clock> = Arc::clone(&clock) as Arc<dyn Clock>;
    let cf = chatflow(
        &[NEWS],
        &meta_channel(&provider, ""),
        MemoryStore::new(),
        handle,
    );
    let engine = &cf.engine;
    let (old, fresh) = (ContactKey::new("main", OLD), ContactKey::new("main", FRESH));
    assert!(say(engine, &old, "hi").await.is_empty());
    clock.advance(25 * 3600);
    assert!(say(engine, &fresh, "hi").await.is_empty());
    let audience = Audience::Contacts(vec![OLD.to_owned(), FRESH.to_owned()]);
    broadcast(engine, "news", audience, None)
        .await
        .expect("the broadcast starts");
    broadcasts_done(engine).await;
    let received = settled(&provider, 1).await;
    let sends = sends_by_contact(&received);
    assert_eq!(sent_to(&sends, FRESH), ["This week's news."]);
    assert!(
        sent_to(&sends, OLD).is_empty(),
        "no template to send outside the window: nothing"
    );
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn a_reminder_due_after_the_window_closed_sends_the_template_instead() {
    const SOON: &str = "15550000001";
    const TOMORROW: &str = "15550000002";
    let provider =
        faulty_provider(|request| Outcome::meta_accepted(&format!("wamid.out{}", request.index)))
            .await;
    let tomorrow = r#"flow: remind_tomorrow
triggers: [{keywords: [tomorrow]}]
steps:
  s:
    send: { text: "I will remind you tomorrow." }
    remind: { in: 25h, flow: nudge }
"#;
    let clock = VirtualClock::at(at("UTC", "2027-01-04 12:00:00"));
    let handle: Arc<dyn Clock> = Arc::clone(&clock) as Arc<dyn Clock>;
    let cf = chatflow(
        &[REMIND_ME, tomorrow, NUDGE],
        &meta_channel(
            &provider,
            "    outside_window: { name: reopen_chat, language: en }\n",
        ),
        MemoryStore::new(),
        handle,
    );
    let engine = &cf.engine;
    let (soon, later) = (
        ContactKey::new("main", SOON),
        ContactKey::new("main", TOMORROW),
    );
    assert_eq!(say(engine, &soon, "later").await, ["I will remind you."]);
    assert_eq!(
        say(engine, &later, "tomorrow").await,
        ["I will remind you tomorrow."]
    );
    clock.advance(2 * 3600);
    assert_eq!(engine.fire_due_timers().await.expect("timers fire"), 1);
    clock.advance(23 * 3600);
    assert_eq!(engine.fire_due_timers().await.expect("timers fire"), 1);

    let sends = sends_by_contact(&settled(&provider, 4).await);
    assert_eq!(
        sent_to(&sends, SOON),
        ["I will remind you.", "Reminder: your cart is waiting."],
        "2 h after they wrote: the text"
    );
    assert_eq!(
        sent_to(&sends, TOMORROW),
        ["I will remind you tomorrow.", "template reopen_chat"],
        "25 h after they wrote: the template"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. A large broadcast at the rate limit, replies staying fast.

const REPLIER: &str = "15559990000";

/// What a broadcast usually is: one template.
const WEEKLY: &str = r#"flow: weekly
steps:
  s:
    send: { template: { name: weekly_news, language: en } }
"#;

/// What a broadcast run looked like from the provider's side.
struct BroadcastRun {
    /// The broadcast's sends, per contact (`6281…` ids).
    per_contact: BTreeMap<String, Vec<String>>,
    /// When the first and the last broadcast send arrived.
    first: Instant,
    last: Instant,
    /// The reply to the contact who wrote "hi" during the broadcast, and when it was written.
    reply: Option<Received>,
    asked: Instant,
    audience: Vec<String>,
}

/// `POST /api/broadcast` of `flow` (the YAML of flow `weekly`) to `contacts` contacts on a Meta
/// channel with `rate_limit: 500`, split into `broadcasts` broadcasts started together; one
/// second in, another contact writes "hi". Waits (at most 9 s) for `sends` broadcast sends and
/// the reply.
async fn broadcast_while_someone_writes(
    flow: &str,
    contacts: usize,
    broadcasts: usize,
    sends: usize,
) -> BroadcastRun {
    let provider =
        faulty_provider(|request| Outcome::meta_accepted(&format!("wamid.out{}", request.index)))
            .await;
    let hello = r#"flow: hello
triggers: [{keywords: [hi]}]
steps:
  s:
    send: { text: "Hello! How can I help?" }
"#;
    let cf = chatflow(
        &[flow, hello],
        &meta_channel(&provider, "    rate_limit: 500\n"),
        MemoryStore::new(),
        Arc::new(SystemClock),
    );
    let audience: Vec<String> = (0..contacts).map(|n| format!("6281{n:07}")).collect();
    for part in audience.chunks(contacts.div_ceil(broadcasts)) {
        let (status, answer) = call(
            &cf.router,
            "POST",
            "/api/broadcast",
            Some(&json!({"flow": "weekly", "audience": {"contacts": part}})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["flow"], "weekly");
        assert_eq!(answer["channel"], "main", "the one provider channel");
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    assert_eq!(
        webhook_text(&cf.router, REPLIER, "wamid.hi", "hi").await,
        StatusCode::OK
    );
    let received = provider.wait_for(sends + 1, Duration::from_secs(9)).await;
    let (replies, broadcast): (Vec<Received>, Vec<Received>) =
        received.into_iter().partition(|request| {
            request.json["to"]
                .as_str()
                .is_some_and(|to| to.ends_with(REPLIER))
        });
    assert!(replies.len() <= 1, "one reply: {replies:?}");
    BroadcastRun {
        per_contact: sends_by_contact(&broadcast),
        first: broadcast
            .iter()
            .map(|r| r.at)
            .min()
            .expect("broadcast sends"),
        last: broadcast
            .iter()
            .map(|r| r.at)
            .max()
            .expect("broadcast sends"),
        reply: replies.into_iter().next(),
        asked,
        audience,
    }
}

impl BroadcastRun {
    /// Asserts every contact of the audience got exactly `expected`, in order.
    fn assert_each_got(&self, expected: &[&str]) {
        let wrong: Vec<(&String, Vec<&str>)> = self
            .audience
            .iter()
            .map(|id| (id, sent_to(&self.per_contact, id)))
            .filter(|(_, got)| got != expected)
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {} contacts did not get exactly {expected:?}, e.g. {:?}",
            wrong.len(),
            self.audience.len(),
            &wrong[..wrong.len().min(3)]
        );
    }

    /// Asserts the reply to "hi" reached the provider within half a second, and at least a
    /// second before the broadcast's last send.
    fn assert_reply_was_fast(&self) {
        let reply = self.reply.as_ref().expect("the reply to \"hi\" was sent");
        assert_eq!(reply.json["text"]["body"], "Hello! How can I help?");
        let waited = reply.at - self.asked;
        assert!(
            waited < Duration::from_millis(500),
            "the reply took {waited:?} during the broadcast"
        );
        assert!(
            reply.at + Duration::from_secs(1) < self.last,
            "the reply came only {:?} before the broadcast's last send",
            self.last.saturating_duration_since(reply.at)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_two_thousand_keeps_to_the_rate_limit_while_replies_stay_fast() {
    let run = broadcast_while_someone_writes(WEEKLY, 2000, 1, 2000).await;
    run.assert_each_got(&["template weekly_news"]);
    assert_eq!(run.per_contact.len(), 2000, "and nobody else");
    // 80% of 500/s: a burst of 400, then 1,600 more at 400/s. The outbox's own 500/s alone
    // would spread them over 3 s.
    let spread = run.last - run.first;
    assert!(
        spread >= Duration::from_millis(3600),
        "2,000 broadcast sends were spread over {spread:?}, not paced below 500/s"
    );
    run.assert_reply_was_fast();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_flow_of_two_messages_still_leaves_room_for_replies() {
    let weekly = r#"flow: weekly
steps:
  s:
    send:
      - { template: { name: weekly_news, language: en } }
      - { template: { name: weekly_offer, language: en } }
"#;
    let run = broadcast_while_someone_writes(weekly, 1000, 1, 2000).await;
    run.assert_each_got(&["template weekly_news", "template weekly_offer"]);
    run.assert_reply_was_fast();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_broadcasts_at_once_still_leave_room_for_replies() {
    let run = broadcast_while_someone_writes(WEEKLY, 2000, 2, 2000).await;
    run.assert_each_got(&["template weekly_news"]);
    run.assert_reply_was_fast();
}

// ---------------------------------------------------------------------------------------------
// 9. Real time.

const REAL_TIME_CONTACT: &str = "15550002222";

#[tokio::test]
async fn a_per_two_seconds_schedule_delivers_through_the_provider_in_real_time() {
    let provider =
        faulty_provider(|request| Outcome::meta_accepted(&format!("wamid.out{}", request.index)))
            .await;
    let digest = format!(
        r#"flow: digest
triggers:
  - schedule: {{ cron: "*/2 * * * * *", audience: {{ contacts: ["{REAL_TIME_CONTACT}"] }} }}
steps:
  s:
    send: {{ template: {{ name: daily_digest, language: en }} }}
"#
    );
    let cf = chatflow(
        &[&digest],
        &meta_channel(&provider, ""),
        MemoryStore::new(),
        Arc::new(SystemClock),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let schedules = tokio::spawn(run_schedules(Arc::clone(&cf.engine), async move {
        let _ = stopped.await;
    }));
    let received = provider.wait_for(1, Duration::from_secs(5)).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(2), schedules)
        .await
        .expect("run_schedules stops when asked")
        .expect("run_schedules does not panic");
    let sends = sends_by_contact(&received);
    assert_eq!(
        sent_to(&sends, REAL_TIME_CONTACT).first(),
        Some(&"template daily_digest"),
        "within 5 s: {sends:?}"
    );
}

#[tokio::test]
async fn a_three_second_reminder_arrives_in_real_time() {
    let provider =
        faulty_provider(|request| Outcome::meta_accepted(&format!("wamid.out{}", request.index)))
            .await;
    let remind = r#"flow: remind_me
triggers: [{keywords: [remind me]}]
steps:
  s:
    send: { text: "I will remind you in 3 seconds." }
    remind: { in: 3s, flow: nudge }
"#;
    let cf = chatflow(
        &[remind, NUDGE],
        &meta_channel(&provider, ""),
        MemoryStore::new(),
        Arc::new(SystemClock),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let timers = tokio::spawn(Arc::clone(&cf.engine).run_timers(async move {
        let _ = stopped.await;
    }));
    let contact = ContactKey::new("main", REAL_TIME_CONTACT);
    let asked = Instant::now();
    assert_eq!(
        say(&cf.engine, &contact, "remind me").await,
        ["I will remind you in 3 seconds."]
    );
    let received = provider.wait_for(2, Duration::from_secs(6)).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(2), timers)
        .await
        .expect("run_timers stops when asked")
        .expect("run_timers does not panic");
    let sends = sends_by_contact(&received);
    assert_eq!(
        sent_to(&sends, REAL_TIME_CONTACT),
        [
            "I will remind you in 3 seconds.",
            "Reminder: your cart is waiting."
        ],
        "within 6 s"
    );
    let reminded = received[1].at - asked;
    assert!(
        reminded >= Duration::from_secs(2),
        "the reminder came after {reminded:?}, before it was due"
    );
}

// ---------------------------------------------------------------------------------------------
// 10. The admin API.

#[tokio::test]
async fn operators_see_schedules_and_timers_cancel_a_reminder_and_get_told_about_an_unknown_flow() {
    const ZONE: &str = "Asia/Jakarta";
    let now = at(ZONE, "2027-01-04 08:00:00");
    let clock = VirtualClock::at(now);
    let cf = memory(&[JAKARTA_DIGEST, SUBSCRIBE, REMIND_ME, NUDGE], &clock);
    let (engine, router, one) = (&cf.engine, &cf.router, simulator("1"));

    let (status, body) = call(router, "GET", "/api/schedules", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let schedule = &body["schedules"][0];
    assert_eq!(schedule["flow"], "digest", "{body}");
    assert_eq!(schedule["cron"], "0 9 * * *");
    assert_eq!(schedule["timezone"], ZONE);
    let next = schedule["next_fire"].as_i64().expect("a next fire");
    assert!(next > now, "next_fire {next} is not after now {now}");
    assert_eq!(wall(ZONE, next), "Mon 2027-01-04 09:00:00 WIB");

    assert_eq!(say(engine, &one, "later").await, ["I will remind you."]);
    let (status, body) = call(
        router,
        "GET",
        "/api/timers?channel=simulator&contact=1",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let timers = body["timers"].as_array().expect("a list");
    assert_eq!(timers.len(), 1, "{body}");
    assert_eq!(timers[0]["timer"]["kind"], "start_flow", "{body}");
    assert_eq!(timers[0]["timer"]["flow"], "nudge");
    assert_eq!(timers[0]["timer"]["due"], now + 2 * 3600);
    let id = timers[0]["id"].as_u64().expect("an id");

    let (status, body) = call(
        router,
        "GET",
        "/api/timers?channel=simulator&contact=2",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["timers"],
        json!([]),
        "another contact's timers are not shown"
    );

    let (status, body) = call(router, "DELETE", &format!("/api/timers/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = call(
        router,
        "GET",
        "/api/timers?channel=simulator&contact=1",
        None,
    )
    .await;
    assert_eq!(body["timers"], json!([]), "gone from the list");
    clock.advance(3 * 3600);
    assert_eq!(engine.fire_due_timers().await.expect("timers fire"), 0);
    assert_eq!(
        got(engine, &one).await,
        ["I will remind you."],
        "the cancelled reminder never came"
    );

    let (status, body) = call(
        router,
        "POST",
        "/api/broadcast",
        Some(&json!({"flow": "nope", "audience": {"all": true}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().expect("an error message");
    assert!(
        error.contains("no flow") && error.contains("nope"),
        "the error names the unknown flow: {error}"
    );
}

#[tokio::test]
async fn the_schedules_last_fire_is_a_time_it_fired() {
    let flow = daily_at_nine("");
    let clock = VirtualClock::at(at("UTC", "2027-01-04 08:00:00"));
    let cf = memory(&[&flow], &clock);
    let last_fire = || async {
        let (status, body) = call(&cf.router, "GET", "/api/schedules", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["schedules"][0]["last_fire"].clone()
    };
    assert_eq!(last_fire().await, Value::Null, "never fired");
    assert_eq!(fire(&cf.engine).await, 0, "first sight");
    assert_eq!(
        last_fire().await,
        Value::Null,
        "first sight is not a fire: the schedule has still never fired"
    );

    let nine = at("UTC", "2027-01-04 09:00:00");
    clock.set(nine);
    assert_eq!(fire(&cf.engine).await, 1);
    assert_eq!(last_fire().await, json!(nine));

    clock.set(at("UTC", "2027-01-05 12:00:00"));
    assert_eq!(fire(&cf.engine).await, 0, "3 h late: skipped");
    assert_eq!(
        last_fire().await,
        json!(nine),
        "a skipped due time is not a fire"
    );
}
