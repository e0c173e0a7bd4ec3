//! `POST /webhooks/{channel}` and `GET /webhooks/{channel}`: provider webhooks in, verified over
//! the raw bytes, parsed, handled and committed before the 200 (DESIGN §1, §10).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::provider::http::text_headers;
use crate::provider::{Channel, Handshake, RoutedEvent, WebhookRequest};
use crate::store::{Store, Unrecognized};

/// Handles one provider webhook.
pub async fn receive<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let engine = &state.engine;
    let channel = super::channel(&state, &channel_id)?;
    let headers: Vec<(String, String)> = text_headers(&headers);
    let request = WebhookRequest {
        headers: &headers,
        body: &body,
    };
    if let Err(error) = channel.verify(&request) {
        tracing::warn!(message = "Webhook refused.", channel = %channel.id, %error);
        return Err(AppError::status(
            StatusCode::UNAUTHORIZED,
            format!("webhook refused: {error}"),
        ));
    }
    let parsed = channel
        .parse(&body)
        .map_err(|error| AppError::bad_request(format!("webhook body is not usable: {error}")))?;
    let now = engine.now();
    let mut unrecognized: Vec<(String, Value)> = parsed
        .unrecognized
        .into_iter()
        .map(|payload| ("not a message or status".to_owned(), payload))
        .collect();
    let (mut handled, events) = (0, parsed.events.len());
    for routed in parsed.events {
        match target(engine.channels(), &channel, &routed) {
            Some(target) => {
                engine.handle_event(&target, routed.event).await?;
                handled += 1;
            }
            None => {
                let reason = format!(
                    "no channel has phone_number_id {}",
                    routed.route.as_deref().unwrap_or_default()
                );
                unrecognized.push((
                    reason,
                    serde_json::to_value(&routed.event).unwrap_or_default(),
                ));
            }
        }
    }
    for (reason, payload) in &unrecognized {
        let record = Unrecognized {
            channel: channel.id.clone(),
            at: now,
            reason: reason.clone(),
            payload: payload.clone(),
        };
        engine
            .store()
            .record_unrecognized(record)
            .await
            .map_err(crate::engine::EngineError::from)?;
    }
    tracing::debug!(channel = %channel.id, events, handled, unrecognized = unrecognized.len(), "webhook");
    Ok(Json(
        json!({ "handled": handled, "unrecognized": unrecognized.len() }),
    ))
}

/// Answers a provider's verification handshake.
pub async fn handshake<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(channel_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let channel = super::channel(&state, &channel_id)?;
    match channel.provider.handshake(&query) {
        Handshake::Accept(challenge) => Ok((StatusCode::OK, challenge).into_response()),
        Handshake::Reject => Err(AppError::status(
            StatusCode::FORBIDDEN,
            "verification token does not match verify_token",
        )),
        Handshake::Unsupported => Err(AppError::not_found(format!(
            "provider {} has no verification handshake",
            channel.provider.name()
        ))),
    }
}

/// The channel an event belongs to: by routing key when it has one, else the webhook's own.
fn target(
    channels: &crate::provider::Registry,
    own: &Arc<Channel>,
    routed: &RoutedEvent,
) -> Option<Arc<Channel>> {
    match &routed.route {
        None => Some(Arc::clone(own)),
        Some(route) if own.route_key.as_deref() == Some(route) => Some(Arc::clone(own)),
        Some(route) => channels.by_route(route).cloned(),
    }
}
