//! `POST /api/simulator/messages`: send a message as a user, get the bot's replies to it in the
//! Meta outbound shape (DESIGN §5).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AnyJson, AppError, AppState};
use crate::message::Outbound;
use crate::simulator::SimulatedInput;
use crate::store::{ContactKey, Store};

/// The request: who writes, and one of the simulator's message kinds.
#[derive(Debug, Deserialize)]
pub struct SimulatorRequest {
    /// A simulator channel (default `simulator`).
    #[serde(default = "default_channel")]
    channel: String,
    /// The user's number.
    from: Option<String>,
    /// The user's profile name.
    name: Option<String>,
    /// text, button, list, location or message.
    #[serde(flatten)]
    input: SimulatedInput,
}

fn default_channel() -> String {
    "simulator".to_owned()
}

/// Handles one simulated message.
pub async fn post_message<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    AnyJson(request): AnyJson<SimulatorRequest>,
) -> Result<Json<Value>, AppError> {
    if !state.simulator_channels.contains(&request.channel) {
        return Err(AppError::not_found(format!(
            "\"{}\" is not a simulator channel; use one of: {}",
            request.channel,
            state.simulator_channels.join(", ")
        )));
    }
    let from = request
        .from
        .filter(|from| !from.trim().is_empty() && !from.chars().any(char::is_control))
        .ok_or_else(|| AppError::bad_request("`from` is required: the user's number, e.g. \"15550001111\" (no control characters)"))?;
    let contact = ContactKey::new(&request.channel, from.trim());
    let input = request.input;
    let name = request.name;
    let id = state.message_ids.next();
    let replies = state
        .engine
        .handle_message(&contact, |contact_state, now| {
            input.from_contact(contact_state, name.as_deref(), &id, now)
        })
        .await?;
    let replies: Vec<&Outbound> = replies.iter().map(|reply| &reply.message).collect();
    Ok(Json(json!({ "replies": replies })))
}
