//! The Socnet provider (`specs/providers/socnet.txt`): one JSON endpoint, `api.php`, that takes
//! the API key in the body and sends a text or an approved template to a phone number. Its
//! document describes no inbound format, so messages come in through the channel's generic
//! `inbound` mapping, which the registry applies before this provider is asked.

use crate::provider::classify::excerpt;
use crate::provider::registry::is_web_url;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::classify::{by_status, retry_after};
use super::degrade::degrade;
use super::registry::{SettingsError, read_settings};
use super::{
    BuildError, Capabilities, HttpRequest, HttpResponse, ParseError, Parsed, Provider, Secret,
    SendError, SendFailure, Sent, VerifyError, WebhookRequest,
};
use crate::message::Outbound;

/// The `provider:` name of this provider in the config.
const NAME: &str = "socnet";

/// The endpoint the document gives, shown in errors as an example.
const DOCUMENTED_URL: &str = "https://www.socnetsolutions.com/projects/bulk/whatsapp/api.php";

/// A Socnet account: where to post, and the key that maps each request to it.
///
/// Debug shows the endpoint but never the key, which is put into a request body only when the
/// request is built.
#[derive(Debug, Clone)]
pub struct Socnet {
    /// The full endpoint URL, ending in `api.php`.
    url: String,
    /// `api_key` of every request body.
    api_key: Secret,
}

/// The Socnet keys of a channel (DESIGN §7), exactly as written in `chatflow.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    api_key: Secret,
}

impl Socnet {
    /// Builds the provider from a channel's `base_url` (the full endpoint URL: the document
    /// names a single URL for every operation) and its `api_key`, so a missing or misspelt key
    /// stops the start with the key named instead of failing at the first send.
    ///
    /// # Errors
    /// A missing, unknown or empty key, or a `base_url` that is missing, not http(s), or does
    /// not end in `api.php`.
    pub fn from_settings(
        base_url: Option<&str>,
        settings: &Map<String, Value>,
    ) -> Result<Self, SettingsError> {
        let settings: Settings = read_settings(settings)?;
        if settings.api_key.expose().trim().is_empty() {
            return Err(SettingsError::at(
                "api_key",
                "`api_key` is empty; copy it from your socnet user account",
            ));
        }
        Ok(Self {
            url: endpoint(base_url)?,
            api_key: settings.api_key,
        })
    }

    /// `POST api.php` with the key first, as in the document's examples.
    fn post(&self, fields: Map<String, Value>) -> HttpRequest {
        let mut body = Map::new();
        body.insert("api_key".to_owned(), Value::from(self.api_key.expose()));
        body.extend(fields);
        HttpRequest {
            method: "POST",
            url: self.url.clone(),
            headers: Vec::new(),
            body: Some(Value::Object(body)),
        }
    }
}

/// The endpoint URL, checked now so a site root or a typo is named at startup.
fn endpoint(base_url: Option<&str>) -> Result<String, SettingsError> {
    let Some(url) = base_url.map(str::trim) else {
        return Err(SettingsError::at(
            "base_url",
            format!(
                "a socnet channel needs `base_url`: the full endpoint url, such as {DOCUMENTED_URL}"
            ),
        ));
    };
    let web = is_web_url(url);
    if !web || !url.ends_with("api.php") {
        return Err(SettingsError::at(
            "base_url",
            format!(
                "`base_url` must be socnet's full endpoint url ending in api.php, such as \
                 {DOCUMENTED_URL}, not {url:?}"
            ),
        ));
    }
    Ok(url.to_owned())
}

impl Provider for Socnet {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Text, and templates by name (DESIGN §7).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            templates: true,
            ..Capabilities::TEXT_ONLY
        }
    }

    /// Socnet posts nothing of its own: what reaches this channel is checked by its
    /// `inbound_secret_header`, which the registry verifies before this.
    fn verify(&self, _request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        Ok(())
    }

    /// A body the channel's `inbound` mapping could not read: kept whole as unrecognized, since
    /// Socnet has no format of its own to try.
    fn parse(&self, body: &[u8]) -> Result<Parsed, ParseError> {
        let body: Value = serde_json::from_slice(body)
            .map_err(|error| ParseError(format!("body is not json: {error}")))?;
        Ok(Parsed {
            events: Vec::new(),
            unrecognized: vec![body],
        })
    }

    /// `{api_key, msisdn, msg}`, plus `template` (its name) for a template.
    fn send_request(&self, to: &str, message: &Outbound) -> Result<HttpRequest, BuildError> {
        let mut fields = Map::new();
        fields.insert("msisdn".to_owned(), Value::from(msisdn(to)?));
        match message {
            Outbound::Text { text } => {
                fields.insert("msg".to_owned(), Value::from(text.body.as_str()));
            }
            Outbound::Template { template } => {
                fields.insert("msg".to_owned(), Value::from(template_msg(message)?));
                fields.insert("template".to_owned(), Value::from(template.name.as_str()));
            }
            _ => return Err(BuildError(NOT_SENDABLE.to_owned())),
        }
        Ok(self.post(fields))
    }

    fn enforces_window(&self) -> bool {
        true
    }

    fn read_response(&self, response: &HttpResponse) -> Result<Sent, SendError> {
        answer::read(response)
    }

    /// The document's authentication operation: the key alone, answered `{"status": "valid"}`.
    fn health_request(&self) -> Option<HttpRequest> {
        Some(self.post(Map::new()))
    }

    fn read_health(&self, response: &HttpResponse) -> Result<(), String> {
        answer::health(response)
    }
}

/// Why a message is refused: the engine degrades every other kind to text first, so what still
/// arrives has no text form.
const NOT_SENDABLE: &str = "socnet sends text and templates only, and this message has no text \
     form; give it a fallback_text";

/// `to` as the document's `msisdn`: the number's digits, country code first.
fn msisdn(to: &str) -> Result<&str, BuildError> {
    let to = to.trim();
    let digits = to.strip_prefix('+').unwrap_or(to);
    if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(digits);
    }
    Err(BuildError(format!(
        "socnet sends to phone numbers (msisdn digits), not {to:?}"
    )))
}

/// `msg` of a template send. The document defines it only for one-time-password templates
/// (`msg` is the code alone; Socnet writes the rest), so a template's `msg` is its text form as
/// the shared degradation writes it: its parameters one per line — a one-parameter OTP
/// template gives exactly the code — or its name when it has none, since `msg` is mandatory.
fn template_msg(template: &Outbound) -> Result<String, BuildError> {
    match degrade(template, None, &Capabilities::TEXT_ONLY).message {
        Outbound::Text { text } => Ok(text.body),
        _ => Err(BuildError(NOT_SENDABLE.to_owned())),
    }
}

/// Socnet's answers, read as decisions.
mod answer {
    use super::{
        Deserialize, HttpResponse, NAME, SendError, SendFailure, Sent, by_status, excerpt,
        retry_after,
    };

    /// Every documented answer shape at once: the general `{message, status}`, the two success
    /// shapes of a send (channel 1: `sent`, `messageId`; channel 2: Meta's `messages[]`), and
    /// `{"status": "invalid"}` for a number not on WhatsApp.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        #[serde(default)]
        status: Option<Status>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        sent: Option<Flag>,
        #[serde(default)]
        message_id: Option<String>,
        #[serde(default)]
        messages: Vec<Accepted>,
    }

    /// `status`: a code (`0`, `401`…) or a word (`"invalid"`, `"valid"`).
    #[derive(Deserialize)]
    #[serde(from = "GivenStatus")]
    enum Status {
        Code(i64),
        Word(String),
    }

    /// `status` as given: the document types it "Int/ Str", so a code may come quoted.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum GivenStatus {
        Number(i64),
        Text(String),
    }

    impl From<GivenStatus> for Status {
        fn from(given: GivenStatus) -> Self {
            match given {
                GivenStatus::Number(code) => Self::Code(code),
                GivenStatus::Text(text) => match text.trim().parse() {
                    Ok(code) => Self::Code(code),
                    Err(_) => Self::Word(text),
                },
            }
        }
    }

    /// Channel 1's `sent`, documented as the string `"true"`; a JSON boolean is read alike.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }

    /// One entry of channel 2's `messages[]`.
    #[derive(Deserialize)]
    struct Accepted {
        id: String,
    }

    impl Status {
        fn code(&self) -> Option<i64> {
            match self {
                Self::Code(code) => Some(*code),
                Self::Word(_) => None,
            }
        }

        fn is(&self, word: &str) -> bool {
            matches!(self, Self::Word(given) if given.eq_ignore_ascii_case(word))
        }
    }

    impl Flag {
        fn is_true(&self) -> bool {
            match self {
                Self::Bool(flag) => *flag,
                Self::Text(text) => text.trim().eq_ignore_ascii_case("true"),
            }
        }
    }

    /// The body decides first (Socnet reports its errors in `status`, whatever the HTTP status);
    /// the HTTP status only when the body says nothing this provider knows.
    pub(super) fn read(response: &HttpResponse) -> Result<Sent, SendError> {
        let answer = serde_json::from_slice::<Answer>(&response.body).ok();
        if let Some(sent) = answer.as_ref().and_then(accepted) {
            return Ok(sent);
        }
        let status = answer.as_ref().and_then(|answer| answer.status.as_ref());
        let (decision, detail) = match status {
            Some(status) if status.is("invalid") => (
                SendFailure::DoNotRetry,
                "status \"invalid\": the number is not on whatsapp".to_owned(),
            ),
            Some(status) => {
                let decision = match status.code() {
                    Some(code) => by_code(code).unwrap_or_else(|| as_http(code, response)),
                    None => by_http(response),
                };
                (decision, said(status, answer.as_ref()))
            }
            None => (by_http(response), excerpt(response)),
        };
        Err(SendError {
            provider: NAME,
            decision,
            detail,
        })
    }

    /// A send accepted: channel 1 (`sent: "true"`, `messageId`), channel 2 (`messages[0].id`),
    /// or the general success `status: 0`.
    fn accepted(answer: &Answer) -> Option<Sent> {
        if answer.sent.as_ref().is_some_and(Flag::is_true) {
            return Some(Sent {
                provider_id: answer.message_id.clone(),
            });
        }
        if let Some(first) = answer.messages.first() {
            return Some(Sent {
                provider_id: Some(first.id.clone()),
            });
        }
        let success = answer.status.as_ref().and_then(Status::code) == Some(0);
        success.then_some(Sent { provider_id: None })
    }

    /// The document's status codes; `None` for one it does not list.
    fn by_code(code: i64) -> Option<SendFailure> {
        let decision = match code {
            // Internal server error, service unavailable: transient.
            500 | 503 => SendFailure::Retry,
            // FAIL (something wrong with the request), missing or malformed parameter, no text,
            // resource not found, method not allowed: the same request fails again.
            1 | 400 | 404 | 405 | 422 => SendFailure::DoNotRetry,
            // Invalid credentials, insufficient credit: an operator must fix the key or top up
            // the account, and the dead letter says which.
            401 | 403 => SendFailure::DoNotRetry,
            _ => return None,
        };
        Some(decision)
    }

    /// A code the document does not list: the document calls its codes HTTP status codes, so
    /// one in the HTTP range is judged as one (`429` in the body is a rate limit); any other by
    /// the response's own HTTP status.
    fn as_http(code: i64, response: &HttpResponse) -> SendFailure {
        match u16::try_from(code) {
            Ok(code @ 100..=599) => by_status(code, wait(response)),
            _ => by_http(response),
        }
    }

    /// By the response's HTTP status.
    fn by_http(response: &HttpResponse) -> SendFailure {
        by_status(response.status, wait(response))
    }

    /// The `Retry-After` the server sent, if any.
    fn wait(response: &HttpResponse) -> Option<std::time::Duration> {
        retry_after(response.headers.get("retry-after").map(String::as_str))
    }

    /// `status 403: Insufficient credit (0) for transaction charge of 90`.
    fn said(status: &Status, answer: Option<&Answer>) -> String {
        let code = match status {
            Status::Code(code) => code.to_string(),
            Status::Word(word) => format!("{word:?}"),
        };
        match answer.and_then(|answer| answer.message.as_deref()) {
            Some(message) if !message.trim().is_empty() => {
                format!("status {code}: {}", message.trim())
            }
            _ => format!("status {code}"),
        }
    }

    /// The key works when the authentication operation answers `{"status": "valid"}`.
    pub(super) fn health(response: &HttpResponse) -> Result<(), String> {
        let answer = serde_json::from_slice::<Answer>(&response.body).ok();
        match answer.as_ref().and_then(|answer| answer.status.as_ref()) {
            Some(status) if status.is("valid") => Ok(()),
            Some(status) => Err(said(status, answer.as_ref())),
            None => Err(excerpt(response)),
        }
    }
}
