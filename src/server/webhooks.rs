//! `POST /webhooks/{channel}` and `GET /webhooks/{channel}`: provider webhooks in, verified over
//! the raw bytes, parsed, handled and committed before the 200 (DESIGN §1, §10).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::engine::IngestError;
use crate::metrics::WebhookResult;
use crate::provider::http::text_headers;
use crate::provider::{Handshake, WebhookRequest};
use crate::store::Store;

/// Handles one provider webhook.
pub async fn receive<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let channel = super::channel(&state, &channel_id)?;
    let metrics = state.engine.metrics();
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            metrics.webhook(&channel.id, WebhookResult::TooLarge, 1);
        }
        AppError::status(rejection.status(), rejection.body_text())
    })?;
    let headers: Vec<(String, String)> = text_headers(&headers);
    let request = WebhookRequest {
        headers: &headers,
        body: &body,
    };
    if let Err(error) = channel.verify(&request) {
        tracing::warn!(message = "Webhook refused.", channel = %channel.id, %error);
        metrics.webhook(&channel.id, WebhookResult::BadSignature, 1);
        return Err(AppError::status(
            StatusCode::UNAUTHORIZED,
            format!("webhook refused: {error}"),
        ));
    }
    let ingested = state
        .engine
        .ingest(&channel, &body)
        .await
        .map_err(|error| match error {
            IngestError::Parse(error) => {
                AppError::bad_request(format!("webhook body is not usable: {error}"))
            }
            IngestError::Engine(error) => AppError::from(error),
        })?;
    Ok(Json(json!({
        "accepted": ingested.accepted,
        "duplicates": ingested.duplicates,
        "unrecognized": ingested.unrecognized,
    })))
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
