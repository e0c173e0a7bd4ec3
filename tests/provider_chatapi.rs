//! The Chat API provider as a channel owner meets it: settings refused by name, the document's
//! webhooks (messages, acks, our own echoes) normalized, every outbound kind as the exact request
//! with the token only in the query, send and status answers classified, and the shipped menu
//! bot answering in numbered text at a mock Chat API.

mod common;

use common::provider::{answer, message_spec, response_case};
use std::fs;
use std::path::Path;

use axum::http::StatusCode;
use chatflow::message::InboundEvent;
use chatflow::provider::chatapi::ChatApi;
use chatflow::provider::degrade::degrade;
use chatflow::provider::{HttpRequest, Parsed, Provider};
use serde_json::{Map, Value, json};

use common::harness::{harness, mock_provider, post, sent};

const BASE_URL: &str = "https://eu14.chat-api.com/instance12345";
const TOKEN: &str = "chat-api-token";

fn settings(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("settings are an object")
}

fn chatapi() -> ChatApi {
    ChatApi::from_settings(Some(BASE_URL), &settings(json!({"token": TOKEN})))
        .expect("complete settings")
}

fn fixture(path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/chatapi")
        .join(path);
    let text = fs::read_to_string(&path).expect("fixture is readable");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn settings_errors_name_the_key() {
    let cases = [
        ("no token", Some(BASE_URL), json!({})),
        ("typo", Some(BASE_URL), json!({"tokn": TOKEN})),
        ("empty token", Some(BASE_URL), json!({"token": " "})),
        ("token not text", Some(BASE_URL), json!({"token": ["a"]})),
        ("no base_url", None, json!({"token": TOKEN})),
        (
            "not a url",
            Some("eu14.chat-api.com/instance12345"),
            json!({"token": TOKEN}),
        ),
        (
            "token in base_url",
            Some("https://eu14.chat-api.com/instance12345?token=x"),
            json!({"token": TOKEN}),
        ),
    ];
    let report: Vec<String> = cases
        .into_iter()
        .map(|(case, base_url, value)| {
            let error = ChatApi::from_settings(base_url, &settings(value)).expect_err(case);
            format!(
                "{case}\n  {}: {}",
                error.key.as_deref().unwrap_or("-"),
                error.message
            )
        })
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

/// Events in full, and the entries kept raw.
fn parsed_view(parsed: &Parsed) -> Value {
    assert!(parsed.events.iter().all(|routed| routed.route.is_none()));
    let events: Vec<&InboundEvent> = parsed.events.iter().map(|routed| &routed.event).collect();
    json!({"events": events, "unrecognized": parsed.unrecognized})
}

#[test]
fn normalizes_every_webhook_fixture() {
    let chatapi = chatapi();
    insta::glob!("fixtures/chatapi/webhooks/*.json", |path| {
        let body = fs::read(path).expect("fixture is readable");
        let parsed = chatapi.parse(&body).expect("fixture is json");
        insta::assert_yaml_snapshot!(parsed_view(&parsed));
    });
}

#[test]
fn ignores_our_own_messages_and_refuses_only_bodies_that_are_not_json() {
    let chatapi = chatapi();
    let echo = fixture("webhooks/documented_example.json");
    let parsed = chatapi.parse(echo.to_string().as_bytes()).expect("json");
    let messages = parsed
        .events
        .iter()
        .filter(|routed| matches!(routed.event, InboundEvent::Message(_)));
    assert_eq!(messages.count(), 0, "fromMe messages are never answered");
    assert!(parsed.unrecognized.is_empty());
    let error = chatapi.parse(b"messages=1").expect_err("not json");
    assert!(error.to_string().starts_with("body is not json"), "{error}");
}

/// The request with the token redacted in the query (the only place it is).
fn shown(request: &HttpRequest) -> Value {
    assert!(request.headers.is_empty());
    let body = request
        .body
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_default();
    assert!(!body.contains(TOKEN), "the token is in the query only");
    let url = request.url.replace(TOKEN, "**REDACTED**");
    json!({"method": request.method, "url": url, "body": request.body})
}

#[test]
fn sends_every_dsl_kind_as_text_or_a_file() {
    let chatapi = chatapi();
    insta::glob!("fixtures/dsl/*.yaml", |path| {
        let spec = message_spec(path);
        let message = spec.to_outbound().expect("fixture converts");
        let degraded = degrade(
            &message,
            spec.fallback_text.as_deref(),
            &chatapi.capabilities(),
        );
        let shown = match chatapi.send_request("17472822486", &degraded.message) {
            Ok(request) => shown(&request),
            Err(error) => json!({"refused": error.to_string()}),
        };
        insta::assert_json_snapshot!(shown);
    });
}

fn text(body: &str) -> chatflow::message::Outbound {
    serde_json::from_value(json!({"type": "text", "text": {"body": body}})).expect("a text message")
}

#[test]
fn addresses_phones_and_chats_and_encodes_the_token() {
    let chatapi = chatapi();
    let body = |to: &str| {
        chatapi
            .send_request(to, &text("hi"))
            .map(|request| request.body)
    };
    assert_eq!(
        body("17472822486"),
        Ok(Some(json!({"phone": "17472822486", "body": "hi"})))
    );
    assert_eq!(
        body("79680561234-1479621234@g.us"),
        Ok(Some(
            json!({"chatId": "79680561234-1479621234@g.us", "body": "hi"})
        ))
    );
    assert!(body("US.13491208655302741918").is_err());
    let odd = ChatApi::from_settings(
        Some("http://127.0.0.1:9/instance1/"),
        &settings(json!({"token": "a b&c=d"})),
    )
    .expect("settings");
    let request = odd.send_request("1", &text("hi")).expect("text");
    assert_eq!(
        request.url,
        "http://127.0.0.1:9/instance1/sendMessage?token=a+b%26c%3Dd"
    );
    assert!(!format!("{odd:?}").contains("a b&c=d"), "{odd:?}");
}

fn cases(path: &str) -> Vec<Value> {
    fixture(path).as_array().cloned().expect("a list of cases")
}

#[test]
fn classifies_every_send_answer() {
    let chatapi = chatapi();
    let answers: Vec<Value> = cases("send_answers.json")
        .iter()
        .map(|case| {
            let answer = answer(&chatapi, &response_case(case));
            json!({"case": case["case"], "status": case["status"], "answer": answer})
        })
        .collect();
    insta::assert_json_snapshot!(answers);
}

#[test]
fn tells_whether_the_instance_is_linked() {
    let chatapi = chatapi();
    let request = chatapi
        .health_request()
        .expect("chat api has a status call");
    assert_eq!((request.method, request.body), ("GET", None));
    assert_eq!(request.url, format!("{BASE_URL}/status?token={TOKEN}"));
    let verdicts: Vec<Value> = cases("status_answers.json")
        .iter()
        .map(|case| {
            let verdict = chatapi
                .read_health(&response_case(case))
                .map_or_else(Value::from, |()| json!("ok"));
            json!({"case": case["case"], "health": verdict})
        })
        .collect();
    insta::assert_json_snapshot!(verdicts);
}

/// A Chat API webhook carrying one chat message of the contact 6281234567890.
fn webhook(id: &str, text: &str, from_me: bool) -> String {
    json!({"messages": [{
        "id": id, "body": text, "type": "chat", "senderName": "Budi", "fromMe": from_me,
        "author": "6281234567890@c.us", "time": 1_504_208_593, "chatId": "6281234567890@c.us",
        "messageNumber": 100
    }]})
    .to_string()
}

#[tokio::test]
async fn the_menu_bot_answers_in_numbered_text_at_send_message() {
    let (base, captured) = mock_provider(json!({"sent": true, "message": "ok"})).await;
    let h = harness(&format!(
        "  - id: chatapi\n    provider: chatapi\n    base_url: {base}/instance12345/\n    token: {TOKEN}\n"
    ));
    let (status, answer) = post(
        &h.router,
        "/webhooks/chatapi",
        webhook("false_6281234567890@c.us_A1", "hi", false).as_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let requests = sent(&captured, 1).await;
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].uri,
        format!("/instance12345/sendMessage?token={TOKEN}")
    );
    assert_eq!(requests[0].json["phone"], "6281234567890");
    let menu = requests[0].json["body"].as_str().expect("a text menu");
    assert!(
        menu.contains("Hi Budi! What would you like to do?"),
        "{menu}"
    );
    assert!(
        menu.contains("1. Order pizza") && menu.contains("3. More…"),
        "{menu}"
    );

    // Chat API echoes our menu back as `fromMe`; answering it would loop.
    let echo = webhook("true_6281234567890@c.us_B1", menu, true);
    let (status, _) = post(&h.router, "/webhooks/chatapi", echo.as_bytes(), &[]).await;
    assert_eq!(status, StatusCode::OK);

    // "1" picks the first option as if the button had been tapped.
    post(
        &h.router,
        "/webhooks/chatapi",
        webhook("false_6281234567890@c.us_A2", "1", false).as_bytes(),
        &[],
    )
    .await;
    let requests = sent(&captured, 2).await;
    assert_eq!(requests.len(), 2, "the echo got no reply");
    let sizes = requests[1].json["body"].as_str().expect("a text menu");
    assert!(
        sizes.contains("Which size, Budi?") && sizes.contains("2. Medium"),
        "{sizes}"
    );

    let acks = json!({"ack": [{"id": "true_6281234567890@c.us_B1", "queueNumber": 100,
                                "chatId": "6281234567890@c.us", "status": "viewed"}]});
    let (status, _) = post(
        &h.router,
        "/webhooks/chatapi",
        acks.to_string().as_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sent(&captured, 3).await.len(),
        2,
        "a receipt is not answered"
    );
}
