//! Logs through the real subscriber set-up (`chatflow::telemetry`), captured in a buffer: JSON
//! lines carry each handled event's channel, contact, flow and step, and no credential from the
//! config gets through, whatever printed it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tracing::subscriber::DefaultGuard;

use chatflow::telemetry::{self, LogFormat, REDACTED, Redacting, Redactor};
use common::harness::{call, harness, mock_provider, post};

const TOKEN: &str = "dw-t0ken-5ecret";
const API_SECRET: &str = "dw-signing-5ecret";

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }

    /// Every line, each of which must be a JSON object.
    fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// Waits (at most 2 s) until the logs hold `needle`; all of them.
    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..100 {
            if self.text().contains(needle) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.text()
    }
}

/// Logs everything this thread does (the test runtime's tasks included) while the guard lives,
/// at the default level, through the subscriber `chatflow serve` uses, redacting `secrets`.
fn capture(format: LogFormat, secrets: &[&str]) -> (Captured, DefaultGuard) {
    let captured = Captured::default();
    let sink = captured.clone();
    let filter = telemetry::filter(&|_| None, "info").expect("the default filter parses");
    let redactor = Redactor::new(secrets.iter().copied()).expect("a redactor");
    let writer = Redacting::new(move || sink.clone(), redactor);
    let subscriber = telemetry::subscriber(format, filter, writer, false);
    (captured, tracing::subscriber::set_default(subscriber))
}

/// A Digiworld channel whose API refuses every send, echoing the URL — token and all.
async fn refusing_digiworld() -> common::harness::Harness {
    let refusal = json!({
        "success": false,
        "message": format!("no session for /api/whatsapp/{TOKEN}/sendMessage"),
    });
    let (base, _) = mock_provider(refusal).await;
    harness(&format!(
        "  - id: dw\n    provider: digiworld\n    base_url: {base}\n    token: {TOKEN}\n    api_secret: {API_SECRET}\n    inbound: {{ from: /from, text: /text }}\n"
    ))
}

#[tokio::test]
async fn a_handled_message_writes_a_json_line_with_its_channel_contact_flow_and_step() {
    let h = refusing_digiworld().await;
    let (captured, _guard) = capture(LogFormat::Json, &h.config.secrets());
    let message = json!({"from": "15550001111", "name": "Ann", "text": "pizza"});
    let (status, answer) = call(&h.router, "POST", "/api/simulator/messages", Some(&message)).await;
    assert!(status.is_success(), "{answer}");

    let lines = captured.json_lines();
    let event = lines
        .iter()
        .find(|line| line["span"]["name"] == "event")
        .unwrap_or_else(|| panic!("no line of the event's span in {lines:#?}"));
    let span = &event["span"];
    assert_eq!(span["channel"], "simulator", "{event}");
    assert_eq!(span["contact"], "15550001111", "{event}");
    assert_eq!(span["flow"], "pizza", "{event}");
    assert_eq!(span["step"], "size", "{event}");
    assert_eq!(event["level"], "INFO", "{event}");
}

#[tokio::test]
async fn a_provider_error_echoing_the_token_is_logged_redacted_in_the_send_span() {
    let h = refusing_digiworld().await;
    let (captured, _guard) = capture(LogFormat::Human, &h.config.secrets());
    let body = json!({"from": "963912345678", "text": "pizza"}).to_string();
    let (status, answer) = post(&h.router, "/webhooks/dw", body.as_bytes(), &[]).await;
    assert!(status.is_success(), "{answer}");

    let logs = captured.wait_for("Send dead-lettered.").await;
    assert!(logs.contains("Send failed."), "{logs}");
    let failed = logs
        .lines()
        .find(|line| line.contains("Send failed."))
        .unwrap_or_default();
    assert!(
        failed.contains("send{channel=dw contact=963912345678 job="),
        "{failed}"
    );
    assert!(
        failed.contains(&format!("/api/whatsapp/{REDACTED}/sendMessage")),
        "{failed}"
    );
    assert!(!logs.contains(TOKEN), "{logs}");
    assert!(
        logs.contains("event{channel=dw contact=963912345678 flow=pizza step=size}"),
        "{logs}"
    );
}

#[test]
fn a_secret_logged_directly_comes_out_redacted_and_the_config_never_shows_one() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("chatflow.yaml");
    std::fs::write(&path, "admin_token: admin-5ecret-token\n").expect("config written");
    let config = chatflow::config::Config::load(&path, &|_| None).unwrap_or_else(|d| panic!("{d}"));
    let mut secrets = config.secrets();
    secrets.push(TOKEN);
    let (captured, _guard) = capture(LogFormat::Json, &secrets);

    let url = format!("https://api.example.com/api/whatsapp/{TOKEN}/sendMessage");
    tracing::warn!(%url, ?config, "request failed");

    let lines = captured.json_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(
        lines[0]["url"],
        format!("https://api.example.com/api/whatsapp/{REDACTED}/sendMessage")
    );
    let text = captured.text();
    assert!(
        !text.contains(TOKEN) && !text.contains("admin-5ecret-token"),
        "{text}"
    );
}
