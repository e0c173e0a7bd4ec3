//! Errors as the HTTP API shows them: `{"error": "…"}` with a fitting status, never internals.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::engine::EngineError;

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    message: String,
}

impl AppError {
    /// 400 with a message for the client.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404 with a message for the client.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// Any status with a message for the client.
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 401: missing or wrong credentials.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or wrong admin token: send Authorization: Bearer <admin_token>"
                .to_owned(),
        }
    }
}

impl From<EngineError> for AppError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Input(message) => Self::bad_request(message),
            EngineError::Store(error) => {
                tracing::error!(message = "Store failed while handling a request.", %error);
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "storage is unavailable; the message was not handled, retry"
                        .to_owned(),
                }
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// A JSON body, whatever its Content-Type says (curl's `-d` sends form encoding).
#[derive(Debug)]
pub struct AnyJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AnyJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|error| AppError::bad_request(format!("cannot read the body: {error}")))?;
        serde_json::from_slice(&bytes)
            .map(AnyJson)
            .map_err(|error| AppError::bad_request(format!("invalid JSON body: {error}")))
    }
}
