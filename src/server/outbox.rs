//! The outbox as operators see it (DESIGN §5): what is queued and dead-lettered, putting a dead
//! letter back, clearing the queue, and sending a message to a contact as the business.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AnyJson, AppError, AppState};
use crate::diagnostic::Severity;
use crate::engine::{EngineError, OperatorSend};
use crate::message::MessageSpec;
use crate::message::limits::check;
use crate::outbox::FirstAttempt;
use crate::store::{ContactKey, Store};

/// How long an operator's send waits for its first attempt (DESIGN §5).
const FIRST_ATTEMPT_WAIT: Duration = Duration::from_secs(10);

/// `?limit=N` (default 100, at most 1000).
#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<usize>,
}

impl Page {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(100).min(1000)
    }
}

/// `GET /api/outbox`: pending sends with their attempts, next try and last error.
pub async fn pending<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, AppError> {
    let jobs = state
        .engine
        .store()
        .pending_jobs(page.limit())
        .await
        .map_err(EngineError::from)?;
    Ok(Json(json!({ "pending": jobs })))
}

/// `GET /api/outbox/dead`: sends given up on, newest last, each with why.
pub async fn dead<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, AppError> {
    let dead = state
        .engine
        .store()
        .dead_jobs(page.limit())
        .await
        .map_err(EngineError::from)?;
    Ok(Json(json!({ "dead": dead })))
}

/// `POST /api/outbox/dead/{id}/retry`: the dead letter goes back in the queue, behind its
/// contact's pending sends, with its attempts reset.
pub async fn retry<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, AppError> {
    let job = state.engine.retry_dead(id).await?.ok_or_else(|| {
        AppError::not_found(format!(
            "no dead letter {id}; GET /api/outbox/dead lists them"
        ))
    })?;
    Ok(Json(json!({ "job": job })))
}

/// `DELETE /api/outbox`: drops every pending send not in flight (after an incident, say).
pub async fn clear<S: Store>(
    State(state): State<Arc<AppState<S>>>,
) -> Result<Json<Value>, AppError> {
    let cleared = state
        .engine
        .store()
        .clear_jobs()
        .await
        .map_err(EngineError::from)?;
    Ok(Json(json!({ "cleared": cleared })))
}

/// `POST /api/contacts/{channel}/{contact}/messages`: sends a DSL message as the business and
/// waits up to 10 s for the first attempt: 200 with the provider's message id, the provider's
/// refusal as its 4xx (else 502), or 202 while it is still queued (retrying).
pub async fn send<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path((channel, id)): Path<(String, String)>,
    AnyJson(spec): AnyJson<MessageSpec>,
) -> Result<Response, AppError> {
    super::channel(&state, &channel)?;
    let problems: Vec<String> = check(&spec)
        .into_iter()
        .filter(|issue| issue.severity == Severity::Error)
        .map(|issue| format!("{}: {}", issue.path, issue.message))
        .collect();
    if !problems.is_empty() {
        return Err(AppError::bad_request(problems.join("; ")));
    }
    let message = spec
        .to_outbound()
        .map_err(|error| AppError::bad_request(format!("{}: {}", error.path, error.message)))?;
    let contact = ContactKey::new(channel, id);
    let sent = state
        .engine
        .send_as_business(&contact, message, FIRST_ATTEMPT_WAIT)
        .await?;
    Ok(answer(sent))
}

/// The HTTP answer for an operator's send.
fn answer(sent: OperatorSend) -> Response {
    let (job, first) = match sent {
        OperatorSend::Logged => {
            return Json(json!({ "status": "logged" })).into_response();
        }
        OperatorSend::Attempted { job, first } => (job, first),
    };
    match first {
        Some(FirstAttempt::Sent(id)) => {
            Json(json!({ "status": "sent", "id": id, "job": job })).into_response()
        }
        Some(FirstAttempt::Retrying { error }) => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "queued", "job": job, "last_error": error })),
        )
            .into_response(),
        None => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "queued", "job": job })),
        )
            .into_response(),
        Some(FirstAttempt::Refused {
            status,
            error,
            dead_id,
        }) => {
            let status = status
                .filter(|status| (400..500).contains(status))
                .and_then(|status| StatusCode::from_u16(status).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let body = json!({ "error": format!("the provider refused the message: {error}"), "dead_letter": dead_id });
            (status, Json(body)).into_response()
        }
    }
}
