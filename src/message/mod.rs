//! The normalized message model: inbound events, outbound messages in the Meta Cloud API shape,
//! and the DSL form bot authors write, with the conversions and WhatsApp limits between them.

pub mod inbound;
pub mod limits;
pub mod meta;
pub mod outbound;
pub mod spec;

mod convert;

pub use convert::{ConvertError, dsl_form};
pub use inbound::{Content, DeliveryStatus, InboundEvent, InboundMessage, MediaKind, StatusKind};
pub use outbound::Outbound;
pub use spec::MessageSpec;

use serde::{Deserialize, Serialize};

/// A message the engine will send: the Meta-shaped message and how to degrade it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The message in the Meta Cloud API shape.
    pub message: Outbound,
    /// Text for providers that cannot render `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_text: Option<String>,
    /// The template to send instead if the provider says the 24-hour window is closed (the
    /// step's `outside_window`; the channel's applies when it is `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_window: Option<Box<Outbound>>,
}
