//! The Ivosights provider as the server sees it: every notification of the document normalized,
//! every outbound kind as the exact request to its `send-*-message` endpoint, send answers
//! classified, inbound Basic auth checked, settings refused by name, and a webhook that runs the
//! welcome flow end to end against a mock Ivosights API.

mod common;

use common::provider::{answer, message_spec, outbound};
use std::fs;
use std::path::Path;

use axum::http::StatusCode;
use chatflow::message::Outbound;
use chatflow::provider::degrade::degrade;
use chatflow::provider::ivosights::Ivosights;
use chatflow::provider::{
    HttpRequest, HttpResponse, Parsed, Provider, VerifyError, WebhookRequest,
};
use serde_json::{Map, Value, json};

use common::harness::{harness, mock_provider, post, sent};

fn settings(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("settings are an object")
}

fn ivosights(base_url: Option<&str>, value: Value) -> Ivosights {
    Ivosights::from_settings(base_url, &settings(value)).expect("valid settings")
}

/// A channel with only the required key, on the production API.
fn plain() -> Ivosights {
    ivosights(None, json!({"api_key": "ivo-test-key"}))
}

/// A channel with every optional key set.
fn complete() -> Ivosights {
    ivosights(
        None,
        json!({
            "api_key": "ivo-test-key",
            "inbound_basic_auth": {"username": "user", "password": "password"},
            "webhook_id": "60243665e4058d3b4a377bd2",
            "mark_read": true,
        }),
    )
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).expect("fixture is readable");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every event in full, and the raw objects kept as unrecognized.
fn shown_parsed(parsed: &Parsed) -> Value {
    let events: Vec<Value> = parsed
        .events
        .iter()
        .map(|routed| json!({"route": routed.route, "event": routed.event}))
        .collect();
    json!({"events": events, "unrecognized": parsed.unrecognized})
}

#[test]
fn normalizes_every_notification_of_the_fixtures() {
    let ivosights = plain();
    insta::glob!("fixtures/ivosights/*.json", |path| {
        let cases = read_json(path);
        let cases = cases
            .as_object()
            .expect("fixture maps case names to bodies");
        let mut shown = Map::new();
        for (case, body) in cases {
            let parsed = ivosights
                .parse(body.to_string().as_bytes())
                .expect("fixture is json");
            shown.insert(case.clone(), shown_parsed(&parsed));
        }
        insta::assert_json_snapshot!(shown);
    });
}

#[test]
fn reads_voice_notes_and_changed_numbers_in_their_on_premises_spelling() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ivosights/messages.json");
    let cases = read_json(&path);
    let event = |case: &str| {
        let parsed = plain()
            .parse(cases[case].to_string().as_bytes())
            .expect("json");
        assert!(parsed.unrecognized.is_empty(), "{case}: {parsed:?}");
        serde_json::to_value(&parsed.events[0].event).expect("serializable")
    };
    let voice = event("voice");
    assert_eq!(voice["content"]["type"], "media");
    assert_eq!(voice["content"]["kind"], "voice");
    let system = event("user_changed_number");
    assert_eq!(system["content"]["new_id"], "16315558890");
}

#[test]
fn answers_bad_bodies_without_failing_the_webhook() {
    let ivosights = plain();
    let error = ivosights.parse(b"<html>").expect_err("not json");
    assert!(error.to_string().starts_with("body is not json"), "{error}");
    let odd = json!({"hello": "world"});
    let parsed = ivosights.parse(odd.to_string().as_bytes()).expect("json");
    assert_eq!((parsed.events.len(), parsed.unrecognized), (0, vec![odd]));
    let broken = json!({"messages": [
        {"id": "A", "timestamp": "1", "type": "text", "text": {"body": "no sender"}},
        {"id": "B", "from": "1", "timestamp": "1", "type": "text", "text": {"body": "hi"}},
    ], "statuses": "not a list"});
    let parsed = ivosights
        .parse(broken.to_string().as_bytes())
        .expect("json");
    assert_eq!((parsed.events.len(), parsed.unrecognized.len()), (0, 1));
    let broken = json!({"messages": [
        {"id": "A", "timestamp": "1", "type": "text", "text": {"body": "no sender"}},
        {"id": "B", "from": "1", "timestamp": "1", "type": "text", "text": {"body": "hi"}},
    ]});
    let parsed = ivosights
        .parse(broken.to_string().as_bytes())
        .expect("json");
    assert_eq!((parsed.events.len(), parsed.unrecognized.len()), (1, 1));
}

/// The request as the wire will see it, with the API key redacted.
fn shown(request: &HttpRequest) -> Value {
    request.redacted()
}

#[test]
fn builds_the_request_of_every_outbound_kind() {
    let ivosights = plain();
    insta::glob!("fixtures/dsl/*.yaml", |path| {
        let spec = message_spec(path);
        let message = spec.to_outbound().expect("fixture converts");
        let capabilities = ivosights.capabilities();
        let degraded = degrade(&message, spec.fallback_text.as_deref(), &capabilities);
        let shown = match ivosights.send_request("628123456789", &degraded.message) {
            Ok(request) => json!({
                "degraded_to_text": degraded.message != message,
                "request": shown(&request),
            }),
            Err(error) => json!({"refused": error.to_string()}),
        };
        insta::assert_json_snapshot!(shown);
    });
}

#[test]
fn sends_templates_by_their_ivosights_id() {
    let ivosights = plain();
    insta::glob!("fixtures/ivosights/templates/*.yaml", |path| {
        let message = outbound(path);
        let request = ivosights
            .send_request("628123456789", &message)
            .expect("a template with an id");
        insta::assert_json_snapshot!(shown(&request));
    });
}

#[test]
fn refuses_what_has_no_endpoint_instead_of_guessing() {
    let ivosights = plain();
    let refused = |message: Value| {
        let message: Outbound = serde_json::from_value(message).expect("an outbound message");
        ivosights
            .send_request("628123456789", &message)
            .expect_err("no endpoint")
            .to_string()
    };
    let reaction = json!({"type": "reaction", "reaction": {"message_id": "gBEG", "emoji": ""}});
    assert_eq!(
        refused(reaction),
        "cannot send this message: ivosights has no endpoint for reaction messages"
    );
    let cta = json!({"type": "interactive", "interactive": {"type": "cta_url", "body": {"text": "b"},
        "action": {"name": "cta_url", "parameters": {"display_text": "Go", "url": "https://x.test"}}}});
    assert!(refused(cta).contains("cta_url"));
    let header = json!({"type": "interactive", "interactive": {"type": "button",
        "header": {"type": "image", "image": {"id": "1013"}}, "body": {"text": "b"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}});
    assert_eq!(
        refused(header),
        "cannot send this message: ivosights sends media by url only (its api has no upload), and this image header has a media id; give it a url"
    );
    let products = json!({"type": "interactive", "interactive": {"type": "product_list",
        "header": {"type": "image", "image": {"link": "https://x.test/a.jpg"}}, "body": {"text": "b"},
        "action": {"catalog_id": "1", "sections": [{"product_items": [{"product_retailer_id": "p"}]}]}}});
    assert!(refused(products).contains("text header only"));
    assert!(
        ivosights
            .send_request(
                " + ",
                &serde_json::from_value(json!({"type": "text", "text": {"body": "hi"}}))
                    .expect("text")
            )
            .is_err()
    );
}

#[test]
fn renders_what_the_document_has_an_endpoint_for() {
    let production = plain().capabilities();
    assert!(production.buttons && production.lists && production.products && production.flows);
    assert!(production.media && production.templates && production.location && production.contacts);
    assert!(!production.cta_url && !production.location_request && !production.reactions);
    let sandbox = ivosights(
        Some("https://waba.ivosights.com/sandbox"),
        json!({"api_key": "k", "webhook_id": "w", "mark_read": true}),
    );
    let capabilities = sandbox.capabilities();
    assert!(!capabilities.products && !capabilities.flows && capabilities.buttons);
    assert_eq!(sandbox.mark_read_request("gBEG"), None);
    assert_eq!(sandbox.pending_request(), None);
    assert_eq!(sandbox.health_request(), None);
    let media = sandbox
        .media_request("f043afd0")
        .expect("the sandbox serves media");
    assert_eq!(
        media.url,
        "https://waba.ivosights.com/sandbox/api/v1/media/f043afd0"
    );
}

#[test]
fn builds_the_other_requests_of_the_document() {
    let plain = plain();
    assert_eq!(plain.mark_read_request("gBEGkYiEB1VXAglK1ZEqA1YKPrU"), None);
    assert_eq!(plain.pending_request(), None);
    let complete = complete();
    let requests = json!({
        "mark_read": complete.mark_read_request("gBEGkYiEB1VXAglK1ZEqA1YKPrU").as_ref().map(shown),
        "pending": complete.pending_request().as_ref().map(shown),
        "media": complete.media_request("f043afd0-f0ae-4b9c-ab3d-696fb4c8cd68").as_ref().map(shown),
        "media_with_a_path_in_its_id": complete.media_request("../webhooks?x").map(|r| r.url),
        "health": complete.health_request().as_ref().map(shown),
    });
    insta::assert_json_snapshot!(requests);
    let file = HttpResponse {
        status: 200,
        headers: [("content-type".to_owned(), "image/jpeg".to_owned())].into(),
        body: b"JPEG".to_vec(),
    };
    assert_eq!(
        complete.media_download(&file),
        Ok(None),
        "the answer is the file"
    );
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

/// Send answers: the document's success and error shapes, its error codes in a send's answer,
/// and what a web server in front of it may say.
fn answers() -> Vec<(&'static str, HttpResponse)> {
    let error = |code: i64, title: &str| {
        json!({"errors": [{"code": code, "title": title,
                           "href": "https://developers.facebook.com/docs/whatsapp/api/errors/"}]})
        .to_string()
    };
    vec![
        (
            "accepted",
            response(
                200,
                None,
                r#"{"messages": [{"id": "gBEGkYiEB1VXAglK1ZEqA1YKPrU"}]}"#,
            ),
        ),
        ("marked read", response(200, None, "null")),
        (
            "outside the window",
            response(
                400,
                None,
                &error(
                    470,
                    "Message failed to send because more than 24 hours have passed since the customer last replied to this number",
                ),
            ),
        ),
        (
            "identity change",
            response(
                400,
                None,
                &error(
                    480,
                    "Failed to send message since we detect an identity change of the contact",
                ),
            ),
        ),
        (
            "outside the window, with details, on a 500",
            response(
                500,
                None,
                r#"{"errors": [{"code": 470, "title": "Re-engagement message", "details": "more than 24 hours"}]}"#,
            ),
        ),
        (
            "code the document does not list, 400",
            response(400, None, &error(1006, "Resource not found")),
        ),
        (
            "code the document does not list, 503",
            response(503, None, &error(1011, "Service not ready")),
        ),
        (
            "validation error",
            response(
                422,
                None,
                r#"{"message": "The wa id field is required.", "errors": {"wa_id": ["The wa id field is required."]}}"#,
            ),
        ),
        (
            "file not found",
            response(404, None, r#"{"message": "File not found"}"#),
        ),
        (
            "wrong api key",
            response(401, None, r#"{"message": "Unauthenticated."}"#),
        ),
        ("too many requests", response(429, Some("30"), "")),
        (
            "proxy page",
            response(502, None, "<html>\n  <body>502 Bad Gateway</body>\n</html>"),
        ),
    ]
}

#[test]
fn classifies_every_send_answer_by_code_then_status() {
    let ivosights = plain();
    let classified: Vec<Value> = answers()
        .into_iter()
        .map(|(case, response)| {
            let answer = answer(&ivosights, &response);
            json!({"case": case, "status": response.status, "answer": answer})
        })
        .collect();
    insta::assert_json_snapshot!(classified);
    let health = ivosights.read_health(&response(401, None, r#"{"message": "Unauthenticated."}"#));
    assert_eq!(health, Err("http 401: Unauthenticated.".to_owned()));
    assert_eq!(ivosights.read_health(&response(200, None, "{}")), Ok(()));
}

fn verify(ivosights: &Ivosights, authorization: Option<&str>) -> Result<(), VerifyError> {
    let headers: Vec<(String, String)> = authorization
        .map(|value| ("authorization".to_owned(), value.to_owned()))
        .into_iter()
        .collect();
    ivosights.verify(&WebhookRequest {
        headers: &headers,
        body: b"{}",
    })
}

#[test]
fn checks_inbound_basic_auth_only_when_configured() {
    // base64("user:password")
    let good = "Basic dXNlcjpwYXNzd29yZA==";
    let complete = complete();
    assert_eq!(verify(&complete, Some(good)), Ok(()));
    let wrong = Err(VerifyError::Mismatch("authorization"));
    // base64("user:passwort")
    assert_eq!(verify(&complete, Some("Basic dXNlcjpwYXNzd29ydA==")), wrong);
    assert_eq!(
        verify(&complete, Some("Bearer dXNlcjpwYXNzd29yZA==")),
        wrong
    );
    let missing = verify(&complete, None);
    assert_eq!(missing, Err(VerifyError::Missing("authorization")));
    assert_eq!(
        missing.expect_err("missing").to_string(),
        "missing authorization"
    );
    assert_eq!(verify(&plain(), None), Ok(()));
    assert_eq!(verify(&plain(), Some("Basic anything")), Ok(()));
}

#[test]
fn names_the_missing_or_misspelt_setting() {
    let cases = [
        json!({}),
        json!({"apikey": "k"}),
        json!({"api_key": "k", "inbound_basic_auth": {"username": "u"}}),
        json!({"api_key": "k", "inbound_basic_auth": {"username": "u", "pasword": "p"}}),
        json!({"api_key": "k", "mark_read": "yes"}),
        json!({"api_key": ""}),
    ];
    let errors: Vec<Value> = cases
        .into_iter()
        .map(|case| {
            let error = Ivosights::from_settings(None, &settings(case.clone()))
                .expect_err("invalid settings");
            json!({"settings": case, "key": error.key, "message": error.to_string()})
        })
        .collect();
    insta::assert_json_snapshot!(errors);
}

#[test]
fn describes_itself_without_its_credentials() {
    let shown = format!("{:?}", complete());
    assert!(
        !shown.contains("ivo-test-key") && !shown.contains("dXNlcjpwYXNzd29yZA"),
        "{shown}"
    );
    assert_eq!(shown.matches("**REDACTED**").count(), 2, "{shown}");
    assert_eq!(complete().name(), "ivosights");
}

fn text_notification(from: &str, id: &str, text: &str) -> String {
    json!({
        "contacts": [{"profile": {"name": "Kerry"}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": "1518694235", "type": "text", "text": {"body": text}}]
    })
    .to_string()
}

#[tokio::test]
async fn a_webhook_runs_the_welcome_flow_and_the_reply_reaches_ivosights_in_its_format() {
    let (base, captured) =
        mock_provider(json!({"messages": [{"id": "gBEGkYiEB1VXAglK1ZEqA1YKPrU"}]})).await;
    let h = harness(&format!(
        "  - id: ivo\n    provider: ivosights\n    base_url: {base}\n    api_key: k\n"
    ));
    let body = text_notification("628123456789", "ABGGFlA5FpafAgo6tHcNmNjXmuSf", "hi");
    let (status, answer) = post(&h.router, "/webhooks/ivo", body.as_bytes(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let requests = sent(&captured, 1).await;
    assert_eq!(requests.len(), 1, "no mark-read without mark_read: true");
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.uri.as_str()),
        ("POST", "/api/v1/messages/send-reply-button-message")
    );
    assert_eq!(request.headers["x-api-key"], "k");
    assert_eq!(request.headers["accept"], "application/json");
    assert_eq!(
        request.json,
        json!({
            "wa_id": "628123456789",
            "header": {"type": "text", "text": "Welcome to Pizza Planet"},
            "body": "Hi Kerry! What would you like to do?",
            "footer": "Reply STOP to opt out",
            "action": {"buttons": [
                {"id": "order_pizza", "title": "Order pizza"},
                {"id": "browse", "title": "Browse"},
                {"id": "more", "title": "More…"},
            ]},
        })
    );
}

#[tokio::test]
async fn a_webhook_without_the_configured_basic_auth_is_refused() {
    let (base, captured) = mock_provider(json!({"messages": [{"id": "gBEG"}]})).await;
    let h = harness(&format!(
        "  - id: ivo\n    provider: ivosights\n    base_url: {base}\n    api_key: k\n    \
         mark_read: true\n    inbound_basic_auth: {{ username: user, password: password }}\n"
    ));
    let body = text_notification("628123456789", "ABGGFlA5FpafAgo6tHcNmNjXmuSf", "hi");
    let (status, _) = post(&h.router, "/webhooks/ivo", body.as_bytes(), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong = [("authorization", "Basic dXNlcjpwYXNzd29ydA==".to_owned())];
    let (status, _) = post(&h.router, "/webhooks/ivo", body.as_bytes(), &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let good = [("authorization", "Basic dXNlcjpwYXNzd29yZA==".to_owned())];
    let (status, answer) = post(&h.router, "/webhooks/ivo", body.as_bytes(), &good).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let requests = sent(&captured, 2).await;
    let calls: Vec<(&str, &str)> = requests
        .iter()
        .map(|request| (request.method.as_str(), request.uri.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("PUT", "/api/v1/messages/ABGGFlA5FpafAgo6tHcNmNjXmuSf/read"),
            ("POST", "/api/v1/messages/send-reply-button-message"),
        ]
    );
}
