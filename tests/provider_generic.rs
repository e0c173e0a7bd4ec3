//! The generic provider as a channel owner configures it: settings refused by name, webhooks
//! authenticated by a secret header and read through the JSON mapping, the exact send request
//! for awkward text, send answers classified, and every DSL message kind as the text a
//! text-only channel sends instead.

mod common;

use common::provider::{message_spec, response};
use std::time::Duration;

use chatflow::message::{InboundEvent, MessageSpec, Outbound};
use chatflow::provider::degrade::degrade;
use chatflow::provider::generic::Generic;
use chatflow::provider::{
    HeaderValue, HttpRequest, ParseError, Parsed, Provider, SendFailure, Sent, VerifyError,
    WebhookRequest,
};
use serde_json::{Map, Value, json};

const BASE_URL: &str = "https://api.example.test/";

fn settings(value: Value) -> Map<String, Value> {
    let Value::Object(settings) = value else {
        panic!("settings are an object: {value}")
    };
    settings
}

/// A complete channel: every mapping key, a secret header, two secret-bearing headers.
fn full_settings() -> Value {
    json!({
        "inbound": {
            "from": "/data/sender/phone",
            "name": "/data/sender/name",
            "id": "/data/message_id",
            "text": "/data/message/text",
            "type": "/data/message/type",
            "reply_id": "/data/message/button_id",
            "timestamp": "/data/sent_at"
        },
        "inbound_secret_header": { "name": "X-Webhook-Token", "value": "hook-secret" },
        "outbound": {
            "url": "{{base_url}}/v1/messages",
            "headers": { "Authorization": "Bearer api-secret", "X-Tenant": "shop-1" },
            "body": {
                "recipient": { "phone": "+{{to}}" },
                "message": { "kind": "text", "content": "{{ text }}" },
                "meta": { "source": "chatflow", "tags": ["bot", "{{to}}"], "retries": 0 }
            },
            "id_pointer": "/data/id"
        }
    })
}

fn generic() -> Generic {
    Generic::from_settings(Some(BASE_URL), &settings(full_settings())).expect("complete settings")
}

fn settings_error(base_url: Option<&str>, value: Value) -> String {
    let error =
        Generic::from_settings(base_url, &settings(value)).expect_err("settings must be refused");
    format!("{}: {}", error.key.as_deref().unwrap_or("-"), error.message)
}

/// `full_settings()` with `change` applied to it.
fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut value = full_settings();
    change(&mut value);
    value
}

#[test]
fn settings_errors_name_the_key() {
    let missing_inbound = with(|v| drop(v.as_object_mut().map(|o| o.remove("inbound"))));
    let typo = with(|v| {
        let outbound = v.as_object_mut().and_then(|o| o.remove("outbound"));
        v["outbund"] = outbound.unwrap_or_default();
    });
    let cases = [
        (
            "missing inbound",
            settings_error(Some(BASE_URL), missing_inbound),
        ),
        ("typo outbund", settings_error(Some(BASE_URL), typo)),
        (
            "dotted pointer",
            settings_error(
                Some(BASE_URL),
                with(|v| v["inbound"]["from"] = json!("data.sender")),
            ),
        ),
        (
            "no from",
            settings_error(
                Some(BASE_URL),
                with(|v| v["inbound"] = json!({"text": "/t"})),
            ),
        ),
        (
            "typo in secret header",
            settings_error(
                Some(BASE_URL),
                with(|v| v["inbound_secret_header"]["vaule"] = json!("x")),
            ),
        ),
        (
            "placeholder typo",
            settings_error(
                Some(BASE_URL),
                with(|v| v["outbound"]["body"]["message"]["content"] = json!("{{txt}}")),
            ),
        ),
        ("no base_url", settings_error(None, full_settings())),
        (
            "GET",
            settings_error(
                Some(BASE_URL),
                with(|v| v["outbound"]["method"] = json!("GET")),
            ),
        ),
        (
            "not a URL",
            settings_error(
                Some(BASE_URL),
                with(|v| v["outbound"]["url"] = json!("api.example.test/send")),
            ),
        ),
    ];
    let report: Vec<String> = cases
        .iter()
        .map(|(case, error)| format!("{case}\n  {error}"))
        .collect();
    insta::assert_snapshot!(report.join("\n"));
    assert!(cases[0].1.starts_with("inbound: "), "{}", cases[0].1);
    assert!(cases[1].1.starts_with("outbund: "), "{}", cases[1].1);
}

#[test]
fn accepts_lowercase_methods_and_a_url_without_base_url() {
    let value = with(|v| {
        v["outbound"]["method"] = json!("put");
        v["outbound"]["url"] = json!("https://other.example.test/send");
    });
    let generic = Generic::from_settings(None, &settings(value)).expect("valid settings");
    let request = generic
        .send_request("1", &text("hi"))
        .expect("text is sendable");
    assert_eq!(
        (request.method, request.url.as_str()),
        ("PUT", "https://other.example.test/send")
    );
}

fn webhook(provider: &Generic, headers: &[(&str, &str)]) -> Result<(), VerifyError> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    provider.verify(&WebhookRequest {
        headers: &headers,
        body: b"{}",
    })
}

#[test]
fn webhooks_need_the_secret_header_when_one_is_configured() {
    let generic = generic();
    assert_eq!(
        webhook(&generic, &[("x-webhook-token", "hook-secret")]),
        Ok(())
    );
    assert_eq!(
        webhook(&generic, &[("x-webhook-token", "hook-secret ")]),
        Err(VerifyError::Mismatch("secret header"))
    );
    assert_eq!(
        webhook(&generic, &[("x-webhook-token", "")]),
        Err(VerifyError::Mismatch("secret header"))
    );
    assert_eq!(
        webhook(&generic, &[("authorization", "hook-secret")]),
        Err(VerifyError::Missing("secret header"))
    );
    let open = with(|v| drop(v.as_object_mut().map(|o| o.remove("inbound_secret_header"))));
    let open = Generic::from_settings(Some(BASE_URL), &settings(open)).expect("valid settings");
    assert_eq!(webhook(&open, &[]), Ok(()));
}

/// The parsed events (each routed to the channel it came in on) and the unreadable rest.
fn parsed_view(parsed: &Parsed) -> Value {
    assert!(parsed.events.iter().all(|routed| routed.route.is_none()));
    let events: Vec<&InboundEvent> = parsed.events.iter().map(|routed| &routed.event).collect();
    json!({"events": events, "unrecognized": parsed.unrecognized})
}

fn parse(body: &Value) -> Parsed {
    generic()
        .parse(body.to_string().as_bytes())
        .expect("JSON is accepted")
}

#[test]
fn reads_a_text_message_through_the_mapping() {
    let body = json!({
        "event": "message.received",
        "data": {
            "message_id": "evt_01HZX3",
            "sent_at": 1_717_171_717,
            "sender": { "phone": "+62 812-3456-7890", "name": "Budi" },
            "message": { "type": "text", "text": "Mau pesan \"nasi goreng\" 2" }
        }
    });
    let parsed = parse(&body);
    assert!(parsed.unrecognized.is_empty());
    insta::assert_yaml_snapshot!(parsed_view(&parsed));
}

#[test]
fn reads_a_button_reply_and_keeps_what_it_cannot_read() {
    let body = json!([
        {"data": {"sender": {"phone": 15_550_001_111_u64}, "message": {"type": "button", "button_id": "large", "text": "Large"}}},
        {"data": {"sender": {"phone": "15550001111"}, "message": {"type": "image"}}},
        {"data": {"status": "delivered"}}
    ]);
    let parsed = parse(&body);
    insta::assert_yaml_snapshot!(parsed_view(&parsed));
}

#[test]
fn refuses_only_bodies_that_are_not_json() {
    let error: ParseError = generic().parse(b"sender=1&text=hi").expect_err("not JSON");
    assert!(error.0.starts_with("body is not JSON"), "{error}");
    let parsed = generic()
        .parse(br#"{"hello": "world"}"#)
        .expect("JSON is accepted");
    assert_eq!(
        parsed,
        Parsed {
            events: Vec::new(),
            unrecognized: vec![json!({"hello": "world"})]
        }
    );
}

fn text(body: &str) -> Outbound {
    serde_json::from_value(json!({"type": "text", "text": {"body": body}})).expect("a text message")
}

/// The request as the snapshot shows it: secret header values redacted.
fn request_view(request: &HttpRequest) -> Value {
    let headers: Vec<Value> = request
        .headers
        .iter()
        .map(|(name, value)| json!([name, format!("{value:?}")]))
        .collect();
    json!({"method": request.method, "url": request.url, "headers": headers, "body": request.body})
}

#[test]
fn sends_text_with_quotes_and_newlines_as_valid_json() {
    let awkward = "He said \"hi\" \\ then:\nline two {{to}}\t}";
    let request = generic()
        .send_request("6281234567890", &text(awkward))
        .expect("text is sendable");
    let body = request.body.as_ref().expect("a JSON body");
    assert_eq!(body["message"]["content"], awkward);
    let wire = serde_json::to_string(body).expect("serializable");
    assert_eq!(
        serde_json::from_str::<Value>(&wire).ok().as_ref(),
        Some(body)
    );
    assert!(
        request
            .headers
            .iter()
            .all(|(_, value)| matches!(value, HeaderValue::Secret(_)))
    );
    assert!(!format!("{request:?}").contains("api-secret"));
    insta::assert_json_snapshot!(request_view(&request));
}

#[test]
fn refuses_to_send_anything_but_text() {
    let image: Outbound =
        serde_json::from_value(json!({"type": "image", "image": {"link": "https://x.test/a.jpg"}}))
            .expect("an image message");
    let error = generic().send_request("1", &image).expect_err("only text");
    assert!(
        error
            .to_string()
            .starts_with("cannot send this message: a generic channel sends text only"),
        "{error}"
    );
}

#[test]
fn classifies_send_answers() {
    let generic = generic();
    let sent = |id: Option<&str>| {
        Ok(Sent {
            provider_id: id.map(str::to_owned),
        })
    };
    assert_eq!(
        generic.read_response(&response(200, &[], r#"{"data": {"id": "msg-1"}}"#)),
        sent(Some("msg-1"))
    );
    assert_eq!(
        generic.read_response(&response(201, &[], r#"{"data": {"id": 42}}"#)),
        sent(Some("42"))
    );
    assert_eq!(
        generic.read_response(&response(202, &[], "queued")),
        sent(None)
    );
    assert_eq!(generic.read_response(&response(204, &[], "")), sent(None));

    let failure = |status, headers: &[(&str, &str)], body| {
        generic
            .read_response(&response(status, headers, body))
            .expect_err("a failure")
    };
    let limited = failure(429, &[("retry-after", "7")], r#"{"error": "slow down"}"#);
    assert_eq!(
        limited.decision,
        SendFailure::RateLimited(Some(Duration::from_secs(7)))
    );
    assert_eq!(limited.provider, "generic");
    assert_eq!(limited.detail, r#"http 429: {"error": "slow down"}"#);
    assert_eq!(failure(503, &[], "").decision, SendFailure::Retry);
    assert_eq!(failure(500, &[], "oops").detail, "http 500: oops");
    assert_eq!(
        failure(400, &[], r#"{"error": "bad phone"}"#).decision,
        SendFailure::DoNotRetry
    );
    assert_eq!(failure(401, &[], "").decision, SendFailure::DoNotRetry);
    assert_eq!(failure(302, &[], "").decision, SendFailure::DoNotRetry);
}

/// What a generic channel sends for one DSL message: the text, the menu an answer picks from,
/// or — when no text can be made — the provider's refusal.
fn sent_as(spec: &MessageSpec) -> String {
    let generic = generic();
    let message = spec.to_outbound().expect("fixture converts");
    let degraded = degrade(
        &message,
        spec.fallback_text.as_deref(),
        &generic.capabilities(),
    );
    let menu: Vec<String> = degraded
        .menu
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} → {}", i + 1, c.id))
        .collect();
    let sent = match generic.send_request("15550001111", &degraded.message) {
        Ok(request) => request
            .body
            .as_ref()
            .map(|body| body["message"]["content"].clone())
            .unwrap_or_default(),
        Err(error) => json!(format!("refused: {error}")),
    };
    let text = sent.as_str().unwrap_or_default();
    if menu.is_empty() {
        text.to_owned()
    } else {
        format!("{text}\n---- menu\n{}", menu.join("\n"))
    }
}

#[test]
fn degrades_every_kind_to_text() {
    insta::glob!("fixtures/dsl/*.yaml", |path| {
        insta::assert_snapshot!(sent_as(&message_spec(path)));
    });
}
