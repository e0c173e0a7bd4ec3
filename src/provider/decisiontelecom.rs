//! The DecisionTelecom provider (specs/providers/decisiontelecom.txt): `send-whatsapp` with Basic
//! auth for text, images and templates, its numbered error codes mapped onto retry decisions, and
//! its status callback read natively. Its document describes no inbound message format, so user
//! messages come in through the channel's generic `inbound` mapping (DESIGN §7).

use crate::provider::classify::excerpt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::classify::{by_status, retry_after};
use super::degrade::degrade;
use super::encoding::base64;
use super::registry::{SettingsError, is_web_url, read_settings};
use super::{
    BuildError, Capabilities, HeaderValue, HttpRequest, HttpResponse, ParseError, Parsed, Provider,
    RoutedEvent, Secret, SendError, SendFailure, Sent, VerifyError, WebhookRequest,
};
use crate::message::inbound::StatusError;
use crate::message::outbound::{Media, Template, TemplateComponent};
use crate::message::{DeliveryStatus, InboundEvent, Outbound, StatusKind};

/// The `provider:` name of this provider in the config.
const NAME: &str = "decisiontelecom";
/// The API host of the document's examples.
const DEFAULT_BASE_URL: &str = "https://web.it-decision.com";
/// The send endpoint, below the base URL.
const SEND_PATH: &str = "/v1/api/send-whatsapp";
/// The document's limit on `source_addr`.
const SOURCE_ADDR_CHARS: usize = 20;

/// Text, images by public link and approved templates: what `send-whatsapp` can carry (its
/// `message_type` 1, 2 and 4); the engine turns menus, locations and cards into text first.
const CAPABILITIES: Capabilities = Capabilities {
    media: true,
    templates: true,
    ..Capabilities::TEXT_ONLY
};

/// One DecisionTelecom sender: where to send, as whom, and the key that proves it.
///
/// Built once from a channel's settings so a typo stops the start with the key named; its Debug
/// output never shows the key.
#[derive(Debug, Clone)]
pub struct DecisionTelecom {
    /// The full `send-whatsapp` URL.
    url: String,
    /// `Basic base64(api_key + ":")`, ready for the `Authorization` header.
    authorization: Secret,
    /// The sender name or number every message goes out from.
    source_addr: String,
    /// Where DecisionTelecom posts status callbacks (our webhook), sent with every message.
    callback_url: Option<String>,
    /// The WhatsApp template namespace that `template_params` must name.
    template_namespace: String,
}

/// The DecisionTelecom keys of a channel, exactly as written in `chatflow.yaml` (DESIGN §7).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    api_key: Secret,
    source_addr: String,
    #[serde(default)]
    callback_url: Option<String>,
    template_namespace: String,
}

impl DecisionTelecom {
    /// Builds the provider from a channel's `base_url` (the API host) and its keys, so a missing
    /// key or a sender name the API would refuse is reported at startup, by name.
    ///
    /// # Errors
    /// A missing, unknown or malformed key.
    pub fn from_settings(
        base_url: Option<&str>,
        settings: &Map<String, Value>,
    ) -> Result<Self, SettingsError> {
        let settings: Settings = read_settings(settings)?;
        check_source_addr(&settings.source_addr)?;
        if let Some(url) = &settings.callback_url {
            check_url("callback_url", url)?;
        }
        let root = base_url.unwrap_or(DEFAULT_BASE_URL).trim();
        check_url("base_url", root)?;
        let credentials = format!("{}:", settings.api_key.expose());
        Ok(Self {
            url: format!("{}{SEND_PATH}", root.trim_end_matches('/')),
            authorization: Secret::new(format!("Basic {}", base64(credentials.as_bytes()))),
            source_addr: settings.source_addr,
            callback_url: settings.callback_url,
            template_namespace: settings.template_namespace,
        })
    }

    /// The `send-whatsapp` body for one message, or why it has no form this API takes.
    fn body(&self, to: &str, message: &Outbound) -> Result<SendBody<'_>, BuildError> {
        let mut body = SendBody {
            source_addr: &self.source_addr,
            destination_addr: destination(to)?,
            message_type: TEXT,
            text: None,
            file_url: None,
            callback_url: self.callback_url.as_deref(),
            template_name: None,
            template_params: None,
        };
        match message {
            Outbound::Text { text } => body.text = Some(text.body.clone()),
            Outbound::Image { image } if image.link.is_some() => image_fields(&mut body, image),
            Outbound::Template { template } => {
                body.message_type = TEMPLATE;
                body.template_name = Some(template.name.clone());
                body.template_params = Some(self.template_params(to, template)?);
            }
            other => body.text = Some(text_form(other)?),
        }
        Ok(body)
    }

    /// `template_params`: the template in the On-Premises API shape the document shows, with
    /// the channel's namespace and a deterministic language, JSON-encoded into a string.
    fn template_params(&self, to: &str, template: &Template) -> Result<String, BuildError> {
        let params = TemplateParams {
            to,
            kind: "template",
            template: TemplateObject {
                namespace: &self.template_namespace,
                language: Language {
                    policy: "deterministic",
                    code: &template.language.code,
                },
                name: &template.name,
                components: &template.components,
            },
        };
        serde_json::to_string(&params)
            .map_err(|error| BuildError(format!("the template is not valid json: {error}")))
    }
}

/// `message_type` 1: a text message.
const TEXT: u8 = 1;
/// `message_type` 2: an image (jpg, jpeg or png) at `file_url`.
const IMAGE: u8 = 2;
/// `message_type` 4: a registered template.
const TEMPLATE: u8 = 4;

/// An image by public link, its caption as the message text.
fn image_fields(body: &mut SendBody<'_>, image: &Media) {
    body.message_type = IMAGE;
    body.file_url.clone_from(&image.link);
    body.text.clone_from(&image.caption);
}

/// What the API cannot carry (video, audio, documents, stickers, an image known only by an
/// uploaded id) as the shared text degradation makes it: caption and link, or the caption. The
/// engine's own degradation (which would use `fallback_text`) leaves media to providers that
/// render media, and this API renders only images by link.
fn text_form(message: &Outbound) -> Result<String, BuildError> {
    match degrade(message, None, &Capabilities::TEXT_ONLY).message {
        Outbound::Text { text } => Ok(text.body),
        _ => Err(BuildError(
            "decisiontelecom sends text, templates and images by public link, and this message \
             has neither a link nor a caption to send as text"
                .to_owned(),
        )),
    }
}

/// The recipient as the number the document's example sends in `destination_addr`.
fn destination(to: &str) -> Result<u64, BuildError> {
    let digits = to.trim();
    let parsed = digits
        .bytes()
        .all(|byte| byte.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten();
    parsed.ok_or_else(|| {
        BuildError(format!(
            "the recipient {to:?} is not a phone number of digits"
        ))
    })
}

/// The sender must be what the API takes: 1–20 characters.
fn check_source_addr(source_addr: &str) -> Result<(), SettingsError> {
    let length = source_addr.chars().count();
    if (1..=SOURCE_ADDR_CHARS).contains(&length) {
        return Ok(());
    }
    Err(SettingsError::at(
        "source_addr",
        format!(
            "`source_addr` must be the sender name or number DecisionTelecom registered for you, \
             1 to {SOURCE_ADDR_CHARS} characters, not {source_addr:?}"
        ),
    ))
}

/// A URL key must be http(s), or every send (or callback) would fail later.
fn check_url(key: &str, url: &str) -> Result<(), SettingsError> {
    if is_web_url(url) {
        return Ok(());
    }
    Err(SettingsError::at(
        key,
        format!("`{key}` must be an http(s) url, not {url:?}"),
    ))
}

/// The body of `send-whatsapp`, field for field as the document lists them.
#[derive(Serialize)]
struct SendBody<'a> {
    source_addr: &'a str,
    destination_addr: u64,
    message_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template_params: Option<String>,
}

/// `template_params` before it is encoded: `{to, type, template}`.
#[derive(Serialize)]
struct TemplateParams<'a> {
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    template: TemplateObject<'a>,
}

/// `template_params.template`: Meta's components under the namespace and language policy.
#[derive(Serialize)]
struct TemplateObject<'a> {
    namespace: &'a str,
    language: Language<'a>,
    name: &'a str,
    #[serde(skip_serializing_if = "<[TemplateComponent]>::is_empty")]
    components: &'a [TemplateComponent],
}

/// `template_params.template.language`.
#[derive(Serialize)]
struct Language<'a> {
    policy: &'static str,
    code: &'a str,
}

/// An id the API writes as a number (`554`) and that may come as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Number(u64),
    Text(String),
}

impl Id {
    fn into_text(self) -> String {
        match self {
            Self::Number(number) => number.to_string(),
            Self::Text(text) => text,
        }
    }
}

/// The answer to a send: `{"message_id": 554}`, or an error of the document's table
/// `{"message": …, "code": 7, "status": 503}`.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    message_id: Option<Id>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<i64>,
}

/// A status callback: `{"message_id": 554, "status": 1}`.
#[derive(Deserialize)]
struct Callback {
    message_id: Id,
    status: u8,
}

/// The document's numbered statuses as delivery progress; the failures keep their number and
/// name as the error. `None` for a number the document does not list.
fn status_kind(status: u8) -> Option<(StatusKind, Option<&'static str>)> {
    let kind = match status {
        1 => (StatusKind::Delivered, None),
        2 => (StatusKind::Failed, Some("rejected")),
        3 => (StatusKind::Failed, Some("error")),
        4 => (StatusKind::Failed, Some("failed")),
        // Removed before it reached the phone: a final state without delivery.
        5 => (StatusKind::Failed, Some("deleted")),
        // Accepted and on its way: the nearest WhatsApp state is sent.
        6 => (StatusKind::Sent, None),
        7 => (StatusKind::Read, None),
        _ => return None,
    };
    Some(kind)
}

/// The status event of a callback body, or `None` when it is not one.
fn status_event(value: &Value) -> Option<InboundEvent> {
    let callback = Callback::deserialize(value).ok()?;
    let (status, failure) = status_kind(callback.status)?;
    let errors = failure.map(|title| StatusError {
        code: i64::from(callback.status),
        title: Some(title.to_owned()),
    });
    Some(InboundEvent::Status(DeliveryStatus {
        message_id: callback.message_id.into_text(),
        // The callback names neither the recipient nor a time.
        recipient: String::new(),
        status,
        timestamp: 0,
        errors: errors.into_iter().collect(),
        pricing: None,
    }))
}

/// The error codes of the document's table; `None` for a code it does not list, which is then
/// decided by HTTP status.
fn by_code(
    code: i64,
    status: Option<i64>,
    wait: Option<std::time::Duration>,
) -> Option<SendFailure> {
    let decision = match code {
        // Rate limit exceeded (429). A framework error that only defaults its code to 0 names
        // another status in the body: that one is judged by status.
        0 if status.is_none_or(|status| status == 429) => SendFailure::RateLimited(wait),
        // More than 24 hours since the customer last wrote: only a template may go (sent as 503).
        7 => SendFailure::OutsideWindow,
        // The server met an unexpected condition (500).
        2 | 4..=6 => SendFailure::Retry,
        // A parameter is empty or invalid, the balance is empty (an operator must top it up),
        // the image's MIME type or extension is not jpg/png: the same request cannot succeed.
        1 | 3 | 8 | 9 => SendFailure::DoNotRetry,
        _ => return None,
    };
    Some(decision)
}

/// `http 503, code 7: <the provider's message>`.
fn describe(http: u16, code: i64, message: Option<&str>) -> String {
    let message = message.unwrap_or("no message");
    format!("http {http}, code {code}: {message}")
}

impl Provider for DecisionTelecom {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// The document signs nothing; the channel's `inbound_secret_header`, when set, is checked
    /// by the channel before this.
    fn verify(&self, _request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        Ok(())
    }

    /// A status callback becomes a delivery status; any other JSON is kept as unrecognized.
    fn parse(&self, body: &[u8]) -> Result<Parsed, ParseError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| ParseError(format!("body is not json: {error}")))?;
        let mut parsed = Parsed::default();
        match status_event(&value) {
            Some(event) => parsed.events.push(RoutedEvent { route: None, event }),
            None => parsed.unrecognized.push(value),
        }
        Ok(parsed)
    }

    fn send_request(&self, to: &str, message: &Outbound) -> Result<HttpRequest, BuildError> {
        let body = serde_json::to_value(self.body(to, message)?)
            .map_err(|error| BuildError(format!("the message is not valid json: {error}")))?;
        let content_type = HeaderValue::Plain("application/json".to_owned());
        Ok(HttpRequest {
            method: "POST",
            url: self.url.clone(),
            headers: vec![
                (
                    "Authorization".to_owned(),
                    HeaderValue::Secret(self.authorization.clone()),
                ),
                ("Content-Type".to_owned(), content_type),
            ],
            body: Some(body),
        })
    }

    /// An error code in the body decides, whatever the HTTP status (code 7 comes as 503, which
    /// alone would mean "retry"); without one, a 2xx is sent and anything else is judged by
    /// its status.
    fn enforces_window(&self) -> bool {
        true
    }

    fn classify_code(&self, code: i64) -> Option<SendFailure> {
        by_code(code, None, None)
    }

    fn read_response(&self, response: &HttpResponse) -> Result<Sent, SendError> {
        let wait = retry_after(response.headers.get("retry-after").map(String::as_str));
        let answer = serde_json::from_slice::<Answer>(&response.body).ok();
        let failure = |decision, detail| SendError {
            provider: NAME,
            decision,
            detail,
        };
        match answer {
            Some(Answer {
                code: Some(code),
                message,
                status,
                ..
            }) => {
                let decision =
                    by_code(code, status, wait).unwrap_or_else(|| by_status(response.status, wait));
                Err(failure(
                    decision,
                    describe(response.status, code, message.as_deref()),
                ))
            }
            answer if (200..300).contains(&response.status) => Ok(Sent {
                provider_id: answer.and_then(|a| a.message_id).map(Id::into_text),
            }),
            _ => Err(failure(by_status(response.status, wait), excerpt(response))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_base64_with_padding() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("key:", "a2V5Og=="),
            ("\u{ff}\u{fe}", "w7/Dvg=="),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn every_code_of_the_table_has_a_decision() {
        for code in 0..=9 {
            assert!(by_code(code, None, None).is_some(), "{code}");
        }
        assert_eq!(by_code(10, None, None), None);
        assert_eq!(by_code(0, Some(401), None), None);
    }

    #[test]
    fn every_status_of_the_document_is_known() {
        assert!((1..=7).all(|status| status_kind(status).is_some()));
        assert_eq!(status_kind(0), None);
        assert_eq!(status_kind(8), None);
    }
}
