//! The inbound mapping every provider accepts (DESIGN §7): JSON pointers that say where a
//! webhook body keeps the sender, the text and the rest, and a shared-secret header that
//! authenticates it. This is how providers whose documents describe no inbound format — and any
//! `generic` channel — receive messages.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Parsed, RoutedEvent, Secret, VerifyError, WebhookRequest};
use crate::message::{Content, InboundEvent, InboundMessage};

/// Where a webhook body keeps each part of a message, as JSON pointers (RFC 6901, e.g.
/// `/data/sender`). Only `from` is required: a body whose sender cannot be found is not a
/// message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundMapping {
    /// The sender. A value that looks like a phone number keeps its digits only (`+62 812-3456`
    /// → `628123456`), so the contact is the same one the provider sends to; any other value
    /// is the provider's user id, kept as given.
    pub from: JsonPointer,
    /// The sender's profile name.
    #[serde(default)]
    pub name: Option<JsonPointer>,
    /// The provider's message id, which dedupes redeliveries. Without it the id is a hash of
    /// the body, so an identical redelivery still dedupes (and so would two identical bodies,
    /// which is why `id` or `timestamp` should be mapped when the provider has them).
    #[serde(default)]
    pub id: Option<JsonPointer>,
    /// The typed text (or caption).
    #[serde(default)]
    pub text: Option<JsonPointer>,
    /// The message kind, as the provider names it. It only names a message that carries
    /// neither text nor a reply id (kept as `Unsupported`, so `event: any` flows and the log
    /// still see it): a message with text is read as text whatever its kind, since a mapping of
    /// pointers cannot know each provider's media or location shapes.
    #[serde(default, rename = "type")]
    pub kind: Option<JsonPointer>,
    /// The id of a tapped button or chosen row; it makes the message a button reply whose
    /// title is the text (or the id when there is no text).
    #[serde(default)]
    pub reply_id: Option<JsonPointer>,
    /// When the user sent it, in Unix seconds (milliseconds are recognised and converted);
    /// unmapped or unreadable, it is 0, the mark of a provider that gave no time.
    #[serde(default)]
    pub timestamp: Option<JsonPointer>,
}

/// The kind given to a message that has no text, no reply id and no readable `type`.
const UNKNOWN_KIND: &str = "unknown";

/// Timestamps above this are read as milliseconds (it is the year 5138 in seconds).
const MILLISECONDS_FROM: i64 = 100_000_000_000;

impl InboundMapping {
    /// The message in `body`; `None` when the sender cannot be found, so the caller can record
    /// the body as unrecognized instead of inventing a contact.
    #[must_use]
    pub fn parse(&self, body: &Value) -> Option<InboundMessage> {
        let from = sender(self.from.text(body)?);
        let text = self.text.as_ref().and_then(|pointer| pointer.text(body));
        let reply_id = self
            .reply_id
            .as_ref()
            .and_then(|pointer| pointer.text(body));
        Some(InboundMessage {
            id: self
                .id
                .as_ref()
                .and_then(|pointer| pointer.text(body))
                .unwrap_or_else(|| body_hash(body)),
            from,
            name: self.name.as_ref().and_then(|pointer| pointer.text(body)),
            timestamp: self
                .timestamp
                .as_ref()
                .and_then(|pointer| timestamp(pointer.get(body)?))
                .unwrap_or(0),
            content: self.content(body, text, reply_id),
            reply_to: None,
            referral: None,
        })
    }

    /// Every message in a webhook body: each element of a top-level array (providers that
    /// batch), or the body itself. What the mapping cannot read is kept as unrecognized.
    #[must_use]
    pub fn parse_webhook(&self, body: &Value) -> Parsed {
        let items = match body {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        let mut parsed = Parsed::default();
        for item in items {
            match self.parse(item) {
                Some(message) => {
                    parsed.events.push(RoutedEvent {
                        route: None,
                        event: InboundEvent::Message(message),
                    });
                }
                None => parsed.unrecognized.push(item.clone()),
            }
        }
        parsed
    }

    fn content(&self, body: &Value, text: Option<String>, reply_id: Option<String>) -> Content {
        match (reply_id, text) {
            (Some(id), title) => Content::ButtonReply {
                title: title.unwrap_or_else(|| id.clone()),
                id,
            },
            (None, Some(body)) => Content::Text { body },
            (None, None) => {
                let kind = self.kind.as_ref().and_then(|pointer| pointer.text(body));
                Content::Unsupported {
                    kind: kind.unwrap_or_else(|| UNKNOWN_KIND.to_owned()),
                    raw: body.clone(),
                }
            }
        }
    }
}

/// A JSON pointer (RFC 6901), checked when the config is read.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonPointer(String);

impl JsonPointer {
    /// Checks `pointer`'s syntax, so a mapping written as `data.sender` fails at startup instead
    /// of never matching.
    ///
    /// # Errors
    /// It is not empty and does not start with `/`.
    pub fn new(pointer: impl Into<String>) -> Result<Self, String> {
        let pointer = pointer.into();
        if pointer.is_empty() || pointer.starts_with('/') {
            return Ok(Self(pointer));
        }
        Err(format!(
            "\"{pointer}\" is not a JSON pointer; write it as \"/{}\"",
            pointer.replace('.', "/")
        ))
    }

    /// The value it points at.
    #[must_use]
    pub fn get<'a>(&self, body: &'a Value) -> Option<&'a Value> {
        body.pointer(&self.0)
    }

    /// The value it points at as text: strings trimmed, numbers and booleans written out; empty
    /// strings, nulls, objects and arrays are `None`.
    #[must_use]
    pub fn text(&self, body: &Value) -> Option<String> {
        let text = match self.get(body)? {
            Value::String(text) => text.trim().to_owned(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            Value::Null | Value::Array(_) | Value::Object(_) => return None,
        };
        (!text.is_empty()).then_some(text)
    }
}

impl fmt::Debug for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// The contact id: a phone number as digits only, anything else as given.
fn sender(from: String) -> String {
    if !looks_like_phone(&from) {
        return from;
    }
    from.chars().filter(char::is_ascii_digit).collect()
}

/// Digits with the usual phone punctuation (`+62 812-3456`, `(021) 555.1234`) and 7–15
/// digits, E.164's longest; a user id with letters or other marks is not one.
fn looks_like_phone(value: &str) -> bool {
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | ' ');
    let digits = value.chars().filter(char::is_ascii_digit).count();
    value.chars().all(allowed)
        && value.rfind('+').is_none_or(|at| at == 0)
        && (7..=15).contains(&digits)
}

/// Unix seconds from a number or numeric string; milliseconds are scaled down.
fn timestamp(value: &Value) -> Option<i64> {
    let seconds = match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|float| float as i64))?,
        Value::String(text) => text.trim().parse().ok()?,
        _ => return None,
    };
    Some(if seconds >= MILLISECONDS_FROM {
        seconds / 1000
    } else {
        seconds
    })
}

/// A stable id for a body that carries none: the same bytes give the same id.
fn body_hash(body: &Value) -> String {
    let digest = Sha256::digest(body.to_string().as_bytes());
    format!("sha256:{}", hex::encode(&digest[..16]))
}

/// A header carrying a shared secret: the simplest authentication a provider can be given
/// when it signs nothing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretHeader {
    /// The header's name, in any case (HTTP header names are case-insensitive).
    pub name: String,
    /// The value it must carry.
    pub value: Secret,
}

impl SecretHeader {
    /// Accepts a webhook carrying the secret.
    ///
    /// # Errors
    /// The header is missing, or its value differs (compared in constant time).
    pub fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        let given = request
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(self.name.trim()))
            .map(|(_, value)| value)
            .ok_or(VerifyError::Missing("secret header"))?;
        if self.value.matches(given.as_bytes()) {
            return Ok(());
        }
        Err(VerifyError::Mismatch("secret header"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mapping(value: Value) -> InboundMapping {
        serde_json::from_value(value).expect("mapping is valid")
    }

    fn full() -> InboundMapping {
        mapping(json!({
            "from": "/data/sender", "name": "/data/name", "id": "/data/id", "text": "/data/text",
            "type": "/data/type", "reply_id": "/data/button", "timestamp": "/data/time"
        }))
    }

    #[test]
    fn reads_every_mapped_part() {
        let body = json!({"data": {"sender": "+62 812-3456-789", "name": "Ann", "id": 42, "text": " hi ", "type": "text", "time": "1700000000"}});
        let message = full().parse(&body).expect("sender found");
        assert_eq!(message.from, "628123456789");
        assert_eq!(message.name.as_deref(), Some("Ann"));
        assert_eq!(message.id, "42");
        assert_eq!(message.timestamp, 1_700_000_000);
        assert_eq!(
            message.content,
            Content::Text {
                body: "hi".to_owned()
            }
        );
    }

    #[test]
    fn without_a_sender_there_is_no_message() {
        assert_eq!(full().parse(&json!({"data": {"text": "hi"}})), None);
        assert_eq!(
            full().parse(&json!({"data": {"sender": {"id": 1}, "text": "hi"}})),
            None
        );
        assert_eq!(
            full().parse(&json!({"data": {"sender": "  ", "text": "hi"}})),
            None
        );
    }

    #[test]
    fn a_sender_that_is_not_a_phone_number_is_kept() {
        for id in ["user-abc", "U12345", "12-34", "62812@c.us", "62+812345678"] {
            let message = full()
                .parse(&json!({"data": {"sender": id, "text": "hi"}}))
                .expect("sender found");
            assert_eq!(message.from, id);
        }
        let numeric = full()
            .parse(&json!({"data": {"sender": 628_123_456_789_u64}}))
            .expect("sender found");
        assert_eq!(numeric.from, "628123456789");
    }

    #[test]
    fn a_reply_id_makes_a_button_reply() {
        let body = json!({"data": {"sender": "15550001111", "button": "large", "text": "Large"}});
        let message = full().parse(&body).expect("sender found");
        assert_eq!(
            message.content,
            Content::ButtonReply {
                id: "large".to_owned(),
                title: "Large".to_owned()
            }
        );
        let bare = full()
            .parse(&json!({"data": {"sender": "15550001111", "button": 2}}))
            .expect("sender found");
        assert_eq!(
            bare.content,
            Content::ButtonReply {
                id: "2".to_owned(),
                title: "2".to_owned()
            }
        );
    }

    #[test]
    fn a_message_without_text_keeps_its_kind_and_body() {
        let body = json!({"data": {"sender": "15550001111", "type": "image"}});
        let message = full().parse(&body).expect("sender found");
        assert_eq!(
            message.content,
            Content::Unsupported {
                kind: "image".to_owned(),
                raw: body
            }
        );
        let bare = mapping(json!({"from": "/from"}))
            .parse(&json!({"from": "15550001111"}))
            .expect("sender found");
        assert!(
            matches!(bare.content, Content::Unsupported { ref kind, .. } if kind == UNKNOWN_KIND)
        );
    }

    #[test]
    fn missing_ids_are_stable_hashes_and_missing_times_are_zero() {
        let body = json!({"from": "15550001111", "text": "hi"});
        let mapping = mapping(json!({"from": "/from", "text": "/text"}));
        let first = mapping.parse(&body).expect("sender found");
        let again = mapping.parse(&body.clone()).expect("sender found");
        let other = mapping
            .parse(&json!({"from": "15550001111", "text": "hi!"}))
            .expect("sender found");
        assert_eq!(first.id, again.id);
        assert_ne!(first.id, other.id);
        assert!(first.id.starts_with("sha256:") && first.id.len() == 7 + 32);
        assert_eq!(first.timestamp, 0);
    }

    #[test]
    fn timestamps_in_milliseconds_or_floats_become_seconds() {
        assert_eq!(
            timestamp(&json!(1_700_000_000_123_i64)),
            Some(1_700_000_000)
        );
        assert_eq!(timestamp(&json!(1_700_000_000.5)), Some(1_700_000_000));
        assert_eq!(timestamp(&json!("soon")), None);
    }

    #[test]
    fn batches_are_read_item_by_item() {
        let mapping = mapping(json!({"from": "/from", "text": "/text"}));
        let parsed =
            mapping.parse_webhook(&json!([{"from": "15550001111", "text": "a"}, {"ack": 1}]));
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.unrecognized, vec![json!({"ack": 1})]);
    }

    #[test]
    fn pointers_are_checked_and_unknown_keys_refused() {
        let error = serde_json::from_value::<InboundMapping>(json!({"from": "data.sender"}))
            .expect_err("not a pointer");
        assert!(
            error.to_string().contains("write it as \"/data/sender\""),
            "{error}"
        );
        let error = serde_json::from_value::<InboundMapping>(json!({"from": "/a", "txt": "/b"}))
            .expect_err("typo");
        assert!(error.to_string().contains("unknown field `txt`"), "{error}");
        assert!(serde_json::from_value::<InboundMapping>(json!({"text": "/b"})).is_err());
    }

    fn header() -> SecretHeader {
        serde_json::from_value(json!({"name": "X-Webhook-Secret", "value": "s3cret"}))
            .expect("header is valid")
    }

    fn verify(headers: &[(&str, &str)]) -> Result<(), VerifyError> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        header().verify(&WebhookRequest {
            headers: &headers,
            body: b"{}",
        })
    }

    #[test]
    fn the_secret_header_is_checked_by_name_in_any_case() {
        assert_eq!(verify(&[("x-webhook-secret", "s3cret")]), Ok(()));
        assert_eq!(verify(&[("X-WEBHOOK-SECRET", "s3cret")]), Ok(()));
        assert_eq!(
            verify(&[("x-webhook-secret", "s3cret!")]),
            Err(VerifyError::Mismatch("secret header"))
        );
        assert_eq!(
            verify(&[("x-other", "s3cret")]),
            Err(VerifyError::Missing("secret header"))
        );
        assert_eq!(
            format!("{:?}", header()),
            "SecretHeader { name: \"X-Webhook-Secret\", value: **REDACTED** }"
        );
    }
}
