//! The one HTTP client every provider's requests go through: keep-alive connections, connect
//! and request timeouts, secrets exposed only on the wire.

use std::time::Duration;

use super::{HeaderValue, HttpRequest, HttpResponse};

/// How long a provider may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A request that never got an HTTP answer (refused, reset, timed out): always worth a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no answer from {host}: {reason}")]
pub struct TransportError {
    /// The host that did not answer (no path or query, which may carry tokens).
    pub host: String,
    /// What happened.
    pub reason: String,
}

/// The shared client; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    /// A client with chatflow's timeouts and connection pooling.
    ///
    /// # Errors
    /// The TLS backend cannot start.
    pub fn new() -> Result<Self, TransportError> {
        Self::with_timeout(REQUEST_TIMEOUT)
    }

    /// A client giving up on a request after `timeout` (tests of a provider that hangs).
    ///
    /// # Errors
    /// The TLS backend cannot start.
    pub fn with_timeout(timeout: Duration) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("chatflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| TransportError {
                host: "-".to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Self { client })
    }

    /// Sends `request` and reads the whole answer.
    ///
    /// # Errors
    /// No HTTP answer at all.
    pub async fn execute(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let response = self.start(request).await?;
        let status = response.status().as_u16();
        let headers = text_headers(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|error| transport(&request.url, &error))?
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// Sends `request` and returns the answer unread, to stream large bodies (media).
    ///
    /// # Errors
    /// No HTTP answer at all.
    pub async fn start(&self, request: &HttpRequest) -> Result<reqwest::Response, TransportError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|error| {
            TransportError {
                host: host(&request.url),
                reason: error.to_string(),
            }
        })?;
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            let value = match value {
                HeaderValue::Plain(value) => value.as_str(),
                HeaderValue::Secret(secret) => secret.expose(),
            };
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        builder
            .send()
            .await
            .map_err(|error| transport(&request.url, &error))
    }
}

/// Header names (lower-cased) with their text values; headers that are not text are skipped.
/// Used for webhooks received and responses read alike.
pub fn text_headers<C: FromIterator<(String, String)>>(headers: &reqwest::header::HeaderMap) -> C {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.as_str().to_ascii_lowercase(),
                value.to_str().ok()?.to_owned(),
            ))
        })
        .collect()
}

fn transport(url: &str, error: &reqwest::Error) -> TransportError {
    // reqwest's message may include the URL, whose query can hold a token: keep only the kind.
    let reason = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        // Display of a reqwest error names the URL; its source chain does not.
        std::error::Error::source(error)
            .map_or_else(|| "request failed".to_owned(), ToString::to_string)
    };
    TransportError {
        host: host(url),
        reason,
    }
}

fn host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|url| {
            url.host_str()
                .map(|host| format!("{host}:{}", url.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_else(|| "an invalid URL".to_owned())
}
