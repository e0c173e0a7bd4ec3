//! Meta Cloud API webhook objects (spec §3, §4) to the normalized inbound model.
//!
//! The private `Wire*` structs mirror Meta's JSON and ignore fields they do not name, because Meta
//! adds fields without notice. Kinds this parser does not know, and known kinds that arrive
//! without their body, become [`Content::Unsupported`] with the raw object, so nothing is lost
//! and nothing panics; only a missing `id`/`from` or a wrongly typed field is an error.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::inbound::{
    Content, DeliveryStatus, InboundMedia, InboundMessage, MediaKind, Order, OrderItem,
    SharedLocation, StatusError, StatusKind,
};

/// Why a Meta message or status object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetaParseError {
    /// The object is a JSON array, string or number, not a JSON object.
    #[error("expected a json object")]
    NotAnObject,
    /// A field every message or status has is absent or empty.
    #[error("`{0}` is missing")]
    Missing(&'static str),
    /// A field has the wrong type, or a field its kind needs is absent.
    #[error("`{path}` is malformed")]
    Malformed {
        /// Where in the object, e.g. `location.latitude`.
        path: String,
        /// What serde found there.
        #[source]
        source: serde_json::Error,
    },
    /// Meta sends Unix seconds as a string; this was neither that nor a number.
    #[error("timestamp {0} is not unix seconds")]
    Timestamp(String),
    /// A status this model has no kind for, such as a call's `RINGING`.
    #[error("status \"{0}\" is not a message delivery status")]
    UnknownStatus(String),
}

/// The fields every message object has, whatever its kind.
#[derive(Deserialize)]
struct WireMessage {
    id: Option<String>,
    from: Option<String>,
    /// Business-scoped user id, for users whose `from` is empty (spec §2).
    from_user_id: Option<String>,
    timestamp: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
    context: Option<WireContext>,
    referral: Option<Value>,
}

#[derive(Deserialize)]
struct WireContext {
    id: Option<String>,
}

#[derive(Deserialize)]
struct WireText {
    body: String,
}

#[derive(Deserialize)]
struct WireMedia {
    id: Option<String>,
    url: Option<String>,
    mime_type: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    sha256: Option<String>,
    voice: Option<bool>,
}

#[derive(Deserialize)]
struct WireLocation {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct WireReply {
    id: String,
    #[serde(default)]
    title: String,
    description: Option<String>,
}

#[derive(Deserialize)]
struct WireFlowReply {
    name: Option<String>,
    body: Option<String>,
    response_json: Option<Value>,
}

#[derive(Deserialize)]
struct WireButton {
    payload: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireOrder {
    catalog_id: String,
    text: Option<String>,
    #[serde(default)]
    product_items: Vec<WireOrderItem>,
}

#[derive(Deserialize)]
struct WireOrderItem {
    product_retailer_id: String,
    quantity: i64,
    item_price: f64,
    currency: String,
}

#[derive(Deserialize)]
struct WireReaction {
    message_id: String,
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct WireSystem {
    #[serde(rename = "type")]
    kind: Option<String>,
    body: Option<String>,
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct WireStatus {
    id: Option<String>,
    status: Option<String>,
    timestamp: Option<Value>,
    recipient_id: Option<String>,
    recipient_user_id: Option<String>,
    errors: Option<Vec<WireError>>,
    pricing: Option<Value>,
}

#[derive(Deserialize)]
struct WireError {
    code: i64,
    title: Option<String>,
    message: Option<String>,
}

/// One element of `value.messages[]`, with the sender's profile name from `value.contacts[]`
/// (which the caller matches by `wa_id`), as the runtime sees it.
pub fn parse_message(object: &Value, name: Option<&str>) -> Result<InboundMessage, MetaParseError> {
    let wire: WireMessage = decode(object, "")?;
    let from = [wire.from, wire.from_user_id]
        .into_iter()
        .flatten()
        .find(|id| !id.is_empty());
    let id = wire
        .id
        .filter(|id| !id.is_empty())
        .ok_or(MetaParseError::Missing("id"))?;
    let kind = wire.kind.ok_or(MetaParseError::Missing("type"))?;
    Ok(InboundMessage {
        id,
        from: from.ok_or(MetaParseError::Missing("from"))?,
        name: name.map(str::to_owned),
        timestamp: timestamp(wire.timestamp.as_ref())?,
        content: content(&kind, object)?,
        reply_to: wire.context.and_then(|context| context.id),
        referral: wire.referral,
    })
}

/// One element of `value.statuses[]`: what happened to a message we sent.
pub fn parse_status(object: &Value) -> Result<DeliveryStatus, MetaParseError> {
    let wire: WireStatus = decode(object, "")?;
    let recipient = [wire.recipient_id, wire.recipient_user_id]
        .into_iter()
        .flatten()
        .find(|id| !id.is_empty());
    let errors = wire
        .errors
        .unwrap_or_default()
        .into_iter()
        .map(|error| StatusError {
            code: error.code,
            title: error.title.or(error.message),
        });
    Ok(DeliveryStatus {
        message_id: wire
            .id
            .filter(|id| !id.is_empty())
            .ok_or(MetaParseError::Missing("id"))?,
        recipient: recipient.ok_or(MetaParseError::Missing("recipient_id"))?,
        status: status_kind(
            wire.status
                .as_deref()
                .ok_or(MetaParseError::Missing("status"))?,
        )?,
        timestamp: timestamp(wire.timestamp.as_ref())?,
        errors: errors.collect(),
        pricing: wire.pricing,
    })
}

/// The message id in a send answer (`messages[0].id`, spec §5.2), which the WhatsApp Business
/// API gives alike on the Cloud API and on-premise; a 2xx without one (a mark-read answer) was
/// still accepted, so its absence is not a failure.
#[must_use]
pub fn sent_message_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct SendAnswer {
        #[serde(default)]
        messages: Vec<SentMessage>,
    }
    #[derive(Deserialize)]
    struct SentMessage {
        id: String,
    }
    let answer: SendAnswer = serde_json::from_slice(body).ok()?;
    answer.messages.into_iter().next().map(|message| message.id)
}

/// Reads `value` as `T`, naming the field that failed, prefixed with `at` (the kind's key).
fn decode<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, MetaParseError> {
    if !value.is_object() {
        return Err(match at {
            "" => MetaParseError::NotAnObject,
            _ => malformed(
                at,
                <serde_json::Error as serde::de::Error>::custom("expected a json object"),
            ),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let inner = error.path().to_string();
        let path = match (at, inner.as_str()) {
            (_, ".") => at.to_owned(),
            ("", _) => inner,
            _ => format!("{at}.{inner}"),
        };
        malformed(&path, error.into_inner())
    })
}

fn malformed(path: &str, source: serde_json::Error) -> MetaParseError {
    MetaParseError::Malformed {
        path: path.to_owned(),
        source,
    }
}

/// Unix seconds, sent by Meta as a string; a plain number is accepted too.
fn timestamp(value: Option<&Value>) -> Result<i64, MetaParseError> {
    let parsed = match value {
        None | Some(Value::Null) => return Err(MetaParseError::Missing("timestamp")),
        Some(Value::String(text)) => text.trim().parse().ok(),
        Some(Value::Number(number)) => number.as_i64(),
        Some(_) => None,
    };
    parsed.ok_or_else(|| MetaParseError::Timestamp(value.map(Value::to_string).unwrap_or_default()))
}

fn status_kind(status: &str) -> Result<StatusKind, MetaParseError> {
    match status.to_ascii_lowercase().as_str() {
        "sent" => Ok(StatusKind::Sent),
        "delivered" => Ok(StatusKind::Delivered),
        "read" => Ok(StatusKind::Read),
        "played" => Ok(StatusKind::Played),
        "failed" => Ok(StatusKind::Failed),
        _ => Err(MetaParseError::UnknownStatus(status.to_owned())),
    }
}

/// The content of a message of type `kind`, read from the object's key of the same name.
fn content(kind: &str, object: &Value) -> Result<Content, MetaParseError> {
    if kind == "unsupported" {
        let reported = object.pointer("/unsupported/type").and_then(Value::as_str);
        return Ok(unsupported(reported.unwrap_or(kind), object));
    }
    let Some(body) = object.get(kind).filter(|body| !body.is_null()) else {
        return Ok(unsupported(kind, object));
    };
    match kind {
        "text" => decode::<WireText>(body, kind).map(|text| Content::Text { body: text.body }),
        "image" | "video" | "audio" | "document" | "sticker" => media(kind, body),
        "location" => location(body),
        "contacts" => contacts(body),
        "interactive" => interactive(body, object),
        "button" => quick_reply(body),
        "order" => order(body),
        "reaction" => reaction(body),
        "system" => system(body),
        _ => Ok(unsupported(kind, object)),
    }
}

fn unsupported(kind: &str, object: &Value) -> Content {
    Content::Unsupported {
        kind: kind.to_owned(),
        raw: object.clone(),
    }
}

fn media(kind: &str, body: &Value) -> Result<Content, MetaParseError> {
    let wire: WireMedia = decode(body, kind)?;
    let kind = match kind {
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" if wire.voice == Some(true) => MediaKind::Voice,
        "audio" => MediaKind::Audio,
        "document" => MediaKind::Document,
        _ => MediaKind::Sticker,
    };
    Ok(Content::Media(InboundMedia {
        kind,
        id: wire.id,
        url: wire.url,
        mime_type: wire.mime_type,
        caption: wire.caption,
        filename: wire.filename,
        sha256: wire.sha256,
    }))
}

fn location(body: &Value) -> Result<Content, MetaParseError> {
    let wire: WireLocation = decode(body, "location")?;
    Ok(Content::Location(SharedLocation {
        latitude: wire.latitude,
        longitude: wire.longitude,
        name: wire.name,
        address: wire.address,
        url: wire.url,
    }))
}

fn contacts(body: &Value) -> Result<Content, MetaParseError> {
    let Value::Array(cards) = body else {
        let source =
            <serde_json::Error as serde::de::Error>::custom("expected a list of contact cards");
        return Err(malformed("contacts", source));
    };
    Ok(Content::Contacts {
        contacts: cards.clone(),
    })
}

/// Replies to our interactive messages, by `interactive.type`; unknown types are kept raw.
fn interactive(body: &Value, object: &Value) -> Result<Content, MetaParseError> {
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("interactive");
    let Some(reply) = body.get(kind).filter(|reply| !reply.is_null()) else {
        return Ok(unsupported(kind, object));
    };
    let at = format!("interactive.{kind}");
    match kind {
        "button_reply" => {
            let wire: WireReply = decode(reply, &at)?;
            Ok(Content::ButtonReply {
                id: wire.id,
                title: wire.title,
            })
        }
        "list_reply" => {
            let wire: WireReply = decode(reply, &at)?;
            Ok(Content::ListReply {
                id: wire.id,
                title: wire.title,
                description: wire.description,
            })
        }
        "nfm_reply" => {
            let wire: WireFlowReply = decode(reply, &at)?;
            Ok(Content::FlowReply {
                name: wire.name.unwrap_or_default(),
                body: wire.body,
                response: flow_response(wire.response_json),
            })
        }
        _ => Ok(unsupported(kind, object)),
    }
}

/// `response_json` is JSON inside a string; text that is not JSON is kept as the string.
fn flow_response(raw: Option<Value>) -> Value {
    match raw {
        Some(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Some(parsed) => parsed,
        None => Value::Null,
    }
}

/// A template quick-reply tap; Meta falls back to the label when no payload was set.
fn quick_reply(body: &Value) -> Result<Content, MetaParseError> {
    let wire: WireButton = decode(body, "button")?;
    let text = wire.text.unwrap_or_default();
    let payload = wire.payload.unwrap_or_else(|| text.clone());
    Ok(Content::QuickReply { payload, text })
}

/// A cart; an empty note is no note, so it does not read as empty typed text.
fn order(body: &Value) -> Result<Content, MetaParseError> {
    let wire: WireOrder = decode(body, "order")?;
    let items = wire.product_items.into_iter().map(|item| OrderItem {
        product_retailer_id: item.product_retailer_id,
        quantity: item.quantity,
        item_price: item.item_price,
        currency: item.currency,
    });
    Ok(Content::Order(Order {
        catalog_id: wire.catalog_id,
        text: wire.text.filter(|text| !text.is_empty()),
        items: items.collect(),
    }))
}

/// A reaction; removal arrives with an empty or absent emoji, both read as "".
fn reaction(body: &Value) -> Result<Content, MetaParseError> {
    let wire: WireReaction = decode(body, "reaction")?;
    Ok(Content::Reaction {
        message_id: wire.message_id,
        emoji: wire.emoji.unwrap_or_default(),
    })
}

/// A system notice; for `user_changed_number`, `wa_id` is the user's new id.
fn system(body: &Value) -> Result<Content, MetaParseError> {
    let wire: WireSystem = decode(body, "system")?;
    Ok(Content::System {
        kind: wire.kind.unwrap_or_else(|| "system".to_owned()),
        body: wire.body,
        new_id: wire.wa_id,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_timestamps_as_strings_or_numbers() {
        assert_eq!(
            timestamp(Some(&json!("1749416383"))).ok(),
            Some(1_749_416_383)
        );
        assert_eq!(
            timestamp(Some(&json!(1_749_416_383))).ok(),
            Some(1_749_416_383)
        );
        let error = timestamp(Some(&json!("soon"))).expect_err("not a number");
        assert_eq!(error.to_string(), "timestamp \"soon\" is not unix seconds");
    }

    #[test]
    fn keeps_a_flow_response_that_is_not_json_as_text() {
        assert_eq!(flow_response(Some(json!("{\"a\":1}"))), json!({"a": 1}));
        assert_eq!(flow_response(Some(json!("not json"))), json!("not json"));
    }

    #[test]
    fn names_the_malformed_field() {
        let object = json!({"id": "w", "from": "1", "timestamp": "1", "type": "location",
                            "location": {"latitude": "north", "longitude": 1.0}});
        let error = parse_message(&object, None).expect_err("latitude is text");
        assert_eq!(error.to_string(), "`location.latitude` is malformed");
    }
}
