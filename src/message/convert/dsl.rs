//! Outbound messages shown in DSL form, the reverse of `MessageSpec::to_outbound`.
//!
//! Conversation tests compare what a bot sent with what the author expects, written the way the
//! author writes messages; the chat CLI prints sent messages the same way. Every message made
//! from a spec comes back as a spec that converts to the same message.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::template;
use crate::message::outbound::{
    Body, Footer, Header, Interactive, ListSection, Media, Outbound, ProductSection, Text,
};

/// `message` as an author would write it in `send:`, e.g. `{"text": "hi"}` or
/// `{"buttons": {"body": "…", "buttons": [{"id": "…", "title": "…"}]}}`. Defaults that
/// `to_outbound` filled in (Flow action and screen, list button label) are spelled out, so a
/// partial expectation that names them still matches.
#[must_use]
pub fn dsl_form(message: &Outbound) -> Value {
    match message {
        Outbound::Text { text } => json!({"text": text_dsl(text)}),
        Outbound::Image { image } => json!({"image": media_dsl(image)}),
        Outbound::Video { video } => json!({"video": media_dsl(video)}),
        Outbound::Audio { audio } => json!({"audio": media_dsl(audio)}),
        Outbound::Document { document } => json!({"document": media_dsl(document)}),
        Outbound::Sticker { sticker } => json!({"sticker": media_dsl(sticker)}),
        Outbound::Location { location } => json!({"location": location}),
        Outbound::Contacts { contacts } => json!({"contacts": contacts}),
        Outbound::Interactive { interactive } => interactive_dsl(interactive),
        Outbound::Template { template } => json!({"template": template::dsl(template)}),
        Outbound::Reaction { reaction } => json!({"reaction": reaction}),
    }
}

/// A JSON object of the entries that are present, in order.
fn object<'a>(entries: impl IntoIterator<Item = (&'a str, Option<Value>)>) -> Value {
    let present = entries
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_owned(), value?)));
    Value::Object(present.collect::<Map<_, _>>())
}

fn some(value: impl Serialize) -> Option<Value> {
    serde_json::to_value(value).ok()
}

fn optional<T: Serialize>(value: Option<&T>) -> Option<Value> {
    value.and_then(some)
}

fn text_dsl(text: &Text) -> Value {
    match text.preview_url {
        None => Value::from(text.body.as_str()),
        Some(preview_url) => json!({"body": text.body, "preview_url": preview_url}),
    }
}

/// A bare URL when that is all there is, else the full form.
fn media_dsl(media: &Media) -> Value {
    let only_link = media.id.is_none()
        && media.caption.is_none()
        && media.filename.is_none()
        && media.voice.is_none();
    match &media.link {
        Some(link) if only_link => Value::from(link.as_str()),
        _ => object([
            ("url", optional(media.link.as_ref())),
            ("media_id", optional(media.id.as_ref())),
            ("caption", optional(media.caption.as_ref())),
            ("filename", optional(media.filename.as_ref())),
            ("voice", optional(media.voice.as_ref())),
        ]),
    }
}

/// Text as a string; media by URL as `{image: URL}`; media by id keeps Meta's object.
fn header_dsl(header: &Header) -> Value {
    let (kind, media) = match header {
        Header::Text { text } => return Value::from(text.as_str()),
        Header::Image { image } => ("image", image),
        Header::Video { video } => ("video", video),
        Header::Document { document } => ("document", document),
    };
    match (&media.link, &media.id) {
        (Some(link), None) => json!({kind: link}),
        _ => json!({kind: media}),
    }
}

/// An interactive kind's DSL object: the header, body and footer every kind shares, then `rest`.
fn framed<'a>(
    header: Option<&Header>,
    body: Option<&Body>,
    footer: Option<&Footer>,
    rest: impl IntoIterator<Item = (&'a str, Option<Value>)>,
) -> Value {
    let frame = [
        ("header", header.map(header_dsl)),
        ("body", body.map(|body| Value::from(body.text.as_str()))),
        (
            "footer",
            footer.map(|footer| Value::from(footer.text.as_str())),
        ),
    ];
    object(frame.into_iter().chain(rest))
}

fn interactive_dsl(interactive: &Interactive) -> Value {
    match interactive {
        Interactive::Button {
            header,
            body,
            footer,
            action,
        } => {
            let buttons: Vec<_> = action.buttons.iter().map(|button| &button.reply).collect();
            let rest = [("buttons", some(buttons))];
            json!({"buttons": framed(header.as_ref(), Some(body), footer.as_ref(), rest)})
        }
        Interactive::List {
            header,
            body,
            footer,
            action,
        } => {
            let sections: Vec<_> = action.sections.iter().map(list_section_dsl).collect();
            let rest = [
                ("button", some(&action.button)),
                ("sections", some(sections)),
            ];
            json!({"list": framed(header.as_ref(), Some(body), footer.as_ref(), rest)})
        }
        Interactive::Product {
            body,
            footer,
            action,
        } => {
            let rest = [
                ("catalog_id", some(&action.catalog_id)),
                ("product_id", some(&action.product_retailer_id)),
            ];
            json!({"product": framed(None, body.as_ref(), footer.as_ref(), rest)})
        }
        Interactive::ProductList {
            header,
            body,
            footer,
            action,
        } => {
            let sections: Vec<_> = action.sections.iter().map(product_section_dsl).collect();
            let rest = [
                ("catalog_id", some(&action.catalog_id)),
                ("sections", some(sections)),
            ];
            json!({"products": framed(Some(header), Some(body), footer.as_ref(), rest)})
        }
        Interactive::Flow {
            header,
            body,
            footer,
            action,
        } => {
            let parameters = &action.parameters;
            let payload = parameters.flow_action_payload.as_ref();
            let rest = [
                ("flow_id", some(&parameters.flow_id)),
                ("cta", some(&parameters.flow_cta)),
                ("token", optional(parameters.flow_token.as_ref())),
                ("action", some(&parameters.flow_action)),
                ("screen", optional(payload.map(|payload| &payload.screen))),
                (
                    "data",
                    optional(payload.and_then(|payload| payload.data.as_ref())),
                ),
            ];
            json!({"wa_flow": framed(header.as_ref(), Some(body), footer.as_ref(), rest)})
        }
        Interactive::CtaUrl {
            header,
            body,
            footer,
            action,
        } => {
            let parameters = &action.parameters;
            let rest = [
                ("button", some(&parameters.display_text)),
                ("url", some(&parameters.url)),
            ];
            json!({"cta_url": framed(header.as_ref(), Some(body), footer.as_ref(), rest)})
        }
        Interactive::LocationRequestMessage { body, .. } => {
            json!({"location_request": {"body": body.text}})
        }
    }
}

fn list_section_dsl(section: &ListSection) -> Value {
    object([
        ("title", optional(section.title.as_ref())),
        ("rows", some(&section.rows)),
    ])
}

fn product_section_dsl(section: &ProductSection) -> Value {
    let ids: Vec<&str> = section
        .product_items
        .iter()
        .map(|item| item.product_retailer_id.as_str())
        .collect();
    object([
        ("title", optional(section.title.as_ref())),
        ("product_ids", some(ids)),
    ])
}
