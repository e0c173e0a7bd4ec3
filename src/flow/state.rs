//! What chatflow remembers about one contact between messages: profile, tags, vars, and the
//! conversation waiting for an answer. Serializable, so any store can keep it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::message::outbound::Choice;

/// One contact on one channel, and where their conversation stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    /// The channel the contact writes on.
    pub channel: String,
    /// WhatsApp number as digits without `+`, or the provider's user id.
    pub id: String,
    /// Profile name, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels set by flows (`tag:`) and imports, used by audiences.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// Preferred language, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Variables, kept across flows and restarts.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Map<String, Value>,
    /// A human has taken over: the bot stays silent.
    #[serde(default)]
    pub handoff: bool,
    /// Unix seconds when the current handoff began (an auto-resume timer from an earlier one
    /// must not end it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_since: Option<i64>,
    /// The contact asked not to be messaged.
    #[serde(default)]
    pub opted_out: bool,
    /// Unix seconds of the last message from the contact (the 24-hour window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_at: Option<i64>,
    /// The options of the last menu sent as numbered text (on a provider that cannot render
    /// menus), so `2` or a title answers it (routing step 4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded_menu: Vec<Choice>,
    /// The flow waiting for an answer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
}

/// A flow paused on an `ask`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The flow's id (names, not indices, so state survives a reload).
    pub flow: String,
    /// The step that asked.
    pub step: String,
    /// Invalid answers so far.
    #[serde(default)]
    pub retries: u32,
    /// Unix seconds when the question was (last) asked.
    pub asked_at: i64,
    /// Unix seconds when the flow started.
    pub started_at: i64,
    /// The options the question offered, as sent (after templates), for `choice` answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
}

impl ContactState {
    /// A new contact.
    #[must_use]
    pub fn new(channel: &str, id: &str) -> Self {
        Self {
            channel: channel.to_owned(),
            id: id.to_owned(),
            ..Self::default()
        }
    }

    /// `contact` as templates see it: `id`, `phone`, `name`, `tags`, `locale`, `channel`, `vars`.
    #[must_use]
    pub fn template_view(&self) -> Value {
        let phone = if !self.id.is_empty() && self.id.bytes().all(|b| b.is_ascii_digit()) {
            Value::String(format!("+{}", self.id))
        } else {
            Value::Null
        };
        json!({
            "id": self.id,
            "phone": phone,
            "name": self.name.clone().unwrap_or_default(),
            "tags": self.tags,
            "locale": self.locale,
            "channel": self.channel,
            "vars": self.vars,
        })
    }
}
