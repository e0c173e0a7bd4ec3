//! The Socnet provider as a channel owner meets it: settings refused by name, every outbound kind
//! as the exact `api.php` request (text, templates by name, the rest degraded to text), every
//! documented answer classified, and a message in through the channel's inbound mapping with
//! the reply at a mock Socnet endpoint.

mod common;

use common::provider::{answer, message_spec, response_case};
use std::fs;
use std::path::Path;

use axum::http::StatusCode;
use chatflow::message::Outbound;
use chatflow::provider::degrade::degrade;
use chatflow::provider::socnet::Socnet;
use chatflow::provider::{HttpRequest, Parsed, Provider, WebhookRequest};
use serde_json::{Map, Value, json};

use common::harness::{harness, mock_provider, post, sent};

const ENDPOINT: &str = "https://www.socnetsolutions.com/projects/bulk/whatsapp/api.php";
const API_KEY: &str = "0123456789abcdef0123456789abcdef";

fn settings(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("settings are an object")
}

fn socnet() -> Socnet {
    Socnet::from_settings(Some(ENDPOINT), &settings(json!({"api_key": API_KEY})))
        .expect("complete settings")
}

fn fixture(path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/socnet")
        .join(path);
    let text = fs::read_to_string(&path).expect("fixture is readable");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn settings_errors_name_the_key() {
    let key = json!({"api_key": API_KEY});
    let cases = [
        ("no api_key", Some(ENDPOINT), json!({})),
        ("typo", Some(ENDPOINT), json!({"apikey": API_KEY})),
        ("empty api_key", Some(ENDPOINT), json!({"api_key": ""})),
        ("no base_url", None, key.clone()),
        (
            "site root",
            Some("https://www.socnetsolutions.com/projects/api/"),
            key.clone(),
        ),
        (
            "no scheme",
            Some("www.socnetsolutions.com/projects/bulk/whatsapp/api.php"),
            key,
        ),
    ];
    let report: Vec<String> = cases
        .into_iter()
        .map(|(case, base_url, value)| {
            let error = Socnet::from_settings(base_url, &settings(value)).expect_err(case);
            format!(
                "{case}\n  {}: {}",
                error.key.as_deref().unwrap_or("-"),
                error.message
            )
        })
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

#[test]
fn leaves_inbound_to_the_mapping() {
    let socnet = socnet();
    let request = WebhookRequest {
        headers: &[],
        body: b"{}",
    };
    assert_eq!(socnet.verify(&request), Ok(()));
    let body = json!({"from": "256701234567", "text": "hi"});
    assert_eq!(
        socnet.parse(body.to_string().as_bytes()),
        Ok(Parsed {
            events: Vec::new(),
            unrecognized: vec![body]
        })
    );
    let error = socnet.parse(b"from=256701234567").expect_err("not json");
    assert!(error.to_string().starts_with("body is not json"), "{error}");
}

/// The request with the key redacted in the body (the only place it is).
fn shown(request: &HttpRequest) -> Value {
    assert!(request.headers.is_empty() && !request.url.contains(API_KEY));
    let mut body = request.body.clone().expect("a json body");
    assert_eq!(body["api_key"], API_KEY);
    body["api_key"] = json!("**REDACTED**");
    json!({"method": request.method, "url": request.url, "body": body})
}

#[test]
fn sends_every_dsl_kind_as_text_or_a_template() {
    let socnet = socnet();
    insta::glob!("fixtures/dsl/*.yaml", |path| {
        let spec = message_spec(path);
        let message = spec.to_outbound().expect("fixture converts");
        let degraded = degrade(
            &message,
            spec.fallback_text.as_deref(),
            &socnet.capabilities(),
        );
        let shown = match socnet.send_request("256701234567", &degraded.message) {
            Ok(request) => shown(&request),
            Err(error) => json!({"refused": error.to_string()}),
        };
        insta::assert_json_snapshot!(shown);
    });
}

#[test]
fn sends_a_one_time_password_as_the_code_alone() {
    let otp: Outbound = serde_json::from_value(json!({"type": "template", "template": {
        "name": "otp_login", "language": {"code": "en"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "1234"}]}]
    }}))
    .expect("a template");
    let request = socnet()
        .send_request("+256701234567", &otp)
        .expect("templates are sent");
    assert_eq!(
        request.body,
        Some(
            json!({"api_key": API_KEY, "msisdn": "256701234567", "msg": "1234", "template": "otp_login"})
        )
    );
    let text: Outbound =
        serde_json::from_value(json!({"type": "text", "text": {"body": "hi"}})).expect("text");
    assert!(socnet().send_request("US.134912", &text).is_err());
}

fn cases(path: &str) -> Vec<Value> {
    fixture(path).as_array().cloned().expect("a list of cases")
}

#[test]
fn classifies_every_documented_answer() {
    let socnet = socnet();
    let answers: Vec<Value> = cases("send_answers.json")
        .iter()
        .map(|case| {
            let answer = answer(&socnet, &response_case(case));
            json!({"case": case["case"], "status": case["status"], "answer": answer})
        })
        .collect();
    insta::assert_json_snapshot!(answers);
}

#[test]
fn checks_the_key_with_the_authentication_operation() {
    let socnet = socnet();
    let request = socnet
        .health_request()
        .expect("socnet has an authentication call");
    assert_eq!(
        (request.method, request.url.as_str(), request.body),
        ("POST", ENDPOINT, Some(json!({"api_key": API_KEY})))
    );
    let verdicts: Vec<Value> = cases("auth_answers.json")
        .iter()
        .map(|case| {
            let verdict = socnet
                .read_health(&response_case(case))
                .map_or_else(Value::from, |()| json!("ok"));
            json!({"case": case["case"], "health": verdict})
        })
        .collect();
    insta::assert_json_snapshot!(verdicts);
}

#[tokio::test]
async fn a_mapped_message_gets_its_reply_in_socnets_format() {
    let success = json!({"sent": "true", "from": "256701234567@c.us", "message_type": "chat",
                         "messageId": "3EB002BAE9545124A5B7B2", "cost": "90"});
    let (base, captured) = mock_provider(success).await;
    let h = harness(&format!(
        r"  - id: socnet
    provider: socnet
    base_url: {base}/projects/bulk/whatsapp/api.php
    api_key: {API_KEY}
    inbound: {{ from: /from, text: /text }}
    inbound_secret_header: {{ name: X-Webhook-Secret, value: s3cret }}
"
    ));
    let secret = [("x-webhook-secret", "s3cret".to_owned())];
    let message = |text: &str| json!({"from": "+256 701 234567", "text": text}).to_string();

    let (status, _) = post(&h.router, "/webhooks/socnet", message("hi").as_bytes(), &[]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the secret header is required"
    );

    let (status, answer) = post(
        &h.router,
        "/webhooks/socnet",
        message("hi").as_bytes(),
        &secret,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let requests = sent(&captured, 1).await;
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].uri, "/projects/bulk/whatsapp/api.php");
    let body = &requests[0].json;
    assert_eq!(
        (&body["api_key"], &body["msisdn"]),
        (&json!(API_KEY), &json!("256701234567"))
    );
    assert_eq!(body.get("template"), None);
    let menu = body["msg"].as_str().expect("a text menu");
    assert!(menu.contains("What would you like to do?"), "{menu}");
    assert!(
        menu.contains("1. Order pizza") && menu.contains("3. More…"),
        "{menu}"
    );

    post(
        &h.router,
        "/webhooks/socnet",
        message("1").as_bytes(),
        &secret,
    )
    .await;
    let requests = sent(&captured, 2).await;
    let sizes = requests[1].json["msg"].as_str().expect("a text menu");
    assert!(
        sizes.contains("Which size") && sizes.contains("2. Medium"),
        "{sizes}"
    );
}
