//! The real binary, restarted mid-dialogue — gracefully (SIGTERM) and by `kill -9` — carries on
//! where the conversation was, because every turn is committed durably before it is answered.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// A running `chatflow serve` on an ephemeral port.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatflow"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chatflow starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("a first line");
        let base = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Self { child, base }
    }

    async fn say(&self, body: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/api/simulator/messages", self.base))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("a JSON answer")
    }

    fn signal(mut self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("the server exits");
        if signal == "-TERM" {
            assert!(exit.success(), "a graceful stop exits 0, got {exit}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path) -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\nflows_dir: {root}/flows\nscripts_dir: {root}/scripts\n",
        dir.join("data").display()
    );
    let path = dir.join("chatflow.yaml");
    std::fs::write(&path, text).expect("config written");
    path
}

fn text_of(answer: &Value) -> &str {
    answer["replies"][0]["text"]["body"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_dialogue_survives_sigterm_and_kill_9() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = config(dir.path());
    let from = "15550009999";

    let server = Server::start(&config);
    let answer = server
        .say(json!({"from": from, "name": "Ann", "text": "pizza"}))
        .await;
    assert_eq!(
        answer["replies"][0]["interactive"]["body"]["text"],
        "Which size, Ann?"
    );
    server.signal("-TERM");

    let server = Server::start(&config);
    let answer = server.say(json!({"from": from, "button": "large"})).await;
    assert_eq!(text_of(&answer), "How many large pizzas would you like?");
    server.signal("-KILL");

    let server = Server::start(&config);
    let answer = server.say(json!({"from": from, "text": "2"})).await;
    assert_eq!(
        answer["replies"][0]["interactive"]["type"],
        "location_request_message"
    );
    let contact: Value = reqwest::get(format!("{}/api/contacts/simulator/{from}", server.base))
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(contact["vars"]["size"], "large");
    assert_eq!(contact["vars"]["qty"], json!(2));
    server.signal("-TERM");
}

#[test]
fn serve_refuses_to_start_on_broken_flows_and_names_the_problem() {
    let output = Command::new(env!("CARGO_BIN_EXE_chatflow"))
        .args(["serve", "--config", "tests/broken/chatflow.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("chatflow runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tests/broken/flows/order.yaml:14:11: \"adress\""),
        "{stderr}"
    );
    assert!(stderr.contains("chatflow did not start"), "{stderr}");
}

#[test]
fn serve_refuses_a_public_address_without_an_admin_token() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("chatflow.yaml");
    std::fs::write(&path, "listen: 0.0.0.0:0\nflows_dir: flows\n").expect("config written");
    let output = Command::new(env!("CARGO_BIN_EXE_chatflow"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("chatflow runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without admin_token"), "{stderr}");
}
