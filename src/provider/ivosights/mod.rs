//! The Ivosights WhatsApp Business API provider (`specs/providers/ivosights-waba.txt`): the
//! adapter that ties Ivosights' wire format to the shared provider mechanism.
//!
//! Ivosights relays the On-Premises flavour of the WhatsApp Business API: webhooks are bare
//! `contacts`/`messages`/`statuses` objects, and each kind of message is sent to its own
//! `/api/v1/messages/send-*-message` endpoint with a flat body of its own.
//!
//! Split by role: `config` reads the channel's settings, `verify` checks the optional Basic auth
//! of inbound webhooks, `webhook` turns bodies (pushed or pulled) into events, `request` builds
//! every API request, `send` picks the endpoint and body of each message kind, `errors` maps
//! Ivosights' error codes onto retry decisions, and `wire` mirrors Ivosights' JSON. Everything here is pure; the shared client does the I/O.

mod config;
mod errors;
mod request;
mod send;
mod verify;
mod webhook;
mod wire;

use serde_json::{Map, Value};

use super::registry::SettingsError;
use super::{
    BuildError, Capabilities, HttpRequest, HttpResponse, ParseError, Parsed, Provider, Secret,
    SendError, Sent, VerifyError, WebhookRequest,
};
use crate::message::Outbound;
use crate::provider::SendFailure;

/// The `provider:` name of this provider in the config.
const NAME: &str = "ivosights";

/// What Ivosights renders: everything but CTA URL buttons, location requests and reactions,
/// for which its API has no endpoint (they are degraded to text before sending).
const CAPABILITIES: Capabilities = Capabilities {
    cta_url: false,
    location_request: false,
    reactions: false,
    ..Capabilities::ALL
};

/// What the sandbox renders: its endpoint list has no product or Flow messages.
const SANDBOX_CAPABILITIES: Capabilities = Capabilities {
    products: false,
    flows: false,
    ..CAPABILITIES
};

/// One Ivosights WhatsApp account: where to send, the API key that proves us to Ivosights, and
/// the credentials that prove Ivosights' webhooks to us.
///
/// Built once from a channel's settings so every request and check uses the same validated
/// values; its Debug output never shows a credential.
#[derive(Debug, Clone)]
pub struct Ivosights {
    /// `https://waba.ivosights.com`, or its `/sandbox`, without a trailing slash.
    base_url: String,
    /// Whether `base_url` is the sandbox, which serves only the send and media endpoints.
    sandbox: bool,
    /// Sent as `X-API-KEY` on every request.
    api_key: Secret,
    /// The `Authorization: Basic …` credentials Ivosights is configured to send with webhooks
    /// (base64 of `username:password`); `None` accepts webhooks without it.
    inbound_basic_auth: Option<Secret>,
    /// The webhook whose undelivered notifications are pulled at start; `None` pulls nothing.
    webhook_id: Option<String>,
    /// Whether inbound messages are marked read (blue ticks) when handled.
    mark_read: bool,
}

impl Ivosights {
    /// Builds the provider from a channel's `base_url` and its Ivosights keys, so a typo or a
    /// missing credential stops the start with the key named instead of failing at the first
    /// send.
    ///
    /// # Errors
    /// A missing, unknown or malformed key, or a `base_url` that is not an HTTP(S) URL.
    pub fn from_settings(
        base_url: Option<&str>,
        settings: &Map<String, Value>,
    ) -> Result<Self, SettingsError> {
        config::read(base_url, settings)
    }
}

impl Provider for Ivosights {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        if self.sandbox {
            SANDBOX_CAPABILITIES
        } else {
            CAPABILITIES
        }
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        match &self.inbound_basic_auth {
            Some(credentials) => verify::basic_auth(credentials, request),
            None => Ok(()),
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Parsed, ParseError> {
        webhook::parse(body)
    }

    fn send_request(&self, to: &str, message: &Outbound) -> Result<HttpRequest, BuildError> {
        self.message_request(to, message)
    }

    fn read_response(&self, response: &HttpResponse) -> Result<Sent, SendError> {
        errors::read_response(response)
    }

    fn enforces_window(&self) -> bool {
        true
    }

    fn classify_code(&self, code: i64) -> Option<SendFailure> {
        errors::by_code(code)
    }

    fn mark_read_request(&self, message_id: &str) -> Option<HttpRequest> {
        if !self.mark_read || self.sandbox {
            return None;
        }
        self.read_receipt(message_id)
    }

    fn pending_request(&self) -> Option<HttpRequest> {
        if self.sandbox {
            return None;
        }
        self.webhook_id
            .as_deref()
            .and_then(|id| self.pull_pending(id))
    }

    fn health_request(&self) -> Option<HttpRequest> {
        (!self.sandbox).then(|| self.business_profile())
    }

    fn read_health(&self, response: &HttpResponse) -> Result<(), String> {
        errors::read_health(response)
    }

    fn media_request(&self, media_id: &str) -> Option<HttpRequest> {
        self.media_file(media_id)
    }
}
