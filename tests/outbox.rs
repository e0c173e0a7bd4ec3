//! Delivery against a provider that misbehaves on purpose (a raw HTTP server on 127.0.0.1): every
//! reply is accepted once and in each contact's order, or dead-lettered with its reason; the
//! 24-hour window's fallback template goes once; the operator's outbox API shows and fixes it.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use common::faulty::{FaultyProvider, Outcome, Received, faulty_provider};
use common::harness::{Harness, call, harness_with, post};

const SECRET: &str = "s3cret";
const PHONE_ID: &str = "1000";

/// Every text is echoed; `two` answers with two messages from one step; `promo` has its own
/// outside-window template.
const FLOWS: &[(&str, &str)] = &[
    (
        "echo.yaml",
        "flow: echo\ntriggers:\n  - event: text\nsteps:\n  reply:\n    send:\n      text: \"echo {{message.text}}\"\n",
    ),
    (
        "two.yaml",
        "flow: two\ntriggers:\n  - keywords: [two]\nsteps:\n  reply:\n    send:\n      - text: first of two\n      - text: second of two\n",
    ),
    (
        "promo.yaml",
        "flow: promo\ntriggers:\n  - keywords: [promo]\nsteps:\n  offer:\n    send:\n      text: 20% off today\n    outside_window: { name: promo_reopen, language: en }\n",
    ),
];

/// chatflow with the test flows and one Meta channel at `provider`; `extra` adds channel keys.
fn chatflow(provider: &FaultyProvider, extra: &str) -> Harness {
    let flows = tempfile::tempdir().expect("a temp dir");
    for (name, text) in FLOWS {
        std::fs::write(flows.path().join(name), text).expect("a flow written");
    }
    let channel = format!(
        "  - id: main\n    provider: meta\n    base_url: {}\n    phone_number_id: \"{PHONE_ID}\"\n    access_token: t\n    app_secret: {SECRET}\n    verify_token: v\n{extra}",
        provider.base
    );
    harness_with(&flows.path().display().to_string(), &channel)
}

/// Posts a signed Meta webhook carrying `value`.
async fn webhook(h: &Harness, value: Value) -> (StatusCode, Value) {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550000000", "phone_number_id": PHONE_ID});
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]}).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    post(
        &h.router,
        "/webhooks/main",
        body.as_bytes(),
        &[("x-hub-signature-256", signature)],
    )
    .await
}

/// `from` writes `text` as message `id`.
async fn says(h: &Harness, from: &str, id: &str, text: &str) -> (StatusCode, Value) {
    webhook(
        h,
        json!({"messages": [{"from": from, "id": id, "timestamp": "1749416383", "type": "text", "text": {"body": text}}]}),
    )
    .await
}

/// The texts and template names of the sends (not mark-as-read requests) the provider read.
fn sends(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter(|request| request.json["status"] != "read")
        .map(|request| match request.json["type"].as_str() {
            Some("template") => format!("template {}", request.json["template"]["name"]),
            _ => request.json["text"]["body"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
        })
        .collect()
}

/// Waits until the provider read `count` sends; returns them in arrival order.
async fn wait_for_sends(provider: &FaultyProvider, count: usize) -> Vec<String> {
    for _ in 0..500 {
        let got = sends(&provider.received());
        if got.len() >= count {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sends(&provider.received())
}

/// A provider that answers mark-as-read with success and sends by `decide(attempt of this
/// body, request)`, attempts counted from 1 per distinct body.
async fn provider_by_attempt(
    decide: impl Fn(usize, &Received) -> Outcome + Send + Sync + 'static,
) -> FaultyProvider {
    let attempts: Mutex<HashMap<String, usize>> = Mutex::default();
    faulty_provider(move |request| {
        if request.json["status"] == "read" {
            return Outcome::json(200, json!({"success": true}));
        }
        let attempt = {
            let mut attempts = attempts.lock().expect("not poisoned");
            let count = attempts.entry(request.text.clone()).or_default();
            *count += 1;
            *count
        };
        decide(attempt, request)
    })
    .await
}

fn accepted(request: &Received) -> Outcome {
    Outcome::meta_accepted(&format!("wamid.out{}", request.index))
}

async fn dead_letters(h: &Harness) -> Vec<Value> {
    let (status, body) = call(&h.router, "GET", "/api/outbox/dead", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["dead"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn every_kind_of_transient_failure_is_retried_and_each_reply_arrives_once_in_order() {
    // The first attempt of each reply meets another fault; the second is accepted.
    let faults = Arc::new(Mutex::new(
        vec![
            Outcome::json(500, json!({"error": "internal"})),
            Outcome::Reset,
            Outcome::Hang,
            Outcome::Reply {
                status: 429,
                headers: vec![("Retry-After".to_owned(), "1".to_owned())],
                body: json!({}),
            },
            Outcome::meta_error(400, 130_429, "Rate limit hit"),
            Outcome::json(503, json!({})),
        ]
        .into_iter(),
    ));
    let provider = provider_by_attempt(move |attempt, request| match attempt {
        1 => faults
            .lock()
            .expect("not poisoned")
            .next()
            .unwrap_or_else(|| accepted(request)),
        _ => accepted(request),
    })
    .await;
    let h = chatflow(&provider, "");
    let texts = ["one", "two-words", "three", "four", "five", "six"];
    for (n, text) in texts.iter().enumerate() {
        let (status, _) = says(&h, "15550001111", &format!("wamid.in{n}"), text).await;
        assert_eq!(status, StatusCode::OK);
    }
    let expected: Vec<String> = texts.iter().map(|text| format!("echo {text}")).collect();
    // 6 failed first attempts + 6 accepted ones.
    let got = wait_for_sends(&provider, 12).await;
    let mut firsts: Vec<String> = Vec::new();
    for send in &got {
        if !firsts.contains(send) {
            firsts.push(send.clone());
        }
    }
    assert_eq!(
        firsts, expected,
        "replies were first tried in message order"
    );
    let accepted_order: Vec<String> = provider
        .received()
        .iter()
        .filter(|request| request.json["status"] != "read")
        .filter(|request| got_accepted(&provider, request))
        .map(|request| {
            request.json["text"]["body"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert_eq!(accepted_order, expected, "each accepted once, in order");
    assert!(dead_letters(&h).await.is_empty());
}

/// Whether `request` was a body's second attempt (the one the script accepts).
fn got_accepted(provider: &FaultyProvider, request: &Received) -> bool {
    provider
        .received()
        .iter()
        .filter(|earlier| earlier.index < request.index && earlier.text == request.text)
        .count()
        == 1
}

#[tokio::test]
async fn a_permanent_refusal_is_dead_lettered_with_its_reason_and_can_be_retried() {
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let refusing = Arc::clone(&refuse);
    let provider = provider_by_attempt(move |_, request| {
        if request.text.contains("bad") && refusing.load(std::sync::atomic::Ordering::SeqCst) {
            Outcome::meta_error(400, 131_009, "Parameter value is not valid")
        } else {
            accepted(request)
        }
    })
    .await;
    let h = chatflow(&provider, "");
    says(&h, "15550001111", "wamid.a", "bad").await;
    says(&h, "15550001111", "wamid.b", "good").await;
    assert_eq!(
        wait_for_sends(&provider, 2).await,
        ["echo bad", "echo good"],
        "refused once, never retried; the next reply still goes"
    );
    let dead = dead_letters(&h).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("131009") && reason.contains("Parameter value is not valid"),
        "{reason}"
    );
    assert_eq!(dead[0]["job"]["attempts"], 1);

    refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    let path = format!("/api/outbox/dead/{}/retry", dead[0]["id"]);
    let (status, body) = call(&h.router, "POST", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        wait_for_sends(&provider, 3).await,
        ["echo bad", "echo good", "echo bad"]
    );
    assert!(dead_letters(&h).await.is_empty());
    let (status, _) = call(&h.router, "POST", &path, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a dead letter is retried once"
    );
}

#[tokio::test]
async fn a_reply_that_keeps_failing_is_dead_lettered_after_max_attempts() {
    let provider = provider_by_attempt(|_, _| Outcome::json(502, json!({"oops": true}))).await;
    let h = chatflow(&provider, "");
    says(&h, "15550001111", "wamid.a", "hello").await;
    let mut dead = Vec::new();
    for _ in 0..300 {
        dead = dead_letters(&h).await;
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(
        sends(&provider.received()).len(),
        4,
        "max_attempts is 4 here"
    );
    let reason = dead[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("gave up after 4 attempts: http 502"),
        "{reason}"
    );
    let (_, contact) = call(&h.router, "GET", "/api/contacts/main/15550001111", None).await;
    let reply = &contact["transcript"][1];
    assert_eq!(reply["delivery"]["state"], "dead", "{contact}");
    let metrics = h.engine.metrics().encode().expect("metrics encode");
    for counted in [
        r#"chatflow_sends_total{channel="main",outcome="retried"} 3"#,
        r#"chatflow_sends_total{channel="main",outcome="dead_lettered"} 1"#,
    ] {
        assert!(metrics.contains(counted), "{counted} in\n{metrics}");
    }
}

/// A provider that refuses everything but templates as outside the window.
async fn window_closed() -> FaultyProvider {
    provider_by_attempt(|_, request| {
        if request.json["type"] == "template" {
            accepted(request)
        } else {
            Outcome::meta_error(400, 131_047, "Re-engagement message")
        }
    })
    .await
}

#[tokio::test]
async fn outside_the_window_a_turns_messages_give_way_to_the_channels_template_once() {
    let provider = window_closed().await;
    let h = chatflow(
        &provider,
        "    outside_window: { name: reopen_chat, language: en }\n",
    );
    says(&h, "15550001111", "wamid.a", "two").await;
    let got = wait_for_sends(&provider, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        sends(&provider.received()),
        ["first of two", "template \"reopen_chat\""],
        "the second message is not tried, the template goes once"
    );
    assert_eq!(got.len(), 2);
    let dead = dead_letters(&h).await;
    assert_eq!(
        dead.len(),
        2,
        "both messages of the turn are kept: {dead:?}"
    );
    assert!(
        dead.iter().all(|d| d["reason"].as_str().is_some_and(
            |r| r.starts_with("outside the 24-hour window; the fallback template was sent instead")
        )),
        "{dead:?}"
    );
}

#[tokio::test]
async fn a_steps_own_outside_window_template_wins_over_the_channels() {
    let provider = window_closed().await;
    let h = chatflow(
        &provider,
        "    outside_window: { name: reopen_chat, language: en }\n",
    );
    says(&h, "15550001111", "wamid.a", "promo").await;
    assert_eq!(
        wait_for_sends(&provider, 2).await,
        ["20% off today", "template \"promo_reopen\""]
    );
}

#[tokio::test]
async fn outside_the_window_without_a_template_the_reply_is_dead_lettered_saying_what_to_add() {
    let provider = window_closed().await;
    let h = chatflow(&provider, "");
    says(&h, "15550001111", "wamid.a", "hello").await;
    wait_for_sends(&provider, 1).await;
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = dead_letters(&h).await;
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reason = dead[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no outside_window template"), "{reason}");
    assert_eq!(sends(&provider.received()).len(), 1);
}

#[tokio::test]
async fn an_opted_out_refusal_marks_the_contact_opted_out() {
    let provider = provider_by_attempt(|_, _| {
        Outcome::meta_error(400, 131_050, "User has stopped marketing messages")
    })
    .await;
    let h = chatflow(&provider, "");
    says(&h, "15550001111", "wamid.a", "hello").await;
    let mut opted_out = Value::Null;
    for _ in 0..200 {
        let (_, contact) = call(&h.router, "GET", "/api/contacts/main/15550001111", None).await;
        opted_out = contact["contact"]["opted_out"].clone();
        if opted_out == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(opted_out, true);
    assert_eq!(sends(&provider.received()).len(), 1, "never retried");
}

#[tokio::test]
async fn the_same_webhook_posted_ten_times_at_once_gets_one_reply() {
    let provider = provider_by_attempt(|_, request| accepted(request)).await;
    let h = Arc::new(chatflow(&provider, ""));
    let posts = (0..10).map(|_| {
        let h = Arc::clone(&h);
        tokio::spawn(async move { says(&h, "15550001111", "wamid.same", "hello").await.0 })
    });
    for post in posts {
        assert_eq!(post.await.expect("the post ran"), StatusCode::OK);
    }
    wait_for_sends(&provider, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sends(&provider.received()), ["echo hello"]);
    let (_, contact) = call(&h.router, "GET", "/api/contacts/main/15550001111", None).await;
    assert_eq!(contact["transcript"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_channels_rate_limit_paces_its_sends() {
    let provider = provider_by_attempt(|_, request| accepted(request)).await;
    let h = chatflow(&provider, "    rate_limit: 5\n");
    for n in 0..10 {
        says(&h, &format!("1555000{n:04}"), &format!("wamid.{n}"), "hi").await;
    }
    wait_for_sends(&provider, 10).await;
    let times: Vec<_> = provider
        .received()
        .iter()
        .filter(|request| request.json["status"] != "read")
        .map(|request| request.at)
        .collect();
    let spread = times[times.len() - 1].duration_since(times[0]);
    // 5 go at once, the other 5 at 5 a second: about a second, never much less.
    assert!(
        spread >= Duration::from_millis(800),
        "10 sends took {spread:?}"
    );
}

#[tokio::test]
async fn status_webhooks_update_the_log_and_a_late_window_failure_sends_the_template_once() {
    let provider = provider_by_attempt(|_, request| accepted(request)).await;
    let h = chatflow(
        &provider,
        "    outside_window: { name: reopen_chat, language: en }\n",
    );
    says(&h, "15550001111", "wamid.a", "hello").await;
    wait_for_sends(&provider, 1).await;
    let sent_id = provider
        .received()
        .iter()
        .find(|request| request.json["status"] != "read")
        .map(|request| format!("wamid.out{}", request.index))
        .expect("a send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = |kind: &str, errors: Value| json!({"statuses": [{"id": sent_id, "status": kind, "timestamp": "1749416400", "recipient_id": "15550001111", "errors": errors}]});
    webhook(&h, status("delivered", json!([]))).await;
    let failed = status(
        "failed",
        json!([{"code": 131047, "title": "Re-engagement message"}]),
    );
    webhook(&h, failed.clone()).await;
    webhook(&h, failed).await;
    let got = wait_for_sends(&provider, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        sends(&provider.received()),
        ["echo hello", "template \"reopen_chat\""],
        "{got:?}"
    );
    let (_, contact) = call(&h.router, "GET", "/api/contacts/main/15550001111", None).await;
    let reply = &contact["transcript"][1];
    assert_eq!(reply["delivery"]["state"], "failed", "{contact}");
    assert_eq!(reply["delivery"]["provider_id"], sent_id.as_str());
    assert!(
        reply["delivery"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("131047")),
        "{reply}"
    );
}

#[tokio::test]
async fn an_operator_send_answers_with_the_providers_verdict() {
    let provider = provider_by_attempt(|_, request| match request.json["text"]["body"].as_str() {
        Some("refuse me") => Outcome::meta_error(400, 131_009, "Parameter value is not valid"),
        Some("later") => Outcome::json(500, json!({})),
        _ => accepted(request),
    })
    .await;
    let h = chatflow(&provider, "");
    let send = |text: &str| json!({"text": text});
    let path = "/api/contacts/main/15550001111/messages";
    let (status, body) = call(&h.router, "POST", path, Some(&send("hello from Ann"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "sent");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("wamid.out"))
    );

    let (status, body) = call(&h.router, "POST", path, Some(&send("refuse me"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("131009")),
        "{body}"
    );
    assert!(body["dead_letter"].is_u64(), "{body}");

    let (status, body) = call(&h.router, "POST", path, Some(&send("later"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "queued");
    assert!(
        body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{body}"
    );

    let too_long =
        json!({"buttons": {"body": "pick", "buttons": [{"id": "a", "title": "x".repeat(30)}]}});
    let (status, body) = call(&h.router, "POST", path, Some(&too_long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("20")),
        "{body}"
    );

    let (status, _) = call(
        &h.router,
        "POST",
        "/api/contacts/nope/1/messages",
        Some(&send("x")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn clearing_the_outbox_drops_pending_sends() {
    let provider = provider_by_attempt(|_, _| Outcome::json(500, json!({}))).await;
    let h = chatflow(&provider, "");
    says(&h, "15550001111", "wamid.a", "hello").await;
    wait_for_sends(&provider, 1).await;
    let (status, body) = call(&h.router, "GET", "/api/outbox", None).await;
    assert_eq!(status, StatusCode::OK);
    let pending = body["pending"].as_array().cloned().unwrap_or_default();
    assert_eq!(pending.len(), 1, "{body}");
    assert!(
        pending[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{body}"
    );
    let mut cleared = 0;
    for _ in 0..50 {
        let (_, body) = call(&h.router, "DELETE", "/api/outbox", None).await;
        cleared += body["cleared"].as_u64().unwrap_or(0);
        if cleared > 0 {
            break;
        }
        // The job was in flight (being attempted); clearing leaves those alone.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(cleared, 1);
    let before = provider.received().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        provider.received().len(),
        before,
        "no attempt after clearing"
    );
    let (_, body) = call(&h.router, "GET", "/api/outbox", None).await;
    assert_eq!(body["pending"], json!([]));
}
