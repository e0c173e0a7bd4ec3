//! The Meta WhatsApp Cloud API provider (spec `whatsapp-cloud-api.md` §1–§5): the adapter that
//! ties Meta's wire format to the shared provider mechanism.
//!
//! Split by role: `config` reads the channel's settings, `verify` checks signatures and the
//! subscription handshake, `webhook` turns bodies into events, `request` builds the Graph API
//! requests, `errors` maps Meta's error codes onto retry decisions, and `wire` mirrors Meta's
//! JSON. Everything here is pure; the shared client does the I/O.

mod config;
mod errors;
mod request;
mod verify;
mod webhook;
mod wire;

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::registry::SettingsError;
use super::{
    BuildError, Capabilities, Handshake, HttpRequest, HttpResponse, ParseError, Parsed, Provider,
    Secret, SendError, Sent, VerifyError, WebhookRequest,
};
use crate::message::Outbound;
use crate::provider::SendFailure;

/// The `provider:` name of this provider in the config.
const NAME: &str = "meta";

/// One Meta phone number: where to send, and the credentials that prove each side to the other.
///
/// Built once from a channel's settings so every request and check uses the same validated values;
/// its Debug output never shows a credential.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The Graph API root including the version, without a trailing slash.
    base_url: String,
    /// The number's id in the Graph API: the path of every send, and the webhook routing key.
    phone_number_id: String,
    /// Sent as `Authorization: Bearer …` on every Graph API request.
    access_token: Secret,
    /// The HMAC key of `X-Hub-Signature-256`.
    app_secret: Secret,
    /// The token Meta echoes in the subscription handshake.
    verify_token: Secret,
    /// Whether inbound messages are marked read (blue ticks) when handled.
    mark_read: bool,
}

impl Meta {
    /// Builds the provider from a channel's `base_url` and its Meta keys, so a typo or a missing
    /// credential stops the start with the key named instead of failing at the first send.
    ///
    /// # Errors
    /// A missing, unknown or malformed key, or a `base_url` that is not an HTTP(S) URL.
    pub fn from_settings(
        base_url: Option<&str>,
        settings: &Map<String, Value>,
    ) -> Result<Self, SettingsError> {
        config::read(base_url, settings)
    }

    /// The number's id, by which the registry routes each webhook change to its channel (one
    /// webhook URL may carry several numbers).
    #[must_use]
    pub fn phone_number_id(&self) -> &str {
        &self.phone_number_id
    }
}

impl Provider for Meta {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        verify::signature(&self.app_secret, request)
    }

    fn handshake(&self, query: &HashMap<String, String>) -> Handshake {
        verify::handshake(&self.verify_token, query)
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
        errors::by_code(code, None)
    }

    fn mark_read_request(&self, message_id: &str) -> Option<HttpRequest> {
        self.mark_read.then(|| self.read_receipt(message_id))
    }

    fn media_request(&self, media_id: &str) -> Option<HttpRequest> {
        self.media_lookup(media_id)
    }

    fn media_download(&self, lookup: &HttpResponse) -> Result<Option<HttpRequest>, BuildError> {
        self.media_fetch(lookup).map(Some)
    }
}
