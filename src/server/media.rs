//! `GET /api/media/{channel}/{media_id}`: a file a customer sent, fetched from the provider on
//! demand and streamed through (provider URLs expire within minutes; ours does not).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::{AppError, AppState};
use crate::store::Store;

/// Streams one inbound media file.
pub async fn get_media<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path((channel_id, media_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let channel = super::channel(&state, &channel_id)?;
    let provider = &channel.provider;
    let lookup = provider.media_request(&media_id).ok_or_else(|| {
        AppError::not_found(format!("provider {} cannot fetch media", provider.name()))
    })?;
    let first = state.http.execute(&lookup).await.map_err(bad_gateway)?;
    if !(200..300).contains(&first.status) {
        return Err(upstream(first.status));
    }
    let download = provider
        .media_download(&first)
        .map_err(|error| AppError::status(StatusCode::BAD_GATEWAY, error.to_string()))?;
    let Some(download) = download else {
        return respond(
            first.headers.get("content-type").cloned(),
            Body::from(first.body),
        );
    };
    let response = state.http.start(&download).await.map_err(bad_gateway)?;
    if !response.status().is_success() {
        return Err(upstream(response.status().as_u16()));
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    respond(content_type, Body::from_stream(response.bytes_stream()))
}

fn respond(content_type: Option<String>, body: Body) -> Result<Response, AppError> {
    let content_type = content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .map_err(|error| AppError::status(StatusCode::BAD_GATEWAY, error.to_string()))
}

fn bad_gateway(error: crate::provider::http::TransportError) -> AppError {
    AppError::status(StatusCode::BAD_GATEWAY, error.to_string())
}

fn upstream(status: u16) -> AppError {
    AppError::status(
        StatusCode::BAD_GATEWAY,
        format!("the provider answered {status} for this media (expired after 7 days?)"),
    )
}
