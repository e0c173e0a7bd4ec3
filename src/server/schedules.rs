//! The scheduler as operators see it (DESIGN §5, issue 8): schedules with their next fire,
//! pending timers, and starting a flow for an audience now.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AnyJson, AppError, AppState};
use crate::engine::EngineError;
use crate::scheduler::{BroadcastError, broadcast, schedules_view};
use crate::store::{Audience, ContactKey, Store};

/// `GET /api/schedules`: every `schedule:` trigger with its last and next fire (Unix seconds).
pub async fn list<S: Store>(
    State(state): State<Arc<AppState<S>>>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(schedules_view(&state.engine).await?))
}

/// `?channel=&contact=&limit=` for `GET /api/timers`.
#[derive(Debug, Deserialize)]
pub struct TimerFilter {
    channel: Option<String>,
    contact: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/timers`: pending timers (reminders, ask timeouts), earliest first; one contact's
/// with `?channel=…&contact=…`.
pub async fn timers<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Query(filter): Query<TimerFilter>,
) -> Result<Json<Value>, AppError> {
    let contact = match (filter.channel, filter.contact) {
        (Some(channel), Some(id)) => Some(ContactKey::new(channel, id)),
        (None, None) => None,
        _ => {
            return Err(AppError::bad_request(
                "give both channel and contact to see one contact's timers",
            ));
        }
    };
    let timers = state
        .engine
        .store()
        .timers(contact.as_ref(), filter.limit.unwrap_or(100).min(1000))
        .await
        .map_err(EngineError::from)?;
    Ok(Json(json!({ "timers": timers })))
}

/// `DELETE /api/timers/{id}`: the timer never fires.
pub async fn delete_timer<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, AppError> {
    state
        .engine
        .store()
        .drop_timer(id)
        .await
        .map_err(EngineError::from)?;
    Ok(Json(json!({ "deleted": id })))
}

/// The body of `POST /api/broadcast`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    flow: String,
    audience: AudienceRequest,
    channel: Option<String>,
}

/// `{"tags": [..]}`, `{"contacts": [..]}` or `{"all": true}`, as in a flow's `audience`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceRequest {
    tags: Option<Vec<String>>,
    contacts: Option<Vec<String>>,
    all: Option<bool>,
    channel: Option<String>,
}

/// `POST /api/broadcast {"flow", "audience", "channel"?}`: starts the flow for the audience in
/// the background, paced below the channel's rate limit; 202 with the broadcast's id.
pub async fn start<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    AnyJson(request): AnyJson<BroadcastRequest>,
) -> Result<impl IntoResponse, AppError> {
    let audience = match (
        request.audience.tags,
        request.audience.contacts,
        request.audience.all == Some(true),
    ) {
        (Some(tags), None, false) => Audience::Tags(tags),
        (None, Some(contacts), false) => Audience::Contacts(contacts),
        (None, None, true) => Audience::All,
        _ => {
            return Err(AppError::bad_request(
                "audience is exactly one of {\"tags\": [..]}, {\"contacts\": [..]} or {\"all\": true}",
            ));
        }
    };
    let channel = request.channel.or(request.audience.channel);
    let started = broadcast(&state.engine, &request.flow, audience, channel.as_deref())
        .await
        .map_err(|error| match error {
            BroadcastError::Engine(error) => AppError::from(error),
            other => AppError::bad_request(other.to_string()),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "broadcast": started.id, "flow": started.flow, "channel": started.channel })),
    ))
}
