//! `POST /api/flows/reload`: an operator applies edited flows and scripts now, without waiting
//! for the watcher, and sees at once whether they loaded and why not.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::reload::ReloadError;
use crate::store::Store;

/// Reloads every flow and script: 200 `{"flows": N, "warnings": [..]}` when the new bot runs,
/// 422 with every problem (one `path:line:col: message` per line) when the old one keeps running.
pub async fn reload<S: Store>(
    State(state): State<Arc<AppState<S>>>,
) -> Result<Json<Value>, AppError> {
    let reloader = state.reloader.clone().ok_or_else(|| {
        AppError::not_found(
            "this server has no flow files to reload from; hot reload needs `chatflow serve` with a flows_dir",
        )
    })?;
    match reloader.reload_async(Arc::clone(&state.engine)).await {
        Ok(reloaded) => {
            let warnings: Vec<String> = reloaded.warnings.iter().map(ToString::to_string).collect();
            Ok(Json(json!({"flows": reloaded.flows, "warnings": warnings})))
        }
        Err(ReloadError::Invalid(diagnostics)) => Err(AppError::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            diagnostics.to_string().trim_end(),
        )),
        Err(error @ ReloadError::Crashed(_)) => Err(AppError::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            error.to_string(),
        )),
    }
}
