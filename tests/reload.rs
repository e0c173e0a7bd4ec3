//! Hot reload (DESIGN §10): edited flows apply while the engine runs — on `POST
//! /api/flows/reload` or found by the watcher — a broken edit keeps the last good flows
//! answering, and conversations in progress continue or, when their step is gone, end and let
//! the message route normally.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

use chatflow::config::Config;
use chatflow::engine::{Engine, SystemClock};
use chatflow::flow;
use chatflow::provider::http::HttpClient;
use chatflow::reload::Reloader;
use chatflow::server::{AdminAuth, AppState, app};
use chatflow::store::{ContactKey, MemoryStore};

const HELLO: &str = r#"flow: hello
triggers: [{keywords: [hi]}]
steps:
  greet:
    send: { text: "Hello!" }
"#;

/// `next` names a step that does not exist (line 5, column 5).
const BROKEN_HELLO: &str = r#"flow: hello
triggers: [{keywords: [hi]}]
steps:
  greet:
    send: { text: "Hello, broken!" }
    next: nowhere
"#;

const FALLBACK: &str = r#"flow: fallback
steps:
  sorry:
    send: { text: "Sorry?" }
"#;

const ORDER: &str = r#"flow: order
triggers: [{keywords: [order]}]
steps:
  name:
    send: { text: "Your name?" }
    ask: { save: name, type: text }
    next: thanks
  thanks:
    send: { text: "Thanks, {{ vars.name }}!" }
"#;

/// ORDER without the step a conversation may be waiting on.
const ORDER_WITHOUT_NAME: &str = r#"flow: order
triggers: [{keywords: [order]}]
steps:
  thanks:
    send: { text: "Thanks!" }
"#;

const MENU: &str = r#"flow: menu
triggers: [{keywords: [menu]}]
steps:
  show:
    send: { text: "Today: pizza." }
"#;

/// Four buttons load, sent as a list, with a warning.
const MENU_WITH_WARNING: &str = r#"flow: menu
triggers: [{keywords: [menu]}]
steps:
  show:
    send:
      buttons:
        body: "Pick one"
        buttons: [{id: a, title: A}, {id: b, title: B}, {id: c, title: C}, {id: d, title: D}]
"#;

/// The watcher's timing in tests, and how long it may take to notice.
const POLL: Duration = Duration::from_millis(50);
const SETTLE: Duration = Duration::from_millis(50);
const NOTICE_WITHIN: Duration = Duration::from_secs(3);

/// A bot running from files in a temp dir, with the reloader serve would build.
struct Bed {
    dir: TempDir,
    engine: Arc<Engine<MemoryStore>>,
    reloader: Arc<Reloader>,
}

impl Bed {
    /// Flows `hello`, `fallback` and `order`, loaded.
    fn new() -> Self {
        Self::with_settle(SETTLE)
    }

    /// The same, with the watcher waiting `settle` for the files to stop changing.
    fn with_settle(settle: Duration) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("flows")).expect("flows dir");
        std::fs::create_dir_all(root.join("scripts")).expect("scripts dir");
        let config = root.join("chatflow.yaml");
        std::fs::write(&config, "flows_dir: flows\nscripts_dir: scripts\n").expect("config");
        let config = Config::load(&config, &|_| None).unwrap_or_else(|d| panic!("{d}"));
        let files = [
            ("hello.yaml", HELLO),
            ("fallback.yaml", FALLBACK),
            ("order.yaml", ORDER),
        ];
        for (name, text) in files {
            std::fs::write(root.join("flows").join(name), text).expect("flow written");
        }
        let reloader = Arc::new(Reloader::new(config.load_options()).with_settle(settle));
        let bot = flow::load(&config.load_options())
            .unwrap_or_else(|d| panic!("{d}"))
            .bot;
        let engine = Arc::new(Engine::new(bot, MemoryStore::new(), Arc::new(SystemClock)));
        Self {
            dir,
            engine,
            reloader,
        }
    }

    fn flow_path(&self, name: &str) -> PathBuf {
        self.dir.path().join("flows").join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.flow_path(name), text).expect("flow written");
    }

    /// The bot's text replies to `text` from contact `from`.
    async fn say(&self, from: &str, text: &str) -> Vec<String> {
        common::say(&self.engine, &ContactKey::new("simulator", from), text).await
    }

    /// Waits until `text` is answered with `expected`, at most `NOTICE_WITHIN`.
    async fn eventually_answers(&self, text: &str, expected: &str) -> bool {
        let deadline = Instant::now() + NOTICE_WITHIN;
        while Instant::now() < deadline {
            if self.say("15550009999", text).await == [expected] {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        false
    }

    /// The HTTP app with hot reload, behind `token` when given.
    fn router(&self, token: Option<&str>) -> axum::Router {
        let state = self.bare_state().with_reloader(Arc::clone(&self.reloader));
        app(
            Arc::new(state),
            AdminAuth {
                token: token.map(chatflow::provider::Secret::new),
            },
        )
    }

    fn bare_state(&self) -> AppState<MemoryStore> {
        let http = HttpClient::new().expect("an HTTP client");
        AppState::new(Arc::clone(&self.engine), vec!["simulator".to_owned()], http)
    }

    /// Runs the watcher until the returned sender is dropped or used.
    fn watch(
        &self,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let watcher = Arc::clone(&self.reloader).watch(Arc::clone(&self.engine), POLL, async {
            let _ = stopped.await;
        });
        (stop, tokio::spawn(watcher))
    }
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

fn reload_request(token: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/api/flows/reload");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).expect("a request")
}

/// What the server logs, for tests that check what an operator reads there.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(|| LogWriter)
        .with_ansi(false)
        .try_init();
}

/// Log lines mentioning `needle` (each test's files have their own temp path).
fn log_lines_with(needle: &str) -> usize {
    let log = LOG.lock().expect("not poisoned");
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

#[tokio::test]
async fn a_good_edit_applies_on_reload() {
    let bed = Bed::new();
    assert_eq!(bed.say("1", "menu").await, ["Sorry?"]);
    bed.write("menu.yaml", MENU);
    let reloaded = bed.reloader.reload(&bed.engine).expect("the edit loads");
    assert_eq!(reloaded.flows, 4);
    assert_eq!(bed.say("1", "menu").await, ["Today: pizza."]);
    assert_eq!(bed.say("1", "hi").await, ["Hello!"], "the other flows too");
}

#[tokio::test]
async fn a_broken_edit_is_rejected_and_the_previous_flows_keep_answering() {
    let bed = Bed::new();
    bed.write("hello.yaml", BROKEN_HELLO);
    bed.write("menu.yaml", MENU);
    let problems = bed
        .reloader
        .reload(&bed.engine)
        .expect_err("the edit is broken")
        .to_string();
    let at = format!("{}:6:11:", bed.flow_path("hello.yaml").display());
    assert!(problems.contains(&at), "{problems}");
    assert!(problems.contains("nowhere"), "{problems}");
    assert_eq!(bed.say("1", "hi").await, ["Hello!"]);
    assert_eq!(
        bed.say("1", "menu").await,
        ["Sorry?"],
        "nothing of a broken reload applies, the good files of it neither"
    );
}

#[tokio::test]
async fn a_conversation_waiting_on_an_ask_continues_after_an_unrelated_edit() {
    let bed = Bed::new();
    assert_eq!(bed.say("1", "order").await, ["Your name?"]);
    bed.write("menu.yaml", MENU);
    bed.reloader.reload(&bed.engine).expect("the edit loads");
    assert_eq!(bed.say("1", "Ann").await, ["Thanks, Ann!"]);
}

#[tokio::test]
async fn a_conversation_whose_step_was_deleted_ends_and_the_message_routes_normally() {
    let bed = Bed::new();
    assert_eq!(bed.say("1", "order").await, ["Your name?"]);
    assert_eq!(bed.say("2", "order").await, ["Your name?"]);
    bed.write("order.yaml", ORDER_WITHOUT_NAME);
    bed.reloader.reload(&bed.engine).expect("the edit loads");
    assert_eq!(
        bed.say("1", "Ann").await,
        ["Sorry?"],
        "no longer an answer: the fallback takes it"
    );
    assert_eq!(
        bed.say("2", "hi").await,
        ["Hello!"],
        "no longer an answer: a trigger takes it"
    );
    assert_eq!(
        bed.say("1", "Ann").await,
        ["Sorry?"],
        "the conversation ended"
    );
}

#[tokio::test]
async fn the_watcher_applies_a_file_written_to_disk_and_stops_on_shutdown() {
    let bed = Bed::new();
    let (stop, watcher) = bed.watch();
    bed.write("menu.yaml", MENU);
    assert!(
        bed.eventually_answers("menu", "Today: pizza.").await,
        "the new flow answers within {NOTICE_WITHIN:?}"
    );
    let _ = stop.send(());
    let stopped = tokio::time::timeout(Duration::from_secs(1), watcher).await;
    assert!(stopped.is_ok(), "the watcher stops when shutdown resolves");
}

#[tokio::test]
async fn the_watcher_rejects_a_broken_file_once_and_applies_its_fix() {
    capture_logs();
    let bed = Bed::new();
    let (_stop, _watcher) = bed.watch();
    bed.write("hello.yaml", BROKEN_HELLO);
    let problem = format!("{}:6:11:", bed.flow_path("hello.yaml").display());
    let deadline = Instant::now() + NOTICE_WITHIN;
    while log_lines_with(&problem) == 0 && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(POLL * 10).await;
    assert_eq!(
        log_lines_with(&problem),
        1,
        "the problem is logged once, not on every poll"
    );
    assert_eq!(bed.say("1", "hi").await, ["Hello!"]);

    bed.write("hello.yaml", &HELLO.replace("Hello!", "Hello again!"));
    assert!(
        bed.eventually_answers("hi", "Hello again!").await,
        "the fixed file applies within {NOTICE_WITHIN:?}"
    );
}

#[tokio::test]
async fn the_watcher_waits_for_an_edit_of_several_files_to_finish() {
    capture_logs();
    let bed = Bed::with_settle(Duration::from_millis(500));
    let (_stop, _watcher) = bed.watch();
    bed.write(
        "hello.yaml",
        &HELLO.replace("Hello!\" }", "Hello!\" }\n    next: menu"),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    bed.write("menu.yaml", MENU);
    assert!(
        bed.eventually_answers("menu", "Today: pizza.").await,
        "both files apply within {NOTICE_WITHIN:?}"
    );
    assert_eq!(bed.say("1", "hi").await, ["Hello!", "Today: pizza."]);
    let hello = bed.flow_path("hello.yaml").display().to_string();
    assert_eq!(
        log_lines_with(&hello),
        0,
        "the half-saved edit (hello going to a menu not yet written) was never loaded"
    );
}

#[tokio::test]
async fn the_reload_route_answers_with_the_flows_and_warnings_or_every_problem() {
    let bed = Bed::new();
    let router = bed.router(None);
    bed.write("menu.yaml", MENU_WITH_WARNING);
    let (status, body) = call(&router, reload_request(None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["flows"], 4);
    let warnings = body["warnings"].as_array().expect("a list");
    assert_eq!(warnings.len(), 1, "{body}");
    let menu = bed.flow_path("menu.yaml").display().to_string();
    let warning = warnings[0].as_str().unwrap_or_default();
    assert!(warning.starts_with(&format!("{menu}:")), "{warning}");

    bed.write("hello.yaml", BROKEN_HELLO);
    let (status, body) = call(&router, reload_request(None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    let hello = bed.flow_path("hello.yaml").display().to_string();
    assert!(error.starts_with(&format!("{hello}:6:11: ")), "{error}");
    assert!(!error.ends_with('\n'), "{error:?}");

    let simulated = Request::post("/api/simulator/messages")
        .body(Body::from(r#"{"from":"1","text":"hi"}"#))
        .expect("a request");
    let (_, body) = call(&router, simulated).await;
    assert_eq!(
        body["replies"][0]["text"]["body"], "Hello!",
        "the old bot still runs"
    );
}

#[tokio::test]
async fn the_reload_route_needs_the_admin_token_when_one_is_set() {
    let bed = Bed::new();
    let router = bed.router(Some("s3cret"));
    let (status, body) = call(&router, reload_request(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = call(&router, reload_request(Some("wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = call(&router, reload_request(Some("s3cret"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_reload_route_says_what_it_needs_when_the_app_has_no_files() {
    let bed = Bed::new();
    let router = app(Arc::new(bed.bare_state()), AdminAuth::default());
    let (status, body) = call(&router, reload_request(None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("chatflow serve"), "{error}");
}
