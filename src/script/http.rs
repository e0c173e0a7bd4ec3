//! `http_get(url[, headers])` and `http_post(url, body[, headers])` for scripts: a business API
//! lookup in the middle of a flow, allowed only to the hosts in `script_http_allow`, with a
//! timeout and a cap on the response size.
//!
//! Scripts run synchronously inside a turn, so a call blocks the script until the answer. The
//! request itself runs on a small runtime of its own (one thread, started with the first call),
//! which works whether the turn runs on a tokio worker or not; the engine runs turns of bots
//! that use HTTP where blocking is allowed.

use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde_json::Value;

use super::sandbox::ScriptSettings;

/// A script's request, answered on `reply`.
struct Call {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    reply: mpsc::Sender<Result<Map, String>>,
}

/// The allowlist, limits and the runtime thread requests go through.
struct ScriptHttp {
    allow: Vec<String>,
    timeout: Duration,
    max_body: usize,
    calls: OnceLock<Result<tokio::sync::mpsc::UnboundedSender<Call>, String>>,
}

/// Registers the HTTP functions with the settings' allowlist and limits.
pub fn register(engine: &mut Engine, settings: &ScriptSettings) {
    let http = Arc::new(ScriptHttp {
        allow: settings
            .http_allow
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .collect(),
        timeout: settings.limits.http_timeout.0,
        max_body: settings.limits.http_max_body,
        calls: OnceLock::new(),
    });
    let get = Arc::clone(&http);
    engine.register_fn("http_get", move |url: &str| {
        get.call(reqwest::Method::GET, url, Map::new(), None)
    });
    let get = Arc::clone(&http);
    engine.register_fn("http_get", move |url: &str, headers: Map| {
        get.call(reqwest::Method::GET, url, headers, None)
    });
    let post = Arc::clone(&http);
    engine.register_fn("http_post", move |url: &str, body: Dynamic| {
        post.call(reqwest::Method::POST, url, Map::new(), Some(body))
    });
    engine.register_fn(
        "http_post",
        move |url: &str, body: Dynamic, headers: Map| {
            http.call(reqwest::Method::POST, url, headers, Some(body))
        },
    );
}

impl ScriptHttp {
    /// Sends one request and waits for `{status, body, json}`.
    fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: Map,
        body: Option<Dynamic>,
    ) -> Result<Map, Box<EvalAltResult>> {
        let name = if method == reqwest::Method::GET {
            "http_get"
        } else {
            "http_post"
        };
        let url = self.allowed(name, url)?;
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let body = body.map(|body| super::from_dynamic(&body));
        let (reply, answer) = mpsc::channel();
        let call = Call {
            method,
            url,
            headers,
            body,
            reply,
        };
        self.sender()?
            .send(call)
            .map_err(|_| format!("{name}: the HTTP runtime stopped"))?;
        match answer.recv_timeout(self.timeout + Duration::from_secs(1)) {
            Ok(result) => result.map_err(|error| format!("{name}: {error}").into()),
            Err(_) => Err(format!("{name}: no answer within {:?}", self.timeout).into()),
        }
    }

    /// The URL, if it is http(s) to an allowed host.
    fn allowed(&self, name: &str, url: &str) -> Result<reqwest::Url, Box<EvalAltResult>> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|error| format!("{name}: \"{url}\" is not a URL: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{name}: only http and https URLs, not \"{url}\"").into());
        }
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.allow.contains(&host) {
            return Err(format!(
                "{name}: host \"{host}\" is not in script_http_allow (chatflow.yaml); add it there to let scripts call it"
            )
            .into());
        }
        Ok(parsed)
    }

    /// The queue of the HTTP thread, started on first use.
    fn sender(&self) -> Result<&tokio::sync::mpsc::UnboundedSender<Call>, Box<EvalAltResult>> {
        let started = self
            .calls
            .get_or_init(|| start(self.timeout, self.max_body));
        started.as_ref().map_err(|error| error.clone().into())
    }
}

/// Starts the thread that runs script requests, each on its own task.
fn start(
    timeout: Duration,
    max_body: usize,
) -> Result<tokio::sync::mpsc::UnboundedSender<Call>, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("chatflow-script/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| format!("cannot start the HTTP client: {error}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the HTTP runtime: {error}"))?;
    let (sender, mut calls) = tokio::sync::mpsc::unbounded_channel::<Call>();
    std::thread::Builder::new()
        .name("chatflow-script-http".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                while let Some(call) = calls.recv().await {
                    let client = client.clone();
                    tokio::spawn(async move {
                        let reply = call.reply.clone();
                        let _ = reply.send(execute(&client, call, max_body).await);
                    });
                }
            });
        })
        .map_err(|error| format!("cannot start the HTTP thread: {error}"))?;
    Ok(sender)
}

/// Runs one request; the answer as `{status, body, json}` (`json` is `()` unless the body is
/// JSON).
async fn execute(client: &reqwest::Client, call: Call, max_body: usize) -> Result<Map, String> {
    let mut request = client.request(call.method, call.url);
    for (name, value) in &call.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    let mut response = request.send().await.map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        if body.len() + chunk.len() > max_body {
            return Err(format!(
                "the answer is larger than {max_body} bytes (script_limits.http_max_body)"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_slice::<Value>(&body)
        .map_or(Dynamic::UNIT, |json| super::to_dynamic(&json));
    let mut answer = Map::new();
    answer.insert("status".into(), Dynamic::from(i64::from(status)));
    answer.insert("body".into(), Dynamic::from(text));
    answer.insert("json".into(), json);
    Ok(answer)
}
