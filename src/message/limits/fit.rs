//! Trimming rendered messages to WhatsApp's limits, so one long templated value costs a few
//! characters instead of the whole message.

use serde_json::Value;

use super::{
    BUTTON_TITLE, CAPTION, CTA_URL_BUTTON, FLOW_CTA, FOOTER_TEXT, HEADER_TEXT, INTERACTIVE_BODY,
    LIST_BUTTON, ROW_DESCRIPTION, ROW_TITLE, SECTION_TITLE, TEMPLATE_BODY_TEXT,
    TEMPLATE_HEADER_TEXT, TEXT_BODY,
};
use crate::message::outbound::{Header, Interactive, ListSection, Outbound, Template};

/// Cuts every rendered text of `message` that is over its limit to fit, ending it with "…", and
/// says what was cut, so a long templated value costs a few characters instead of the message.
/// Ids are left alone: cutting one would break the reply routed on it.
pub fn fit(message: &mut Outbound) -> Vec<String> {
    let mut fitter = Fitter::default();
    match message {
        Outbound::Text { text } => fitter.cut("text.body", &mut text.body, TEXT_BODY),
        Outbound::Image { image: media } => fitter.caption("image", &mut media.caption),
        Outbound::Video { video: media } => fitter.caption("video", &mut media.caption),
        Outbound::Document { document: media } => fitter.caption("document", &mut media.caption),
        Outbound::Interactive { interactive } => fitter.interactive(interactive),
        Outbound::Template { template } => fitter.template(template),
        Outbound::Audio { .. }
        | Outbound::Sticker { .. }
        | Outbound::Location { .. }
        | Outbound::Contacts { .. }
        | Outbound::Reaction { .. } => {}
    }
    fitter.notes
}

/// Cuts `text` to `max` characters, the last one "…"; the original length when it cut.
fn truncate(text: &mut String, max: usize) -> Option<usize> {
    let count = text.chars().count();
    if count <= max {
        return None;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    *text = cut;
    Some(count)
}

#[derive(Default)]
struct Fitter {
    notes: Vec<String>,
}

impl Fitter {
    fn cut(&mut self, path: &str, text: &mut String, max: usize) {
        if let Some(count) = truncate(text, max) {
            self.notes.push(format!(
                "{path} was {count} characters; cut to the {max} WhatsApp allows"
            ));
        }
    }

    fn caption(&mut self, kind: &str, caption: &mut Option<String>) {
        if let Some(caption) = caption {
            self.cut(&format!("{kind}.caption"), caption, CAPTION);
        }
    }

    fn interactive(&mut self, interactive: &mut Interactive) {
        let (header, body, footer) = match interactive {
            Interactive::Button {
                header,
                body,
                footer,
                ..
            }
            | Interactive::List {
                header,
                body,
                footer,
                ..
            }
            | Interactive::Flow {
                header,
                body,
                footer,
                ..
            }
            | Interactive::CtaUrl {
                header,
                body,
                footer,
                ..
            } => (header.as_mut(), Some(body), footer.as_mut()),
            Interactive::Product { body, footer, .. } => (None, body.as_mut(), footer.as_mut()),
            Interactive::ProductList {
                header,
                body,
                footer,
                ..
            } => (Some(header), Some(body), footer.as_mut()),
            Interactive::LocationRequestMessage { body, .. } => (None, Some(body), None),
        };
        if let Some(Header::Text { text }) = header {
            self.cut("interactive.header.text", text, HEADER_TEXT);
        }
        if let Some(body) = body {
            self.cut("interactive.body.text", &mut body.text, INTERACTIVE_BODY);
        }
        if let Some(footer) = footer {
            self.cut("interactive.footer.text", &mut footer.text, FOOTER_TEXT);
        }
        self.action(interactive);
    }

    fn action(&mut self, interactive: &mut Interactive) {
        match interactive {
            Interactive::Button { action, .. } => {
                for (index, button) in action.buttons.iter_mut().enumerate() {
                    let path = format!("interactive.action.buttons[{index}].reply.title");
                    self.cut(&path, &mut button.reply.title, BUTTON_TITLE);
                }
            }
            Interactive::List { action, .. } => {
                self.cut("interactive.action.button", &mut action.button, LIST_BUTTON);
                for (index, section) in action.sections.iter_mut().enumerate() {
                    self.list_section(index, section);
                }
            }
            Interactive::Flow { action, .. } => {
                self.cut(
                    "interactive.action.parameters.flow_cta",
                    &mut action.parameters.flow_cta,
                    FLOW_CTA,
                );
            }
            Interactive::CtaUrl { action, .. } => {
                let label = &mut action.parameters.display_text;
                self.cut(
                    "interactive.action.parameters.display_text",
                    label,
                    CTA_URL_BUTTON,
                );
            }
            Interactive::Product { .. }
            | Interactive::ProductList { .. }
            | Interactive::LocationRequestMessage { .. } => {}
        }
    }

    fn list_section(&mut self, index: usize, section: &mut ListSection) {
        let at = format!("interactive.action.sections[{index}]");
        if let Some(title) = &mut section.title {
            self.cut(&format!("{at}.title"), title, SECTION_TITLE);
        }
        for (row_index, row) in section.rows.iter_mut().enumerate() {
            let row_at = format!("{at}.rows[{row_index}]");
            self.cut(&format!("{row_at}.title"), &mut row.title, ROW_TITLE);
            if let Some(description) = &mut row.description {
                self.cut(
                    &format!("{row_at}.description"),
                    description,
                    ROW_DESCRIPTION,
                );
            }
        }
    }

    /// Text parameters of the header and body; other components have no free text to cut.
    fn template(&mut self, template: &mut Template) {
        for (index, component) in template.components.iter_mut().enumerate() {
            let max = match component.kind.as_str() {
                "header" => TEMPLATE_HEADER_TEXT,
                "body" => TEMPLATE_BODY_TEXT,
                _ => continue,
            };
            for (param_index, param) in component.parameters.iter_mut().enumerate() {
                let is_text = param.get("type").and_then(Value::as_str) == Some("text");
                if let (true, Some(Value::String(text))) = (is_text, param.get_mut("text")) {
                    let path =
                        format!("template.components[{index}].parameters[{param_index}].text");
                    self.cut(&path, text, max);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_by_characters_and_ends_with_an_ellipsis() {
        let mut text = "héllo wörld".to_owned();
        assert_eq!(truncate(&mut text, 5), Some(11));
        assert_eq!(text, "héll…");
        assert_eq!(text.chars().count(), 5);
        assert_eq!(truncate(&mut text, 5), None);
    }
}
