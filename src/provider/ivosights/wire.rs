//! Ivosights' JSON, mirrored: the webhook notification (document: "Inbound Message
//! Notifications", "Message Status Notifications"), the body of each `send-*-message` endpoint,
//! and the answers to a send.
//!
//! Message and status objects stay [`Value`]s here: they are the WhatsApp Business API's own and
//! are read by [`crate::message::meta`]. Where a send body nests an object exactly as the
//! WhatsApp model does (list sections, product sections, Flow parameters, contact cards,
//! template parameters), the model's type is borrowed rather than copied.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::outbound::{FlowParameters, ProductAction, ProductListAction};

/// One webhook notification: sender profiles, messages and statuses, without any envelope.
#[derive(Deserialize)]
pub(super) struct Notification {
    /// Sender profiles, matched to messages by `wa_id`.
    #[serde(default)]
    pub contacts: Vec<Value>,
    /// Inbound messages.
    pub messages: Option<Vec<Value>>,
    /// Delivery statuses of our messages.
    pub statuses: Option<Vec<Value>>,
}

/// `send-text-message`: the text is a plain string.
#[derive(Serialize)]
pub(super) struct TextMessage<'a> {
    pub wa_id: &'a str,
    pub text: &'a str,
}

/// An interactive header, flat: `{"type": "text", "text": …}` or `{"type": "image", "link": …}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Header<'a> {
    Text { text: &'a str },
    Image { link: &'a str },
    Video { link: &'a str },
    Document { link: &'a str },
}

/// `send-reply-button-message`, `send-list-message` and `send-flow-message`: one layout with
/// a flat header, body and footer as plain strings, and the kind's own `action`.
#[derive(Serialize)]
pub(super) struct InteractiveMessage<'a, A> {
    pub wa_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<Header<'a>>,
    pub body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<&'a str>,
    pub action: A,
}

/// `action` of a reply-button message: the buttons without Meta's `{"type": "reply"}` wrapper.
#[derive(Serialize)]
pub(super) struct ButtonAction<'a> {
    pub buttons: Vec<Button<'a>>,
}

/// One reply button.
#[derive(Serialize)]
pub(super) struct Button<'a> {
    pub id: &'a str,
    pub title: &'a str,
}

/// `send-single-product-message`: no header.
#[derive(Serialize)]
pub(super) struct SingleProductMessage<'a> {
    pub wa_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<&'a str>,
    pub action: &'a ProductAction,
}

/// `send-multi-product-message`: the header is a plain string.
#[derive(Serialize)]
pub(super) struct MultiProductMessage<'a> {
    pub wa_id: &'a str,
    pub header: &'a str,
    pub body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<&'a str>,
    pub action: &'a ProductListAction,
}

/// `action` of a Flow message: the parameters without Meta's `name: flow`.
#[derive(Serialize)]
pub(super) struct FlowAction<'a> {
    pub parameters: &'a FlowParameters,
}

/// `send-location-message`: the coordinates at the top level.
#[derive(Serialize)]
pub(super) struct LocationMessage<'a> {
    pub wa_id: &'a str,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<&'a str>,
}

/// `send-contact-message`: WhatsApp's contact cards as they are.
#[derive(Serialize)]
pub(super) struct ContactMessage<'a> {
    pub wa_id: &'a str,
    pub contacts: &'a [Value],
}

/// `send-media-message`: the kind and the link at the top level.
#[derive(Serialize)]
pub(super) struct MediaMessage<'a> {
    pub wa_id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub link: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<&'a str>,
}

/// `send-template-message`: the template by Ivosights' id; no name or language.
#[derive(Serialize)]
pub(super) struct TemplateMessage<'a> {
    pub wa_id: &'a str,
    pub template_id: &'a str,
    pub components: Vec<Component<'a>>,
}

/// One template component; a body without parameters is `{"type": "body"}`.
#[derive(Serialize)]
pub(super) struct Component<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    pub parameters: &'a [Value],
}

/// A failed request's answer: the WhatsApp Business API's `errors` list (the document shows its
/// objects in failed statuses), or only a `message` (as the media endpoint's 404).
#[derive(Deserialize)]
pub(super) struct ErrorResponse {
    /// `[{code, title, details?, href?}]` when it is a list.
    pub errors: Option<Value>,
    /// A sentence on what went wrong.
    pub message: Option<String>,
}

/// One element of `errors`.
#[derive(Deserialize)]
pub(super) struct ApiError {
    /// The code the decision is made on, such as 470.
    pub code: i64,
    /// What the code means.
    pub title: Option<String>,
    /// Why it applies to this request.
    pub details: Option<String>,
}
