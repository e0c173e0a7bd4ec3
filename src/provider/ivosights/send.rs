//! An outbound message (the WhatsApp model) to the Ivosights endpoint for its kind and that
//! endpoint's own body: headers flat, body and footer as plain strings, templates by id.
//!
//! Media go by link only: the document shows no way to send an uploaded media id (and has no
//! upload endpoint), so a message by id is refused rather than sent in a guessed shape.

use serde::Serialize;
use serde_json::Value;

use super::wire::{
    Button, ButtonAction, Component, ContactMessage, FlowAction, Header, InteractiveMessage,
    LocationMessage, MediaMessage, MultiProductMessage, SingleProductMessage, TemplateMessage,
    TextMessage,
};
use crate::message::Outbound;
use crate::message::outbound::{self, Footer, Interactive, Media, Template};
use crate::provider::BuildError;

/// The endpoint (last path segment) and the JSON body that send `message` to `wa_id`.
pub(super) fn message_body(
    wa_id: &str,
    message: &Outbound,
) -> Result<(&'static str, Value), BuildError> {
    match message {
        Outbound::Text { text } => post_to(
            "send-text-message",
            &TextMessage {
                wa_id,
                text: &text.body,
            },
        ),
        Outbound::Image { image: media } => media_message(wa_id, "image", media),
        Outbound::Video { video: media } => media_message(wa_id, "video", media),
        Outbound::Audio { audio: media } => media_message(wa_id, "audio", media),
        Outbound::Document { document: media } => media_message(wa_id, "document", media),
        Outbound::Sticker { sticker: media } => media_message(wa_id, "sticker", media),
        Outbound::Location { location } => post_to(
            "send-location-message",
            &LocationMessage {
                wa_id,
                latitude: location.latitude,
                longitude: location.longitude,
                name: location.name.as_deref(),
                address: location.address.as_deref(),
            },
        ),
        Outbound::Contacts { contacts } => {
            post_to("send-contact-message", &ContactMessage { wa_id, contacts })
        }
        Outbound::Interactive { interactive } => interactive_message(wa_id, interactive),
        Outbound::Template { template } => template_message(wa_id, template),
        Outbound::Reaction { .. } => Err(no_endpoint("reaction")),
    }
}

/// The interactive kinds the document has an endpoint for.
fn interactive_message(
    wa_id: &str,
    interactive: &Interactive,
) -> Result<(&'static str, Value), BuildError> {
    match interactive {
        Interactive::Button {
            header,
            body,
            footer,
            action,
        } => post_to(
            "send-reply-button-message",
            &InteractiveMessage {
                wa_id,
                header: flat_header(header.as_ref())?,
                body: &body.text,
                footer: footer_text(footer.as_ref()),
                action: buttons(action),
            },
        ),
        Interactive::List {
            header,
            body,
            footer,
            action,
        } => post_to(
            "send-list-message",
            &InteractiveMessage {
                wa_id,
                header: flat_header(header.as_ref())?,
                body: &body.text,
                footer: footer_text(footer.as_ref()),
                action,
            },
        ),
        Interactive::Product {
            body,
            footer,
            action,
        } => post_to(
            "send-single-product-message",
            &SingleProductMessage {
                wa_id,
                body: body.as_ref().map(|body| body.text.as_str()),
                footer: footer_text(footer.as_ref()),
                action,
            },
        ),
        Interactive::ProductList {
            header,
            body,
            footer,
            action,
        } => post_to(
            "send-multi-product-message",
            &MultiProductMessage {
                wa_id,
                header: text_header(header)?,
                body: &body.text,
                footer: footer_text(footer.as_ref()),
                action,
            },
        ),
        Interactive::Flow {
            header,
            body,
            footer,
            action,
        } => post_to(
            "send-flow-message",
            &InteractiveMessage {
                wa_id,
                header: flat_header(header.as_ref())?,
                body: &body.text,
                footer: footer_text(footer.as_ref()),
                action: FlowAction {
                    parameters: &action.parameters,
                },
            },
        ),
        Interactive::CtaUrl { .. } => Err(no_endpoint("cta_url")),
        Interactive::LocationRequestMessage { .. } => Err(no_endpoint("location_request")),
    }
}

/// Reply buttons without WhatsApp's `{"type": "reply", "reply": …}` wrapper.
fn buttons(action: &outbound::ButtonAction) -> ButtonAction<'_> {
    let buttons = action.buttons.iter().map(|button| Button {
        id: &button.reply.id,
        title: &button.reply.title,
    });
    ButtonAction {
        buttons: buttons.collect(),
    }
}

/// `send-media-message` with the kind and the link at the top level.
fn media_message(
    wa_id: &str,
    kind: &'static str,
    media: &Media,
) -> Result<(&'static str, Value), BuildError> {
    let message = MediaMessage {
        wa_id,
        kind,
        link: link(kind, media)?,
        caption: media.caption.as_deref(),
        filename: media.filename.as_deref(),
    };
    post_to("send-media-message", &message)
}

/// `send-template-message` by the template's Ivosights id; a template without parameters is
/// sent with a bare body component, as the document's first example does.
fn template_message(wa_id: &str, template: &Template) -> Result<(&'static str, Value), BuildError> {
    let template_id = template
        .id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            BuildError(format!(
                "template \"{}\" has no id: ivosights sends templates by id, so add `id:` to the \
                 template in the flow (the `id` of GET /api/v1/message-templates)",
                template.name
            ))
        })?;
    let mut components: Vec<Component<'_>> = template.components.iter().map(component).collect();
    if components.is_empty() {
        components.push(Component {
            kind: "body",
            sub_type: None,
            index: None,
            parameters: &[],
        });
    }
    let message = TemplateMessage {
        wa_id,
        template_id,
        components,
    };
    post_to("send-template-message", &message)
}

/// A template component as the WhatsApp model has it, parameters unchanged.
fn component(component: &outbound::TemplateComponent) -> Component<'_> {
    Component {
        kind: &component.kind,
        sub_type: component.sub_type.as_deref(),
        index: component.index.as_deref(),
        parameters: &component.parameters,
    }
}

/// A header as Ivosights takes it: the type and its text or link side by side.
fn flat_header(header: Option<&outbound::Header>) -> Result<Option<Header<'_>>, BuildError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let flat = match header {
        outbound::Header::Text { text } => Header::Text { text },
        outbound::Header::Image { image } => Header::Image {
            link: link("image header", image)?,
        },
        outbound::Header::Video { video } => Header::Video {
            link: link("video header", video)?,
        },
        outbound::Header::Document { document } => Header::Document {
            link: link("document header", document)?,
        },
    };
    Ok(Some(flat))
}

/// The multi-product header, which Ivosights takes as a plain string.
fn text_header(header: &outbound::Header) -> Result<&str, BuildError> {
    match header {
        outbound::Header::Text { text } => Ok(text),
        _ => Err(BuildError(
            "a multi-product message takes a text header only".to_owned(),
        )),
    }
}

fn footer_text(footer: Option<&Footer>) -> Option<&str> {
    footer.map(|footer| footer.text.as_str())
}

/// The public link of a file; an uploaded media id has no documented Ivosights form.
fn link<'a>(what: &str, media: &'a Media) -> Result<&'a str, BuildError> {
    media.link.as_deref().ok_or_else(|| {
        BuildError(format!(
            "ivosights sends media by url only (its api has no upload), and this {what} has a \
             media id; give it a url"
        ))
    })
}

fn no_endpoint(kind: &str) -> BuildError {
    BuildError(format!("ivosights has no endpoint for {kind} messages"))
}

/// The endpoint to post to and the body serialized.
fn post_to(
    endpoint: &'static str,
    body: &impl Serialize,
) -> Result<(&'static str, Value), BuildError> {
    serde_json::to_value(body)
        .map(|body| (endpoint, body))
        .map_err(|error| BuildError(format!("the message is not valid json: {error}")))
}
