//! `chatflow chat`: the terminal side of the simulator — what a typed line means, and how a
//! reply reads in a terminal, with the ids to answer buttons and rows by.

use std::fmt::Write;

use crate::message::inbound::SharedLocation;
use crate::message::outbound::{Header, Interactive, Media};
use crate::message::{Outbound, dsl_form};
use crate::simulator::SimulatedInput;

/// The help shown by `/help`.
pub const HELP: &str = "type a message, or:\n  /button ID      tap a reply button\n  /list ID        choose a list row\n  /location LAT LNG [NAME]   share a location\n  /quit           leave";

/// What one typed line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Send this to the bot.
    Send(Box<SimulatedInput>),
    /// Show the help.
    Help,
    /// Leave.
    Quit,
    /// Nothing to do (an empty line).
    Nothing,
}

/// Reads one typed line.
///
/// # Errors
/// A slash command with missing or wrong arguments, with its usage.
pub fn parse_line(line: &str) -> Result<Line, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Line::Nothing);
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(send(SimulatedInput::text(line)));
    };
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    match (name, rest.as_slice()) {
        ("quit" | "exit", _) => Ok(Line::Quit),
        ("help", _) => Ok(Line::Help),
        ("button", [id]) => Ok(send(SimulatedInput {
            button: Some((*id).to_owned()),
            ..SimulatedInput::default()
        })),
        ("list", [id]) => Ok(send(SimulatedInput {
            list: Some((*id).to_owned()),
            ..SimulatedInput::default()
        })),
        ("location", [lat, lng, name @ ..]) => {
            let (Ok(latitude), Ok(longitude)) = (lat.parse(), lng.parse()) else {
                return Err(
                    "usage: /location LAT LNG [NAME], e.g. /location -6.2 106.8 Office".to_owned(),
                );
            };
            let name = (!name.is_empty()).then(|| name.join(" "));
            let location = SharedLocation {
                latitude,
                longitude,
                name,
                address: None,
                url: None,
            };
            Ok(send(SimulatedInput {
                location: Some(location),
                ..SimulatedInput::default()
            }))
        }
        ("button" | "list", _) => Err(format!("usage: /{name} ID")),
        _ => Err(format!("unknown command /{name}; /help lists them")),
    }
}

fn send(input: SimulatedInput) -> Line {
    Line::Send(Box::new(input))
}

/// A reply as it reads in a terminal: text as is, menus with their ids in brackets.
#[must_use]
pub fn render(message: &Outbound) -> String {
    let mut out = String::new();
    match message {
        Outbound::Text { text } => out.push_str(&text.body),
        Outbound::Interactive { interactive } => render_interactive(&mut out, interactive),
        Outbound::Image { image } => render_media(&mut out, "image", image),
        Outbound::Video { video } => render_media(&mut out, "video", video),
        Outbound::Audio { audio } => render_media(&mut out, "audio", audio),
        Outbound::Document { document } => render_media(&mut out, "document", document),
        Outbound::Sticker { sticker } => render_media(&mut out, "sticker", sticker),
        Outbound::Location { location } => {
            let _ = write!(out, "📍 {}, {}", location.latitude, location.longitude);
            for part in [&location.name, &location.address].into_iter().flatten() {
                let _ = write!(out, " — {part}");
            }
        }
        other => out.push_str(
            serde_yaml::to_string(&dsl_form(other))
                .unwrap_or_default()
                .trim_end(),
        ),
    }
    out
}

fn render_media(out: &mut String, kind: &str, media: &Media) {
    let source = media
        .link
        .as_deref()
        .or(media.id.as_deref())
        .unwrap_or_default();
    let _ = write!(out, "[{kind}] {source}");
    if let Some(caption) = &media.caption {
        let _ = write!(out, "\n{caption}");
    }
}

fn render_interactive(out: &mut String, interactive: &Interactive) {
    match interactive {
        Interactive::Button {
            header,
            body,
            footer,
            action,
        } => {
            frame(
                out,
                header.as_ref(),
                &body.text,
                footer.as_ref().map(|f| f.text.as_str()),
            );
            for button in &action.buttons {
                let _ = write!(out, "\n  [{}] {}", button.reply.id, button.reply.title);
            }
        }
        Interactive::List {
            header,
            body,
            footer,
            action,
        } => {
            frame(
                out,
                header.as_ref(),
                &body.text,
                footer.as_ref().map(|f| f.text.as_str()),
            );
            let _ = write!(out, "\n  ({})", action.button);
            for section in &action.sections {
                if let Some(title) = &section.title {
                    let _ = write!(out, "\n  {title}");
                }
                for row in &section.rows {
                    let _ = write!(out, "\n    [{}] {}", row.id, row.title);
                    if let Some(description) = &row.description {
                        let _ = write!(out, " — {description}");
                    }
                }
            }
        }
        other => {
            let message = Outbound::Interactive {
                interactive: other.clone(),
            };
            out.push_str(
                serde_yaml::to_string(&dsl_form(&message))
                    .unwrap_or_default()
                    .trim_end(),
            );
        }
    }
}

fn frame(out: &mut String, header: Option<&Header>, body: &str, footer: Option<&str>) {
    if let Some(Header::Text { text }) = header {
        let _ = writeln!(out, "*{text}*");
    }
    out.push_str(body);
    if let Some(footer) = footer {
        let _ = write!(out, "\n_{footer}_");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_become_inputs() {
        assert_eq!(
            parse_line("  hi there "),
            Ok(send(SimulatedInput::text("hi there")))
        );
        assert_eq!(parse_line("/quit"), Ok(Line::Quit));
        assert_eq!(parse_line(""), Ok(Line::Nothing));
        let Ok(Line::Send(input)) = parse_line("/button large") else {
            panic!("a button")
        };
        assert_eq!(input.button.as_deref(), Some("large"));
        let Ok(Line::Send(input)) = parse_line("/location -6.2 106.8 Grand Indonesia") else {
            panic!("a location")
        };
        let location = input.location.expect("a location");
        assert_eq!(
            (location.latitude, location.name.as_deref()),
            (-6.2, Some("Grand Indonesia"))
        );
    }

    #[test]
    fn mistakes_say_how_to_type_the_command() {
        assert!(
            parse_line("/button")
                .unwrap_err()
                .contains("usage: /button ID")
        );
        assert!(
            parse_line("/location north 3")
                .unwrap_err()
                .contains("usage: /location")
        );
        assert!(parse_line("/dance").unwrap_err().contains("/help"));
    }

    #[test]
    fn menus_show_the_ids_to_answer_with() {
        let message: Outbound = serde_json::from_value(json!({
            "type": "interactive",
            "interactive": {"type": "button", "body": {"text": "Which size?"},
              "action": {"buttons": [{"type": "reply", "reply": {"id": "small", "title": "Small"}}]}}
        }))
        .unwrap();
        assert_eq!(render(&message), "Which size?\n  [small] Small");
    }
}
