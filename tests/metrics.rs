//! `GET /metrics` and `GET /api/stats/flows` after a scripted day of the shipped bots: dialogues
//! through the simulator (a flow completed, one abandoned, an FAQ answered and one missed) and
//! signed, redelivered, forged, malformed and oversized webhooks on a Meta channel whose Graph
//! API is a local mock.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;

use chatflow::provider::http::HttpClient;
use chatflow::server::{AdminAuth, AppState, app};
use common::harness::{Harness, call, harness, mock_provider, post, sent};

const SECRET: &str = "app_secret";

/// A Graph API mock and the shipped bots on a Meta channel `main` (and the simulator).
async fn meta() -> (Harness, common::harness::Captured) {
    let (base, captured) =
        mock_provider(json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT1"}]}))
            .await;
    let channel = format!(
        "  - id: main\n    provider: meta\n    base_url: {base}/v21.0\n    phone_number_id: \"106540352242922\"\n    access_token: meta-token\n    app_secret: {SECRET}\n    verify_token: verify-me\n"
    );
    (harness(&channel), captured)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn meta_text(from: &str, id: &str, text: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Ann"}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": "1749416383", "type": "text", "text": {"body": text}}]
    }}]}]})
    .to_string()
}

/// Says `message` (a simulator request without `from`) as `from`; the replies.
async fn say(h: &Harness, from: &str, message: Value) -> Vec<Value> {
    let mut request = message;
    request["from"] = json!(from);
    let (status, answer) = call(&h.router, "POST", "/api/simulator/messages", Some(&request)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["replies"].as_array().cloned().unwrap_or_default()
}

/// Posts a webhook body to the Meta channel, signed unless `signature` is given; the status.
async fn webhook(h: &Harness, body: &[u8], signature: Option<&str>) -> StatusCode {
    let signature = signature.map_or_else(|| sign(body), str::to_owned);
    post(
        &h.router,
        "/webhooks/main",
        body,
        &[("x-hub-signature-256", signature)],
    )
    .await
    .0
}

/// `GET path` on `router`; the status, the content type and the body as text.
async fn get_text(
    router: &axum::Router,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::empty()).expect("a request");
    let response = router.clone().oneshot(request).await.expect("an answer");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// One sample line of the exposition: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of an OpenMetrics text, checking its form on the way: every sample belongs to a
/// family announced by `# HELP` and `# TYPE` lines before it, and `# EOF` ends the text.
fn parse(text: &str) -> Vec<Sample> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "the exposition ends with # EOF"
    );
    let mut helped = Vec::new();
    let mut typed = Vec::new();
    let mut samples = Vec::new();
    for line in &lines[..lines.len() - 1] {
        if line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().expect("a name").to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("a name and a type");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.push(name.to_owned());
        } else {
            let sample = sample(line);
            let family = typed
                .iter()
                .filter(|family| sample.name.starts_with(family.as_str()))
                .max_by_key(|family| family.len())
                .unwrap_or_else(|| panic!("no # TYPE before {line}"));
            assert!(helped.contains(family), "no # HELP for {family}");
            samples.push(sample);
        }
    }
    samples
}

/// Reads `name{key="value",…} number`.
fn sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("a number in {line}"));
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}').expect("closing brace"))),
        None => (series, BTreeMap::new()),
    };
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "metric name {name}"
    );
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// `key="value",…` (values written by the encoder, with `\"` and `\\` escapes).
fn labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{text}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {text}"),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The value of `name` with exactly `labels`, if the text has it.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
}

/// Scrapes until `ready` holds (at most 2 s: sends finish in the background); the samples.
async fn scrape_until(h: &Harness, ready: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    for _ in 0..100 {
        let (status, content_type, text) = get_text(&h.router, "/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let samples = parse(&text);
        if ready(&samples) {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the metrics never got there");
}

/// A scripted day: what each part of it moves is asserted on the scrape after.
async fn a_day_of_traffic(h: &Harness, captured: &common::harness::Captured) {
    // Ann completes the welcome menu: hi, More…, Opening hours.
    say(h, "15550001111", json!({"text": "hi"})).await;
    say(h, "15550001111", json!({"button": "more"})).await;
    let hours = say(h, "15550001111", json!({"list": "hours"})).await;
    assert!(
        hours[0]["text"]["body"]
            .as_str()
            .is_some_and(|t| t.contains("open"))
    );
    // Bob starts a pizza order and cancels it at the size question.
    say(h, "15550002222", json!({"text": "pizza"})).await;
    say(h, "15550002222", json!({"text": "cancel"})).await;
    // Cy asks the shop FAQ, then something nobody can answer.
    let faq = say(h, "15550003333", json!({"text": "what time do you open"})).await;
    assert!(
        faq[0]["text"]["body"]
            .as_str()
            .is_some_and(|t| t.contains("Mon–Fri"))
    );
    say(
        h,
        "15550003333",
        json!({"text": "purple elephants dancing"}),
    )
    .await;

    // A real provider channel: a message, its redelivery, and refused bodies.
    let hello = meta_text("16505551234", "wamid.IN1", "hi");
    assert_eq!(webhook(h, hello.as_bytes(), None).await, StatusCode::OK);
    assert_eq!(sent(captured, 1).await.len(), 1, "the reply");
    // Handled by now, so the redelivery is caught at the door (one arriving while the first
    // waits in the inbox is accepted, then caught when handled: a dedupe hit either way).
    assert_eq!(webhook(h, hello.as_bytes(), None).await, StatusCode::OK);
    let forged = webhook(h, hello.as_bytes(), Some("sha256=00")).await;
    assert_eq!(forged, StatusCode::UNAUTHORIZED);
    assert_eq!(webhook(h, b"not json", None).await, StatusCode::BAD_REQUEST);
    let odd = br#"{"hello": "world"}"#;
    assert_eq!(webhook(h, odd, None).await, StatusCode::OK);
    let huge = vec![b' '; 5 * 1024 * 1024];
    assert_eq!(webhook(h, &huge, None).await, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn metrics_count_webhooks_messages_routing_the_funnel_faq_and_sends() {
    let (h, captured) = meta().await;
    a_day_of_traffic(&h, &captured).await;
    let sent_on_main = [("channel", "main"), ("outcome", "sent")];
    let samples = scrape_until(&h, |samples| {
        value(samples, "chatflow_sends_total", &sent_on_main).is_some()
    })
    .await;
    let get = |name: &str, labels: &[(&str, &str)]| {
        value(&samples, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}"))
    };

    let webhooks = "chatflow_webhooks_received_total";
    for (result, count) in [
        ("accepted", 1.0),
        ("duplicate", 1.0),
        ("bad_signature", 1.0),
        ("malformed", 1.0),
        ("unrecognized", 1.0),
        ("too_large", 1.0),
    ] {
        let labels = [("channel", "main"), ("result", result)];
        assert_eq!(get(webhooks, &labels), count, "{result}");
    }
    assert!(get("chatflow_dedupe_hits_total", &[("kind", "message")]) >= 1.0);

    let messages_in = "chatflow_messages_in_total";
    assert_eq!(
        get(messages_in, &[("kind", "text")]),
        6.0,
        "5 simulated, 1 from Meta"
    );
    assert_eq!(get(messages_in, &[("kind", "button")]), 1.0);
    assert_eq!(get(messages_in, &[("kind", "list")]), 1.0);
    let messages_out = "chatflow_messages_out_total";
    assert!(get(messages_out, &[("kind", "interactive_button")]) >= 3.0);
    assert!(get(messages_out, &[("kind", "interactive_list")]) >= 1.0);
    assert!(get(messages_out, &[("kind", "text")]) >= 3.0);

    let routed =
        |flow: &str, how: &str| get("chatflow_routed_total", &[("flow", flow), ("how", how)]);
    assert_eq!(
        routed("welcome", "keywords"),
        2.0,
        "Ann and the Meta contact"
    );
    assert_eq!(
        routed("welcome", "answer"),
        2.0,
        "Ann's button and list row"
    );
    assert_eq!(
        routed("welcome", "goto"),
        1.0,
        "cancel hands Bob to the menu"
    );
    assert_eq!(routed("pizza", "keywords"), 1.0);
    assert_eq!(routed("cancel", "keywords"), 1.0);
    assert_eq!(routed("fallback", "fallback"), 1.0);

    let flow = |name: &str, flow: &str| get(name, &[("flow", flow)]);
    assert_eq!(flow("chatflow_flow_started_total", "welcome"), 3.0);
    assert_eq!(flow("chatflow_flow_completed_total", "welcome"), 1.0);
    assert_eq!(flow("chatflow_flow_started_total", "pizza"), 1.0);
    assert_eq!(flow("chatflow_flow_completed_total", "cancel"), 1.0);
    let abandoned = [("flow", "pizza"), ("step", "size"), ("cause", "replaced")];
    assert_eq!(get("chatflow_flow_abandoned_total", &abandoned), 1.0);

    assert_eq!(get("chatflow_faq_total", &[("outcome", "answered")]), 1.0);
    assert_eq!(get("chatflow_faq_total", &[("outcome", "missed")]), 1.0);
    assert_eq!(get("chatflow_script_errors_total", &[]), 0.0);

    assert!(get("chatflow_sends_total", &sent_on_main) >= 1.0);
    let channel = [("channel", "main")];
    assert!(get("chatflow_provider_send_seconds_count", &channel) >= 1.0);
    assert!(get("chatflow_webhook_to_commit_seconds_count", &[]) >= 1.0);
    for gauge in [
        "chatflow_inbox_pending",
        "chatflow_dead_letters",
        "chatflow_timers_pending",
    ] {
        assert_eq!(get(gauge, &[]), 0.0, "{gauge}");
    }
    assert!(value(&samples, "chatflow_outbox_pending", &[]).is_some());
    let contact_ids = ["15550001111", "16505551234", "purple"];
    let text = get_text(&h.router, "/metrics", None).await.2;
    assert!(
        contact_ids.iter().all(|id| !text.contains(id)),
        "no contact or message text in labels"
    );
}

#[tokio::test]
async fn flow_stats_show_each_flows_funnel_since_start() {
    let (h, captured) = meta().await;
    a_day_of_traffic(&h, &captured).await;
    let (status, stats) = call(&h.router, "GET", "/api/stats/flows", None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert!(
        stats["since"]
            .as_i64()
            .is_some_and(|since| since > 1_700_000_000)
    );
    let flows = &stats["flows"];
    assert_eq!(
        flows["pizza"],
        json!({"started": 1, "completed": 0, "abandoned": {"size": 1}})
    );
    assert_eq!(flows["welcome"]["started"], 3);
    assert_eq!(flows["welcome"]["completed"], 1);
    assert_eq!(
        flows["cancel"],
        json!({"started": 1, "completed": 1, "abandoned": {}})
    );
    assert_eq!(
        flows["booking"],
        json!({"started": 0, "completed": 0, "abandoned": {}}),
        "every flow of the bot is listed"
    );
}

#[tokio::test]
async fn flow_stats_need_the_admin_token_and_metrics_do_not() {
    let (h, _) = meta().await;
    let http = HttpClient::with_timeout(Duration::from_millis(500)).expect("a client");
    let state = AppState::new(Arc::clone(&h.engine), vec!["simulator".to_owned()], http);
    let auth = AdminAuth {
        token: Some(chatflow::provider::Secret::new("s3cret")),
    };
    let router = app(Arc::new(state), auth);
    let (status, _, _) = get_text(&router, "/api/stats/flows", Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get_text(&router, "/api/stats/flows", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = get_text(&router, "/api/stats/flows", Some("s3cret")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = get_text(&router, "/metrics", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "/metrics is outside /api (DESIGN §5)"
    );
    assert!(body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn a_failing_step_counts_as_a_script_error_and_abandons_its_flow_at_that_step() {
    let broken = "flow: broken\ntriggers: [{keywords: [go]}]\nsteps:\n  s:\n    set: { n: \"{{ parse_int(\\\"x\\\") + 1 }}\" }\n    send: { text: never }\n";
    let engine = chatflow::engine::Engine::new(
        common::bot(&[broken]),
        chatflow::store::MemoryStore::new(),
        common::VirtualClock::at(1_800_000_000),
    );
    let contact = chatflow::store::ContactKey::new("simulator", "628111");
    assert!(common::say(&engine, &contact, "go").await.is_empty());
    let metrics = engine.metrics().encode().expect("metrics encode");
    for counted in [
        "chatflow_script_errors_total 1\n",
        r#"chatflow_flow_abandoned_total{flow="broken",step="s",cause="failed"} 1"#,
    ] {
        assert!(metrics.contains(counted), "{counted} in\n{metrics}");
    }
}
