//! What a simulated user sends — typed text, a tapped button, a chosen row, a shared location,
//! or any Meta-shaped message object — turned into the inbound message a provider would deliver.
//!
//! One definition serves the HTTP simulator (`POST /api/simulator/messages`), `chatflow chat`
//! and conversation tests, so all three behave alike.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::flow::state::ContactState;
use crate::message::inbound::{Content, SharedLocation};
use crate::message::outbound::Choice;
use crate::message::{InboundMessage, meta};

/// One simulated user message: exactly one of its keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedInput {
    /// Typed text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Tap the reply button with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    /// Choose the list row with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Share a location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SharedLocation>,
    /// Any message object in the Meta Cloud API inbound shape (spec §3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Value>,
}

/// Unique simulated message ids, like a provider's: a prefix fixed per process start (so ids
/// never repeat across restarts, which dedupe would take for redeliveries) and a counter.
#[derive(Debug)]
pub struct MessageIds {
    prefix: String,
    next: std::sync::atomic::AtomicU64,
}

impl MessageIds {
    /// Ids starting with `kind` (`sim`, `chat`).
    #[must_use]
    pub fn new(kind: &str) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        Self {
            prefix: format!("{kind}.{started:x}"),
            next: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The next id.
    pub fn next(&self) -> String {
        let serial = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}.{serial}", self.prefix)
    }
}

/// Why a simulated message cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimulatorError {
    /// None or several of text, button, list, location, message.
    #[error("a simulated message has exactly one of text, button, list, location or message")]
    Kind,
    /// The `message` object is not a valid Meta message.
    #[error("invalid message object: {0}")]
    Message(String),
}

/// Who sends, and the context a real client would have.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// The user's number (digits) or id.
    pub from: &'a str,
    /// Their profile name.
    pub name: Option<&'a str>,
    /// The message id to use.
    pub id: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// The options of the menu last shown, so a tapped id carries its title as WhatsApp does.
    pub options: &'a [Choice],
}

impl SimulatedInput {
    /// Typed text.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// The inbound message a provider would deliver for this input.
    ///
    /// # Errors
    /// When not exactly one kind is given, or `message` is not a valid Meta message object.
    pub fn to_message(&self, sender: Sender<'_>) -> Result<InboundMessage, SimulatorError> {
        let kinds = [
            self.text.is_some(),
            self.button.is_some(),
            self.list.is_some(),
            self.location.is_some(),
            self.message.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(SimulatorError::Kind);
        }
        if let Some(object) = &self.message {
            return meta_message(object, sender);
        }
        let title = |id: &str| {
            sender
                .options
                .iter()
                .find(|choice| choice.id == id)
                .map_or_else(|| id.to_owned(), |choice| choice.title.clone())
        };
        let content = if let Some(body) = &self.text {
            Content::Text { body: body.clone() }
        } else if let Some(id) = &self.button {
            Content::ButtonReply {
                id: id.clone(),
                title: title(id),
            }
        } else if let Some(id) = &self.list {
            Content::ListReply {
                id: id.clone(),
                title: title(id),
                description: None,
            }
        } else {
            let location = self.location.clone().ok_or(SimulatorError::Kind)?;
            Content::Location(location)
        };
        Ok(InboundMessage {
            id: sender.id.to_owned(),
            from: sender.from.to_owned(),
            name: sender.name.map(str::to_owned),
            timestamp: sender.now,
            content,
            reply_to: None,
            referral: None,
        })
    }
}

impl SimulatedInput {
    /// The message as `contact` would send it now, tapping ids of the menu their conversation
    /// waits on (as the engine's `handle_message` builder).
    ///
    /// # Errors
    /// As [`SimulatedInput::to_message`], in words for the user.
    pub fn from_contact(
        &self,
        contact: &ContactState,
        name: Option<&str>,
        id: &str,
        now: i64,
    ) -> Result<InboundMessage, String> {
        let options = contact
            .conversation
            .as_ref()
            .map(|c| c.options.as_slice())
            .unwrap_or_default();
        let sender = Sender {
            from: &contact.id,
            name,
            id,
            now,
            options,
        };
        self.to_message(sender).map_err(|error| error.to_string())
    }
}

/// A Meta message object with `from`, `id` and `timestamp` filled in when left out.
fn meta_message(object: &Value, sender: Sender<'_>) -> Result<InboundMessage, SimulatorError> {
    let mut object = object.clone();
    let Value::Object(map) = &mut object else {
        return Err(SimulatorError::Message("expected a JSON object".to_owned()));
    };
    map.entry("from").or_insert_with(|| json!(sender.from));
    map.entry("id").or_insert_with(|| json!(sender.id));
    map.entry("timestamp")
        .or_insert_with(|| json!(sender.now.to_string()));
    meta::parse_message(&object, sender.name)
        .map_err(|error| SimulatorError::Message(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(options: &[Choice]) -> Sender<'_> {
        Sender {
            from: "15550001111",
            name: Some("Ann"),
            id: "sim.1",
            now: 1_800_000_000,
            options,
        }
    }

    #[test]
    fn a_tapped_button_carries_the_title_the_menu_showed() {
        let options = [Choice {
            id: "large".into(),
            title: "Large".into(),
            description: None,
        }];
        let input = SimulatedInput {
            button: Some("large".into()),
            ..SimulatedInput::default()
        };
        let message = input.to_message(sender(&options)).unwrap();
        assert_eq!(
            message.content,
            Content::ButtonReply {
                id: "large".into(),
                title: "Large".into()
            }
        );
    }

    #[test]
    fn exactly_one_kind_is_required() {
        assert_eq!(
            SimulatedInput::default().to_message(sender(&[])),
            Err(SimulatorError::Kind)
        );
        let two = SimulatedInput {
            text: Some("a".into()),
            list: Some("b".into()),
            ..SimulatedInput::default()
        };
        assert_eq!(two.to_message(sender(&[])), Err(SimulatorError::Kind));
    }

    #[test]
    fn meta_objects_get_the_senders_identity() {
        let input = SimulatedInput {
            message: Some(json!({"type": "text", "text": {"body": "hi"}})),
            ..SimulatedInput::default()
        };
        let message = input.to_message(sender(&[])).unwrap();
        assert_eq!(
            (message.from.as_str(), message.id.as_str()),
            ("15550001111", "sim.1")
        );
        assert_eq!(message.text(), Some("hi"));
    }
}
