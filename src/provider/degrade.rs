//! What a provider can render, and how the rest is degraded — never dropped (DESIGN §7).

use serde_json::Value;

use crate::message::Outbound;
use crate::message::outbound::{
    Choice, Footer, Header, Interactive, ListSection, Location, Media, Template, Text,
};

/// What a provider can render; everything else is degraded before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one flag per WhatsApp message family, read by name"
)]
pub struct Capabilities {
    /// Interactive reply buttons.
    pub buttons: bool,
    /// Interactive list menus.
    pub lists: bool,
    /// Single- and multi-product messages.
    pub products: bool,
    /// WhatsApp Flows.
    pub flows: bool,
    /// CTA URL buttons.
    pub cta_url: bool,
    /// Location request buttons.
    pub location_request: bool,
    /// Map pins.
    pub location: bool,
    /// Contact cards.
    pub contacts: bool,
    /// Images, video, audio, documents, stickers.
    pub media: bool,
    /// Approved templates.
    pub templates: bool,
    /// Emoji reactions.
    pub reactions: bool,
}

impl Capabilities {
    /// Everything WhatsApp has (Meta, Ivosights, the simulator).
    pub const ALL: Self = Self {
        buttons: true,
        lists: true,
        products: true,
        flows: true,
        cta_url: true,
        location_request: true,
        location: true,
        contacts: true,
        media: true,
        templates: true,
        reactions: true,
    };

    /// Plain text only (Chat API, Digiworld, a generic channel).
    pub const TEXT_ONLY: Self = Self {
        buttons: false,
        lists: false,
        products: false,
        flows: false,
        cta_url: false,
        location_request: false,
        location: false,
        contacts: false,
        media: false,
        templates: false,
        reactions: false,
    };
}

impl Capabilities {
    /// Whether `message` can go out as it is; anything else goes through [`degrade`].
    ///
    /// Only the message's kind is looked at: a menu's media header on a provider with buttons
    /// but no media is the provider's to handle, since no provider has that mix.
    #[must_use]
    pub fn renders(&self, message: &Outbound) -> bool {
        match message {
            Outbound::Text { .. } => true,
            Outbound::Image { .. }
            | Outbound::Video { .. }
            | Outbound::Audio { .. }
            | Outbound::Document { .. }
            | Outbound::Sticker { .. } => self.media,
            Outbound::Location { .. } => self.location,
            Outbound::Contacts { .. } => self.contacts,
            Outbound::Interactive { interactive } => self.renders_interactive(interactive),
            Outbound::Template { .. } => self.templates,
            Outbound::Reaction { .. } => self.reactions,
        }
    }

    fn renders_interactive(&self, interactive: &Interactive) -> bool {
        match interactive {
            Interactive::Button { .. } => self.buttons,
            Interactive::List { .. } => self.lists,
            Interactive::Product { .. } | Interactive::ProductList { .. } => self.products,
            Interactive::Flow { .. } => self.flows,
            Interactive::CtaUrl { .. } => self.cta_url,
            Interactive::LocationRequestMessage { .. } => self.location_request,
        }
    }
}

/// A message made sendable on one provider, and the menu an answer to it may pick from.
#[derive(Debug, Clone, PartialEq)]
pub struct Degraded {
    /// What to send: the message itself when the provider renders it, else its text form.
    pub message: Outbound,
    /// When buttons or a list became a numbered text menu: its options in number order, so
    /// that an answer of `2` or of an option's title can be read as that option's id (DESIGN §6
    /// routing, step 4). Empty otherwise.
    pub menu: Vec<Choice>,
}

/// Makes `message` sendable with `capabilities`, never dropping it (DESIGN §7).
///
/// What the provider renders passes unchanged. Otherwise:
/// - reply buttons and lists become a numbered text menu: the header (`*bold*`, text headers
///   only; a media header shows its link), the body, a blank line, `1. Title` lines numbered
///   across all sections (a section's title as a plain line before its rows, a row's
///   description after ` — `), a blank line and the footer as `_italic_`. The list's button
///   label is left out: there is nothing to tap. `fallback_text` is not used, because the
///   numbered menu keeps the options answerable;
/// - a location becomes its name, address and a `https://maps.google.com/?q=LAT,LNG` link, and
///   contact cards become their names, organisations, phones, emails, URLs and addresses, one
///   card per paragraph — both carry all their information as text, so `fallback_text` is
///   not used either;
/// - media with a public link becomes its caption (or a document's file name) and the link, so
///   the user can still open the file; media known only by an uploaded id cannot be linked, so
///   it becomes `fallback_text`, else its caption;
/// - products, Flows, CTA URL buttons, location requests, templates and reactions become
///   `fallback_text` when the author wrote one, since the author knows best what stands in for
///   them. Without it: the header, body and footer as for menus, with a CTA URL button's URL
///   after the body (products and Flows cannot be used in text, so the body is all there is);
///   a template's text, currency, date and media parameters one per line — or its name when it
///   has none, since its approved wording lives at the provider; a reaction's emoji.
///
/// When no text can be made (media by id with neither caption nor `fallback_text`, a reaction
/// being removed) the message passes unchanged, so the provider refuses it as a
/// [`BuildError`](super::BuildError) and it is dead-lettered in sight: an empty text would be a
/// silent loss dressed as a send.
#[must_use]
pub fn degrade(
    message: &Outbound,
    fallback_text: Option<&str>,
    capabilities: &Capabilities,
) -> Degraded {
    if capabilities.renders(message) {
        return unchanged(message);
    }
    if let Some((text, menu)) = menu_text(message) {
        return Degraded {
            message: text_message(text),
            menu,
        };
    }
    match as_text(message, fallback_text).filter(|text| !text.trim().is_empty()) {
        Some(text) => Degraded {
            message: text_message(text),
            menu: Vec::new(),
        },
        None => unchanged(message),
    }
}

fn unchanged(message: &Outbound) -> Degraded {
    Degraded {
        message: message.clone(),
        menu: Vec::new(),
    }
}

fn text_message(body: String) -> Outbound {
    Outbound::Text {
        text: Text {
            preview_url: None,
            body,
        },
    }
}

/// Reply buttons and lists as numbered text, with their options in number order.
fn menu_text(message: &Outbound) -> Option<(String, Vec<Choice>)> {
    let Outbound::Interactive { interactive } = message else {
        return None;
    };
    match interactive {
        Interactive::Button {
            header,
            body,
            footer,
            action,
        } => {
            let menu: Vec<Choice> = action
                .buttons
                .iter()
                .map(|button| button.reply.clone())
                .collect();
            let lines = menu
                .iter()
                .enumerate()
                .map(|(index, choice)| option_line(index, choice))
                .collect();
            Some((
                card(header.as_ref(), Some(&body.text), lines, footer.as_ref()),
                menu,
            ))
        }
        Interactive::List {
            header,
            body,
            footer,
            action,
        } => {
            let (lines, menu) = list_lines(&action.sections);
            Some((
                card(header.as_ref(), Some(&body.text), lines, footer.as_ref()),
                menu,
            ))
        }
        _ => None,
    }
}

/// A list's rows numbered across sections, each section's title as a plain line before them.
fn list_lines(sections: &[ListSection]) -> (Vec<String>, Vec<Choice>) {
    let mut lines = Vec::new();
    let mut menu = Vec::new();
    for section in sections {
        lines.extend(section.title.iter().cloned());
        for row in &section.rows {
            lines.push(option_line(menu.len(), row));
            menu.push(row.clone());
        }
    }
    (lines, menu)
}

/// `1. Title — description`.
fn option_line(index: usize, choice: &Choice) -> String {
    match &choice.description {
        Some(description) => format!("{}. {} — {description}", index + 1, choice.title),
        None => format!("{}. {}", index + 1, choice.title),
    }
}

/// Header and body, then `middle`, then the footer, as paragraphs.
fn card(
    header: Option<&Header>,
    body: Option<&str>,
    middle: Vec<String>,
    footer: Option<&Footer>,
) -> String {
    let top: Vec<String> = header
        .and_then(header_line)
        .into_iter()
        .chain(body.map(str::to_owned))
        .collect();
    let bottom = footer.map(|footer| format!("_{}_", footer.text.trim()));
    paragraphs([top, middle, bottom.into_iter().collect()])
}

/// A text header in bold; a media header as its link, when it has one.
fn header_line(header: &Header) -> Option<String> {
    match header {
        Header::Text { text } => Some(format!("*{}*", text.trim())),
        Header::Image { image: media }
        | Header::Video { video: media }
        | Header::Document { document: media } => media.link.clone(),
    }
}

/// Groups of lines, blank-line separated; empty groups are left out.
fn paragraphs(groups: impl IntoIterator<Item = Vec<String>>) -> String {
    groups
        .into_iter()
        .filter(|lines| !lines.is_empty())
        .map(|lines| lines.join("\n"))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The text form of every kind but menus and text; `None` when there is nothing to say.
fn as_text(message: &Outbound, fallback_text: Option<&str>) -> Option<String> {
    let fallback = fallback_text.map(str::to_owned);
    match message {
        Outbound::Text { text } => Some(text.body.clone()),
        Outbound::Image { image: media }
        | Outbound::Video { video: media }
        | Outbound::Audio { audio: media }
        | Outbound::Document { document: media }
        | Outbound::Sticker { sticker: media } => media_text(media, fallback),
        Outbound::Location { location } => Some(location_text(location)),
        Outbound::Contacts { contacts } => Some(contacts::text(contacts)),
        Outbound::Interactive { interactive } => fallback.or_else(|| interactive_text(interactive)),
        Outbound::Template { template } => fallback.or_else(|| Some(template_text(template))),
        Outbound::Reaction { reaction } => fallback.or_else(|| Some(reaction.emoji.clone())),
    }
}

/// Caption (or file name) and link; without a link, `fallback` or the caption.
fn media_text(media: &Media, fallback: Option<String>) -> Option<String> {
    let label = media.caption.as_ref().or(media.filename.as_ref()).cloned();
    match &media.link {
        Some(link) => Some(
            label
                .into_iter()
                .chain([link.clone()])
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        None => fallback.or(label),
    }
}

/// Name and address lines, then a maps link.
fn location_text(location: &Location) -> String {
    let link = format!(
        "https://maps.google.com/?q={},{}",
        location.latitude, location.longitude
    );
    let lines: Vec<String> = [location.name.clone(), location.address.clone(), Some(link)]
        .into_iter()
        .flatten()
        .collect();
    lines.join("\n")
}

/// Header, body and footer of the interactive kinds that are not menus, and a CTA's URL.
fn interactive_text(interactive: &Interactive) -> Option<String> {
    let text = match interactive {
        Interactive::Product { body, footer, .. } => card(
            None,
            body.as_ref().map(|b| b.text.as_str()),
            Vec::new(),
            footer.as_ref(),
        ),
        Interactive::ProductList {
            header,
            body,
            footer,
            ..
        } => card(Some(header), Some(&body.text), Vec::new(), footer.as_ref()),
        Interactive::Flow {
            header,
            body,
            footer,
            ..
        } => card(
            header.as_ref(),
            Some(&body.text),
            Vec::new(),
            footer.as_ref(),
        ),
        Interactive::CtaUrl {
            header,
            body,
            footer,
            action,
        } => card(
            header.as_ref(),
            Some(&body.text),
            vec![action.parameters.url.clone()],
            footer.as_ref(),
        ),
        Interactive::LocationRequestMessage { body, .. } => body.text.clone(),
        Interactive::Button { .. } | Interactive::List { .. } => return None,
    };
    Some(text)
}

/// A template's readable parameters, header then body, one per line; its name when it has none.
fn template_text(template: &Template) -> String {
    let values: Vec<String> = template
        .components
        .iter()
        .filter(|component| matches!(component.kind.as_str(), "header" | "body"))
        .flat_map(|component| component.parameters.iter().filter_map(parameter_text))
        .collect();
    if values.is_empty() {
        return template.name.clone();
    }
    values.join("\n")
}

/// A template parameter as the user would read it: text, a currency's or date's fallback, a
/// media link.
fn parameter_text(parameter: &Value) -> Option<String> {
    let kind = parameter.get("type")?.as_str()?;
    let value = match kind {
        "text" => parameter.get("text"),
        "currency" | "date_time" => parameter.get(kind)?.get("fallback_value"),
        "image" | "video" | "document" => parameter.get(kind)?.get("link"),
        _ => None,
    }?;
    value.as_str().map(str::to_owned)
}

/// Contact cards (WhatsApp's shape, kept as JSON) as text.
mod contacts {
    use serde_json::Value;

    /// One paragraph per card.
    pub(super) fn text(cards: &[Value]) -> String {
        let cards: Vec<String> = cards
            .iter()
            .map(card)
            .filter(|card| !card.is_empty())
            .collect();
        cards.join("\n\n")
    }

    /// Name, organisation, phones, emails, URLs and addresses, one per line.
    fn card(card: &Value) -> String {
        let lines: Vec<String> = [name(card), organisation(card)]
            .into_iter()
            .flatten()
            .chain(each(card, "phones", |phone| field(phone, "phone")))
            .chain(each(card, "emails", |email| field(email, "email")))
            .chain(each(card, "urls", |url| field(url, "url")))
            .chain(each(card, "addresses", address))
            .collect();
        lines.join("\n")
    }

    /// The formatted name, else first and last name.
    fn name(card: &Value) -> Option<String> {
        let name = card.get("name")?;
        field(name, "formatted_name").or_else(|| joined(name, &["first_name", "last_name"], " "))
    }

    /// `Title, Department, Company`, from what is given.
    fn organisation(card: &Value) -> Option<String> {
        joined(card.get("org")?, &["title", "department", "company"], ", ")
    }

    /// `Street, City, State, ZIP, Country`, from what is given.
    fn address(address: &Value) -> Option<String> {
        joined(
            address,
            &["street", "city", "state", "zip", "country"],
            ", ",
        )
    }

    /// One line per entry of the array `key` that `line` can read.
    fn each(card: &Value, key: &str, line: fn(&Value) -> Option<String>) -> Vec<String> {
        let entries = card.get(key).and_then(Value::as_array);
        entries.into_iter().flatten().filter_map(line).collect()
    }

    /// The non-empty fields among `keys`, joined; `None` when there are none.
    fn joined(object: &Value, keys: &[&str], separator: &str) -> Option<String> {
        let parts: Vec<String> = keys.iter().filter_map(|key| field(object, key)).collect();
        (!parts.is_empty()).then(|| parts.join(separator))
    }

    /// A non-empty string field.
    fn field(object: &Value, key: &str) -> Option<String> {
        let value = object.get(key)?.as_str()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn outbound(value: Value) -> Outbound {
        serde_json::from_value(value).expect("a valid outbound message")
    }

    fn text_only(message: &Value, fallback: Option<&str>) -> Degraded {
        degrade(
            &outbound(message.clone()),
            fallback,
            &Capabilities::TEXT_ONLY,
        )
    }

    /// The text a message degrades to on a text-only provider.
    fn as_text_only(message: &Value, fallback: Option<&str>) -> String {
        match text_only(message, fallback).message {
            Outbound::Text { text } => text.body,
            other => panic!("not degraded to text: {other:?}"),
        }
    }

    fn choice(id: &str, title: &str, description: Option<&str>) -> Choice {
        Choice {
            id: id.to_owned(),
            title: title.to_owned(),
            description: description.map(str::to_owned),
        }
    }

    fn buttons() -> Value {
        json!({"type": "interactive", "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Pizza time"},
            "body": {"text": "Which size?"},
            "footer": {"text": "Prices include tax"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "small", "title": "Small"}},
                {"type": "reply", "reply": {"id": "large", "title": "Large"}}
            ]}
        }})
    }

    #[test]
    fn what_the_provider_renders_passes_unchanged() {
        for message in [
            buttons(),
            json!({"type": "location", "location": {"latitude": 1.5, "longitude": 2.0}}),
        ] {
            let degraded = degrade(
                &outbound(message.clone()),
                Some("unused"),
                &Capabilities::ALL,
            );
            assert_eq!(
                degraded,
                Degraded {
                    message: outbound(message),
                    menu: Vec::new()
                }
            );
        }
        let text = json!({"type": "text", "text": {"body": "hi"}});
        assert_eq!(text_only(&text, None).message, outbound(text));
    }

    #[test]
    fn buttons_become_a_numbered_menu() {
        let degraded = text_only(&buttons(), Some("ignored: the menu stays answerable"));
        let Outbound::Text { text } = degraded.message else {
            panic!("not text")
        };
        assert_eq!(
            text.body,
            "*Pizza time*\nWhich size?\n\n1. Small\n2. Large\n\n_Prices include tax_"
        );
        assert_eq!(
            degraded.menu,
            vec![
                choice("small", "Small", None),
                choice("large", "Large", None)
            ]
        );
    }

    #[test]
    fn list_rows_are_numbered_across_sections() {
        let list = json!({"type": "interactive", "interactive": {
            "type": "list",
            "body": {"text": "Shipping?"},
            "action": {"button": "Options", "sections": [
                {"title": "Fast", "rows": [
                    {"id": "express", "title": "Express", "description": "Next day"},
                    {"id": "priority", "title": "Priority"}
                ]},
                {"title": "Slow", "rows": [{"id": "ground", "title": "Ground", "description": "2–5 days"}]}
            ]}
        }});
        let degraded = text_only(&list, None);
        assert_eq!(
            as_text_only(&list, None),
            "Shipping?\n\nFast\n1. Express — Next day\n2. Priority\nSlow\n3. Ground — 2–5 days"
        );
        let ids: Vec<&str> = degraded
            .menu
            .iter()
            .map(|choice| choice.id.as_str())
            .collect();
        assert_eq!(ids, ["express", "priority", "ground"]);
    }

    #[test]
    fn a_menu_with_a_media_header_shows_its_link() {
        let mut message = buttons();
        message["interactive"]["header"] =
            json!({"type": "image", "image": {"link": "https://x.test/a.jpg"}});
        message["interactive"]["footer"] = Value::Null;
        assert_eq!(
            as_text_only(&message, None),
            "https://x.test/a.jpg\nWhich size?\n\n1. Small\n2. Large"
        );
    }

    #[test]
    fn a_location_becomes_a_maps_link() {
        let location = json!({"type": "location", "location": {
            "latitude": -6.2, "longitude": 106.816666, "name": "Monas", "address": "Gambir, Jakarta"
        }});
        assert_eq!(
            as_text_only(&location, Some("ignored")),
            "Monas\nGambir, Jakarta\nhttps://maps.google.com/?q=-6.2,106.816666"
        );
        let bare = json!({"type": "location", "location": {"latitude": 1.0, "longitude": 2.5}});
        assert_eq!(
            as_text_only(&bare, None),
            "https://maps.google.com/?q=1,2.5"
        );
    }

    #[test]
    fn contact_cards_become_text() {
        let contacts = json!({"type": "contacts", "contacts": [
            {
                "name": {"formatted_name": "Support Desk", "first_name": "Support"},
                "org": {"company": "Example Co", "title": "Helpdesk"},
                "phones": [{"phone": "+15550783881", "type": "WORK"}],
                "emails": [{"email": "support@example.com"}],
                "urls": [{"url": "https://example.com"}],
                "addresses": [{"street": "1 Main St", "city": "Springfield", "country": "US"}]
            },
            {"name": {"first_name": "Barbara", "last_name": "Johnson"}, "birthday": "1999-01-23"}
        ]});
        assert_eq!(
            as_text_only(&contacts, None),
            "Support Desk\nHelpdesk, Example Co\n+15550783881\nsupport@example.com\nhttps://example.com\n\
             1 Main St, Springfield, US\n\nBarbara Johnson"
        );
    }

    #[test]
    fn linked_media_becomes_its_caption_and_link() {
        let image = json!({"type": "image", "image": {"link": "https://x.test/menu.jpg", "caption": "Our menu"}});
        assert_eq!(
            as_text_only(&image, Some("menu")),
            "Our menu\nhttps://x.test/menu.jpg"
        );
        let document = json!({"type": "document", "document": {"link": "https://x.test/i.pdf", "filename": "i.pdf"}});
        assert_eq!(as_text_only(&document, None), "i.pdf\nhttps://x.test/i.pdf");
        let audio = json!({"type": "audio", "audio": {"link": "https://x.test/a.ogg"}});
        assert_eq!(as_text_only(&audio, None), "https://x.test/a.ogg");
    }

    #[test]
    fn media_by_id_becomes_the_fallback_or_its_caption() {
        let image = json!({"type": "image", "image": {"id": "1013", "caption": "Your receipt"}});
        assert_eq!(
            as_text_only(&image, Some("Receipt sent by email")),
            "Receipt sent by email"
        );
        assert_eq!(as_text_only(&image, None), "Your receipt");
    }

    #[test]
    fn what_cannot_become_text_passes_unchanged_for_the_provider_to_refuse() {
        let sticker = json!({"type": "sticker", "sticker": {"id": "77"}});
        let removal =
            json!({"type": "reaction", "reaction": {"message_id": "wamid.1", "emoji": ""}});
        for message in [sticker, removal] {
            assert_eq!(text_only(&message, None).message, outbound(message));
        }
    }

    #[test]
    fn the_other_kinds_prefer_the_fallback_text() {
        let cta = json!({"type": "interactive", "interactive": {
            "type": "cta_url",
            "header": {"type": "text", "text": "Workshop"},
            "body": {"text": "See the dates."},
            "action": {"name": "cta_url", "parameters": {"display_text": "Dates", "url": "https://x.test/dates"}}
        }});
        assert_eq!(
            as_text_only(&cta, Some("Dates: x.test/dates")),
            "Dates: x.test/dates"
        );
        assert_eq!(
            as_text_only(&cta, None),
            "*Workshop*\nSee the dates.\n\nhttps://x.test/dates"
        );
    }

    #[test]
    fn products_and_flows_become_their_text() {
        let product = json!({"type": "interactive", "interactive": {
            "type": "product", "body": {"text": "Back in stock"}, "footer": {"text": "Lucky Shrub"},
            "action": {"catalog_id": "1", "product_retailer_id": "aloe"}
        }});
        assert_eq!(
            as_text_only(&product, None),
            "Back in stock\n\n_Lucky Shrub_"
        );
        let products = json!({"type": "interactive", "interactive": {
            "type": "product_list", "header": {"type": "text", "text": "Best sellers"}, "body": {"text": "Browse"},
            "action": {"catalog_id": "1", "sections": [{"title": "All", "product_items": [{"product_retailer_id": "aloe"}]}]}
        }});
        assert_eq!(as_text_only(&products, None), "*Best sellers*\nBrowse");
        let flow = json!({"type": "interactive", "interactive": {
            "type": "flow", "body": {"text": "Book a table"},
            "action": {"name": "flow", "parameters": {
                "flow_message_version": "3", "flow_id": "9", "flow_cta": "Book", "flow_action": "navigate"
            }}
        }});
        assert_eq!(as_text_only(&flow, None), "Book a table");
        assert_eq!(
            as_text_only(&flow, Some("Call us to book")),
            "Call us to book"
        );
    }

    #[test]
    fn a_location_request_becomes_its_body() {
        let request = json!({"type": "interactive", "interactive": {
            "type": "location_request_message", "body": {"text": "Where are you?"}, "action": {"name": "send_location"}
        }});
        assert_eq!(as_text_only(&request, None), "Where are you?");
    }

    #[test]
    fn a_template_becomes_its_parameters_or_name() {
        let template = json!({"type": "template", "template": {
            "name": "order_update", "language": {"code": "en"},
            "components": [
                {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.test/42.jpg"}}]},
                {"type": "body", "parameters": [
                    {"type": "text", "text": "Ann"},
                    {"type": "currency", "currency": {"fallback_value": "$1.99", "code": "USD", "amount_1000": 1990}}
                ]},
                {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "p"}]}
            ]
        }});
        assert_eq!(
            as_text_only(&template, Some("Your order shipped")),
            "Your order shipped"
        );
        assert_eq!(
            as_text_only(&template, None),
            "https://x.test/42.jpg\nAnn\n$1.99"
        );
        let bare = json!({"type": "template", "template": {"name": "reopen_chat", "language": {"code": "en"}}});
        assert_eq!(as_text_only(&bare, None), "reopen_chat");
    }

    #[test]
    fn a_reaction_becomes_its_emoji() {
        let reaction =
            json!({"type": "reaction", "reaction": {"message_id": "wamid.1", "emoji": "👍"}});
        assert_eq!(as_text_only(&reaction, None), "👍");
    }
}
