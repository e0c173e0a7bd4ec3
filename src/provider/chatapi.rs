//! The Chat API provider (`specs/providers/chat-api.txt`): a WhatsApp Web gateway whose webhook
//! posts `messages[]` and `ack[]`, and whose REST API sends text with `/sendMessage` and files by
//! link with `/sendFile`, the token always in the query string.
//!
//! It renders text and linked media only: the engine turns menus into numbered text first.

use crate::provider::classify::failure_detail;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::classify::{by_status, retry_after};
use super::registry::{SettingsError, read_settings};
use super::{
    BuildError, Capabilities, HttpRequest, HttpResponse, ParseError, Parsed, Provider, RoutedEvent,
    Secret, SendError, SendFailure, Sent, VerifyError, WebhookRequest,
};
use crate::message::inbound::InboundMedia;
use crate::message::outbound::Media;
use crate::message::{
    Content, DeliveryStatus, InboundEvent, InboundMessage, MediaKind, Outbound, StatusKind,
};

/// The `provider:` name of this provider in the config.
const NAME: &str = "chatapi";

/// One Chat API instance: its URL and the token that opens it.
///
/// Debug shows the instance URL but never the token, which is added to a request's query only
/// when the request is built.
#[derive(Debug, Clone)]
pub struct ChatApi {
    /// The instance URL (`https://eu14.chat-api.com/instance12345`), without a query.
    base: Url,
    /// Sent as `?token=` on every request (the document's only way to authenticate).
    token: Secret,
}

/// The Chat API keys of a channel (DESIGN §7), exactly as written in `chatflow.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    token: Secret,
}

impl ChatApi {
    /// Builds the provider from a channel's `base_url` (the instance URL, which has no default:
    /// every instance has its own) and its `token`, so a missing or misspelt key stops the start
    /// with the key named instead of failing at the first send.
    ///
    /// # Errors
    /// A missing, unknown or empty key, or a `base_url` that is missing, not an http(s) URL, or
    /// carries a query (the token goes in `token`, where it is kept secret).
    pub fn from_settings(
        base_url: Option<&str>,
        settings: &Map<String, Value>,
    ) -> Result<Self, SettingsError> {
        let settings: Settings = read_settings(settings)?;
        if settings.token.expose().trim().is_empty() {
            return Err(SettingsError::at(
                "token",
                "`token` is empty; copy the instance's token from the chat api dashboard",
            ));
        }
        Ok(Self {
            base: instance_url(base_url)?,
            token: settings.token,
        })
    }

    /// `{base_url}/{method}?token=…`.
    ///
    /// The URL holds the token, so a request must never be logged with its URL (the shared
    /// client reports only the host of a failed request).
    fn endpoint(&self, method: &str) -> String {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/{method}",
            self.base.path().trim_end_matches('/')
        ));
        url.query_pairs_mut()
            .append_pair("token", self.token.expose());
        url.into()
    }

    /// `POST {method}` with a JSON body.
    fn post(&self, method: &str, body: Value) -> HttpRequest {
        HttpRequest {
            method: "POST",
            url: self.endpoint(method),
            headers: Vec::new(),
            body: Some(body),
        }
    }
}

/// The instance URL, checked now so a typo is named at startup.
fn instance_url(base_url: Option<&str>) -> Result<Url, SettingsError> {
    let example = "such as https://eu14.chat-api.com/instance12345";
    let Some(text) = base_url.map(str::trim) else {
        return Err(SettingsError::at(
            "base_url",
            format!("a chatapi channel needs `base_url`: the instance url, {example}"),
        ));
    };
    let url = Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"));
    let Some(url) = url else {
        return Err(SettingsError::at(
            "base_url",
            format!("`base_url` must be the instance's http(s) url, {example}, not {text:?}"),
        ));
    };
    if url.query().is_some() {
        return Err(SettingsError::at(
            "base_url",
            "`base_url` must not carry a query; put the token in `token`, which is kept secret",
        ));
    }
    Ok(url)
}

impl Provider for ChatApi {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Text, and files by link through `/sendFile`.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            media: true,
            ..Capabilities::TEXT_ONLY
        }
    }

    /// Chat API signs nothing and its webhook URL takes no headers: accepted as it comes.
    fn verify(&self, _request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        Ok(())
    }

    fn parse(&self, body: &[u8]) -> Result<Parsed, ParseError> {
        webhook::parse(body)
    }

    /// Text to `/sendMessage`, linked media to `/sendFile`; `to` is a phone number (digits) or
    /// a chat id (`…@c.us`, a group's `…@g.us`), as the contact was keyed when it wrote.
    fn send_request(&self, to: &str, message: &Outbound) -> Result<HttpRequest, BuildError> {
        let (key, to) = recipient(to)?;
        let (method, fields) = match message {
            Outbound::Text { text } => ("sendMessage", vec![("body", text.body.clone())]),
            Outbound::Image { image: media } => ("sendFile", file(media, "image.jpg")?),
            Outbound::Video { video: media } => ("sendFile", file(media, "video.mp4")?),
            Outbound::Audio { audio: media } => ("sendFile", file(media, "audio.ogg")?),
            Outbound::Document { document: media } => ("sendFile", file(media, "document.pdf")?),
            Outbound::Sticker { sticker: media } => ("sendFile", file(media, "sticker.webp")?),
            _ => return Err(BuildError(NOT_SENDABLE.to_owned())),
        };
        let mut body = Map::new();
        body.insert(key.to_owned(), Value::from(to));
        for (name, value) in fields {
            body.insert(name.to_owned(), Value::from(value));
        }
        Ok(self.post(method, Value::Object(body)))
    }

    fn read_response(&self, response: &HttpResponse) -> Result<Sent, SendError> {
        answer::read(response)
    }

    /// `GET /status`: whether the instance is linked to a phone.
    fn health_request(&self) -> Option<HttpRequest> {
        Some(HttpRequest {
            method: "GET",
            url: self.endpoint("status"),
            headers: Vec::new(),
            body: None,
        })
    }

    /// Healthy only when `accountStatus` is `authenticated`; `got qr code` means the phone must
    /// scan the QR code again.
    fn read_health(&self, response: &HttpResponse) -> Result<(), String> {
        answer::health(response)
    }
}

/// Why a message is refused: the engine degrades every kind Chat API cannot render to text, so
/// what still arrives has no text form.
const NOT_SENDABLE: &str = "chat api sends text and files only, and this message has no text \
     form; give it a fallback_text";

/// `("phone", digits)` or `("chatId", id)`: the document takes either.
fn recipient(to: &str) -> Result<(&'static str, &str), BuildError> {
    let to = to.trim();
    if to.contains('@') {
        return Ok(("chatId", to));
    }
    let digits = to.strip_prefix('+').unwrap_or(to);
    if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(("phone", digits));
    }
    Err(BuildError(format!(
        "chat api sends to a phone number or a chat id (…@c.us, …@g.us), not {to:?}"
    )))
}

/// The `/sendFile` fields of linked media: `body` is the link, `filename` is required (the
/// media's own, else the link's last path segment, else `fallback_name`), `caption` optional.
fn file(media: &Media, fallback_name: &str) -> Result<Vec<(&'static str, String)>, BuildError> {
    let Some(link) = &media.link else {
        return Err(BuildError(
            "chat api sends files by link, and this one has only a media id (an upload to meta); \
             give it a url"
                .to_owned(),
        ));
    };
    let filename = media
        .filename
        .clone()
        .or_else(|| link_name(link))
        .unwrap_or_else(|| fallback_name.to_owned());
    let caption = media.caption.clone().map(|caption| ("caption", caption));
    Ok([("body", link.clone()), ("filename", filename)]
        .into_iter()
        .chain(caption)
        .collect())
}

/// The last path segment of `link` when it looks like a file name (`margherita.jpg`).
fn link_name(link: &str) -> Option<String> {
    let url = Url::parse(link).ok()?;
    let name = url.path_segments()?.next_back()?;
    name.contains('.').then(|| name.to_owned())
}

/// The webhook body (`messages[]` and `ack[]`) to events.
mod webhook {
    use super::{
        Content, DeliveryStatus, Deserialize, InboundEvent, InboundMedia, InboundMessage,
        MediaKind, ParseError, Parsed, RoutedEvent, StatusKind, Value,
    };

    /// One entry of `messages[]`, with the fields chatflow reads.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Message {
        id: String,
        /// The text for `chat`; a download link for `image`, `ptt`, `audio` and `document`.
        #[serde(default)]
        body: Option<String>,
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        sender_name: Option<String>,
        /// `true` for messages this account sent, chatflow's own replies included.
        from_me: bool,
        /// Unix seconds.
        #[serde(default)]
        time: Option<i64>,
        /// `17472822486@c.us` for a private chat, `…@g.us` for a group.
        chat_id: String,
    }

    /// One entry of `ack[]`.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Ack {
        id: String,
        chat_id: String,
        status: String,
    }

    /// Reads a webhook body. Only bytes that are not JSON are an error; an entry that is not
    /// readable is kept whole in [`Parsed::unrecognized`], without costing the rest.
    pub(super) fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
        let body: Value = serde_json::from_slice(body)
            .map_err(|error| ParseError(format!("body is not json: {error}")))?;
        let messages = body.get("messages").and_then(Value::as_array);
        let acks = body.get("ack").and_then(Value::as_array);
        let mut parsed = Parsed::default();
        if messages.is_none() && acks.is_none() {
            parsed.unrecognized.push(body);
            return Ok(parsed);
        }
        for raw in messages.into_iter().flatten() {
            read_message(raw, &mut parsed);
        }
        for raw in acks.into_iter().flatten() {
            read_ack(raw, &mut parsed);
        }
        Ok(parsed)
    }

    /// An incoming message becomes an event; one this account sent (`fromMe`) is dropped, since
    /// every reply chatflow sends comes back this way and must not be answered again.
    fn read_message(raw: &Value, parsed: &mut Parsed) {
        match Message::deserialize(raw) {
            Ok(message) if message.from_me => {}
            Ok(message) => push(parsed, InboundEvent::Message(inbound(message, raw))),
            Err(_) => parsed.unrecognized.push(raw.clone()),
        }
    }

    fn inbound(message: Message, raw: &Value) -> InboundMessage {
        InboundMessage {
            from: contact(&message.chat_id),
            name: message.sender_name.filter(|name| !name.trim().is_empty()),
            timestamp: message.time.unwrap_or(0),
            content: content(&message.kind, message.body, raw),
            id: message.id,
            reply_to: None,
            referral: None,
        }
    }

    /// `chat` is text, the file kinds are media by download link; anything else (`call_log`, a
    /// kind the document does not list) is kept raw as unsupported.
    fn content(kind: &str, body: Option<String>, raw: &Value) -> Content {
        let media_kind = match kind {
            "image" => Some(MediaKind::Image),
            "ptt" => Some(MediaKind::Voice),
            "audio" => Some(MediaKind::Audio),
            "document" => Some(MediaKind::Document),
            _ => None,
        };
        match (kind, media_kind, body) {
            ("chat", _, Some(body)) => Content::Text { body },
            (_, Some(kind), Some(url)) => Content::Media(InboundMedia {
                kind,
                id: None,
                url: Some(url),
                mime_type: None,
                caption: None,
                filename: None,
                sha256: None,
            }),
            _ => Content::Unsupported {
                kind: kind.to_owned(),
                raw: raw.clone(),
            },
        }
    }

    /// A delivery or read receipt of one of our messages; a status the document does not name
    /// is kept raw.
    fn read_ack(raw: &Value, parsed: &mut Parsed) {
        let status = Ack::deserialize(raw).ok().and_then(|ack| {
            Some(DeliveryStatus {
                status: ack_status(&ack.status)?,
                recipient: contact(&ack.chat_id),
                message_id: ack.id,
                timestamp: 0,
                errors: Vec::new(),
                pricing: None,
            })
        });
        match status {
            Some(status) => push(parsed, InboundEvent::Status(status)),
            None => parsed.unrecognized.push(raw.clone()),
        }
    }

    /// The document's two ack statuses: `delivered`, and `viewed` (read).
    fn ack_status(status: &str) -> Option<StatusKind> {
        match status {
            "delivered" => Some(StatusKind::Delivered),
            "viewed" => Some(StatusKind::Read),
            _ => None,
        }
    }

    /// The contact a chat belongs to: a private chat's phone number as digits (the same contact
    /// whatever reached us first, and `/sendMessage`'s `phone`), a group's whole chat id (replies
    /// go to the group, where the message was written).
    fn contact(chat_id: &str) -> String {
        match chat_id.strip_suffix("@c.us") {
            Some(phone) if !phone.is_empty() && phone.bytes().all(|b| b.is_ascii_digit()) => {
                phone.to_owned()
            }
            _ => chat_id.to_owned(),
        }
    }

    /// Every event belongs to the channel the webhook came in on.
    fn push(parsed: &mut Parsed, event: InboundEvent) {
        parsed.events.push(RoutedEvent { route: None, event });
    }
}

/// Chat API's answers, read as decisions.
mod answer {
    use super::{
        Deserialize, HttpResponse, NAME, SendError, SendFailure, Sent, by_status, failure_detail,
        retry_after,
    };

    /// `{"sent": true, "message": "ok"}`, the document's answer to a send.
    #[derive(Deserialize)]
    struct SendAnswer {
        #[serde(default)]
        sent: Option<bool>,
        #[serde(default)]
        message: Option<String>,
    }

    /// `{"accountStatus": "authenticated"}` (or `init`, `loading`, `got qr code`).
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct StatusAnswer {
        account_status: String,
    }

    /// `sent: true` is a send queued (the document's answer carries no message id); anything
    /// else fails. A non-2xx is judged by its HTTP status, since the document lists no error
    /// codes; a 2xx without `sent: true` (`sent: false`) is not retried, because the same
    /// request would be refused again and a resend risks a duplicate.
    pub(super) fn read(response: &HttpResponse) -> Result<Sent, SendError> {
        let answer = serde_json::from_slice::<SendAnswer>(&response.body).ok();
        let sent = answer.as_ref().and_then(|answer| answer.sent);
        let ok = (200..300).contains(&response.status);
        if ok && sent == Some(true) {
            return Ok(Sent { provider_id: None });
        }
        let decision = if ok {
            SendFailure::DoNotRetry
        } else {
            let wait = retry_after(response.headers.get("retry-after").map(String::as_str));
            by_status(response.status, wait)
        };
        let said = answer.and_then(|answer| answer.message);
        Err(SendError {
            provider: NAME,
            decision,
            detail: detail(response, said),
        })
    }

    /// What to do when the instance is not linked to a phone (the document's status table).
    const SCAN_QR_CODE: &str = "account status is \"got qr code\": scan the qr code in \
        whatsapp (menu > whatsapp web > add) within a minute to link the instance";

    /// The instance works once WhatsApp Web is authenticated.
    pub(super) fn health(response: &HttpResponse) -> Result<(), String> {
        if !(200..300).contains(&response.status) {
            return Err(detail(response, None));
        }
        let status = serde_json::from_slice::<StatusAnswer>(&response.body)
            .map_err(|_| detail(response, None))?
            .account_status;
        match status.as_str() {
            "authenticated" => Ok(()),
            "got qr code" => Err(SCAN_QR_CODE.to_owned()),
            other => Err(format!(
                "account status is {other:?}, not \"authenticated\""
            )),
        }
    }

    /// `http <status>: <what Chat API said>`, or the start of a body that is not its JSON; it
    /// never holds the request URL, which carries the token.
    fn detail(response: &HttpResponse, said: Option<String>) -> String {
        failure_detail(response, said.as_deref())
    }
}
