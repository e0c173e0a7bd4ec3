//! WhatsApp's size and count limits (spec §5.18), checked when flows load and enforced at send.
//!
//! [`check`] reports every limit a DSL message breaks, per element, so `validate` finds them
//! instead of the provider rejecting the message later. Strings holding `{{ templates }}` are
//! skipped there because their length is only known after rendering; [`fit`] then trims the
//! rendered message so one long value never gets the whole message rejected.

use std::collections::HashSet;

use super::convert::{Kind, MediaSlot};
use super::spec::{
    ButtonsSpec, ChoiceSpec, CtaUrlSpec, HeaderSpec, ListSpec, MediaSpec, MessageSpec, ProductSpec,
    ProductsSpec, TemplateParam, TemplateParams, TemplateSpec, TextSpec, WaFlowSpec,
};
use crate::diagnostic::Severity;
use crate::source::YamlPath;

mod fit;

pub use fit::fit;

/// Longest text message body.
pub const TEXT_BODY: usize = 4096;
/// Longest caption of an image, video or document.
pub const CAPTION: usize = 1024;
/// Longest body of an interactive message (lists may have more on newer clients; 1024 is safe).
pub const INTERACTIVE_BODY: usize = 1024;
/// Longest interactive header text.
pub const HEADER_TEXT: usize = 60;
/// Longest interactive footer text.
pub const FOOTER_TEXT: usize = 60;
/// Most reply buttons WhatsApp shows; a buttons message with more is sent as a list.
pub const REPLY_BUTTONS: usize = 3;
/// Longest reply button title.
pub const BUTTON_TITLE: usize = 20;
/// Longest reply button id.
pub const BUTTON_ID: usize = 256;
/// Longest label of the button that opens a list.
pub const LIST_BUTTON: usize = 20;
/// Most sections in a list.
pub const LIST_SECTIONS: usize = 10;
/// Most rows in a list, across all its sections.
pub const LIST_ROWS: usize = 10;
/// Longest list section title.
pub const SECTION_TITLE: usize = 24;
/// Longest list row title.
pub const ROW_TITLE: usize = 24;
/// Longest list row description.
pub const ROW_DESCRIPTION: usize = 72;
/// Longest list row id.
pub const ROW_ID: usize = 200;
/// Most sections in a multi-product message.
pub const PRODUCT_SECTIONS: usize = 10;
/// Most products in a multi-product message, across its sections.
pub const PRODUCTS: usize = 30;

/// How a sectioned message counts its sections and items.
struct SectionLayout {
    max_sections: usize,
    /// What the items are called in messages.
    items: &'static str,
    /// The key that holds a section's items.
    key: &'static str,
    max_items: usize,
}

const LIST_LAYOUT: SectionLayout = SectionLayout {
    max_sections: LIST_SECTIONS,
    items: "rows",
    key: "rows",
    max_items: LIST_ROWS,
};
const PRODUCTS_LAYOUT: SectionLayout = SectionLayout {
    max_sections: PRODUCT_SECTIONS,
    items: "products",
    key: "product_ids",
    max_items: PRODUCTS,
};
/// Longest Flow button text (SDKs enforce 20; Meta advises at most 30).
pub const FLOW_CTA: usize = 20;
/// Longest CTA URL button label.
pub const CTA_URL_BUTTON: usize = 20;
/// Most contact cards in one message.
pub const CONTACTS: usize = 257;
/// Longest text a template header can show, so also its one parameter.
pub const TEMPLATE_HEADER_TEXT: usize = 60;
/// Longest template body, so also any one body parameter.
pub const TEMPLATE_BODY_TEXT: usize = 1024;
/// Longest template button URL, so also the suffix a URL button parameter appends.
pub const TEMPLATE_URL: usize = 2000;

/// One limit a message breaks, where, and how badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitIssue {
    /// Where in the message, relative to it, e.g. `buttons.buttons[3].title`.
    pub path: YamlPath,
    /// Errors make WhatsApp reject the message; warnings change how it is shown.
    pub severity: Severity,
    /// Lowercase; says what is wrong and what WhatsApp allows.
    pub message: String,
}

/// Every WhatsApp limit `spec` breaks, in document order. Kinds are checked even when a spec
/// wrongly sets several, so one run reports everything.
#[must_use]
pub fn check(spec: &MessageSpec) -> Vec<LimitIssue> {
    let mut checker = Checker::default();
    for kind in spec.kinds() {
        let at = YamlPath::root().key(kind.name());
        match kind {
            Kind::Text(text) => checker.text(text, &at),
            Kind::Media(slot, media) => checker.media(slot, media, &at),
            Kind::Buttons(buttons) => checker.buttons(buttons, &at),
            Kind::List(list) => checker.list(list, &at),
            Kind::Product(product) => checker.product(product, &at),
            Kind::Products(products) => checker.products(products, &at),
            Kind::WaFlow(flow) => checker.flow(flow, &at),
            Kind::CtaUrl(cta) => checker.cta_url(cta, &at),
            Kind::LocationRequest(request) => checker.body(&request.body, &at.key("body")),
            Kind::Location(_) => {}
            Kind::Contacts(cards) => checker.count(&at, "contact cards", cards.len(), 1, CONTACTS),
            Kind::Template(template) => checker.template(template, &at),
        }
    }
    if let Some(fallback) = &spec.fallback_text {
        checker.length(
            &YamlPath::root().key("fallback_text"),
            "fallback text",
            fallback,
            TEXT_BODY,
        );
    }
    checker.issues
}

/// True for strings whose length is only known after rendering.
fn is_template(text: &str) -> bool {
    text.contains("{{")
}

/// `"text"` for a message, shortened so a 4000-character body does not flood the terminal.
fn quote(text: &str) -> String {
    const SHOWN: usize = 40;
    if text.chars().count() <= SHOWN {
        return format!("\"{text}\"");
    }
    let start: String = text.chars().take(SHOWN - 1).collect();
    format!("\"{start}…\"")
}

#[derive(Default)]
struct Checker {
    issues: Vec<LimitIssue>,
}

impl Checker {
    fn report(&mut self, path: &YamlPath, severity: Severity, message: String) {
        self.issues.push(LimitIssue {
            path: path.clone(),
            severity,
            message,
        });
    }

    fn error(&mut self, path: &YamlPath, message: String) {
        self.report(path, Severity::Error, message);
    }

    fn warn(&mut self, path: &YamlPath, message: String) {
        self.report(path, Severity::Warning, message);
    }

    /// At most `max` characters (not bytes: WhatsApp counts what people see).
    fn length(&mut self, path: &YamlPath, what: &str, text: &str, max: usize) {
        let count = text.chars().count();
        if count > max && !is_template(text) {
            let message = format!(
                "{what} {} is {count} characters; WhatsApp allows {max}",
                quote(text)
            );
            self.error(path, message);
        }
    }

    /// Not blank and at most `max` characters.
    fn required(&mut self, path: &YamlPath, what: &str, text: &str, max: usize) {
        if text.trim().is_empty() {
            self.error(path, format!("{what} is empty; WhatsApp requires one"));
        }
        self.length(path, what, text, max);
    }

    fn optional(&mut self, path: &YamlPath, what: &str, text: Option<&String>, max: usize) {
        if let Some(text) = text {
            self.length(path, what, text, max);
        }
    }

    /// Between `min` and `max` things of a kind.
    fn count(&mut self, path: &YamlPath, what: &str, count: usize, min: usize, max: usize) {
        if count < min {
            self.error(
                path,
                format!("there are no {what}; WhatsApp requires at least {min}"),
            );
        } else if count > max {
            self.error(
                path,
                format!("there are {count} {what}; WhatsApp allows {max}"),
            );
        }
    }

    fn not_empty(&mut self, path: &YamlPath, what: &str, empty: bool) {
        if empty {
            self.error(path, format!("{what}; WhatsApp requires at least one"));
        }
    }

    /// Each value once; a repeat is reported where it repeats.
    fn unique<'a>(
        &mut self,
        severity: Severity,
        what: &str,
        values: impl IntoIterator<Item = (YamlPath, &'a str)>,
    ) {
        let mut seen = HashSet::new();
        for (path, value) in values {
            if !seen.insert(value) {
                let message = format!(
                    "{what} {} is used more than once; make each one unique",
                    quote(value)
                );
                self.report(&path, severity, message);
            }
        }
    }

    fn text(&mut self, spec: &TextSpec, at: &YamlPath) {
        let (body, at) = match spec {
            TextSpec::Body(body) => (body, at.clone()),
            TextSpec::Full(options) => (&options.body, at.key("body")),
        };
        self.required(&at, "text body", body, TEXT_BODY);
    }

    fn media(&mut self, slot: MediaSlot, spec: &MediaSpec, at: &YamlPath) {
        if let (MediaSpec::Full(options), true) = (spec, slot.takes_caption()) {
            self.optional(
                &at.key("caption"),
                "caption",
                options.caption.as_ref(),
                CAPTION,
            );
        }
    }

    fn body(&mut self, body: &str, at: &YamlPath) {
        self.required(at, "body", body, INTERACTIVE_BODY);
    }

    /// Header, body and footer, which every interactive kind limits alike.
    fn frame(
        &mut self,
        header: Option<&HeaderSpec>,
        body: Option<&str>,
        footer: Option<&String>,
        at: &YamlPath,
    ) {
        let header_text = header.and_then(|header| match header {
            HeaderSpec::Text(text) => Some((text, at.key("header"))),
            HeaderSpec::Full(options) => options
                .text
                .as_ref()
                .map(|text| (text, at.key("header").key("text"))),
        });
        if let Some((text, path)) = header_text {
            self.required(&path, "header text", text, HEADER_TEXT);
        }
        if let Some(body) = body {
            self.body(body, &at.key("body"));
        }
        self.optional(&at.key("footer"), "footer", footer, FOOTER_TEXT);
    }

    fn buttons(&mut self, spec: &ButtonsSpec, at: &YamlPath) {
        self.frame(
            spec.header.as_ref(),
            Some(&spec.body),
            spec.footer.as_ref(),
            at,
        );
        let count = spec.buttons.len();
        let buttons_at = at.key("buttons");
        match count {
            0 => self.error(
                &buttons_at,
                "there are no buttons; add one to three".to_owned(),
            ),
            1..=REPLY_BUTTONS => {}
            _ if count <= LIST_ROWS => self.buttons_as_list(spec, at),
            _ => {
                let message = format!(
                    "there are {count} buttons; WhatsApp allows {REPLY_BUTTONS} reply buttons, or {LIST_ROWS} options as a list"
                );
                self.error(&buttons_at, message);
            }
        }
        let as_list = count > REPLY_BUTTONS;
        for (index, button) in spec.buttons.iter().enumerate() {
            let path = buttons_at.index(index);
            if as_list {
                self.row(button, &path);
            } else {
                self.reply_button(button, &path);
            }
        }
        let entries = || {
            spec.buttons
                .iter()
                .enumerate()
                .map(|(i, b)| (buttons_at.index(i), b))
        };
        self.unique(
            Severity::Error,
            "button id",
            entries().map(|(p, b)| (p.key("id"), b.id.as_str())),
        );
        self.unique(
            Severity::Error,
            "button title",
            entries().map(|(p, b)| (p.key("title"), b.title.as_str())),
        );
    }

    /// The warning and the extra limits of 4–10 buttons, which are sent as a list.
    fn buttons_as_list(&mut self, spec: &ButtonsSpec, at: &YamlPath) {
        let count = spec.buttons.len();
        let message = format!(
            "{count} buttons are sent as a list; WhatsApp shows at most {REPLY_BUTTONS} reply buttons"
        );
        self.warn(&at.key("buttons"), message);
        self.optional(
            &at.key("button"),
            "list button label",
            spec.button.as_ref(),
            LIST_BUTTON,
        );
        let media_header = match &spec.header {
            Some(HeaderSpec::Full(options)) => options.text.is_none(),
            _ => false,
        };
        if media_header {
            let message = "a list cannot show a media header, so it is left out; use a text header"
                .to_owned();
            self.warn(&at.key("header"), message);
        }
    }

    fn reply_button(&mut self, button: &ChoiceSpec, at: &YamlPath) {
        self.required(
            &at.key("title"),
            "button title",
            &button.title,
            BUTTON_TITLE,
        );
        self.required(&at.key("id"), "button id", &button.id, BUTTON_ID);
        if button.description.is_some() {
            let message =
                "reply buttons show no description, so it is left out; remove it".to_owned();
            self.warn(&at.key("description"), message);
        }
    }

    fn row(&mut self, row: &ChoiceSpec, at: &YamlPath) {
        self.required(&at.key("title"), "row title", &row.title, ROW_TITLE);
        self.required(&at.key("id"), "row id", &row.id, ROW_ID);
        self.optional(
            &at.key("description"),
            "row description",
            row.description.as_ref(),
            ROW_DESCRIPTION,
        );
    }

    fn list(&mut self, spec: &ListSpec, at: &YamlPath) {
        self.frame(
            spec.header.as_ref(),
            Some(&spec.body),
            spec.footer.as_ref(),
            at,
        );
        self.required(
            &at.key("button"),
            "list button label",
            &spec.button,
            LIST_BUTTON,
        );
        let sections_at = at.key("sections");
        let shape = spec
            .sections
            .iter()
            .map(|section| (section.title.as_ref(), section.rows.len()));
        self.sections(&sections_at, shape.collect(), &LIST_LAYOUT);
        let mut rows = Vec::new();
        for (index, section) in spec.sections.iter().enumerate() {
            let at = sections_at.index(index);
            for (row_index, row) in section.rows.iter().enumerate() {
                let path = at.key("rows").index(row_index);
                self.row(row, &path);
                rows.push((path, row));
            }
        }
        self.unique(
            Severity::Error,
            "row id",
            rows.iter().map(|(p, row)| (p.key("id"), row.id.as_str())),
        );
        self.unique(
            Severity::Warning,
            "row title",
            rows.iter()
                .map(|(p, row)| (p.key("title"), row.title.as_str())),
        );
    }

    /// Section titles are optional for one section and required, up to 24 characters, for more.
    fn section_title(&mut self, title: Option<&String>, several: bool, at: &YamlPath) {
        match title {
            Some(title) => self.length(&at.key("title"), "section title", title, SECTION_TITLE),
            None if several => {
                let message = "section has no title; WhatsApp requires one on every section when there are several";
                self.error(at, message.to_owned());
            }
            None => {}
        }
    }

    fn product(&mut self, spec: &ProductSpec, at: &YamlPath) {
        self.frame(None, spec.body.as_deref(), spec.footer.as_ref(), at);
    }

    fn products(&mut self, spec: &ProductsSpec, at: &YamlPath) {
        self.frame(
            Some(&spec.header),
            Some(&spec.body),
            spec.footer.as_ref(),
            at,
        );
        let shape = spec
            .sections
            .iter()
            .map(|section| (section.title.as_ref(), section.product_ids.len()));
        self.sections(&at.key("sections"), shape.collect(), &PRODUCTS_LAYOUT);
    }

    /// The section rules lists and multi-product messages share: how many sections, how many
    /// items across them, a title on each when there are several, no empty section.
    fn sections(
        &mut self,
        at: &YamlPath,
        sections: Vec<(Option<&String>, usize)>,
        layout: &SectionLayout,
    ) {
        self.count(at, "sections", sections.len(), 1, layout.max_sections);
        let total: usize = sections.iter().map(|(_, items)| items).sum();
        if total > layout.max_items {
            let (name, max) = (layout.items, layout.max_items);
            self.error(
                at,
                format!("there are {total} {name}; WhatsApp allows {max} across all sections"),
            );
        }
        let several = sections.len() > 1;
        for (index, (title, items)) in sections.into_iter().enumerate() {
            let section = at.index(index);
            self.section_title(title, several, &section);
            let empty = format!("section has no {}", layout.items);
            self.not_empty(&section.key(layout.key), &empty, items == 0);
        }
    }

    fn flow(&mut self, spec: &WaFlowSpec, at: &YamlPath) {
        self.frame(
            spec.header.as_ref(),
            Some(&spec.body),
            spec.footer.as_ref(),
            at,
        );
        self.required(&at.key("cta"), "flow button text", &spec.cta, FLOW_CTA);
    }

    fn cta_url(&mut self, spec: &CtaUrlSpec, at: &YamlPath) {
        self.frame(
            spec.header.as_ref(),
            Some(&spec.body),
            spec.footer.as_ref(),
            at,
        );
        self.required(
            &at.key("button"),
            "button label",
            &spec.button,
            CTA_URL_BUTTON,
        );
    }

    fn template(&mut self, spec: &TemplateSpec, at: &YamlPath) {
        if let Some(header) = &spec.header {
            let params = params(header, &at.key("header"));
            if params.len() > 1 {
                let message = format!(
                    "a template header takes one parameter; there are {}",
                    params.len()
                );
                self.error(&at.key("header"), message);
            }
            self.template_texts(&params, "template header parameter", TEMPLATE_HEADER_TEXT);
        }
        if let Some(body) = &spec.body {
            let params = params(body, &at.key("body"));
            self.template_texts(&params, "template body parameter", TEMPLATE_BODY_TEXT);
        }
        for (index, button) in spec.buttons.iter().enumerate() {
            let path = at.key("buttons").index(index).key("url");
            self.optional(&path, "url suffix", button.url.as_ref(), TEMPLATE_URL);
        }
    }

    fn template_texts(&mut self, params: &[(YamlPath, &TemplateParam)], what: &str, max: usize) {
        for (path, param) in params {
            if let TemplateParam::Text(text) = param {
                self.length(path, what, text, max);
            }
        }
    }
}

/// Template parameters with their paths, positional or named alike.
fn params<'a>(params: &'a TemplateParams, at: &YamlPath) -> Vec<(YamlPath, &'a TemplateParam)> {
    match params {
        TemplateParams::Positional(list) => list
            .iter()
            .enumerate()
            .map(|(index, param)| (at.index(index), param))
            .collect(),
        TemplateParams::Named(map) => map
            .iter()
            .map(|(name, param)| (at.key(name.as_str()), param))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_long_values_shortened() {
        assert_eq!(quote("short"), "\"short\"");
        let quoted = quote(&"x".repeat(100));
        assert_eq!(quoted.chars().count(), 42);
        assert!(quoted.ends_with("…\""));
    }
}
