//! A bot written once runs anywhere: signed Meta webhooks in, replies out at a mock Graph API;
//! the same menu bot on a text-only generic channel with numbered menus. The providers' APIs are
//! local axum servers on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::any;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;

use chatflow::config::Config;
use chatflow::engine::{Engine, SystemClock};
use chatflow::flow;
use chatflow::outbox::Outbox;
use chatflow::provider::Registry;
use chatflow::provider::http::HttpClient;
use chatflow::server::{AdminAuth, AppState, app};
use chatflow::store::{ContactKey, MemoryStore, Store};

/// What the mock provider received: path, headers, JSON body.
type Captured = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

/// A provider API on 127.0.0.1 that accepts everything and remembers it.
async fn mock_provider() -> (String, Captured) {
    let captured: Captured = Arc::default();
    let seen = Arc::clone(&captured);
    let router = axum::Router::new().fallback(any(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let seen = Arc::clone(&seen);
        async move {
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut seen = seen.lock().expect("not poisoned");
            seen.push((uri.path().to_owned(), headers, body));
            axum::Json(json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.OUT{}", seen.len())}]}))
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}"), captured)
}

const SECRET: &str = "app_secret";

/// One provider channel per harness: the shipped bots have a schedule whose audience names no
/// channel, which `validate` rightly refuses when several are configured.
#[derive(Clone, Copy)]
enum Provider {
    Meta,
    Generic,
}

fn config(base: &str, provider: Provider) -> Config {
    let root = env!("CARGO_MANIFEST_DIR");
    let meta = format!(
        r#"
  - id: main
    provider: meta
    base_url: {base}/v21.0
    phone_number_id: "106540352242922"
    access_token: meta-token
    app_secret: {SECRET}
    verify_token: verify-me
"#
    );
    let generic = format!(
        r#"
  - id: plain
    provider: generic
    inbound: {{ from: /sender, name: /name, id: /id, text: /text }}
    inbound_secret_header: {{ name: X-Webhook-Secret, value: s3cret }}
    outbound:
      url: "{base}/generic/send"
      headers: {{ Authorization: "Key generic-key" }}
      body: {{ phone: "{{{{to}}}}", message: "{{{{text}}}}" }}
"#
    );
    let channels = match provider {
        Provider::Meta => meta,
        Provider::Generic => generic,
    };
    let text = format!("flows_dir: {root}/flows\nscripts_dir: {root}/scripts\nchannels:{channels}");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("chatflow.yaml");
    std::fs::write(&path, text).expect("config written");
    Config::load(&path, &|_| None).unwrap_or_else(|d| panic!("{d}"))
}

struct Harness {
    router: axum::Router,
    engine: Arc<Engine<MemoryStore>>,
    captured: Captured,
}

async fn harness(provider: Provider) -> Harness {
    let (base, captured) = mock_provider().await;
    harness_at(&base, captured, provider)
}

fn harness_at(base: &str, captured: Captured, provider: Provider) -> Harness {
    let config = config(base, provider);
    let bot = flow::load(&config.load_options())
        .unwrap_or_else(|d| panic!("{d}"))
        .bot;
    let registry = Arc::new(Registry::from_config(&config).unwrap_or_else(|e| panic!("{e:?}")));
    let http = HttpClient::new().expect("a client");
    let engine = Engine::new(bot, MemoryStore::new(), Arc::new(SystemClock))
        .with_channels(Arc::clone(&registry), Outbox::new(http.clone()));
    let engine = Arc::new(engine);
    let state = AppState::new(Arc::clone(&engine), registry.simulator_channels(), http);
    Harness {
        router: app(Arc::new(state), AdminAuth::default()),
        engine,
        captured,
    }
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

async fn post(
    router: &axum::Router,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (StatusCode, Value) {
    let mut request = Request::post(path)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    for (name, value) in headers {
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        request
            .headers_mut()
            .insert(name, value.parse().expect("a header value"));
    }
    let response = router.clone().oneshot(request).await.expect("an answer");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Waits (bounded) until the mock has seen `count` requests.
async fn sent(captured: &Captured, count: usize) -> Vec<(String, HeaderMap, Value)> {
    for _ in 0..100 {
        if captured.lock().expect("not poisoned").len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    captured.lock().expect("not poisoned").clone()
}

#[tokio::test]
async fn a_signed_meta_webhook_runs_the_flow_and_the_reply_reaches_the_graph_api() {
    let h = harness(Provider::Meta).await;
    let body = meta_text("16505551234", "wamid.IN1", "hi").to_string();
    let (status, answer) = post(
        &h.router,
        "/webhooks/main",
        body.as_bytes(),
        &[("x-hub-signature-256", sign(body.as_bytes()))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let requests = sent(&h.captured, 1).await;
    let (path, headers, body) = &requests[0];
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
    let h = harness(Provider::Meta).await;
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
    let h = harness(Provider::Meta).await;
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
    let h = harness(Provider::Meta).await;
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
    let h = harness(Provider::Generic).await;
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
    let requests = sent(&h.captured, 1).await;
    let (path, headers, body) = &requests[0];
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
    let requests = sent(&h.captured, 2).await;
    let sizes = requests[1].2["message"].as_str().expect("a text menu");
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
    let requests = sent(&h.captured, 3).await;
    assert_eq!(
        requests[2].2["message"],
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
    let h = harness_at(&base, Captured::default(), Provider::Meta);
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
