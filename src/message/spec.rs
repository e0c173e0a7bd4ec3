//! Messages as bot authors write them in `send:` (the DSL form of DESIGN §6).
//!
//! Every string may hold `{{ expr }}` templates; they are rendered before these types are
//! turned into [`Outbound`](super::Outbound) messages. Numeric and boolean fields also accept
//! text ([`Lenient`]) so a template can fill them.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de;
use serde::{Deserialize, Serialize};

use crate::shape::ByShape;
use serde_json::Value;

/// One message in DSL form: exactly one kind key, plus an optional `fallback_text`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// Plain text: a string, or `{body, preview_url}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSpec>,
    /// An image by `url` or `media_id`, with an optional caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<MediaSpec>,
    /// A video by `url` or `media_id`, with an optional caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<MediaSpec>,
    /// An audio file; `voice: true` sends it as a voice note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<MediaSpec>,
    /// A document, with an optional `filename` and caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<MediaSpec>,
    /// A WebP sticker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<MediaSpec>,
    /// Up to three reply buttons (4–10 are sent as a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<ButtonsSpec>,
    /// A list menu: up to ten rows in sections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListSpec>,
    /// One catalog product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<ProductSpec>,
    /// Several catalog products in sections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<ProductsSpec>,
    /// A WhatsApp Flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_flow: Option<WaFlowSpec>,
    /// A button that opens a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cta_url: Option<CtaUrlSpec>,
    /// Asks the user to share their location with one tap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_request: Option<LocationRequestSpec>,
    /// A map pin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationSpec>,
    /// Contact cards in the WhatsApp shape (`name.formatted_name` required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<Value>>,
    /// An approved template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSpec>,
    /// Sent instead on providers that cannot render this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_text: Option<String>,
}

/// A value of type `T`, or text that a template renders and that is read as `T` at send time.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Lenient<T> {
    /// Written as the value itself.
    Value(T),
    /// Written as text, typically a `{{ template }}`.
    Text(String),
}

/// `text: "hi"` or `text: {body, preview_url}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TextSpec {
    /// Just the body.
    Body(String),
    /// Body with options.
    Full(TextOptions),
}

/// `text: {body, preview_url}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextOptions {
    /// Up to 4096 characters.
    pub body: String,
    /// Render a preview of the first URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<Lenient<bool>>,
}

/// `image: URL` or `image: {url | media_id, caption, filename, voice}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MediaSpec {
    /// Just a public URL.
    Url(String),
    /// Full form.
    Full(MediaOptions),
}

/// The full media form.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaOptions {
    /// A public HTTPS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An uploaded media id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// Caption (image, video, document), up to 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name shown for a document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Audio only: send as a voice note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Lenient<bool>>,
}

/// A header: text, or `{text | image | video | document}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HeaderSpec {
    /// Plain header text.
    Text(String),
    /// One of text, image, video, document.
    Full(HeaderOptions),
}

/// `header: {text | image | video | document}`; media take a URL.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderOptions {
    /// Header text, up to 60 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Video URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    /// Document URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// Reply buttons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ButtonsSpec {
    /// Optional header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderSpec>,
    /// Up to 1024 characters.
    pub body: String,
    /// Up to 60 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// One to three (4–10 become a list).
    pub buttons: Vec<ChoiceSpec>,
    /// Label of the list button when 4–10 buttons are sent as a list (default "Choose").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
}

/// An option: `{id, title, description}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSpec {
    /// Comes back when the user picks it.
    pub id: String,
    /// What the user sees: 20 characters for buttons, 24 for list rows.
    pub title: String,
    /// List rows only: up to 72 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A list menu.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    /// Optional text header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderSpec>,
    /// Up to 1024 characters.
    pub body: String,
    /// Up to 60 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Label of the button that opens the list, up to 20 characters.
    pub button: String,
    /// One to ten sections, ten rows in all.
    pub sections: Vec<SectionSpec>,
}

/// A list section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionSpec {
    /// Required when there is more than one section; up to 24 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rows.
    pub rows: Vec<ChoiceSpec>,
}

/// One catalog product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductSpec {
    /// Optional body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Optional footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The catalog.
    pub catalog_id: String,
    /// The product's retailer id.
    pub product_id: String,
}

/// Several catalog products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductsSpec {
    /// Required header text.
    pub header: HeaderSpec,
    /// Required body text.
    pub body: String,
    /// Optional footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The catalog.
    pub catalog_id: String,
    /// One to ten sections, thirty products in all.
    pub sections: Vec<ProductSectionSpec>,
}

/// A section of products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductSectionSpec {
    /// Required when there is more than one section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Retailer ids.
    pub product_ids: Vec<String>,
}

/// A WhatsApp Flow message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaFlowSpec {
    /// Optional header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderSpec>,
    /// Body text.
    pub body: String,
    /// Optional footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The published Flow's id.
    pub flow_id: String,
    /// Button text, up to 20 characters.
    pub cta: String,
    /// Echoed back with the Flow's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `navigate` (default) or `data_exchange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<FlowActionKind>,
    /// First screen (navigate only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// Data for the first screen (navigate only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// How a Flow starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowActionKind {
    /// Open a screen of the Flow.
    Navigate,
    /// Ask the Flow's endpoint for the first screen.
    DataExchange,
}

/// A button that opens a URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CtaUrlSpec {
    /// Optional header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderSpec>,
    /// Body text.
    pub body: String,
    /// Optional footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Button label, up to 20 characters.
    pub button: String,
    /// Where the button goes.
    pub url: String,
}

/// Asks for the user's location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRequestSpec {
    /// Body text.
    pub body: String,
}

/// A map pin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationSpec {
    /// Degrees north.
    pub latitude: Lenient<f64>,
    /// Degrees east.
    pub longitude: Lenient<f64>,
    /// Place name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// An approved template with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// The template's name.
    pub name: String,
    /// Language code, e.g. `en` or `en_US`.
    pub language: String,
    /// Template id, for providers that address templates by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Header parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<TemplateParams>,
    /// Body parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<TemplateParams>,
    /// Button parameters, in button order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<TemplateButtonSpec>,
}

/// Positional parameters as a list, or named ones as a map.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TemplateParams {
    /// `{{1}}`, `{{2}}`, … in order.
    Positional(Vec<TemplateParam>),
    /// `{{first_name}}` and friends.
    Named(IndexMap<String, TemplateParam>),
}

/// One template parameter: text, or a media, currency or date-time object.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TemplateParam {
    /// A text parameter (numbers are read as text).
    Text(String),
    /// Media, currency or date-time.
    Object(TemplateParamObject),
}

/// A non-text template parameter: exactly one key.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateParamObject {
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Video URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    /// Document URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// An amount of money.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<CurrencySpec>,
    /// A date and time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<DateTimeSpec>,
}

/// `{code, amount_1000, fallback}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrencySpec {
    /// ISO 4217 code.
    pub code: String,
    /// The amount times 1000.
    pub amount_1000: Lenient<i64>,
    /// Shown where the amount cannot be localized.
    pub fallback: String,
}

/// `{fallback}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DateTimeSpec {
    /// The date and time as text.
    pub fallback: String,
}

/// One template button's parameter: exactly one key.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateButtonSpec {
    /// Payload of a quick-reply button; comes back when tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_reply: Option<String>,
    /// Suffix appended to a URL button's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Flow token of a Flow button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
}

crate::string_or_map!(
    TextSpec,
    TextSpec::Body,
    TextSpec::Full,
    "a text or {body, preview_url}"
);
crate::string_or_map!(
    MediaSpec,
    MediaSpec::Url,
    MediaSpec::Full,
    "a URL or {url | media_id, caption, filename}"
);
crate::string_or_map!(
    HeaderSpec,
    HeaderSpec::Text,
    HeaderSpec::Full,
    "a text or {text | image | video | document}"
);

impl<'de> ByShape<'de> for TemplateParams {
    const EXPECTING: &'static str = "a list of parameters or a map of named parameters";

    fn from_seq<A: de::SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Self::Positional)
    }

    fn from_map<A: de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Deserialize::deserialize(de::value::MapAccessDeserializer::new(map)).map(Self::Named)
    }
}

impl<'de> ByShape<'de> for TemplateParam {
    const EXPECTING: &'static str =
        "a text, a number, or {image | video | document | currency | date_time}";

    fn from_str<E: de::Error>(text: &str) -> Result<Self, E> {
        Ok(Self::Text(text.to_owned()))
    }

    fn from_bool<E: de::Error>(value: bool) -> Result<Self, E> {
        Ok(Self::Text(value.to_string()))
    }

    fn from_i64<E: de::Error>(value: i64) -> Result<Self, E> {
        Ok(Self::Text(value.to_string()))
    }

    fn from_f64<E: de::Error>(value: f64) -> Result<Self, E> {
        Ok(Self::Text(value.to_string()))
    }

    fn from_map<A: de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Deserialize::deserialize(de::value::MapAccessDeserializer::new(map)).map(Self::Object)
    }
}

crate::deserialize_by_shape!(TemplateParams, TemplateParam);

impl<'de, T: Deserialize<'de>> ByShape<'de> for Lenient<T> {
    const EXPECTING: &'static str = "a value or a {{ template }}";

    fn from_str<E: de::Error>(text: &str) -> Result<Self, E> {
        Ok(Self::Text(text.to_owned()))
    }

    fn from_bool<E: de::Error>(value: bool) -> Result<Self, E> {
        T::deserialize(de::value::BoolDeserializer::new(value)).map(Self::Value)
    }

    fn from_i64<E: de::Error>(value: i64) -> Result<Self, E> {
        T::deserialize(de::value::I64Deserializer::new(value)).map(Self::Value)
    }

    fn from_f64<E: de::Error>(value: f64) -> Result<Self, E> {
        T::deserialize(de::value::F64Deserializer::new(value)).map(Self::Value)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::shape::deserialize(deserializer)
    }
}
