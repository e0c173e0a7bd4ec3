//! The HTTP API through `app()` without a socket: the simulator, contact views, health, the
//! admin auth rule, and bad input answered with a JSON error and no panic.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use chatflow::engine::{Engine, SystemClock};
use chatflow::provider::http::HttpClient;
use chatflow::server::{AdminAuth, AppState, app};
use chatflow::store::MemoryStore;

fn router(token: Option<&str>) -> axum::Router {
    let bot = common::shipped_bot();
    let engine = Arc::new(Engine::new(bot, MemoryStore::new(), Arc::new(SystemClock)));
    let http = HttpClient::new().expect("an HTTP client");
    let state = Arc::new(AppState::new(engine, vec!["simulator".to_owned()], http));
    app(
        state,
        AdminAuth {
            token: token.map(chatflow::provider::Secret::new),
        },
    )
}

async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    (status, body)
}

fn post(body: &str) -> Request<Body> {
    Request::post("/api/simulator/messages")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .expect("a request")
}

#[tokio::test]
async fn the_simulator_answers_with_meta_shaped_replies_whatever_the_content_type() {
    let router = router(None);
    let (status, body) = call(
        &router,
        post(r#"{"from":"15550001111","name":"Ann","text":"hi"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reply = &body["replies"][0];
    assert_eq!(reply["type"], "interactive");
    assert_eq!(reply["interactive"]["type"], "button");
    assert_eq!(
        reply["interactive"]["body"]["text"],
        "Hi Ann! What would you like to do?"
    );
    assert!(
        reply.get("messaging_product").is_none() && reply.get("to").is_none(),
        "{reply}"
    );
}

#[tokio::test]
async fn a_dialogue_goes_through_buttons_an_invalid_answer_and_a_typed_number() {
    let router = router(None);
    call(&router, post(r#"{"from":"1","name":"Ann","text":"hi"}"#)).await;
    let (_, body) = call(&router, post(r#"{"from":"1","button":"order_pizza"}"#)).await;
    assert_eq!(
        body["replies"][0]["interactive"]["body"]["text"],
        "Which size, Ann?"
    );
    let (_, body) = call(&router, post(r#"{"from":"1","text":"large"}"#)).await;
    assert_eq!(
        body["replies"][0]["text"]["body"],
        "How many large pizzas would you like?"
    );
    let (_, body) = call(&router, post(r#"{"from":"1","text":"a few"}"#)).await;
    assert_eq!(
        body["replies"][0]["text"]["body"],
        "Please type a whole number, like 2."
    );
    let (_, body) = call(&router, post(r#"{"from":"1","text":"3"}"#)).await;
    assert_eq!(
        body["replies"][0]["interactive"]["type"],
        "location_request_message"
    );

    let (status, contact) = call(
        &router,
        Request::get("/api/contacts/simulator/1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(contact["vars"]["qty"], json!(3));
    assert_eq!(contact["conversation"]["flow"], "pizza");
    assert_eq!(
        contact["transcript"].as_array().map(Vec::len),
        Some(10),
        "{contact}"
    );
    assert_eq!(contact["transcript"][0]["direction"], "inbound");
}

#[tokio::test]
async fn bad_input_gets_a_json_error() {
    let router = router(None);
    for (body, expected) in [
        ("not json", "invalid JSON body"),
        (r#"{"text":"hi"}"#, "`from` is required"),
        (
            r#"{"from":"1","dance":"x"}"#,
            "exactly one of text, button, list, location or message",
        ),
        (r#"{"from":"1","text":"a","button":"b"}"#, "exactly one of"),
        (r#"{"from":"1","message":"hi"}"#, "invalid message object"),
        (
            r#"{"from":"1","message":{"type":7}}"#,
            "invalid message object",
        ),
    ] {
        let (status, answer) = call(&router, post(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains(expected)),
            "{body}: {answer}"
        );
    }
    let (status, answer) = call(
        &router,
        post(r#"{"channel":"main","from":"1","text":"hi"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, _) = call(
        &router,
        Request::get("/api/contacts/simulator/nobody")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn with_an_admin_token_every_api_route_needs_it_and_health_does_not() {
    let router = router(Some("s3cret"));
    let (status, body) = call(&router, post(r#"{"from":"1","text":"hi"}"#)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("Bearer")),
        "{body}"
    );
    let mut wrong = post(r#"{"from":"1","text":"hi"}"#);
    wrong
        .headers_mut()
        .insert(header::AUTHORIZATION, "Bearer s3cres".parse().unwrap());
    assert_eq!(call(&router, wrong).await.0, StatusCode::UNAUTHORIZED);
    let mut right = post(r#"{"from":"1","text":"hi"}"#);
    right
        .headers_mut()
        .insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
    assert_eq!(call(&router, right).await.0, StatusCode::OK);
    let contact = Request::get("/api/contacts/simulator/1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&router, contact).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &router,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn many_contacts_in_parallel_each_get_their_replies_in_order() {
    let router = router(None);
    let mut tasks = Vec::new();
    for contact in 0..40 {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            let from = format!("1555000{contact:04}");
            let mut seen = Vec::new();
            for text in ["hi", "1", "large", "2"] {
                let body = json!({"from": from, "name": "Ann", "text": text}).to_string();
                let (_, answer) = call(&router, post(&body)).await;
                seen.push(answer["replies"][0].clone());
            }
            seen
        }));
    }
    for task in tasks {
        let seen = task.await.expect("the task ends");
        assert_eq!(seen[0]["interactive"]["type"], "button");
        assert_eq!(seen[1]["interactive"]["body"]["text"], "Which size, Ann?");
        assert_eq!(
            seen[2]["text"]["body"],
            "How many large pizzas would you like?"
        );
        assert_eq!(seen[3]["interactive"]["type"], "location_request_message");
    }
}
