//! The Meta provider as the server sees it: every pywa webhook fixture parsed and routed, every
//! outbound kind as the exact Graph API request, send answers classified, signatures and the
//! subscription handshake checked, and channel settings refused by name.

mod common;

use common::provider::answer;
use common::provider::outbound;
use std::collections::HashMap;
use std::fs;
use std::path::Path;

use chatflow::message::InboundEvent;
use chatflow::provider::meta::Meta;
use chatflow::provider::{
    Handshake, HttpRequest, HttpResponse, Parsed, Provider, RoutedEvent, VerifyError,
    WebhookRequest,
};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// Fixtures whose bodies carry no message, status or preference: calls, message echoes, template
/// and account updates, acknowledged and kept as unrecognized.
const UPDATES_ONLY: &[&str] = &[
    "account_update.json",
    "call_connect.json",
    "call_status.json",
    "call_terminate.json",
    "outgoing_message.json",
    "template_category_update.json",
    "template_components_update.json",
    "template_quality_update.json",
    "template_status_update.json",
];

fn settings(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("settings are an object")
}

fn meta() -> Meta {
    let settings = settings(json!({
        "phone_number_id": "106540352242922",
        "access_token": "EAAG-test-token",
        "app_secret": "app_secret",
        "verify_token": "my-verify-token",
    }));
    Meta::from_settings(None, &settings).expect("complete settings")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).expect("fixture is readable");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// What an unrecognized part is, told from its shape, for the snapshot.
fn kind(raw: &Value) -> String {
    if let Some(field) = raw.get("field").and_then(Value::as_str) {
        return format!("change {field}");
    }
    if let Some(code) = raw.get("code") {
        return format!("error {code}");
    }
    let kind = if raw.get("category").is_some() {
        "preference"
    } else if raw.get("status").is_some() {
        "status"
    } else if raw.get("from").is_some() {
        "message"
    } else if raw.get("object").is_some() {
        "body"
    } else {
        "other"
    };
    kind.to_owned()
}

/// One event in a line or two: where it is routed and what it is.
fn event(routed: &RoutedEvent) -> Value {
    let what = match &routed.event {
        InboundEvent::Message(message) => json!({
            "message": message.event_name(),
            "id": message.id,
            "from": message.from,
            "name": message.name,
        }),
        InboundEvent::Status(status) => json!({
            "status": status.status.as_str(),
            "id": status.message_id,
            "recipient": status.recipient,
            "errors": status.errors.iter().map(|error| error.code).collect::<Vec<_>>(),
        }),
        InboundEvent::Preference(change) => json!({
            "preference": "marketing",
            "opted_out": change.opted_out,
            "contact": change.contact,
            "timestamp": change.timestamp,
        }),
    };
    json!({"route": routed.route, "event": what})
}

fn summary(parsed: &Parsed) -> Value {
    let events: Vec<Value> = parsed.events.iter().map(event).collect();
    let unrecognized: Vec<String> = parsed.unrecognized.iter().map(kind).collect();
    json!({"events": events, "unrecognized": unrecognized})
}

fn check_fixture(file: &str, case: &str, parsed: &Parsed) {
    let kinds: Vec<String> = parsed.unrecognized.iter().map(kind).collect();
    if UPDATES_ONLY.contains(&file) {
        assert!(
            parsed.events.is_empty(),
            "{file} {case}: {:?}",
            parsed.events
        );
        assert!(!kinds.is_empty(), "{file} {case}: nothing kept");
    } else {
        assert!(!parsed.events.is_empty(), "{file} {case}: no events");
        let lost = kinds
            .iter()
            .filter(|kind| ["message", "status"].contains(&kind.as_str()));
        assert_eq!(lost.count(), 0, "{file} {case}: {kinds:?}");
    }
}

#[test]
fn parses_and_routes_every_webhook_fixture() {
    let meta = meta();
    insta::glob!("fixtures/meta/{*.json,other_fields/*.json}", |path| {
        let file = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("file name");
        let cases = read_json(path);
        let cases = cases
            .as_object()
            .expect("fixture maps case names to webhook bodies");
        let mut summaries = Map::new();
        for (case, body) in cases {
            let parsed = meta
                .parse(body.to_string().as_bytes())
                .expect("fixture is json");
            check_fixture(file, case, &parsed);
            summaries.insert(case.clone(), summary(&parsed));
        }
        insta::assert_json_snapshot!(summaries);
    });
}

#[test]
fn answers_bad_bodies_without_failing_the_webhook() {
    let meta = meta();
    let error = meta.parse(b"<html>not json</html>").expect_err("not json");
    assert!(error.to_string().starts_with("body is not json"), "{error}");
    let other = json!({"object": "instagram", "entry": [{"changes": []}]});
    let parsed = meta.parse(other.to_string().as_bytes()).expect("json");
    assert_eq!((parsed.events.len(), parsed.unrecognized), (0, vec![other]));
    let odd = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1"},
        {"changes": [
            {"field": "messages", "value": {"messages": "not a list"}},
            {"field": "messages", "value": {"metadata": {"phone_number_id": "1"}}},
            {"value": {}},
        ]},
    ]});
    let parsed = meta.parse(odd.to_string().as_bytes()).expect("json");
    assert_eq!(parsed.unrecognized.len(), 4);
}

/// The request as the wire will see it, with the token redacted.
fn shown(request: &HttpRequest) -> Value {
    request.redacted()
}

#[test]
fn builds_the_graph_api_request_of_every_outbound_kind() {
    let meta = meta();
    insta::glob!("fixtures/dsl/*.yaml", |path| {
        let message = outbound(path);
        let request = meta
            .send_request("16505551234", &message)
            .expect("meta sends every kind");
        insta::assert_json_snapshot!(shown(&request));
    });
}

#[test]
fn marks_read_only_when_the_channel_asks() {
    assert_eq!(meta().mark_read_request("wamid.INBOUND1"), None);
    let settings = settings(json!({
        "phone_number_id": "106540352242922", "access_token": "t", "app_secret": "s",
        "verify_token": "v", "mark_read": true,
    }));
    let meta =
        Meta::from_settings(Some("http://127.0.0.1:8080/v24.0/"), &settings).expect("settings");
    let request = meta
        .mark_read_request("wamid.INBOUND1")
        .expect("mark_read is set");
    insta::assert_json_snapshot!(shown(&request));
}

fn response(status: u16, retry_after: Option<&str>, body: &str) -> HttpResponse {
    let headers = retry_after
        .map(|seconds| ("retry-after".to_owned(), seconds.to_owned()))
        .into_iter()
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// One Graph API error per family of spec §4.5: case, HTTP status, `Retry-After`, code, message.
#[rustfmt::skip]
const GRAPH_ERRORS: &[(&str, u16, Option<&str>, i64, &str)] = &[
    ("outside the window", 400, None, 131_047, "(#131047) Re-engagement message"),
    ("on-premises outside the window", 400, None, 470, "Re-engagement window closed"),
    ("pair rate limit", 400, None, 131_056, "(#131056) Pair rate limit hit"),
    ("app rate limit", 400, None, 4, "(#4) Application request limit reached"),
    ("waba rate limit", 400, Some("60"), 80_007, "(#80007) Rate limit issues"),
    ("spam rate limit", 400, None, 131_048, "(#131048) Spam rate limit hit"),
    ("unknown error", 500, None, 131_000, "(#131000) Something went wrong"),
    ("maintenance", 500, None, 131_057, "(#131057) Account in maintenance mode"),
    ("service unavailable", 503, None, 2, "(#2) Service temporarily unavailable"),
    ("opted out", 400, None, 131_050, "(#131050) User stopped marketing messages"),
    ("undeliverable", 400, None, 131_026, "(#131026) Message undeliverable"),
    ("invalid parameter", 400, None, 100, "(#100) Invalid parameter"),
    ("template not found", 404, None, 132_001, "(#132001) Template name does not exist"),
    ("token expired", 401, None, 190, "Error validating access token: Session has expired"),
    ("permission", 403, None, 10, "(#10) Application does not have permission"),
    ("account blocked", 403, None, 368, "(#368) Temporarily blocked for policies violations"),
    ("code not in the table, 400", 400, None, 99_999, "(#99999) Something new"),
    ("code not in the table, 500", 500, None, 99_999, "(#99999) Something new"),
];

/// Send answers that are not a plain Graph API error: success, `error_data`, no code, no JSON.
fn other_answers() -> Vec<(&'static str, HttpResponse)> {
    let rate_limit = json!({"error": {
        "message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130_429,
        "error_data": {"messaging_product": "whatsapp",
                       "details": "Cloud API message throughput has been reached."},
        "error_subcode": 2_494_055, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})
    .to_string();
    let accepted = r#"{"messaging_product": "whatsapp",
        "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI4MjZGRDA0OUE2OTQ3RkEyMzcA"}]}"#;
    vec![
        ("accepted", response(200, None, accepted)),
        (
            "accepted without an id",
            response(200, None, r#"{"success": true}"#),
        ),
        (
            "rate limit without retry-after",
            response(400, None, &rate_limit),
        ),
        (
            "rate limit with retry-after",
            response(400, Some("30"), &rate_limit),
        ),
        (
            "error without a code",
            response(503, None, r#"{"error": {"message": "Please retry"}}"#),
        ),
        (
            "proxy page",
            response(502, None, "<html>\n  <body>502 Bad Gateway</body>\n</html>"),
        ),
        ("empty 429", response(429, Some("7"), "")),
    ]
}

fn graph_errors() -> Vec<(&'static str, HttpResponse)> {
    let error = |code: i64, message: &str| {
        json!({"error": {"message": message, "type": "OAuthException", "code": code,
                         "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})
        .to_string()
    };
    GRAPH_ERRORS
        .iter()
        .map(|&(case, status, wait, code, message)| {
            (case, response(status, wait, &error(code, message)))
        })
        .collect()
}

#[test]
fn classifies_every_family_of_send_answer() {
    let meta = meta();
    let answers: Vec<Value> = other_answers()
        .into_iter()
        .chain(graph_errors())
        .map(|(case, response)| {
            let answer = answer(&meta, &response);
            json!({"case": case, "status": response.status, "answer": answer})
        })
        .collect();
    insta::assert_json_snapshot!(answers);
}

fn signed(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn verify(body: &[u8], signature: Option<&str>) -> Result<(), VerifyError> {
    let headers: Vec<(String, String)> = signature
        .map(|value| ("x-hub-signature-256".to_owned(), value.to_owned()))
        .into_iter()
        .collect();
    meta().verify(&WebhookRequest {
        headers: &headers,
        body,
    })
}

#[test]
fn accepts_only_bodies_signed_with_the_app_secret() {
    let body =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/meta/message.json"))
            .expect("fixture is readable");
    assert_eq!(verify(&body, Some(&signed(&body, "app_secret"))), Ok(()));
    let wrong = Err(VerifyError::Mismatch("x-hub-signature-256"));
    assert_eq!(verify(&body, Some(&signed(&body, "another_secret"))), wrong);
    assert_eq!(
        verify(&body[1..], Some(&signed(&body, "app_secret"))),
        wrong
    );
    let missing = verify(&body, None);
    assert_eq!(missing, Err(VerifyError::Missing("x-hub-signature-256")));
    assert_eq!(
        missing.expect_err("missing").to_string(),
        "missing x-hub-signature-256"
    );
}

#[test]
fn accepts_a_unicode_body_signed_in_its_escaped_form() {
    let raw = r#"{"text":{"body":"café 😮"}}"#;
    let escaped = r#"{"text":{"body":"caf\u00e9 \ud83d\ude2e"}}"#;
    assert_eq!(
        verify(
            raw.as_bytes(),
            Some(&signed(escaped.as_bytes(), "app_secret"))
        ),
        Ok(())
    );
    assert_eq!(
        verify(raw.as_bytes(), Some(&signed(raw.as_bytes(), "app_secret"))),
        Ok(())
    );
    let escaped_spec = "sha256=488637ec38265cf9bae3e0d2d3fca1019674b34ddb9988296f043b4df4f4443f";
    assert_eq!(verify(raw.as_bytes(), Some(escaped_spec)), Ok(()));
}

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

#[test]
fn answers_the_subscription_handshake() {
    let meta = meta();
    let subscribe = |token| {
        query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "1158201444"),
            ("hub.verify_token", token),
        ])
    };
    assert_eq!(
        meta.handshake(&subscribe("my-verify-token")),
        Handshake::Accept("1158201444".to_owned())
    );
    assert_eq!(
        meta.handshake(&subscribe("my-verify-tokeN")),
        Handshake::Reject
    );
    assert_eq!(
        meta.handshake(&query(&[("hub.challenge", "1")])),
        Handshake::Reject
    );
}

#[test]
fn names_the_missing_or_misspelt_setting() {
    let missing = settings(json!({"phone_number_id": "1", "app_secret": "s", "verify_token": "v"}));
    let error = Meta::from_settings(None, &missing).expect_err("no access_token");
    assert_eq!(error.key.as_deref(), Some("access_token"));
    assert!(error.to_string().contains("access_token"), "{error}");
    let misspelt = settings(
        json!({"phone_number_id": "1", "acess_token": "t", "app_secret": "s",
                                   "verify_token": "v"}),
    );
    let error = Meta::from_settings(None, &misspelt).expect_err("unknown key");
    assert_eq!(error.key.as_deref(), Some("acess_token"));
    assert!(error.to_string().contains("acess_token"), "{error}");
}

#[test]
fn describes_itself_without_its_credentials() {
    let meta = meta();
    assert_eq!(
        (meta.name(), meta.phone_number_id()),
        ("meta", "106540352242922")
    );
    let shown = format!("{meta:?}");
    assert!(
        !shown.contains("EAAG") && !shown.contains("my-verify"),
        "{shown}"
    );
    assert_eq!(shown.matches("**REDACTED**").count(), 3, "{shown}");
}
