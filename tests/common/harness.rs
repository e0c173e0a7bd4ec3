//! End-to-end plumbing: a provider API mocked on 127.0.0.1 that records what it receives, and
//! chatflow's router configured with one channel pointing at it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, Uri};
use axum::routing::any;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use chatflow::config::Config;
use chatflow::engine::{Engine, SystemClock};
use chatflow::flow;
use chatflow::outbox::{Backoff, OutboxSettings};
use chatflow::provider::Registry;
use chatflow::provider::http::HttpClient;
use chatflow::server::{AdminAuth, AppState, app};
use chatflow::store::MemoryStore;

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/sendMessage?token=t`.
    pub uri: String,
    /// Headers as sent.
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
}

/// What the mock provider received, in order.
pub type Captured = Arc<Mutex<Vec<Received>>>;

/// A provider API that answers every request with `response` and records it.
pub async fn mock_provider(response: Value) -> (String, Captured) {
    let captured: Captured = Arc::default();
    let seen = Arc::clone(&captured);
    let handler = move |method: axum::http::Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let seen = Arc::clone(&seen);
        let response = response.clone();
        async move {
            let received = Received {
                method: method.to_string(),
                uri: uri.to_string(),
                headers,
                json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                text: String::from_utf8_lossy(&body).into_owned(),
            };
            seen.lock().expect("not poisoned").push(received);
            axum::Json(response)
        }
    };
    let router = axum::Router::new().fallback(any(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}"), captured)
}

/// chatflow serving the shipped bots with the channels given as YAML list items.
pub struct Harness {
    /// The HTTP app.
    pub router: axum::Router,
    /// The engine behind it.
    pub engine: Arc<Engine<MemoryStore>>,
    /// The config it was built from.
    pub config: Config,
}

/// Builds the app serving the shipped bots with `channels` (YAML list items under `channels:`).
pub fn harness(channels: &str) -> Harness {
    let root = env!("CARGO_MANIFEST_DIR");
    harness_with(&format!("{root}/flows"), channels)
}

/// Builds the app serving the flows in `flows_dir` with `channels`.
pub fn harness_with(flows_dir: &str, channels: &str) -> Harness {
    let root = env!("CARGO_MANIFEST_DIR");
    let text =
        format!("flows_dir: {flows_dir}\nscripts_dir: {root}/scripts\nchannels:\n{channels}");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("chatflow.yaml");
    std::fs::write(&path, text).expect("config written");
    let config = Config::load(&path, &|_| None).unwrap_or_else(|d| panic!("{d}"));
    let bot = flow::load(&config.load_options())
        .unwrap_or_else(|d| panic!("{d}"))
        .bot;
    let registry = Arc::new(Registry::from_config(&config).unwrap_or_else(|e| panic!("{e:?}")));
    let http = HttpClient::with_timeout(Duration::from_millis(500)).expect("a client");
    let engine = Engine::new(bot, MemoryStore::new(), Arc::new(SystemClock)).with_channels(
        Arc::clone(&registry),
        http.clone(),
        fast_retries(),
    );
    let engine = Arc::new(engine);
    let state = AppState::new(Arc::clone(&engine), registry.simulator_channels(), http);
    Harness {
        router: app(Arc::new(state), AdminAuth::default()),
        engine,
        config,
    }
}

/// Retries a test can wait for: 4 attempts, 20 ms doubling to 100 ms, `Retry-After` obeyed
/// up to 2 s.
pub fn fast_retries() -> OutboxSettings {
    OutboxSettings {
        max_attempts: 4,
        backoff: Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        },
        max_retry_after: Duration::from_secs(2),
    }
}

/// Posts `body` to `path` with `headers`; the status and the JSON answer.
pub async fn post(
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
    answer(router, request).await
}

/// Waits (at most 2 s) until the mock has received `count` requests; returns them all.
pub async fn sent(captured: &Captured, count: usize) -> Vec<Received> {
    for _ in 0..100 {
        if captured.lock().expect("not poisoned").len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    captured.lock().expect("not poisoned").clone()
}

/// Calls `method path` with an optional JSON body; the status and the JSON answer.
pub async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(body)
        .expect("a request");
    answer(router, request).await
}

/// Runs `request` through the app; the status and the JSON answer (`Null` when not JSON).
async fn answer(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
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
