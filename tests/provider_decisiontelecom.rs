//! The DecisionTelecom provider as a channel owner sees it: settings refused by name, every
//! status callback of the document normalized, the exact `send-whatsapp` request of each kind it
//! sends (Basic auth redacted), every error code of its table classified whatever the HTTP
//! status — and, end to end, a message in through the mapping answered at a mock API and a
//! status callback handled.

mod common;

use common::provider::{answer, message_spec, response};
use std::fs;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use chatflow::message::InboundEvent;
use chatflow::provider::decisiontelecom::DecisionTelecom;
use chatflow::provider::degrade::degrade;
use chatflow::provider::{HeaderValue, HttpRequest, Provider, WebhookRequest};
use serde_json::{Map, Value, json};

use common::harness::{harness, mock_provider, post, sent};

fn settings(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("settings are an object")
}

fn complete() -> Value {
    json!({
        "api_key": "dt-secret-key",
        "source_addr": "Pizza Planet",
        "callback_url": "https://bot.example.com/webhooks/dt",
        "template_namespace": "c8ae5f90_307a_ca4c_b8f6_d1e2a2573574",
    })
}

fn provider() -> DecisionTelecom {
    DecisionTelecom::from_settings(None, &settings(complete())).expect("complete settings")
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/decisiontelecom")
        .join(path)
}

fn settings_error(base_url: Option<&str>, value: Value) -> String {
    let error = DecisionTelecom::from_settings(base_url, &settings(value))
        .expect_err("settings must be refused");
    format!("{}: {}", error.key.as_deref().unwrap_or("-"), error.message)
}

/// `complete()` with `change` applied to it.
fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut value = settings(complete());
    change(&mut value);
    Value::Object(value)
}

#[test]
fn settings_errors_name_the_key() {
    let cases = [
        ("missing api_key", None, with(|s| drop(s.remove("api_key")))),
        (
            "missing template_namespace",
            None,
            with(|s| drop(s.remove("template_namespace"))),
        ),
        (
            "typo",
            None,
            with(|s| drop(s.insert("sorce_addr".into(), json!("x")))),
        ),
        (
            "long source_addr",
            None,
            with(|s| drop(s.insert("source_addr".into(), json!("Pizza Planet Jakarta Selatan")))),
        ),
        (
            "empty source_addr",
            None,
            with(|s| drop(s.insert("source_addr".into(), json!("")))),
        ),
        (
            "callback_url not a URL",
            None,
            with(|s| drop(s.insert("callback_url".into(), json!("bot.example.com/hook")))),
        ),
        (
            "base_url not a URL",
            Some("web.it-decision.com"),
            complete(),
        ),
    ];
    let report: Vec<String> = cases
        .into_iter()
        .map(|(case, base_url, value)| format!("{case}\n  {}", settings_error(base_url, value)))
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

#[test]
fn callback_url_is_optional_and_the_key_never_prints() {
    let value = with(|s| drop(s.remove("callback_url")));
    let provider = DecisionTelecom::from_settings(Some("http://127.0.0.1:9/"), &settings(value))
        .expect("callback_url is optional");
    let request = provider
        .send_request("380631234567", &text("hi"))
        .expect("text");
    assert_eq!(request.url, "http://127.0.0.1:9/v1/api/send-whatsapp");
    let body = request.body.expect("a body");
    assert_eq!(body.get("callback_url"), None);
    let shown = format!("{provider:?} {:?}", request.headers);
    assert!(
        !shown.contains("dt-secret-key") && !shown.contains("ZHQt"),
        "{shown}"
    );
}

#[test]
fn sends_the_key_as_basic_credentials_with_an_empty_password() {
    let request = provider()
        .send_request("380631234567", &text("hi"))
        .expect("text");
    let authorization = request
        .headers
        .iter()
        .find_map(|(name, value)| match value {
            HeaderValue::Secret(secret) if name == "Authorization" => {
                Some(secret.expose().to_owned())
            }
            _ => None,
        });
    // base64("dt-secret-key:")
    assert_eq!(authorization.as_deref(), Some("Basic ZHQtc2VjcmV0LWtleTo="));
}

/// One event in the snapshot's words.
fn event_view(event: &InboundEvent) -> Value {
    serde_json::to_value(event).expect("events serialize")
}

#[test]
fn normalizes_every_status_callback() {
    let provider = provider();
    insta::glob!("fixtures/decisiontelecom/callbacks/*.json", |path| {
        let body = fs::read(path).expect("fixture is readable");
        let parsed = provider.parse(&body).expect("fixture is json");
        assert!(parsed.events.iter().all(|routed| routed.route.is_none()));
        let events: Vec<Value> = parsed.events.iter().map(|r| event_view(&r.event)).collect();
        assert_eq!(
            events.len() + parsed.unrecognized.len(),
            1,
            "{}",
            path.display()
        );
        insta::assert_json_snapshot!(
            json!({"events": events, "unrecognized": parsed.unrecognized})
        );
    });
}

#[test]
fn refuses_only_bodies_that_are_not_json_and_checks_no_signature() {
    let provider = provider();
    let error = provider
        .parse(b"message_id=554&status=1")
        .expect_err("not json");
    assert!(error.to_string().starts_with("body is not json"), "{error}");
    let request = WebhookRequest {
        headers: &[],
        body: b"{}",
    };
    assert_eq!(provider.verify(&request), Ok(()));
    let parsed = provider
        .parse(br#"[{"message_id": 554, "status": 1}]"#)
        .expect("json");
    assert_eq!((parsed.events.len(), parsed.unrecognized.len()), (0, 1));
}

fn text(body: &str) -> chatflow::message::Outbound {
    serde_json::from_value(json!({"type": "text", "text": {"body": body}})).expect("a text message")
}

/// The request as the wire sees it, the credentials redacted; `template_params` is also shown
/// decoded, since the API takes it as a JSON string.
fn shown(request: &HttpRequest) -> Value {
    let mut view = request.redacted();
    let params = request
        .body
        .as_ref()
        .and_then(|body| body["template_params"].as_str())
        .map(|params| serde_json::from_str::<Value>(params).expect("template_params is json"));
    if let Some(params) = params {
        view["template_params decoded"] = params;
    }
    view
}

#[test]
fn builds_the_request_of_every_kind_it_sends() {
    let provider = provider();
    let kinds = "fixtures/dsl/{text_*,image_*,template_*,video_url,document_url,audio_voice,sticker_media_id}.yaml";
    insta::glob!(kinds, |path| {
        let spec = message_spec(path);
        let message = spec.to_outbound().expect("fixture converts");
        let message = degrade(
            &message,
            spec.fallback_text.as_deref(),
            &provider.capabilities(),
        )
        .message;
        let shown = match provider.send_request("380631234567", &message) {
            Ok(request) => shown(&request),
            Err(error) => json!({"refused": error.to_string()}),
        };
        insta::assert_json_snapshot!(shown);
    });
}

#[test]
fn refuses_a_recipient_that_is_not_a_number() {
    let error = provider()
        .send_request("US.1349120865", &text("hi"))
        .expect_err("not digits");
    assert_eq!(
        error.to_string(),
        "cannot send this message: the recipient \"US.1349120865\" is not a phone number of digits"
    );
}

#[test]
fn classifies_every_code_of_the_error_table_whatever_the_http_status() {
    let provider = provider();
    let table: Vec<Value> =
        serde_json::from_str(&fs::read_to_string(fixture("errors.json")).expect("readable"))
            .expect("the table is json");
    let rows: Vec<Value> = table
        .iter()
        .map(|row| {
            let status = row["status"].as_u64().and_then(|s| u16::try_from(s).ok());
            let http = status.filter(|s| *s >= 100).unwrap_or(400);
            let body = row.to_string();
            json!({
                "code": row["code"],
                "at its status": answer(&provider, &response(http, &[], &body)),
                "at 200": answer(&provider, &response(200, &[], &body)),
            })
        })
        .collect();
    insta::assert_json_snapshot!(rows);
}

#[test]
fn classifies_other_answers() {
    let provider = provider();
    let accepted = fs::read_to_string(fixture("send_response.json")).expect("readable");
    let cases = [
        ("accepted", response(200, &[], &accepted)),
        (
            "accepted, id as text",
            response(200, &[], r#"{"message_id": "554"}"#),
        ),
        ("accepted without an id", response(200, &[], "")),
        (
            "rate limit with retry-after",
            response(
                429,
                &[("retry-after", "12")],
                r#"{"message": "Rate limit exceeded", "code": 0, "status": 429}"#,
            ),
        ),
        (
            "framework error with the default code 0",
            response(
                401,
                &[],
                r#"{"name": "Unauthorized", "message": "Your request was made with invalid credentials.", "code": 0, "status": 401}"#,
            ),
        ),
        (
            "code not in the table",
            response(
                500,
                &[],
                r#"{"message": "Something new", "code": 42, "status": 500}"#,
            ),
        ),
        (
            "proxy page",
            response(502, &[], "<html>\n<body>502 Bad Gateway</body>\n</html>"),
        ),
        ("empty 503", response(503, &[], "")),
    ];
    let answers: Vec<Value> = cases
        .iter()
        .map(|(case, response)| json!({"case": case, "status": response.status, "answer": answer(&provider, response)}))
        .collect();
    insta::assert_json_snapshot!(answers);
}

fn channel(base: &str) -> String {
    format!(
        "  - id: dt\n    provider: decisiontelecom\n    base_url: {base}\n    api_key: dt-key\n    source_addr: PizzaPlanet\n    callback_url: https://bot.example.com/webhooks/dt\n    template_namespace: ns-1\n    inbound: {{ from: /from, text: /text }}\n"
    )
}

#[tokio::test]
async fn a_mapped_message_is_answered_in_decisiontelecoms_format() {
    let (base, captured) = mock_provider(json!({"message_id": 554})).await;
    let h = harness(&channel(&base));
    let body = json!({"from": "+380 63 123 4567", "text": "hi"}).to_string();
    let (status, answer) = post(&h.router, "/webhooks/dt", body.as_bytes(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 1);
    let requests = sent(&captured, 1).await;
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.uri.as_str()),
        ("POST", "/v1/api/send-whatsapp")
    );
    // base64("dt-key:")
    assert_eq!(request.headers["authorization"], "Basic ZHQta2V5Og==");
    assert_eq!(request.headers["content-type"], "application/json");
    let sent = &request.json;
    assert_eq!(sent["source_addr"], "PizzaPlanet");
    assert_eq!(sent["destination_addr"], 380_631_234_567_u64);
    assert_eq!(sent["message_type"], 1);
    assert_eq!(sent["callback_url"], "https://bot.example.com/webhooks/dt");
    let menu = sent["text"].as_str().expect("the menu as text");
    assert!(
        menu.contains("Hi there! What would you like to do?"),
        "{menu}"
    );
    assert!(
        menu.contains("1. Order pizza") && menu.contains("3. More…"),
        "{menu}"
    );
}

#[tokio::test]
async fn a_status_callback_is_handled_as_a_delivery_status() {
    let (base, _) = mock_provider(json!({"message_id": 554})).await;
    let h = harness(&channel(&base));
    let body = fs::read(fixture("callbacks/status_7_seen.json")).expect("readable");
    let (status, answer) = post(&h.router, "/webhooks/dt", &body, &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 1, "duplicates": 0, "unrecognized": 0})
    );
    let odd = br#"{"message_id": 554, "status": 99}"#;
    let (status, answer) = post(&h.router, "/webhooks/dt", odd, &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 0, "duplicates": 0, "unrecognized": 1})
    );
}
