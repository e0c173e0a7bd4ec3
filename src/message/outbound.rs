//! Outbound messages in the Meta Cloud API shape (spec §5), without `messaging_product`/`to`.
//!
//! This is the one shape chatflow stores, shows in its API and hands to providers; each provider
//! maps it to its own wire format, or degrades what it cannot render.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message to send, exactly as Meta's `/messages` endpoint takes it (less the envelope).
#[allow(
    clippy::large_enum_variant,
    reason = "handled one at a time; boxing would clutter every constructor and match for a few hundred bytes"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    /// Plain text.
    Text { text: Text },
    /// A picture.
    Image { image: Media },
    /// A video clip.
    Video { video: Media },
    /// An audio file or voice note.
    Audio { audio: Media },
    /// A file such as a PDF.
    Document { document: Media },
    /// A WebP sticker.
    Sticker { sticker: Media },
    /// A map pin.
    Location { location: Location },
    /// Contact cards.
    Contacts { contacts: Vec<Value> },
    /// Buttons, lists, products, Flows and the other interactive kinds.
    Interactive { interactive: Interactive },
    /// An approved template, the only kind allowed outside the 24-hour window.
    Template { template: Template },
    /// An emoji reaction to an earlier message.
    Reaction { reaction: Reaction },
}

impl Outbound {
    /// The message's kind for metrics: its `type`, and for an interactive message the
    /// interactive `type` too (`interactive_button`, `interactive_list`…), a fixed set of names.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Video { .. } => "video",
            Self::Audio { .. } => "audio",
            Self::Document { .. } => "document",
            Self::Sticker { .. } => "sticker",
            Self::Location { .. } => "location",
            Self::Contacts { .. } => "contacts",
            Self::Interactive { interactive } => interactive.kind(),
            Self::Template { .. } => "template",
            Self::Reaction { .. } => "reaction",
        }
    }
}

/// `text` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Text {
    /// Whether WhatsApp should render a preview of the first URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<bool>,
    /// Up to 4096 characters.
    pub body: String,
}

/// Media by uploaded `id` or public `link` (exactly one of them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Media {
    /// An uploaded media id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A public HTTPS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Caption (image, video, document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name shown for documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// `true` sends audio as a voice note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
}

/// `location` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// Place name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `reaction` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    /// The message reacted to.
    pub message_id: String,
    /// The emoji; empty removes the reaction.
    pub emoji: String,
}

/// `interactive` object, tagged by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interactive {
    /// Up to three reply buttons.
    Button {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<Header>,
        body: Body,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<Footer>,
        action: ButtonAction,
    },
    /// A menu of up to ten rows in sections.
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<Header>,
        body: Body,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<Footer>,
        action: ListAction,
    },
    /// One catalog product.
    Product {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Body>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<Footer>,
        action: ProductAction,
    },
    /// Several catalog products in sections.
    ProductList {
        header: Header,
        body: Body,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<Footer>,
        action: ProductListAction,
    },
    /// A WhatsApp Flow.
    Flow {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<Header>,
        body: Body,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<Footer>,
        action: FlowAction,
    },
    /// A button that opens a URL.
    CtaUrl {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<Header>,
        body: Body,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<Footer>,
        action: CtaUrlAction,
    },
    /// Asks the user to share their location.
    LocationRequestMessage { body: Body, action: NamedAction },
}

impl Interactive {
    /// `interactive_` and the interactive `type`, for [`Outbound::kind`].
    fn kind(&self) -> &'static str {
        match self {
            Self::Button { .. } => "interactive_button",
            Self::List { .. } => "interactive_list",
            Self::Product { .. } => "interactive_product",
            Self::ProductList { .. } => "interactive_product_list",
            Self::Flow { .. } => "interactive_flow",
            Self::CtaUrl { .. } => "interactive_cta_url",
            Self::LocationRequestMessage { .. } => "interactive_location_request",
        }
    }
}

/// Interactive header, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Header {
    /// Up to 60 characters.
    Text { text: String },
    /// An image above the body.
    Image { image: Media },
    /// A video above the body.
    Video { video: Media },
    /// A document above the body.
    Document { document: Media },
}

/// Interactive `body`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body {
    /// Up to 1024 characters.
    pub text: String,
}

/// Interactive `footer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footer {
    /// Up to 60 characters.
    pub text: String,
}

/// `action` of a reply-button message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ButtonAction {
    /// One to three buttons.
    pub buttons: Vec<ReplyButton>,
}

/// `{"type": "reply", "reply": {id, title}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyButton {
    /// Always `reply`.
    #[serde(rename = "type")]
    pub kind: ReplyKind,
    /// The id and title.
    pub reply: Choice,
}

/// The only reply-button kind WhatsApp has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// A quick reply button.
    Reply,
}

/// An option the user can pick: a reply button's `reply` or a list row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Comes back in the user's reply.
    pub id: String,
    /// What the user sees.
    pub title: String,
    /// List rows only: a second line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `action` of a list message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListAction {
    /// Label of the button that opens the list.
    pub button: String,
    /// One to ten sections, ten rows in all.
    pub sections: Vec<ListSection>,
}

/// One section of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListSection {
    /// Required when there is more than one section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rows.
    pub rows: Vec<Choice>,
}

/// `action` of a single-product message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductAction {
    /// The catalog.
    pub catalog_id: String,
    /// The product's retailer id.
    pub product_retailer_id: String,
}

/// `action` of a multi-product message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductListAction {
    /// The catalog.
    pub catalog_id: String,
    /// One to ten sections, thirty products in all.
    pub sections: Vec<ProductSection>,
}

/// One section of a multi-product message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductSection {
    /// Section title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The products.
    pub product_items: Vec<ProductItem>,
}

/// `{"product_retailer_id": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductItem {
    /// The product's retailer id.
    pub product_retailer_id: String,
}

/// `action` of a Flow message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowAction {
    /// Always `flow`.
    pub name: String,
    /// The Flow's parameters.
    pub parameters: FlowParameters,
}

/// `action.parameters` of a Flow message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowParameters {
    /// Always `"3"`.
    pub flow_message_version: String,
    /// Echoed back in the Flow's reply; routes the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_token: Option<String>,
    /// The published Flow's id.
    pub flow_id: String,
    /// Button text.
    pub flow_cta: String,
    /// `navigate` or `data_exchange`.
    pub flow_action: String,
    /// First screen and its data (navigate only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_action_payload: Option<FlowActionPayload>,
}

/// `flow_action_payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowActionPayload {
    /// The first screen.
    pub screen: String,
    /// Data for the first screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `action` of a CTA URL message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtaUrlAction {
    /// Always `cta_url`.
    pub name: String,
    /// Label and URL.
    pub parameters: CtaUrlParameters,
}

/// `action.parameters` of a CTA URL message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtaUrlParameters {
    /// Button label, up to 20 characters.
    pub display_text: String,
    /// Where the button goes.
    pub url: String,
}

/// An action that is only a name, such as `send_location`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedAction {
    /// The action's name.
    pub name: String,
}

/// `template` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Providers that address templates by id (Ivosights) read this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Approved template name.
    pub name: String,
    /// Language of the approved template.
    pub language: TemplateLanguage,
    /// Parameters by component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<TemplateComponent>,
}

/// `{"code": "en_US"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateLanguage {
    /// Language code such as `en_US`.
    pub code: String,
}

/// One template component with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateComponent {
    /// `header`, `body` or `button`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Buttons only: `quick_reply`, `url` or `flow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    /// Buttons only: the button's position, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The parameters, in order.
    pub parameters: Vec<Value>,
}
