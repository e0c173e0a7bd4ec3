//! Inbound events, normalized: what every provider's webhook becomes before routing.
//!
//! The shapes follow WhatsApp's own kinds (spec §3, §4) so nothing a provider sends is lost, but
//! carry no provider's field names: the router and runtime see only these types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One thing a provider told us: a user's message or a delivery status of ours.
#[allow(
    clippy::large_enum_variant,
    reason = "handled one at a time; boxing would clutter every constructor and match for a few hundred bytes"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum InboundEvent {
    /// A user wrote, tapped or shared something.
    Message(InboundMessage),
    /// A message we sent was sent, delivered, read or failed.
    Status(DeliveryStatus),
    /// A contact stopped or resumed marketing messages (Meta `user_preferences`).
    Preference(PreferenceChange),
}

/// A contact's messaging preference, as the provider reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceChange {
    /// The contact (digits, or the provider's user id).
    pub contact: String,
    /// `true`: stop messaging them; `false`: they resumed.
    pub opted_out: bool,
    /// Unix seconds.
    pub timestamp: i64,
}

/// A message from a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's message id (Meta `wamid.…`), used for dedupe and replies.
    pub id: String,
    /// The sender: WhatsApp number as digits without `+`, or the provider's user id.
    pub from: String,
    /// The sender's profile name, when the provider gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unix seconds when the user sent it.
    pub timestamp: i64,
    /// What was sent.
    pub content: Content,
    /// The message this one replies to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Click-to-WhatsApp ad or other referral data, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<Value>,
}

/// What a user message carries, by WhatsApp kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Typed text.
    Text { body: String },
    /// An image, video, audio, voice note, document or sticker.
    Media(InboundMedia),
    /// A shared location.
    Location(SharedLocation),
    /// Shared contact cards, in the WhatsApp shape.
    Contacts { contacts: Vec<Value> },
    /// A tap on an interactive reply button.
    ButtonReply { id: String, title: String },
    /// A chosen list row.
    ListReply {
        id: String,
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// A tap on a template quick-reply button.
    QuickReply { payload: String, text: String },
    /// A completed WhatsApp Flow; `response` is the parsed `response_json`.
    FlowReply {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        response: Value,
    },
    /// A cart sent from the catalog.
    Order(Order),
    /// An emoji reaction to one of our messages; an empty emoji removes it.
    Reaction { message_id: String, emoji: String },
    /// A system notice, such as the user changing number.
    System {
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_id: Option<String>,
    },
    /// A kind WhatsApp or the provider could not deliver or we do not know; the raw object is kept.
    Unsupported { kind: String, raw: Value },
}

/// Which media kind an inbound file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A picture.
    Image,
    /// A video clip.
    Video,
    /// An audio file.
    Audio,
    /// A voice note recorded in WhatsApp.
    Voice,
    /// A document.
    Document,
    /// A sticker.
    Sticker,
}

impl MediaKind {
    /// The lowercase name used in triggers and templates.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }
}

/// A file the user sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMedia {
    /// Image, video, audio, voice, document or sticker.
    pub kind: MediaKind,
    /// The provider's media id, to download it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A download URL, when the provider gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Caption typed with the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Document file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Content hash as the provider gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A location the user shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SharedLocation {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// Place name, for a named place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Street address, for a named place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The place's website, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A cart sent from the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The catalog the products are from.
    pub catalog_id: String,
    /// A note typed with the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The lines of the cart.
    pub items: Vec<OrderItem>,
}

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product's retailer id.
    pub product_retailer_id: String,
    /// How many.
    pub quantity: i64,
    /// Price of one, as a decimal.
    pub item_price: f64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// What happened to a message we sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    /// The provider's id of our message.
    pub message_id: String,
    /// The contact it was sent to.
    pub recipient: String,
    /// Sent, delivered, read, played or failed.
    pub status: StatusKind,
    /// Unix seconds.
    pub timestamp: i64,
    /// Why it failed, for `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<StatusError>,
    /// What the message costs, as the provider reports it (Meta `pricing`), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Value>,
}

/// Delivery progress of a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// Accepted by WhatsApp.
    Sent,
    /// On the user's phone.
    Delivered,
    /// Seen by the user.
    Read,
    /// A voice message was played.
    Played,
    /// Could not be delivered.
    Failed,
}

impl StatusKind {
    /// The lowercase name, as in `event: status_failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
        }
    }
}

/// A provider's reason for a failed delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusError {
    /// The provider's numeric code, e.g. Meta 131047.
    pub code: i64,
    /// The provider's words for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl InboundMessage {
    /// The text the user typed (or a caption or button label), used by text triggers and answers.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Content::Text { body } => Some(body),
            Content::Media(media) => media.caption.as_deref(),
            Content::ButtonReply { title, .. } | Content::ListReply { title, .. } => Some(title),
            Content::QuickReply { text, .. } => Some(text),
            Content::Order(order) => order.text.as_deref(),
            _ => None,
        }
    }

    /// The id of a tapped button, chosen row or template quick reply.
    #[must_use]
    pub fn reply_id(&self) -> Option<&str> {
        match &self.content {
            Content::ButtonReply { id, .. } | Content::ListReply { id, .. } => Some(id),
            Content::QuickReply { payload, .. } => Some(payload),
            _ => None,
        }
    }

    /// The event name of this message for `event:` triggers (`text`, `image`, `voice`, …).
    #[must_use]
    pub fn event_name(&self) -> &'static str {
        match &self.content {
            Content::Text { .. } => "text",
            Content::Media(media) => media.kind.as_str(),
            Content::Location(_) => "location",
            Content::Contacts { .. } => "contacts",
            Content::ButtonReply { .. } => "button",
            Content::ListReply { .. } => "list",
            Content::QuickReply { .. } => "quick_reply",
            Content::FlowReply { .. } => "flow_reply",
            Content::Order(_) => "order",
            Content::Reaction { .. } => "reaction",
            Content::System { .. } => "system",
            Content::Unsupported { .. } => "unsupported",
        }
    }
}
