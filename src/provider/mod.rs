//! The provider mechanism: one trait every WhatsApp provider implements — verify and parse
//! webhooks (pure, over raw bytes), build send requests and read their responses (pure) — and
//! the machinery written once around it: HTTP execution, error classification, degradation of
//! what a provider cannot render, secrets that never print.
//!
//! A provider is wire types + mapping + its error codes (STYLE: one mechanism, many providers).

pub mod chatapi;
pub mod classify;
pub mod decisiontelecom;
pub mod degrade;
pub mod digiworld;
pub mod encoding;
pub mod generic;
pub mod http;
pub mod ivosights;
pub mod mapping;
pub mod meta;
pub mod registry;
pub mod secret;
pub mod simulator;
pub mod socnet;

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::message::{InboundEvent, Outbound};

pub use classify::{SendError, SendFailure};
pub use degrade::Capabilities;
pub use registry::{Channel, Registry};
pub use secret::Secret;

/// A webhook as received: what verification and parsing may look at.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// Header names lower-cased, values as sent.
    pub headers: &'a [(String, String)],
    /// The raw body, before any JSON parsing (signatures are over these bytes).
    pub body: &'a [u8],
}

impl WebhookRequest<'_> {
    /// A header's value, by lower-case name.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a webhook was refused (401, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature or secret header is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The signature or secret does not match.
    #[error("{0} does not match")]
    Mismatch(&'static str),
}

/// The answer to a verification handshake (Meta's `GET ?hub.challenge=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Answer 200 with this body.
    Accept(String),
    /// Answer 403: the token is wrong.
    Reject,
    /// This provider has no handshake (404).
    Unsupported,
}

/// Why a body could not be parsed at all (400, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// One event from a webhook, with where it belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedEvent {
    /// The provider's routing key when one webhook URL serves several numbers (Meta's
    /// `phone_number_id`); `None`: the channel the webhook came in on.
    pub route: Option<String>,
    /// The event.
    pub event: InboundEvent,
}

/// Everything in one webhook body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Messages, statuses and preference changes, in the order they appear.
    pub events: Vec<RoutedEvent>,
    /// Parts of a known envelope that are not messages or statuses (account, template and call
    /// updates…), kept raw: acknowledged, recorded, counted.
    pub unrecognized: Vec<Value>,
}

/// An HTTP request a provider wants sent; built without I/O so it can be snapshot-tested.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`…
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Headers; secret values stay [`Secret`] until the request is executed.
    pub headers: Vec<(String, HeaderValue)>,
    /// A JSON body, if any.
    pub body: Option<Value>,
}

impl HttpRequest {
    /// The request as JSON with secret header values redacted: what logs, the dead-letter list
    /// and snapshot tests may show.
    #[must_use]
    pub fn redacted(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = match value {
                    HeaderValue::Plain(text) => text.clone(),
                    HeaderValue::Secret(secret) => secret.to_string(),
                };
                (name.clone(), Value::String(shown))
            })
            .collect();
        serde_json::json!({"method": self.method, "url": self.url, "headers": headers, "body": self.body})
    }
}

/// A header value that may be a secret.
#[derive(Clone, PartialEq)]
pub enum HeaderValue {
    /// Shown as is.
    Plain(String),
    /// Redacted everywhere but on the wire.
    Secret(Secret),
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(value) => write!(f, "{value:?}"),
            Self::Secret(secret) => write!(f, "{secret:?}"),
        }
    }
}

/// A provider's HTTP response, as the shared client read it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A send the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id of the message, which statuses will name.
    pub provider_id: Option<String>,
}

/// A message the provider cannot send as asked (an invalid or unsupported message): a bug in
/// the flow, never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot send this message: {0}")]
pub struct BuildError(pub String);

/// One WhatsApp provider. Every method is pure; the shared machinery does the I/O.
pub trait Provider: Send + Sync + fmt::Debug {
    /// The `provider:` name in the config.
    fn name(&self) -> &'static str;

    /// What it can render; the rest is degraded before sending.
    fn capabilities(&self) -> Capabilities;

    /// Whether replies go out over HTTP; the simulator keeps them in the transcript only.
    fn delivers(&self) -> bool {
        true
    }

    /// Checks the webhook's signature or secret, over the raw bytes.
    ///
    /// # Errors
    /// Missing or wrong credentials: answered 401, nothing stored.
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), VerifyError>;

    /// Answers a GET verification handshake.
    fn handshake(&self, _query: &HashMap<String, String>) -> Handshake {
        Handshake::Unsupported
    }

    /// Parses a verified body into events.
    ///
    /// # Errors
    /// Not JSON at all: answered 400. A JSON shape the provider does not know is not an error:
    /// it goes to [`Parsed::unrecognized`].
    fn parse(&self, body: &[u8]) -> Result<Parsed, ParseError>;

    /// The request that sends `message` to `to` (digits, no `+`).
    ///
    /// # Errors
    /// The message cannot be expressed for this provider.
    fn send_request(&self, to: &str, message: &Outbound) -> Result<HttpRequest, BuildError>;

    /// Reads the send response: the provider's message id, or the classified failure.
    ///
    /// # Errors
    /// The provider refused or failed; the decision says what to do.
    fn read_response(&self, response: &HttpResponse) -> Result<Sent, SendError>;

    /// Whether the provider applies WhatsApp's 24-hour customer-service window (the official
    /// Business API providers do): outside it only templates may be sent.
    fn enforces_window(&self) -> bool {
        false
    }

    /// What the provider's error `code` means for a send, by its error table; `None` for a
    /// code it does not list.
    fn classify_code(&self, _code: i64) -> Option<SendFailure> {
        None
    }

    /// What a failed delivery status means beyond "failed": the 24-hour window was closed, or
    /// the contact opted out (reported after the provider first accepted the message).
    fn status_failure(&self, status: &crate::message::DeliveryStatus) -> Option<SendFailure> {
        status
            .errors
            .iter()
            .filter_map(|error| self.classify_code(error.code))
            .find(|failure| matches!(failure, SendFailure::OutsideWindow | SendFailure::OptedOut))
    }

    /// The request that marks an inbound message read, when the provider supports and the
    /// channel wants it.
    fn mark_read_request(&self, _message_id: &str) -> Option<HttpRequest> {
        None
    }

    /// A request to run when the engine starts, whose answer is a webhook body to handle
    /// (Ivosights: webhooks the provider gave up delivering are pulled so none is lost).
    fn pending_request(&self) -> Option<HttpRequest> {
        None
    }

    /// A request that tells whether the provider account works, for the health check.
    fn health_request(&self) -> Option<HttpRequest> {
        None
    }

    /// Reads the health answer.
    ///
    /// # Errors
    /// What is wrong with the account, in the provider's words.
    fn read_health(&self, response: &HttpResponse) -> Result<(), String> {
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status))
        }
    }

    /// The first request to fetch an inbound media file (Meta: look up its URL).
    fn media_request(&self, _media_id: &str) -> Option<HttpRequest> {
        None
    }

    /// The request that downloads the file, given the first request's response (`None` when
    /// the first response is the file itself).
    ///
    /// # Errors
    /// The lookup answer is not usable.
    fn media_download(&self, _lookup: &HttpResponse) -> Result<Option<HttpRequest>, BuildError> {
        Ok(None)
    }
}
