//! The Digiworld provider (specs/providers/digiworld.txt): text through
//! `/api/whatsapp/{token}/sendMessage`, each request signed with an HMAC-SHA256 of timestamp,
//! token and body, and the session `status` endpoint as the health check. Its document
//! describes no inbound format, so messages come in through the channel's generic `inbound`
//! mapping only (DESIGN §7).

use crate::provider::classify::failure_detail;
use crate::provider::registry::api_root;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::classify::{by_status, retry_after};
use super::registry::{SettingsError, read_settings};
use super::{
    BuildError, Capabilities, HeaderValue, HttpRequest, HttpResponse, ParseError, Parsed, Provider,
    Secret, SendError, Sent, VerifyError, WebhookRequest,
};
use crate::message::Outbound;

/// The `provider:` name of this provider in the config.
const NAME: &str = "digiworld";
/// The API host of the document's examples.
const DEFAULT_BASE_URL: &str = "https://chat.digiworld-dev.com";
/// The session state in which messages can be sent.
const CONNECTED: &str = "CONNECTED";

/// Why anything but text is refused: the engine degrades every message it can to text first, so
/// what still arrives has no text form (media by id without a caption, say).
const NOT_TEXT: &str =
    "digiworld sends text only, and this message has no text form; give it a fallback_text";

/// Where the time of a signature comes from: Unix milliseconds.
pub type NowMillis = fn() -> i64;

/// One Digiworld session: its token (which is also part of every URL) and the secret that signs
/// each send.
///
/// Built once from a channel's settings; its Debug output never shows a credential.
#[derive(Debug, Clone)]
pub struct Digiworld {
    /// The API root, without a trailing slash.
    base_url: String,
    /// The API token: a path segment of every endpoint and part of what is signed.
    token: Secret,
    /// The HMAC-SHA256 key of `X-API-Signature`.
    api_secret: Secret,
    /// The time sent in `X-API-Timestamp`; the system clock but in tests.
    clock: NowMillis,
}

/// The Digiworld keys of a channel, exactly as written in `chatflow.yaml` (DESIGN §7).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    token: Secret,
    api_secret: Secret,
}

impl Digiworld {
    /// Builds the provider from a channel's `base_url` and its keys, so a missing key or a token
    /// that cannot be a URL segment is reported at startup, by name.
    ///
    /// # Errors
    /// A missing, unknown or malformed key.
    pub fn from_settings(
        base_url: Option<&str>,
        settings: &Map<String, Value>,
    ) -> Result<Self, SettingsError> {
        let settings: Settings = read_settings(settings)?;
        check_token(&settings.token)?;
        Ok(Self {
            base_url: api_root(base_url, DEFAULT_BASE_URL)?,
            token: settings.token,
            api_secret: settings.api_secret,
            clock: system_clock,
        })
    }

    /// The same provider reading the time from `clock`, so a signed request is the same on
    /// every run (tests).
    #[must_use]
    pub fn with_clock(self, clock: NowMillis) -> Self {
        Self { clock, ..self }
    }

    /// `{base_url}/api/whatsapp/{token}/{endpoint}`.
    fn endpoint(&self, endpoint: &str) -> String {
        format!(
            "{}/api/whatsapp/{}/{endpoint}",
            self.base_url,
            self.token.expose()
        )
    }

    /// Lowercase hex HMAC-SHA256 under `api_secret` of timestamp, token and body, in that
    /// order, as the document defines `X-API-Signature`.
    fn signature(&self, timestamp: &str, body: &[u8]) -> Result<String, BuildError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.api_secret.expose().as_bytes())
            .map_err(|error| BuildError(format!("api_secret cannot key an hmac: {error}")))?;
        mac.update(timestamp.as_bytes());
        mac.update(self.token.expose().as_bytes());
        mac.update(body);
        Ok(hex::encode(mac.finalize().into_bytes()))
    }
}

/// The current Unix time in milliseconds.
fn system_clock() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The token goes into every URL path, so only characters that need no escaping are taken.
fn check_token(token: &Secret) -> Result<(), SettingsError> {
    let token = token.expose();
    let unreserved = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
    if !token.is_empty() && token.bytes().all(unreserved) {
        return Ok(());
    }
    Err(SettingsError::at(
        "token",
        "`token` must be the API token Digiworld gave you: letters, digits, `-`, `.`, `_` or `~`",
    ))
}

/// The body of `sendMessage`.
#[derive(Serialize)]
struct SendBody<'a> {
    phone: &'a str,
    message: &'a str,
}

/// Every JSON answer: `{"success": true, "message_id": "ABC123456", "message": …}` for a send,
/// `{"success": true, "state": "CONNECTED", "message": …}` for the session status.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

fn answer(response: &HttpResponse) -> Option<Answer> {
    serde_json::from_slice(&response.body).ok()
}

/// `http <status>: <what the provider said>` — its `message`, or the start of a plain-text body
/// (the document's GET endpoints answer errors as text).
fn detail(response: &HttpResponse, answer: Option<&Answer>) -> String {
    failure_detail(
        response,
        answer.and_then(|answer| answer.message.as_deref()),
    )
}

impl Provider for Digiworld {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::TEXT_ONLY
    }

    /// The document signs no webhook; the channel's `inbound_secret_header`, when set, is
    /// checked by the channel before this.
    fn verify(&self, _request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        Ok(())
    }

    /// Digiworld has no webhook format of its own: the channel's mapping reads messages, and
    /// whatever reaches here is kept as unrecognized.
    fn parse(&self, body: &[u8]) -> Result<Parsed, ParseError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| ParseError(format!("body is not json: {error}")))?;
        Ok(Parsed {
            events: Vec::new(),
            unrecognized: vec![value],
        })
    }

    /// Signs the exact bytes the shared client sends: it writes `body` with
    /// `serde_json::to_vec`, as is done here.
    fn send_request(&self, to: &str, message: &Outbound) -> Result<HttpRequest, BuildError> {
        let Outbound::Text { text } = message else {
            return Err(BuildError(NOT_TEXT.to_owned()));
        };
        let body = serde_json::to_value(SendBody {
            phone: to,
            message: &text.body,
        })
        .map_err(|error| BuildError(format!("the message is not valid json: {error}")))?;
        let bytes = serde_json::to_vec(&body)
            .map_err(|error| BuildError(format!("the message is not valid json: {error}")))?;
        let timestamp = (self.clock)().to_string();
        let signature = self.signature(&timestamp, &bytes)?;
        let plain = |name: &str, value: String| (name.to_owned(), HeaderValue::Plain(value));
        Ok(HttpRequest {
            method: "POST",
            url: self.endpoint("sendMessage"),
            headers: vec![
                plain("X-API-Timestamp", timestamp),
                plain("X-API-Signature", signature),
                plain("Accept", "application/json".to_owned()),
                plain("Content-Type", "application/json".to_owned()),
            ],
            body: Some(body),
        })
    }

    /// A 2xx that does not say `"success": false` is sent; anything else is judged by its HTTP
    /// status, since the document's errors carry no code (429 is a rate limit).
    fn read_response(&self, response: &HttpResponse) -> Result<Sent, SendError> {
        let answer = answer(response);
        let refused = answer.as_ref().and_then(|answer| answer.success) == Some(false);
        if (200..300).contains(&response.status) && !refused {
            return Ok(Sent {
                provider_id: answer.and_then(|answer| answer.message_id),
            });
        }
        let wait = retry_after(response.headers.get("retry-after").map(String::as_str));
        Err(SendError {
            provider: NAME,
            decision: by_status(response.status, wait),
            detail: detail(response, answer.as_ref()),
        })
    }

    /// `GET status`: the token works and the WhatsApp session is connected.
    fn health_request(&self) -> Option<HttpRequest> {
        Some(HttpRequest {
            method: "GET",
            url: self.endpoint("status"),
            headers: vec![(
                "Accept".to_owned(),
                HeaderValue::Plain("application/json".to_owned()),
            )],
            body: None,
        })
    }

    /// Healthy when the session's `state` is `CONNECTED`; otherwise the state and the
    /// provider's words, or the HTTP error.
    fn read_health(&self, response: &HttpResponse) -> Result<(), String> {
        let answer = answer(response);
        if !(200..300).contains(&response.status) {
            return Err(detail(response, answer.as_ref()));
        }
        let Some(answer) = answer else {
            return Err(format!(
                "unreadable session status: {}",
                detail(response, None)
            ));
        };
        let message = answer.message.as_deref().unwrap_or("no message");
        match (answer.success, answer.state.as_deref()) {
            (Some(true), Some(CONNECTED)) => Ok(()),
            (_, Some(state)) => Err(format!("whatsapp session is {state}: {message}")),
            _ => Err(format!("no session state: {message}")),
        }
    }
}
