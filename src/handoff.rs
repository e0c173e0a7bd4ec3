//! Human handoff (DESIGN §5 `POST /api/contacts/{channel}/{contact}/handoff`, the `handoff:`
//! step): while a human has a contact the bot stays silent, and the help desk named by
//! `handoff_webhook` hears of each change with the recent transcript, so whoever picks the
//! conversation up sees what the customer said.

use serde_json::{Value, json};

use crate::flow::state::ContactState;
use crate::provider::http::HttpClient;
use crate::provider::{HeaderValue, HttpRequest};
use crate::store::LogEntry;

/// How many recent log entries the help desk receives.
pub const TRANSCRIPT_LENGTH: usize = 20;

/// Where handoff changes are announced.
#[derive(Debug, Clone)]
pub struct HandoffWebhook {
    /// The `handoff_webhook` URL.
    pub url: String,
    /// The client it is called with.
    pub http: HttpClient,
}

impl HandoffWebhook {
    /// Posts `event`; a help desk that is down is logged, not retried (the contact's state
    /// and transcript stay in `GET /api/contacts/…` for whoever looks).
    pub async fn announce(&self, event: Value) {
        let request = HttpRequest {
            method: "POST",
            url: self.url.clone(),
            headers: vec![(
                "Content-Type".to_owned(),
                HeaderValue::Plain("application/json".to_owned()),
            )],
            body: Some(event),
        };
        match self.http.execute(&request).await {
            Ok(response) if (200..300).contains(&response.status) => {}
            Ok(response) => tracing::warn!(
                message = "The handoff webhook refused the event.",
                status = response.status
            ),
            Err(error) => {
                tracing::warn!(message = "The handoff webhook could not be called.", %error);
            }
        }
    }
}

/// The event for a handoff change of `contact`: who, whether the bot is now paused, since
/// when, and the recent transcript (oldest first).
#[must_use]
pub fn event(contact: &ContactState, at: i64, transcript: &[LogEntry]) -> Value {
    json!({
        "event": if contact.handoff { "handoff_started" } else { "handoff_ended" },
        "at": at,
        "channel": contact.channel,
        "contact": contact.id,
        "name": contact.name,
        "paused": contact.handoff,
        "since": contact.handoff_since,
        "tags": contact.tags,
        "vars": contact.vars,
        "transcript": transcript,
    })
}
