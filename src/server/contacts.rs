//! `GET /api/contacts/{channel}/{contact}`: the contact, their vars, the conversation waiting
//! and the recent transcript.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::store::{ContactKey, Store};

/// How many log entries the view shows.
const TRANSCRIPT_LENGTH: usize = 50;

/// Shows one contact.
pub async fn get_contact<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path((channel, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let key = ContactKey::new(channel, id);
    let store = state.engine.store();
    let contact = store
        .load_contact(&key)
        .await
        .map_err(crate::engine::EngineError::from)?
        .ok_or_else(|| {
            AppError::not_found(format!("no contact {} on channel {}", key.id, key.channel))
        })?;
    let transcript = store
        .transcript(&key, TRANSCRIPT_LENGTH)
        .await
        .map_err(crate::engine::EngineError::from)?;
    Ok(Json(json!({
        "contact": {
            "channel": contact.channel,
            "id": contact.id,
            "name": contact.name,
            "tags": contact.tags,
            "locale": contact.locale,
            "handoff": contact.handoff,
            "opted_out": contact.opted_out,
            "last_inbound_at": contact.last_inbound_at,
        },
        "vars": contact.vars,
        "conversation": contact.conversation,
        "transcript": transcript,
    })))
}
