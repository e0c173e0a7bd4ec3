//! The Digiworld provider as a channel owner sees it: settings refused by name, the exact signed
//! `sendMessage` request (token redacted, clock fixed), the document's answers classified, the
//! session status as the health check — and, end to end, a message in through the mapping
//! answered at a mock API whose signature the test recomputes.

mod common;

use common::provider::{answer, outbound, response};
use std::fs;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use chatflow::message::{MessageSpec, Outbound};
use chatflow::provider::degrade::degrade;
use chatflow::provider::digiworld::Digiworld;
use chatflow::provider::{HeaderValue, HttpRequest, Provider, WebhookRequest};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use common::harness::{harness, mock_provider, post, sent};

const TOKEN: &str = "architecto";
const API_SECRET: &str = "dw-api-secret";
/// 2025-06-08T21:00:00Z, in milliseconds.
const NOW_MS: i64 = 1_749_416_400_000;

fn settings(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("settings are an object")
}

fn provider() -> Digiworld {
    let settings = settings(json!({"token": TOKEN, "api_secret": API_SECRET}));
    Digiworld::from_settings(None, &settings)
        .expect("complete settings")
        .with_clock(|| NOW_MS)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/digiworld")
        .join(name)
}

fn settings_error(base_url: Option<&str>, value: Value) -> String {
    let error =
        Digiworld::from_settings(base_url, &settings(value)).expect_err("settings must be refused");
    format!("{}: {}", error.key.as_deref().unwrap_or("-"), error.message)
}

#[test]
fn settings_errors_name_the_key() {
    let cases = [
        ("missing token", None, json!({"api_secret": "s"})),
        ("missing api_secret", None, json!({"token": "t"})),
        (
            "typo",
            None,
            json!({"token": "t", "api_secret": "s", "api_secert": "s"}),
        ),
        (
            "token with a slash",
            None,
            json!({"token": "abc/../x", "api_secret": "s"}),
        ),
        ("empty token", None, json!({"token": "", "api_secret": "s"})),
        (
            "base_url not a URL",
            Some("chat.digiworld-dev.com"),
            json!({"token": "t", "api_secret": "s"}),
        ),
    ];
    let report: Vec<String> = cases
        .into_iter()
        .map(|(case, base_url, value)| format!("{case}\n  {}", settings_error(base_url, value)))
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

fn text(body: &str) -> Outbound {
    serde_json::from_value(json!({"type": "text", "text": {"body": body}})).expect("a text message")
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find_map(|(key, value)| match value {
        HeaderValue::Plain(value) if key == name => Some(value.as_str()),
        _ => None,
    })
}

/// The lowercase hex HMAC-SHA256 the document asks for, computed independently.
fn expected_signature(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(API_SECRET.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(TOKEN.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The request as the wire sees it, the token in the URL redacted.
fn shown(request: &HttpRequest) -> Value {
    let mut view = request.redacted();
    view["url"] = json!(request.url.replace(TOKEN, "**REDACTED**"));
    view
}

#[test]
fn builds_the_signed_request_of_every_text() {
    let provider = provider();
    insta::glob!("fixtures/dsl/text_*.yaml", |path| {
        let message = outbound(path);
        let request = provider
            .send_request("963912345678", &message)
            .expect("text is sendable");
        insta::assert_json_snapshot!(shown(&request));
    });
}

#[test]
fn signs_exactly_the_bytes_that_are_sent() {
    let awkward = "Café \"quoted\" \\ line\nnext 😮 </script>";
    let request = provider()
        .send_request("963912345678", &text(awkward))
        .expect("text is sendable");
    assert_eq!(
        request.url,
        "https://chat.digiworld-dev.com/api/whatsapp/architecto/sendMessage"
    );
    let timestamp = header(&request, "X-API-Timestamp").expect("a timestamp");
    assert_eq!(timestamp, NOW_MS.to_string());
    // The shared client writes the body with serde_json::to_vec.
    let wire = serde_json::to_vec(request.body.as_ref().expect("a body")).expect("serializable");
    assert_eq!(
        header(&request, "X-API-Signature"),
        Some(expected_signature(timestamp, &wire).as_str())
    );
    let body: Value = serde_json::from_slice(&wire).expect("json");
    assert_eq!(body, json!({"phone": "963912345678", "message": awkward}));
}

#[test]
fn sends_text_only_and_degraded_menus_as_text() {
    let provider = provider();
    assert_eq!(
        provider.capabilities(),
        chatflow::provider::Capabilities::TEXT_ONLY
    );
    let image: Outbound =
        serde_json::from_value(json!({"type": "image", "image": {"id": "1013859600285441"}}))
            .expect("an image message");
    let error = provider.send_request("1", &image).expect_err("only text");
    assert_eq!(
        error.to_string(),
        "cannot send this message: digiworld sends text only, and this message has no text form; give it a fallback_text"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dsl/buttons_3.yaml");
    let spec: MessageSpec =
        serde_yaml::from_str(&fs::read_to_string(path).expect("readable")).expect("a message");
    let message = spec.to_outbound().expect("fixture converts");
    let degraded = degrade(&message, None, &provider.capabilities());
    let request = provider
        .send_request("963912345678", &degraded.message)
        .expect("the menu is text");
    let body = request.body.expect("a body");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("1. ")),
        "{body}"
    );
}

#[test]
fn reads_no_webhook_of_its_own() {
    let provider = provider();
    let request = WebhookRequest {
        headers: &[],
        body: b"{}",
    };
    assert_eq!(provider.verify(&request), Ok(()));
    let parsed = provider
        .parse(br#"{"phone": "963912345678", "message": "hi"}"#)
        .expect("json");
    assert!(parsed.events.is_empty());
    assert_eq!(parsed.unrecognized.len(), 1);
    let error = provider.parse(b"phone=1").expect_err("not json");
    assert!(error.to_string().starts_with("body is not json"), "{error}");
}

#[test]
fn describes_itself_without_its_credentials() {
    let shown = format!("{:?}", provider());
    assert!(
        !shown.contains(TOKEN) && !shown.contains(API_SECRET),
        "{shown}"
    );
}

fn read(name: &str) -> String {
    fs::read_to_string(fixture(name)).expect("fixture is readable")
}

#[test]
fn classifies_send_answers() {
    let provider = provider();
    let cases = [
        ("document 200", response(200, &[], &read("send_200.json"))),
        ("document 400", response(400, &[], &read("send_400.json"))),
        ("document 401", response(401, &[], &read("send_401.json"))),
        ("document 429", response(429, &[], &read("send_429.json"))),
        (
            "429 with retry-after",
            response(429, &[("retry-after", "5")], &read("send_429.json")),
        ),
        (
            "200 that says it failed",
            response(
                200,
                &[],
                r#"{"success": false, "message": "Session not connected"}"#,
            ),
        ),
        (
            "proxy page",
            response(502, &[], "<html><body>Bad Gateway</body></html>"),
        ),
        ("empty 500", response(500, &[], "")),
    ];
    let answers: Vec<Value> = cases
        .iter()
        .map(|(case, response)| {
            let answer = answer(&provider, response);
            json!({"case": case, "status": response.status, "answer": answer})
        })
        .collect();
    insta::assert_json_snapshot!(answers);
}

#[test]
fn checks_health_with_the_session_status() {
    let request = provider().health_request().expect("a health check");
    insta::assert_json_snapshot!(shown(&request));
}

#[test]
fn reads_the_session_status_as_health() {
    let provider = provider();
    let cases = [
        ("document 200", response(200, &[], &read("status_200.json"))),
        ("document 401", response(401, &[], &read("status_401.txt"))),
        ("document 429", response(429, &[], &read("status_429.txt"))),
        (
            "waiting for a qr scan",
            response(
                200,
                &[],
                r#"{"success": true, "state": "QR_REQUIRED", "message": "scan the qr code"}"#,
            ),
        ),
        ("not json", response(200, &[], "Server is running")),
    ];
    let verdicts: Vec<Value> = cases
        .iter()
        .map(|(case, response)| {
            let verdict = match provider.read_health(response) {
                Ok(()) => json!("ok"),
                Err(error) => json!({"failing": error}),
            };
            json!({"case": case, "verdict": verdict})
        })
        .collect();
    insta::assert_json_snapshot!(verdicts);
}

#[tokio::test]
async fn a_mapped_message_is_answered_with_a_signed_request() {
    let (base, captured) = mock_provider(json!({"success": true, "message_id": "ABC123456"})).await;
    let channel = format!(
        "  - id: dw\n    provider: digiworld\n    base_url: {base}\n    token: {TOKEN}\n    api_secret: {API_SECRET}\n    inbound: {{ from: /from, text: /text }}\n"
    );
    let h = harness(&channel);
    let body = json!({"from": "963912345678", "text": "hi"}).to_string();
    let (status, answer) = post(&h.router, "/webhooks/dw", body.as_bytes(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let requests = sent(&captured, 1).await;
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.uri.as_str()),
        ("POST", "/api/whatsapp/architecto/sendMessage")
    );
    let timestamp = request.headers["x-api-timestamp"].to_str().expect("ascii");
    let signature = request.headers["x-api-signature"].to_str().expect("ascii");
    assert_eq!(
        signature,
        expected_signature(timestamp, request.text.as_bytes())
    );
    let sent_at: i64 = timestamp.parse().expect("milliseconds");
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        (now - 60_000..=now).contains(&sent_at),
        "{sent_at} vs {now}"
    );
    assert_eq!(request.json["phone"], "963912345678");
    let menu = request.json["message"].as_str().expect("the menu as text");
    assert!(
        menu.contains("Hi there! What would you like to do?"),
        "{menu}"
    );
    assert!(menu.contains("1. Order pizza"), "{menu}");
}
