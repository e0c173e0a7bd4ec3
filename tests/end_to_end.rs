//! A bot written once runs anywhere: signed Meta webhooks in, replies out at a mock Graph API;
//! the same menu bot on a text-only generic channel with numbered menus. The providers' APIs are
//! local axum servers on 127.0.0.1.

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::IntoResponse;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;

use chatflow::store::{ContactKey, Store};
use common::harness::{Captured, Harness, harness, mock_provider, post, sent};

const SECRET: &str = "app_secret";

fn meta_channel(base: &str) -> String {
    format!(
        "  - id: main\n    provider: meta\n    base_url: {base}/v21.0\n    phone_number_id: \"106540352242922\"\n    access_token: meta-token\n    app_secret: {SECRET}\n    verify_token: verify-me\n"
    )
}

fn generic_channel(base: &str) -> String {
    format!(
        r#"  - id: plain
    provider: generic
    inbound: {{ from: /sender, name: /name, id: /id, text: /text }}
    inbound_secret_header: {{ name: X-Webhook-Secret, value: s3cret }}
    outbound:
      url: "{base}/generic/send"
      headers: {{ Authorization: "Key generic-key" }}
      body: {{ phone: "{{{{to}}}}", message: "{{{{text}}}}" }}
"#
    )
}

/// A mock Graph API and chatflow with one Meta channel pointing at it (one provider channel per
/// harness: the shipped bots have a schedule whose audience names no channel, which validation
/// rightly refuses when several are configured).
async fn meta() -> (Harness, Captured) {
    let (base, captured) =
        mock_provider(json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT1"}]}))
            .await;
    (harness(&meta_channel(&base)), captured)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn meta_text(from: &str, id: &str, text: &str) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Ann"}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": "1749416383", "type": "text", "text": {"body": text}}]
    }}]}]})
}

#[tokio::test]
async fn a_signed_meta_webhook_runs_the_flow_and_the_reply_reaches_the_graph_api() {
    let (h, captured) = meta().await;
    let body = meta_text("16505551234", "wamid.IN1", "hi").to_string();
    let (status, answer) = post(
        &h.router,
        "/webhooks/main",
        body.as_bytes(),
        &[("x-hub-signature-256", sign(body.as_bytes()))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let requests = sent(&captured, 1).await;
    let (path, headers, body) = (&requests[0].uri, &requests[0].headers, &requests[0].json);
    assert_eq!(path, "/v21.0/106540352242922/messages");
    assert_eq!(headers["authorization"], "Bearer meta-token");
    assert_eq!(body["to"], "+16505551234");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(
        body["interactive"]["body"]["text"],
        "Hi Ann! What would you like to do?"
    );
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_refused_and_nothing_is_stored() {
    let (h, _) = meta().await;
    let body = meta_text("16505551234", "wamid.IN2", "hi").to_string();
    let (status, _) = post(
        &h.router,
        "/webhooks/main",
        body.as_bytes(),
        &[("x-hub-signature-256", sign(b"other"))],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(&h.router, "/webhooks/main", body.as_bytes(), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let contact = ContactKey::new("main", "16505551234");
    assert_eq!(
        h.engine
            .store()
            .load_contact(&contact)
            .await
            .expect("readable"),
        None
    );
}

#[tokio::test]
async fn webhook_bad_input_gets_the_documented_answers() {
    let (h, _) = meta().await;
    let (status, _) = post(
        &h.router,
        "/webhooks/main",
        b"not json",
        &[("x-hub-signature-256", sign(b"not json"))],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let odd = br#"{"hello": "world"}"#;
    let (status, _) = post(
        &h.router,
        "/webhooks/main",
        odd,
        &[("x-hub-signature-256", sign(odd))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let kept = h.engine.store().unrecognized(10).await.expect("readable");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].payload, json!({"hello": "world"}));
    let huge = vec![b' '; 5 * 1024 * 1024];
    let (status, _) = post(&h.router, "/webhooks/main", &huge, &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = post(&h.router, "/webhooks/nowhere", b"{}", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_meta_handshake_answers_the_challenge_only_with_the_right_token() {
    let (h, _) = meta().await;
    let get = |token: &str| {
        Request::get(format!(
            "/webhooks/main?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}"
        ))
        .body(Body::empty())
        .expect("a request")
    };
    let response = h
        .router
        .clone()
        .oneshot(get("verify-me"))
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    assert_eq!(&body[..], b"1158201444");
    let response = h
        .router
        .clone()
        .oneshot(get("wrong"))
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_menu_bot_works_unchanged_on_a_text_only_channel_with_numbered_menus() {
    let (base, captured) = mock_provider(json!({"ok": true})).await;
    let h = harness(&generic_channel(&base));
    let secret = [("x-webhook-secret", "s3cret".to_owned())];
    let message = |id: &str, text: &str| {
        json!({"sender": "+62 812-3456-7890", "name": "Budi", "id": id, "text": text}).to_string()
    };

    let (status, _) = post(
        &h.router,
        "/webhooks/plain",
        message("g1", "hi").as_bytes(),
        &[],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the secret header is required"
    );

    let (status, answer) = post(
        &h.router,
        "/webhooks/plain",
        message("g1", "hi").as_bytes(),
        &secret,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let requests = sent(&captured, 1).await;
    let (path, headers, body) = (&requests[0].uri, &requests[0].headers, &requests[0].json);
    assert_eq!(path, "/generic/send");
    assert_eq!(headers["authorization"], "Key generic-key");
    assert_eq!(body["phone"], "6281234567890");
    let menu = body["message"].as_str().expect("a text menu");
    assert!(
        menu.contains("Hi Budi! What would you like to do?"),
        "{menu}"
    );
    assert!(
        menu.contains("1. Order pizza") && menu.contains("3. More…"),
        "{menu}"
    );

    // "1" picks the first option as if the button had been tapped.
    post(
        &h.router,
        "/webhooks/plain",
        message("g2", "1").as_bytes(),
        &secret,
    )
    .await;
    let requests = sent(&captured, 2).await;
    let sizes = requests[1].json["message"].as_str().expect("a text menu");
    assert!(
        sizes.contains("Which size, Budi?") && sizes.contains("2. Medium"),
        "{sizes}"
    );

    // The option's title works too.
    post(
        &h.router,
        "/webhooks/plain",
        message("g3", "large").as_bytes(),
        &secret,
    )
    .await;
    let requests = sent(&captured, 3).await;
    assert_eq!(
        requests[2].json["message"],
        "How many large pizzas would you like?"
    );
}

/// A Graph API that serves one media file: the lookup gives a URL, the URL needs the token.
async fn media_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let file_url = format!("{base}/files/photo.jpg");
    let lookup = move |headers: HeaderMap| {
        let file_url = file_url.clone();
        async move {
            assert_eq!(headers["authorization"], "Bearer meta-token");
            axum::Json(
                json!({"url": file_url, "mime_type": "image/jpeg", "id": "1003383421387256"}),
            )
        }
    };
    let file = |headers: HeaderMap| async move {
        if headers
            .get("authorization")
            .is_some_and(|v| v == "Bearer meta-token")
        {
            ([("content-type", "image/jpeg")], b"JPEG BYTES".to_vec()).into_response()
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        }
    };
    let router = axum::Router::new()
        .route("/v21.0/1003383421387256", axum::routing::get(lookup))
        .route("/files/photo.jpg", axum::routing::get(file));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test]
async fn a_customers_photo_is_fetched_from_the_provider_through_our_media_route() {
    let base = media_provider().await;
    let h = harness(&meta_channel(&base));
    let request = Request::get("/api/media/main/1003383421387256")
        .body(Body::empty())
        .expect("a request");
    let response = h.router.clone().oneshot(request).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    assert_eq!(&body[..], b"JPEG BYTES");
    let simulator = Request::get("/api/media/simulator/1")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(
        h.router
            .clone()
            .oneshot(simulator)
            .await
            .expect("an answer")
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_redelivered_webhook_gets_200_and_no_second_reply() {
    let (h, captured) = meta().await;
    let body = meta_text("16505551234", "wamid.DUP", "hi").to_string();
    let signature = [("x-hub-signature-256", sign(body.as_bytes()))];
    let (first, answer) = post(&h.router, "/webhooks/main", body.as_bytes(), &signature).await;
    assert_eq!(
        (first, answer["accepted"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let again = post(&h.router, "/webhooks/main", body.as_bytes(), &signature).await;
    assert_eq!(again.0, StatusCode::OK, "a redelivery is acknowledged");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sent(&captured, 1).await.len(), 1, "one reply only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_webhook_ten_times_at_once_yields_one_reply() {
    let (h, captured) = meta().await;
    let body = meta_text("16505559876", "wamid.TENFOLD", "hi").to_string();
    let signature = sign(body.as_bytes());
    let posts: Vec<_> = (0..10)
        .map(|_| {
            let (router, body, signature) = (h.router.clone(), body.clone(), signature.clone());
            tokio::spawn(async move {
                post(
                    &router,
                    "/webhooks/main",
                    body.as_bytes(),
                    &[("x-hub-signature-256", signature)],
                )
                .await
            })
        })
        .collect();
    for post in posts {
        assert_eq!(post.await.expect("the task ends").0, StatusCode::OK);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sent(&captured, 1).await.len(), 1, "one reply only");
}
