//! Meta's JSON, mirrored: the webhook envelope around messages and statuses (spec §2), the
//! `user_preferences` change, the send body and the media-lookup answer (spec §5) and the Graph
//! API error object (spec §4.3).
//!
//! Structs read only the fields chatflow uses and ignore the rest, because Meta adds fields without
//! notice; message and status objects stay [`Value`]s here and are read by
//! [`crate::message::meta`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::Outbound;

/// `object` of every WhatsApp webhook body.
pub(super) const OBJECT: &str = "whatsapp_business_account";

/// `messaging_product` of every request.
pub(super) const WHATSAPP: &str = "whatsapp";

/// One `entry[]` element: a WhatsApp Business Account's batch of changes.
#[derive(Deserialize)]
pub(super) struct Entry {
    /// The changes, each one field's update.
    pub changes: Vec<Value>,
}

/// One `entry[].changes[]` element.
#[derive(Deserialize)]
pub(super) struct Change {
    /// What kind of update: `messages`, `user_preferences`, `account_update`…
    pub field: String,
    /// The update, whose shape depends on `field`.
    pub value: Value,
}

/// `value` of a `messages` change.
#[derive(Deserialize)]
pub(super) struct MessagesValue {
    /// Which of the business's numbers this is about.
    pub metadata: Option<Metadata>,
    /// Sender profiles, matched to messages by `wa_id`/`user_id`.
    pub contacts: Option<Vec<Value>>,
    /// Inbound messages.
    pub messages: Option<Vec<Value>>,
    /// Delivery statuses of our messages.
    pub statuses: Option<Vec<Value>>,
    /// Errors not tied to one message (spec §4.4).
    pub errors: Option<Vec<Value>>,
}

/// `value` of a `user_preferences` change.
#[derive(Deserialize)]
pub(super) struct PreferencesValue {
    /// Which of the business's numbers this is about.
    pub metadata: Option<Metadata>,
    /// One element per preference a user changed.
    pub user_preferences: Vec<Value>,
}

/// `value.metadata`.
#[derive(Deserialize)]
pub(super) struct Metadata {
    /// The routing key of the change.
    pub phone_number_id: Option<String>,
}

/// One `value.user_preferences[]` element (pywa `user_marketing_preferences.json`).
#[derive(Deserialize)]
pub(super) struct UserPreference {
    /// The user's WhatsApp id.
    pub wa_id: Option<String>,
    /// The business-scoped user id, for users without a `wa_id`.
    pub user_id: Option<String>,
    /// `marketing_messages`.
    pub category: Option<String>,
    /// `stop`, `resume` or `signup`.
    pub value: String,
    /// Unix seconds, as a number or a string.
    pub timestamp: Value,
}

/// The body of a send: the envelope, then the message's own fields (spec §5.1).
#[derive(Serialize)]
pub(super) struct SendBody<'a> {
    /// Always `whatsapp`.
    pub messaging_product: &'static str,
    /// Always `individual`: chatflow talks to users, not groups.
    pub recipient_type: &'static str,
    /// `+` and digits, or a business-scoped user id.
    pub to: &'a str,
    /// `type` and the object of the same name.
    #[serde(flatten)]
    pub message: &'a Outbound,
}

impl<'a> SendBody<'a> {
    /// The body sending `message` to `to`.
    pub fn new(to: &'a str, message: &'a Outbound) -> Self {
        Self {
            messaging_product: WHATSAPP,
            recipient_type: "individual",
            to,
            message,
        }
    }
}

/// A failed request's answer (spec §4.3).
#[derive(Deserialize)]
pub(super) struct ErrorResponse {
    /// What went wrong.
    pub error: GraphError,
}

/// The Graph API `error` object.
#[derive(Deserialize)]
pub(super) struct GraphError {
    /// The code the decision is made on.
    pub code: Option<i64>,
    /// `(#code) title`, usually.
    pub message: Option<String>,
    /// Meta's longer explanation.
    pub error_data: Option<ErrorData>,
    /// Quoted in support tickets.
    pub fbtrace_id: Option<String>,
}

/// `error.error_data`.
#[derive(Deserialize)]
pub(super) struct ErrorData {
    /// A sentence on the cause.
    pub details: Option<String>,
}

/// The answer of `GET /{media_id}`: where the file is for the next few minutes.
#[derive(Deserialize)]
pub(super) struct MediaLookup {
    /// The download URL, which needs the same bearer token.
    pub url: String,
}
