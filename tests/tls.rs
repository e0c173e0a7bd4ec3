//! HTTPS served directly (`tls:` in chatflow.yaml): a self-signed certificate made in the test,
//! `/healthz` over https with a client that trusts only it, plain http refused on that port, a
//! request in flight answered through a graceful stop, the binary stopped by SIGTERM, and a
//! missing, garbled or mismatched file reported by name with what to do.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

use chatflow::config::{Config, Tls};
use chatflow::engine::{Engine, SystemClock};
use chatflow::provider::http::HttpClient;
use chatflow::server::{AdminAuth, AppState, app, serve, tls};
use chatflow::store::MemoryStore;

/// A self-signed certificate for `localhost`, written as PEM files.
struct SelfSigned {
    dir: tempfile::TempDir,
    pem: String,
}

impl SelfSigned {
    fn new() -> Self {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let dir = tempfile::tempdir().expect("a temp dir");
        let pem = generated.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &pem).expect("cert written");
        let key = generated.signing_key.serialize_pem();
        std::fs::write(dir.path().join("key.pem"), key).expect("key written");
        Self { dir, pem }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tls(&self) -> Tls {
        Tls {
            cert: self.path("cert.pem"),
            key: self.path("key.pem"),
        }
    }

    /// A client that trusts this certificate only, reaching `localhost` at `address`.
    fn client(&self, address: SocketAddr) -> reqwest::Client {
        let certificate = reqwest::Certificate::from_pem(self.pem.as_bytes()).expect("PEM");
        reqwest::Client::builder()
            .tls_certs_only([certificate])
            .resolve("localhost", address)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a client")
    }
}

/// chatflow's router serving the shipped bots.
fn chatflow_app() -> Router {
    let bot = common::shipped_bot();
    let engine = Arc::new(Engine::new(bot, MemoryStore::new(), Arc::new(SystemClock)));
    let http = HttpClient::new().expect("an HTTP client");
    let state = AppState::new(engine, vec!["simulator".to_owned()], http);
    app(Arc::new(state), AdminAuth::default())
}

/// Serves `router` over HTTPS on an ephemeral port, as `chatflow serve` does, until `stop`.
async fn serve_https(
    certificate: &SelfSigned,
    router: Router,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let acceptor = tls::acceptor(&certificate.tls()).expect("the certificate loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("an address");
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let server = tokio::spawn(serve(listener, Some(acceptor), router, shutdown));
    (address, stop, server)
}

#[tokio::test]
async fn healthz_answers_over_https_and_plain_http_is_refused() {
    let certificate = SelfSigned::new();
    let (address, stop, server) = serve_https(&certificate, chatflow_app()).await;

    let url = format!("https://localhost:{}/healthz", address.port());
    let response = certificate
        .client(address)
        .get(&url)
        .send()
        .await
        .expect("an answer over https");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({"status": "ok"}));

    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client")
        .get(format!("http://127.0.0.1:{}/healthz", address.port()))
        .send()
        .await;
    assert!(plain.is_err(), "plain http got an answer: {plain:?}");

    let _ = stop.send(());
    server.await.expect("joined").expect("a clean stop");
}

#[tokio::test]
async fn a_graceful_stop_answers_the_request_in_flight_then_accepts_no_more() {
    let certificate = SelfSigned::new();
    let entered = Arc::new(Notify::new());
    let inside = Arc::clone(&entered);
    let slow = Router::new().route(
        "/slow",
        get(move || async move {
            inside.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        }),
    );
    let (address, stop, server) = serve_https(&certificate, slow).await;
    let client = certificate.client(address);
    let url = format!("https://localhost:{}/slow", address.port());
    let request = tokio::spawn(client.get(&url).send());

    entered.notified().await;
    let _ = stop.send(());
    let response = request.await.expect("joined").expect("answered");
    assert_eq!(response.text().await.expect("a body"), "done");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops")
        .expect("joined")
        .expect("a clean stop");
    let after = certificate.client(address).get(&url).send().await;
    assert!(after.is_err(), "a request after the stop: {after:?}");
}

/// A config in the certificate's directory naming its files relatively, as users write it.
fn config_beside(certificate: &SelfSigned, tls: &str) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let data = certificate.path("data");
    let text = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\nflows_dir: {root}/flows\nscripts_dir: {root}/scripts\ntls: {tls}\n",
        data.display()
    );
    let path = certificate.path("chatflow.yaml");
    std::fs::write(&path, text).expect("config written");
    path
}

#[tokio::test]
async fn the_binary_serves_https_and_stops_cleanly_on_sigterm() {
    let certificate = SelfSigned::new();
    let config = config_beside(&certificate, "{ cert: cert.pem, key: key.pem }");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatflow"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chatflow starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a first line");
    let address = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("https://"))
        .and_then(|address| address.parse::<SocketAddr>().ok());
    let answer = match address {
        Some(address) => {
            let url = format!("https://localhost:{}/healthz", address.port());
            Some(certificate.client(address).get(&url).send().await)
        }
        None => None,
    };

    // Stopped before anything is asserted, so a failure leaves no server behind.
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    let exit = child.wait().expect("the server exits");
    let response = answer
        .unwrap_or_else(|| panic!("no https address in {line:?}"))
        .expect("an answer over https");
    assert_eq!(response.status(), 200);
    assert!(killed.expect("kill runs").success());
    assert!(exit.success(), "a graceful stop exits 0, got {exit}");
}

/// Every problem `Config::load` reports for the config at `path`.
fn problems(path: &Path) -> String {
    match Config::load(path, &|_| None) {
        Ok(_) => String::new(),
        Err(diagnostics) => diagnostics.to_string(),
    }
}

#[test]
fn a_missing_garbled_or_mismatched_file_is_named_with_what_to_do() {
    let certificate = SelfSigned::new();
    std::fs::write(certificate.path("garbled.pem"), "not a certificate\n").expect("written");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a key");
    std::fs::write(
        certificate.path("other-key.pem"),
        other.signing_key.serialize_pem(),
    )
    .expect("written");

    let config = config_beside(&certificate, "{ cert: missing.pem, key: key.pem }");
    let shown = problems(&config);
    let missing = certificate.path("missing.pem");
    assert!(
        shown.contains(&format!(
            "chatflow.yaml:5:14: tls.cert: cannot read {} (fix the path",
            missing.display()
        )),
        "{shown}"
    );

    config_beside(&certificate, "{ cert: garbled.pem, key: key.pem }");
    let shown = problems(&config);
    assert!(shown.contains("tls.cert: "), "{shown}");
    assert!(
        shown.contains("garbled.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the certificate chain"),
        "{shown}"
    );

    config_beside(&certificate, "{ cert: cert.pem, key: cert.pem }");
    let shown = problems(&config);
    assert!(
        shown.contains("cert.pem holds no PEM private key"),
        "{shown}"
    );

    config_beside(&certificate, "{ cert: cert.pem, key: other-key.pem }");
    let shown = problems(&config);
    assert!(
        shown.contains("tls.key: ") && shown.contains("other-key.pem cannot serve the certificate"),
        "{shown}"
    );

    config_beside(&certificate, "{ certs: cert.pem, key: key.pem }");
    let shown = problems(&config);
    assert!(
        shown.contains("unknown key \"certs\" (did you mean \"cert\"?)"),
        "{shown}"
    );

    config_beside(&certificate, "{ cert: cert.pem, key: key.pem }");
    assert_eq!(problems(&config), "");
}

#[test]
fn serve_refuses_to_start_on_a_missing_certificate() {
    let certificate = SelfSigned::new();
    let config = config_beside(&certificate, "{ cert: missing.pem, key: key.pem }");
    let output = Command::new(env!("CARGO_BIN_EXE_chatflow"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("chatflow runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tls.cert: cannot read"), "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

#[test]
fn the_config_schema_describes_tls() {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).expect("JSON");
    assert_eq!(
        schema["properties"]["tls"]["anyOf"][0]["$ref"],
        "#/$defs/Tls"
    );
    let tls = &schema["$defs"]["Tls"];
    assert_eq!(tls["required"], json!(["cert", "key"]), "{tls}");
    assert_eq!(tls["additionalProperties"], false, "{tls}");
}
