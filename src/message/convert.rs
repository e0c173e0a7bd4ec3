//! DSL messages to Meta-shaped outbound messages (DESIGN §6 → spec §5), and back.
//!
//! Bot authors write [`MessageSpec`]s; providers take [`Outbound`]s. This is the one place that
//! knows how each DSL kind maps to Meta's JSON, so no provider and no step runner repeats it.
//! [`dsl_form`] goes the other way, so tests and the chat CLI show sent messages the way authors
//! write them. Structural mistakes are [`ConvertError`]s; WhatsApp's size limits live in
//! [`limits`](super::limits).

mod dsl;
mod template;

use std::str::FromStr;

use serde_json::Value;

use super::limits;
use super::outbound::{
    Body, ButtonAction, Choice, CtaUrlAction, CtaUrlParameters, FlowAction, FlowActionPayload,
    FlowParameters, Footer, Header, Interactive, ListAction, ListSection, Location, Media,
    NamedAction, Outbound, ProductAction, ProductItem, ProductListAction, ProductSection,
    ReplyButton, ReplyKind, Text,
};
use super::spec::{
    ButtonsSpec, ChoiceSpec, CtaUrlSpec, FlowActionKind, HeaderSpec, Lenient, ListSpec,
    LocationRequestSpec, LocationSpec, MediaOptions, MediaSpec, MessageSpec, ProductSpec,
    ProductsSpec, TemplateSpec, TextSpec, WaFlowSpec,
};
use crate::source::YamlPath;

pub use dsl::dsl_form;

/// The kind keys of a message, in the order the DSL documents them.
const KIND_NAMES: &str = "text, image, video, audio, document, sticker, buttons, list, product, \
                          products, wa_flow, cta_url, location_request, location, contacts, template";

/// The first screen Meta opens when a navigate Flow names none.
const DEFAULT_FLOW_SCREEN: &str = "FIRST_ENTRY_SCREEN";

/// Label of the list button when 4–10 buttons are sent as a list and the author gave none.
const DEFAULT_LIST_BUTTON: &str = "Choose";

/// A message that cannot become a Meta message as written; `path` lets the flow loader point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", located(.path))]
pub struct ConvertError {
    /// Where in the message, relative to it, e.g. `buttons.buttons[3]`; empty for the whole message.
    pub path: YamlPath,
    /// Lowercase; says what is wrong and what to do.
    pub message: String,
}

impl ConvertError {
    fn new(path: &YamlPath, message: impl Into<String>) -> Self {
        Self {
            path: path.clone(),
            message: message.into(),
        }
    }
}

/// `path: ` before a message, or nothing for the message itself.
fn located(path: &YamlPath) -> String {
    if path.0.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// The one kind a spec sets, borrowed, so each conversion matches on a single value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind<'a> {
    Text(&'a TextSpec),
    Media(MediaSlot, &'a MediaSpec),
    Buttons(&'a ButtonsSpec),
    List(&'a ListSpec),
    Product(&'a ProductSpec),
    Products(&'a ProductsSpec),
    WaFlow(&'a WaFlowSpec),
    CtaUrl(&'a CtaUrlSpec),
    LocationRequest(&'a LocationRequestSpec),
    Location(&'a LocationSpec),
    Contacts(&'a [Value]),
    Template(&'a TemplateSpec),
}

impl Kind<'_> {
    /// The DSL key of this kind.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Media(slot, _) => slot.name(),
            Self::Buttons(_) => "buttons",
            Self::List(_) => "list",
            Self::Product(_) => "product",
            Self::Products(_) => "products",
            Self::WaFlow(_) => "wa_flow",
            Self::CtaUrl(_) => "cta_url",
            Self::LocationRequest(_) => "location_request",
            Self::Location(_) => "location",
            Self::Contacts(_) => "contacts",
            Self::Template(_) => "template",
        }
    }
}

/// Which of the five media kinds a media spec fills; they share one spec type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaSlot {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaSlot {
    /// The DSL and Meta key of this kind.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    /// Audio and stickers are shown without a caption, so Meta refuses one.
    pub(crate) fn takes_caption(self) -> bool {
        !matches!(self, Self::Audio | Self::Sticker)
    }

    fn wrap(self, media: Media) -> Outbound {
        match self {
            Self::Image => Outbound::Image { image: media },
            Self::Video => Outbound::Video { video: media },
            Self::Audio => Outbound::Audio { audio: media },
            Self::Document => Outbound::Document { document: media },
            Self::Sticker => Outbound::Sticker { sticker: media },
        }
    }
}

impl crate::message::spec::TemplateSpec {
    /// The template message this spec sends (a channel's or a step's `outside_window`).
    pub fn to_outbound(&self) -> Result<Outbound, ConvertError> {
        template::to_outbound(self, &YamlPath::root())
    }
}

impl MessageSpec {
    /// The DSL key of this message's kind, so loaders and logs can name it; a spec must set
    /// exactly one kind key.
    pub fn kind_name(&self) -> Result<&'static str, ConvertError> {
        self.kind().map(|kind| kind.name())
    }

    /// The Meta-shaped message this spec sends (spec §5), with every template already rendered.
    pub fn to_outbound(&self) -> Result<Outbound, ConvertError> {
        let kind = self.kind()?;
        let at = YamlPath::root().key(kind.name());
        match kind {
            Kind::Text(spec) => text_message(spec, &at),
            Kind::Media(slot, spec) => Ok(slot.wrap(media(slot, spec, &at)?)),
            Kind::Buttons(spec) => buttons_message(spec, &at),
            Kind::List(spec) => list_message(spec, &at),
            Kind::Product(spec) => Ok(product_message(spec)),
            Kind::Products(spec) => products_message(spec, &at),
            Kind::WaFlow(spec) => flow_message(spec, &at),
            Kind::CtaUrl(spec) => cta_url_message(spec, &at),
            Kind::LocationRequest(spec) => Ok(location_request_message(spec)),
            Kind::Location(spec) => location_message(spec, &at),
            Kind::Contacts(cards) => contacts_message(cards, &at),
            Kind::Template(spec) => template::to_outbound(spec, &at),
        }
    }

    /// The options a user can pick from this message, in order, as they will be sent; answers
    /// are matched against them by id, title or number. Empty for kinds without options.
    #[must_use]
    pub fn choices(&self) -> Vec<Choice> {
        match self.kind() {
            Ok(Kind::Buttons(spec)) => button_choices(spec),
            Ok(Kind::List(spec)) => spec
                .sections
                .iter()
                .flat_map(|s| s.rows.iter().map(choice))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Every kind key that is set, so limits can check a spec even when it wrongly sets several.
    pub(crate) fn kinds(&self) -> Vec<Kind<'_>> {
        [
            self.text.as_ref().map(Kind::Text),
            media_kind(MediaSlot::Image, &self.image),
            media_kind(MediaSlot::Video, &self.video),
            media_kind(MediaSlot::Audio, &self.audio),
            media_kind(MediaSlot::Document, &self.document),
            media_kind(MediaSlot::Sticker, &self.sticker),
            self.buttons.as_ref().map(Kind::Buttons),
            self.list.as_ref().map(Kind::List),
            self.product.as_ref().map(Kind::Product),
            self.products.as_ref().map(Kind::Products),
            self.wa_flow.as_ref().map(Kind::WaFlow),
            self.cta_url.as_ref().map(Kind::CtaUrl),
            self.location_request.as_ref().map(Kind::LocationRequest),
            self.location.as_ref().map(Kind::Location),
            self.contacts.as_deref().map(Kind::Contacts),
            self.template.as_ref().map(Kind::Template),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn kind(&self) -> Result<Kind<'_>, ConvertError> {
        let found = self
            .kinds()
            .into_iter()
            .map(|kind| (kind.name(), kind))
            .collect();
        exactly_one(found, &YamlPath::root(), "a message", KIND_NAMES)
    }
}

impl Outbound {
    /// The options of an interactive button or list message, in order, so an answer can be
    /// matched against what was actually sent. Empty for other kinds.
    #[must_use]
    pub fn choices(&self) -> Vec<Choice> {
        match self {
            Self::Interactive {
                interactive: Interactive::Button { action, .. },
            } => action
                .buttons
                .iter()
                .map(|button| button.reply.clone())
                .collect(),
            Self::Interactive {
                interactive: Interactive::List { action, .. },
            } => action
                .sections
                .iter()
                .flat_map(|section| section.rows.iter().cloned())
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn media_kind(slot: MediaSlot, spec: &Option<MediaSpec>) -> Option<Kind<'_>> {
    spec.as_ref().map(|spec| Kind::Media(slot, spec))
}

/// The one entry of `found`; none or several is an error naming what was found.
fn exactly_one<T>(
    found: Vec<(&'static str, T)>,
    at: &YamlPath,
    what: &str,
    allowed: &str,
) -> Result<T, ConvertError> {
    let names: Vec<&str> = found.iter().map(|(name, _)| *name).collect();
    let [(_, value)]: [(&str, T); 1] = found.try_into().map_err(|_| {
        let message = if names.is_empty() {
            format!("{what} needs one of {allowed}")
        } else {
            format!(
                "{what} sets {}; use exactly one of {allowed}",
                names.join(" and ")
            )
        };
        ConvertError::new(at, message)
    })?;
    Ok(value)
}

/// A value written as text (typically a rendered template), read as its type.
trait LenientValue: FromStr + Copy {
    /// What the text should have been, for the error message.
    const EXPECTED: &'static str;

    fn accept(self) -> bool {
        true
    }
}

impl LenientValue for bool {
    const EXPECTED: &'static str = "true or false";
}

impl LenientValue for i64 {
    const EXPECTED: &'static str = "a whole number";
}

impl LenientValue for f64 {
    const EXPECTED: &'static str = "a number";

    fn accept(self) -> bool {
        self.is_finite()
    }
}

/// The value of a [`Lenient`] field; text that does not parse is an error at `at`.
fn lenient<T: LenientValue>(value: &Lenient<T>, at: &YamlPath) -> Result<T, ConvertError> {
    let parsed = match value {
        Lenient::Value(value) => Some(*value),
        Lenient::Text(text) => text.trim().parse::<T>().ok(),
    };
    parsed.filter(|value| value.accept()).ok_or_else(|| {
        let written = match value {
            Lenient::Text(text) => format!("\"{text}\""),
            Lenient::Value(_) => "a value that is not finite".to_owned(),
        };
        ConvertError::new(at, format!("expected {}, got {written}", T::EXPECTED))
    })
}

fn optional_lenient<T: LenientValue>(
    value: Option<&Lenient<T>>,
    at: &YamlPath,
) -> Result<Option<T>, ConvertError> {
    value.map(|value| lenient(value, at)).transpose()
}

fn text_message(spec: &TextSpec, at: &YamlPath) -> Result<Outbound, ConvertError> {
    let text = match spec {
        TextSpec::Body(body) => Text {
            preview_url: None,
            body: body.clone(),
        },
        TextSpec::Full(options) => Text {
            preview_url: optional_lenient(options.preview_url.as_ref(), &at.key("preview_url"))?,
            body: options.body.clone(),
        },
    };
    Ok(Outbound::Text { text })
}

fn media(slot: MediaSlot, spec: &MediaSpec, at: &YamlPath) -> Result<Media, ConvertError> {
    let options = match spec {
        MediaSpec::Url(url) => {
            return Ok(Media {
                link: Some(url.clone()),
                ..Media::default()
            });
        }
        MediaSpec::Full(options) => options,
    };
    if options.url.is_some() == options.media_id.is_some() {
        let name = slot.name();
        let message = if options.url.is_some() {
            format!("{name} sets both url and media_id; use one of them")
        } else {
            format!("{name} needs a url or a media_id")
        };
        return Err(ConvertError::new(at, message));
    }
    check_media_fields(slot, options, at)?;
    Ok(Media {
        id: options.media_id.clone(),
        link: options.url.clone(),
        caption: options.caption.clone(),
        filename: options.filename.clone(),
        voice: optional_lenient(options.voice.as_ref(), &at.key("voice"))?,
    })
}

/// Fields Meta refuses on a media kind, caught here instead of as a rejected send.
fn check_media_fields(
    slot: MediaSlot,
    options: &MediaOptions,
    at: &YamlPath,
) -> Result<(), ConvertError> {
    let name = slot.name();
    if options.caption.is_some() && !slot.takes_caption() {
        let message =
            format!("{name} messages cannot have a caption; send the text as its own message");
        return Err(ConvertError::new(&at.key("caption"), message));
    }
    if options.filename.is_some() && slot != MediaSlot::Document {
        return Err(ConvertError::new(
            &at.key("filename"),
            "only documents have a filename; remove it",
        ));
    }
    if options.voice.is_some() && slot != MediaSlot::Audio {
        return Err(ConvertError::new(
            &at.key("voice"),
            "only audio can be a voice note; remove voice",
        ));
    }
    Ok(())
}

fn header(spec: &HeaderSpec, at: &YamlPath) -> Result<Header, ConvertError> {
    let options = match spec {
        HeaderSpec::Text(text) => return Ok(Header::Text { text: text.clone() }),
        HeaderSpec::Full(options) => options,
    };
    let link = |url: &String| Media {
        link: Some(url.clone()),
        ..Media::default()
    };
    let found = [
        options
            .text
            .as_ref()
            .map(|text| ("text", Header::Text { text: text.clone() })),
        options
            .image
            .as_ref()
            .map(|url| ("image", Header::Image { image: link(url) })),
        options
            .video
            .as_ref()
            .map(|url| ("video", Header::Video { video: link(url) })),
        options.document.as_ref().map(|url| {
            (
                "document",
                Header::Document {
                    document: link(url),
                },
            )
        }),
    ];
    exactly_one(
        found.into_iter().flatten().collect(),
        at,
        "a header",
        "text, image, video, document",
    )
}

fn optional_header(
    spec: Option<&HeaderSpec>,
    at: &YamlPath,
) -> Result<Option<Header>, ConvertError> {
    spec.map(|spec| header(spec, at)).transpose()
}

/// A header for the kinds on which WhatsApp shows only text.
fn text_header(spec: &HeaderSpec, at: &YamlPath, kind: &str) -> Result<Header, ConvertError> {
    match header(spec, at)? {
        text @ Header::Text { .. } => Ok(text),
        _ => Err(ConvertError::new(
            at,
            format!("a {kind} header can only be text; WhatsApp shows no media there"),
        )),
    }
}

fn body(text: &str) -> Body {
    Body {
        text: text.to_owned(),
    }
}

fn footer(text: Option<&String>) -> Option<Footer> {
    text.map(|text| Footer { text: text.clone() })
}

fn choice(spec: &ChoiceSpec) -> Choice {
    Choice {
        id: spec.id.clone(),
        title: spec.title.clone(),
        description: spec.description.clone(),
    }
}

/// The options of a buttons message as sent: descriptions only survive when it becomes a list.
fn button_choices(spec: &ButtonsSpec) -> Vec<Choice> {
    let as_list = spec.buttons.len() > limits::REPLY_BUTTONS;
    let keep_description = |spec: &ChoiceSpec| Choice {
        description: spec.description.clone().filter(|_| as_list),
        ..choice(spec)
    };
    spec.buttons.iter().map(keep_description).collect()
}

fn buttons_message(spec: &ButtonsSpec, at: &YamlPath) -> Result<Outbound, ConvertError> {
    let count = spec.buttons.len();
    if count > limits::LIST_ROWS {
        let message = format!(
            "{count} buttons are too many; WhatsApp shows at most {} options (as a list), so split the question",
            limits::LIST_ROWS
        );
        return Err(ConvertError::new(&at.key("buttons"), message));
    }
    let header = optional_header(spec.header.as_ref(), &at.key("header"))?;
    let choices = button_choices(spec);
    let interactive = if count > limits::REPLY_BUTTONS {
        Interactive::List {
            header: header.filter(|header| matches!(header, Header::Text { .. })),
            body: body(&spec.body),
            footer: footer(spec.footer.as_ref()),
            action: ListAction {
                button: spec
                    .button
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LIST_BUTTON.to_owned()),
                sections: vec![ListSection {
                    title: None,
                    rows: choices,
                }],
            },
        }
    } else {
        let reply = |reply| ReplyButton {
            kind: ReplyKind::Reply,
            reply,
        };
        Interactive::Button {
            header,
            body: body(&spec.body),
            footer: footer(spec.footer.as_ref()),
            action: ButtonAction {
                buttons: choices.into_iter().map(reply).collect(),
            },
        }
    };
    Ok(Outbound::Interactive { interactive })
}

fn list_message(spec: &ListSpec, at: &YamlPath) -> Result<Outbound, ConvertError> {
    let header = spec
        .header
        .as_ref()
        .map(|header| text_header(header, &at.key("header"), "list"));
    let sections = spec.sections.iter().map(|section| ListSection {
        title: section.title.clone(),
        rows: section.rows.iter().map(choice).collect(),
    });
    let interactive = Interactive::List {
        header: header.transpose()?,
        body: body(&spec.body),
        footer: footer(spec.footer.as_ref()),
        action: ListAction {
            button: spec.button.clone(),
            sections: sections.collect(),
        },
    };
    Ok(Outbound::Interactive { interactive })
}

fn product_message(spec: &ProductSpec) -> Outbound {
    let interactive = Interactive::Product {
        body: spec.body.as_deref().map(body),
        footer: footer(spec.footer.as_ref()),
        action: ProductAction {
            catalog_id: spec.catalog_id.clone(),
            product_retailer_id: spec.product_id.clone(),
        },
    };
    Outbound::Interactive { interactive }
}

fn products_message(spec: &ProductsSpec, at: &YamlPath) -> Result<Outbound, ConvertError> {
    let items = |ids: &[String]| {
        ids.iter()
            .map(|id| ProductItem {
                product_retailer_id: id.clone(),
            })
            .collect()
    };
    let sections = spec.sections.iter().map(|section| ProductSection {
        title: section.title.clone(),
        product_items: items(&section.product_ids),
    });
    let interactive = Interactive::ProductList {
        header: text_header(&spec.header, &at.key("header"), "products")?,
        body: body(&spec.body),
        footer: footer(spec.footer.as_ref()),
        action: ProductListAction {
            catalog_id: spec.catalog_id.clone(),
            sections: sections.collect(),
        },
    };
    Ok(Outbound::Interactive { interactive })
}

fn flow_message(spec: &WaFlowSpec, at: &YamlPath) -> Result<Outbound, ConvertError> {
    let action = spec.action.unwrap_or(FlowActionKind::Navigate);
    let parameters = FlowParameters {
        flow_message_version: "3".to_owned(),
        flow_token: spec.token.clone(),
        flow_id: spec.flow_id.clone(),
        flow_cta: spec.cta.clone(),
        flow_action: flow_action_name(action).to_owned(),
        flow_action_payload: flow_payload(spec, action, at)?,
    };
    let interactive = Interactive::Flow {
        header: optional_header(spec.header.as_ref(), &at.key("header"))?,
        body: body(&spec.body),
        footer: footer(spec.footer.as_ref()),
        action: FlowAction {
            name: "flow".to_owned(),
            parameters,
        },
    };
    Ok(Outbound::Interactive { interactive })
}

/// Meta's name of a Flow action.
fn flow_action_name(action: FlowActionKind) -> &'static str {
    match action {
        FlowActionKind::Navigate => "navigate",
        FlowActionKind::DataExchange => "data_exchange",
    }
}

/// `flow_action_payload`: navigate only; a data_exchange Flow's endpoint picks its first screen.
fn flow_payload(
    spec: &WaFlowSpec,
    action: FlowActionKind,
    at: &YamlPath,
) -> Result<Option<FlowActionPayload>, ConvertError> {
    if action == FlowActionKind::DataExchange {
        let misplaced = [
            ("screen", spec.screen.is_some()),
            ("data", spec.data.is_some()),
        ];
        if let Some((key, _)) = misplaced.into_iter().find(|(_, set)| *set) {
            let message = format!(
                "{key} applies only to action navigate; a data_exchange flow gets it from its endpoint"
            );
            return Err(ConvertError::new(&at.key(key), message));
        }
        return Ok(None);
    }
    let data = match &spec.data {
        None => None,
        Some(Value::Object(map)) if map.is_empty() => None,
        Some(data @ Value::Object(_)) => Some(data.clone()),
        Some(_) => {
            return Err(ConvertError::new(
                &at.key("data"),
                "data must be a map of values for the first screen",
            ));
        }
    };
    let screen = spec
        .screen
        .clone()
        .unwrap_or_else(|| DEFAULT_FLOW_SCREEN.to_owned());
    Ok(Some(FlowActionPayload { screen, data }))
}

fn cta_url_message(spec: &CtaUrlSpec, at: &YamlPath) -> Result<Outbound, ConvertError> {
    let interactive = Interactive::CtaUrl {
        header: optional_header(spec.header.as_ref(), &at.key("header"))?,
        body: body(&spec.body),
        footer: footer(spec.footer.as_ref()),
        action: CtaUrlAction {
            name: "cta_url".to_owned(),
            parameters: CtaUrlParameters {
                display_text: spec.button.clone(),
                url: spec.url.clone(),
            },
        },
    };
    Ok(Outbound::Interactive { interactive })
}

fn location_request_message(spec: &LocationRequestSpec) -> Outbound {
    let interactive = Interactive::LocationRequestMessage {
        body: body(&spec.body),
        action: NamedAction {
            name: "send_location".to_owned(),
        },
    };
    Outbound::Interactive { interactive }
}

fn location_message(spec: &LocationSpec, at: &YamlPath) -> Result<Outbound, ConvertError> {
    let location = Location {
        latitude: coordinate(&spec.latitude, &at.key("latitude"), 90.0)?,
        longitude: coordinate(&spec.longitude, &at.key("longitude"), 180.0)?,
        name: spec.name.clone(),
        address: spec.address.clone(),
    };
    Ok(Outbound::Location { location })
}

/// A latitude or longitude, which WhatsApp cannot place outside ±`max` degrees.
fn coordinate(value: &Lenient<f64>, at: &YamlPath, max: f64) -> Result<f64, ConvertError> {
    let degrees = lenient(value, at)?;
    if degrees.abs() > max {
        return Err(ConvertError::new(
            at,
            format!("{degrees} is outside -{max}..{max} degrees"),
        ));
    }
    Ok(degrees)
}

fn contacts_message(cards: &[Value], at: &YamlPath) -> Result<Outbound, ConvertError> {
    for (index, card) in cards.iter().enumerate() {
        let at = at.index(index);
        if !card.is_object() {
            return Err(ConvertError::new(
                &at,
                "a contact card must be a map in the WhatsApp shape",
            ));
        }
        let name = card
            .get("name")
            .and_then(|name| name.get("formatted_name"))
            .and_then(Value::as_str);
        if name.is_none_or(|name| name.trim().is_empty()) {
            let message = "every contact card needs name.formatted_name, the name WhatsApp shows";
            return Err(ConvertError::new(
                &at.key("name").key("formatted_name"),
                message,
            ));
        }
    }
    Ok(Outbound::Contacts {
        contacts: cards.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MessageSpec {
        serde_yaml::from_str(yaml).expect("test spec is valid yaml")
    }

    #[test]
    fn names_the_kind_or_what_is_wrong_with_it() {
        assert_eq!(spec("text: hi").kind_name(), Ok("text"));
        let none = spec("fallback_text: hi").kind_name().expect_err("no kind");
        assert!(
            none.message
                .starts_with("a message needs one of text, image"),
            "{none}"
        );
        let two = spec("text: hi\nimage: https://x/y.png")
            .kind_name()
            .expect_err("two kinds");
        assert!(
            two.message.starts_with("a message sets text and image;"),
            "{two}"
        );
    }

    #[test]
    fn reads_lenient_text_as_its_type() {
        let at = YamlPath::root().key("voice");
        assert_eq!(
            lenient(&Lenient::<bool>::Text(" true ".into()), &at),
            Ok(true)
        );
        assert_eq!(lenient(&Lenient::<i64>::Text("1500".into()), &at), Ok(1500));
        let error = lenient(&Lenient::<f64>::Text("NaN".into()), &at).expect_err("not finite");
        assert_eq!(error.to_string(), "voice: expected a number, got \"NaN\"");
    }

    #[test]
    fn shows_no_path_for_the_whole_message() {
        let error = ConvertError::new(&YamlPath::root(), "broken");
        assert_eq!(error.to_string(), "broken");
    }
}
