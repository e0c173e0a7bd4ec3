//! A provider API on 127.0.0.1 that misbehaves on purpose: a script decides, request by request,
//! whether it answers, answers late, never answers or resets the connection, so tests can show
//! what chatflow does when a provider is slow, silent or rude.
//!
//! It is raw HTTP/1.1 over a tokio `TcpListener` rather than axum, because only a raw socket can
//! hang mid-request or reset without answering. Every answer carries `Connection: close`, so each
//! request is its own connection and a fault never leaks into the next request. Bodies are read
//! by `Content-Length` only (chunked bodies are dropped as malformed); malformed input closes
//! the connection without an answer and never panics the server.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head accepted; a longer one is malformed.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted; a longer one is malformed.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// A client that stops sending mid-request is dropped after this long.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `Hang` keeps its socket open (unless the server is dropped first).
const HANG_FOR: Duration = Duration::from_secs(300);

/// What the provider does with one request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Answer with this status, headers and JSON body.
    Reply {
        /// The HTTP status, e.g. 200.
        status: u16,
        /// Extra headers; `Content-Length` and `Connection` are always the server's own.
        headers: Vec<(String, String)>,
        /// The JSON body.
        body: Value,
    },
    /// Wait, then do the inner outcome.
    Delay(Duration, Box<Outcome>),
    /// Read the request and never answer, so the client's timeout must fire; the socket stays
    /// open for at least 60 s or until the server is dropped.
    Hang,
    /// Read the request, then reset the connection without answering.
    Reset,
}

impl Outcome {
    /// An answer with `status` and a JSON `body`.
    #[must_use]
    pub fn json(status: u16, body: Value) -> Self {
        Self::Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// Meta's answer to an accepted send (spec §5.2), `id` being the message id it returns
    /// verbatim (e.g. `wamid.out7`). The contact is the spec's example: chatflow reads only the
    /// message id.
    #[must_use]
    pub fn meta_accepted(id: &str) -> Self {
        Self::json(
            200,
            json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
                "messages": [{"id": id}],
            }),
        )
    }

    /// Meta's synchronous error (spec §4.3): `message` is the error's title, rendered as Meta
    /// does, `(#<code>) <title>`.
    #[must_use]
    pub fn meta_error(http_status: u16, code: u64, message: &str) -> Self {
        Self::json(
            http_status,
            json!({"error": {
                "message": format!("(#{code}) {message}"),
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": message},
                "fbtrace_id": "AfaultyProviderTrace",
            }}),
        )
    }

    /// This outcome after `delay`.
    #[must_use]
    pub fn after(self, delay: Duration) -> Self {
        Self::Delay(delay, Box::new(self))
    }
}

/// One request the provider read completely, in arrival order.
#[derive(Debug, Clone)]
pub struct Received {
    /// 0-based request number.
    pub index: usize,
    /// Method, e.g. `POST`.
    pub method: String,
    /// The request target: path and query, e.g. `/1000/messages`.
    pub path: String,
    /// Headers as sent.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
    /// When the request had been read.
    pub at: Instant,
}

impl Received {
    /// The first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The script deciding each request's outcome.
type Script = Arc<dyn Fn(&Received) -> Outcome + Send + Sync>;
/// Every request read so far.
type Log = Arc<Mutex<Vec<Received>>>;

/// A running faulty provider; dropping it closes the listener and every open connection.
pub struct FaultyProvider {
    /// `http://127.0.0.1:PORT`, for a channel's `base_url`.
    pub base: String,
    received: Log,
    server: JoinHandle<()>,
}

/// Starts a provider on an ephemeral port whose answers come from `script`.
pub async fn faulty_provider(
    script: impl Fn(&Received) -> Outcome + Send + Sync + 'static,
) -> FaultyProvider {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port on 127.0.0.1");
    let address = listener.local_addr().expect("a bound address");
    let received = Log::default();
    let server = tokio::spawn(accept(listener, Arc::new(script), Arc::clone(&received)));
    FaultyProvider {
        base: format!("http://{address}"),
        received,
        server,
    }
}

impl FaultyProvider {
    /// Every request read so far, in arrival order.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    /// Waits until at least `count` requests were read or `within` passed (polling every
    /// 10 ms); returns all read so far, which the caller checks.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        while lock(&self.received).len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

impl Drop for FaultyProvider {
    /// Aborting the accept loop drops its `JoinSet`, which aborts every connection, hung ones too.
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The log, even if a panicking script poisoned it.
fn lock(log: &Log) -> MutexGuard<'_, Vec<Received>> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Accepts connections until aborted; each one is served in a task owned by this loop.
async fn accept(listener: TcpListener, script: Script, received: Log) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: let connections finish rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        connections.spawn(serve(stream, Arc::clone(&script), Arc::clone(&received)));
    }
}

/// Reads one request, records it, then does what the script says.
async fn serve(mut stream: TcpStream, script: Script, received: Log) {
    let Ok(Some(request)) = tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await
    else {
        return;
    };
    let request = {
        let mut log = lock(&received);
        let request = request.numbered(log.len());
        log.push(request.clone());
        request
    };
    let mut outcome = script(&request);
    loop {
        match outcome {
            Outcome::Delay(delay, inner) => {
                tokio::time::sleep(delay).await;
                outcome = *inner;
            }
            Outcome::Reply {
                status,
                headers,
                body,
            } => return reply(stream, status, &headers, &body).await,
            Outcome::Hang => return tokio::time::sleep(HANG_FOR).await,
            Outcome::Reset => {
                let _ = stream.set_zero_linger();
                return drop(stream);
            }
        }
    }
}

/// A request as read, before it gets its place in the log.
struct Unnumbered {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Unnumbered {
    fn numbered(self, index: usize) -> Received {
        Received {
            index,
            method: self.method,
            path: self.path,
            json: serde_json::from_slice(&self.body).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&self.body).into_owned(),
            headers: self.headers,
            at: Instant::now(),
        }
    }
}

/// The head up to CRLFCRLF, then `Content-Length` bytes of body; `None` when malformed or cut.
async fn read_request(stream: &mut TcpStream) -> Option<Unnumbered> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD || read_more(stream, &mut buffer).await? == 0 {
            return None;
        }
    };
    let mut request = parse_head(std::str::from_utf8(&buffer[..head_end]).ok()?)?;
    let length = content_length(&request.headers)?;
    let mut body = buffer.split_off(head_end + 4);
    while body.len() < length {
        if read_more(stream, &mut body).await? == 0 {
            return None;
        }
    }
    body.truncate(length);
    request.body = body;
    Some(request)
}

/// Appends what the socket has; the count read, `None` on an error.
async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0; 8192];
    let count = stream.read(&mut chunk).await.ok()?;
    buffer.extend_from_slice(&chunk[..count]);
    Some(count)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `METHOD TARGET HTTP/1.x` and `Name: value` lines.
fn parse_head(head: &str) -> Option<Unnumbered> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Unnumbered {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: Vec::new(),
    })
}

/// The body's length: 0 without `Content-Length`; `None` (malformed) for a chunked or oversized
/// body or an unreadable length.
fn content_length(headers: &[(String, String)]) -> Option<usize> {
    let named = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.as_str())
    };
    if named("transfer-encoding").is_some() {
        return None;
    }
    let length = named("content-length").map_or(Some(0), |value| value.parse().ok())?;
    (length <= MAX_BODY).then_some(length)
}

/// Writes the answer and closes the connection.
async fn reply(mut stream: TcpStream, status: u16, headers: &[(String, String)], body: &Value) {
    let body = body.to_string();
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Unknown");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    let own = |name: &str| {
        name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("connection")
    };
    for (name, value) in headers.iter().filter(|(name, _)| !own(name)) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
