//! `POST /api/contacts/{channel}/{contact}/handoff`: a human takes a contact over
//! (`{"paused": true, "resume_after": "24h"}`) or gives them back (`{"paused": false}`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AnyJson, AppError, AppState};
use crate::duration::Duration;
use crate::store::{ContactKey, Store};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffRequest {
    /// `true`: the bot stays silent for the contact.
    paused: bool,
    /// Give the contact back to the bot after this long (`30m`, `24h`).
    #[serde(default)]
    resume_after: Option<Duration>,
}

/// Pauses or resumes the bot for one contact; answers with the contact's handoff state.
pub async fn set<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path((channel, id)): Path<(String, String)>,
    AnyJson(body): AnyJson<Value>,
) -> Result<Json<Value>, AppError> {
    let request: HandoffRequest = serde_json::from_value(body).map_err(|error| {
        AppError::bad_request(format!(
            "{error}; send {{\"paused\": true|false, \"resume_after\": \"24h\"}} (resume_after optional)"
        ))
    })?;
    if !request.paused && request.resume_after.is_some() {
        return Err(AppError::bad_request(
            "resume_after only goes with \"paused\": true",
        ));
    }
    let key = ContactKey::new(channel, id);
    let contact = state
        .engine
        .set_handoff(&key, request.paused, request.resume_after)
        .await?
        .ok_or_else(|| {
            AppError::not_found(format!("no contact {} on channel {}", key.id, key.channel))
        })?;
    let resume_at = contact
        .handoff_since
        .zip(request.resume_after)
        .map(|(since, after)| since.saturating_add(after.as_secs_i64()));
    Ok(Json(json!({
        "channel": contact.channel,
        "contact": contact.id,
        "paused": contact.handoff,
        "since": contact.handoff_since,
        "resume_at": resume_at,
    })))
}
