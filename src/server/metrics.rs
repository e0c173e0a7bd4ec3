//! `GET /metrics` (Prometheus scrapes it; DESIGN §5) and `GET /api/stats/flows`, the per-flow
//! funnel as JSON for people and dashboards without Prometheus.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{AppError, AppState};
use crate::engine::EngineError;
use crate::store::Store;

/// `GET /metrics`: every counter, histogram and the queue gauges, read from the store now, in
/// the OpenMetrics text format.
pub async fn scrape<S: Store>(State(state): State<Arc<AppState<S>>>) -> Result<Response, AppError> {
    let depths = state
        .engine
        .store()
        .queue_depths()
        .await
        .map_err(EngineError::from)?;
    let metrics = state.engine.metrics();
    metrics.set_queue_depths(depths);
    let text = metrics.encode().map_err(|error| {
        tracing::error!(message = "Metrics could not be written.", %error);
        AppError::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be written",
        )
    })?;
    Ok(([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

/// `GET /api/stats/flows`: for each flow of the running bot, how many conversations started it,
/// completed it and stopped short at each step, counted since the process started (`since`,
/// Unix seconds); Prometheus keeps the history across restarts.
pub async fn flows<S: Store>(State(state): State<Arc<AppState<S>>>) -> Json<Value> {
    let bot = state.engine.bot();
    let metrics = state.engine.metrics();
    let flows: Map<String, Value> = bot
        .flows
        .iter()
        .map(|flow| {
            let steps = flow.steps.iter().map(|step| step.name.as_str());
            (flow.id.clone(), json!(metrics.funnel(&flow.id, steps)))
        })
        .collect();
    Json(json!({"since": metrics.since(), "flows": flows}))
}
