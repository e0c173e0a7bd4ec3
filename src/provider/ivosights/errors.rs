//! Ivosights' answer to a send, read as a decision: the message id, or what the outbox should do
//! about the failure, decided by the WhatsApp error code in the body first and by the HTTP
//! status only when the body carries no code the document gives a meaning to.

use super::NAME;
use super::wire::{ApiError, ErrorResponse};
use crate::message::meta::sent_message_id;
use crate::provider::classify::excerpt;
use crate::provider::classify::{by_status, retry_after};
use crate::provider::{HttpResponse, SendError, SendFailure, Sent};

/// The provider's message id of an accepted send, or the classified failure.
pub(super) fn read_response(response: &HttpResponse) -> Result<Sent, SendError> {
    if is_success(response) {
        return Ok(Sent {
            provider_id: sent_message_id(&response.body),
        });
    }
    let wait = retry_after(response.headers.get("retry-after").map(String::as_str));
    let body = serde_json::from_slice::<ErrorResponse>(&response.body).ok();
    let errors = body.as_ref().map(coded).unwrap_or_default();
    let decision = errors
        .iter()
        .find_map(|error| by_code(error.code))
        .unwrap_or_else(|| by_status(response.status, wait));
    Err(SendError {
        provider: NAME,
        decision,
        detail: describe(response, body.as_ref(), &errors),
    })
}

/// The health answer: fine on 2xx, else what Ivosights said.
pub(super) fn read_health(response: &HttpResponse) -> Result<(), String> {
    if is_success(response) {
        return Ok(());
    }
    let body = serde_json::from_slice::<ErrorResponse>(&response.body).ok();
    let errors = body.as_ref().map(coded).unwrap_or_default();
    Err(describe(response, body.as_ref(), &errors))
}

fn is_success(response: &HttpResponse) -> bool {
    (200..300).contains(&response.status)
}

/// The coded errors of `errors`, when it is the WhatsApp list and not some other shape (a
/// validation error's `{field: [message]}`).
fn coded(body: &ErrorResponse) -> Vec<ApiError> {
    let Some(serde_json::Value::Array(items)) = &body.errors else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| serde::Deserialize::deserialize(item).ok())
        .collect()
}

/// The codes the document gives a meaning to; `None` for any other, which is then decided by
/// HTTP status.
pub(super) fn by_code(code: i64) -> Option<SendFailure> {
    match code {
        // "Outside the support window for freeform messages": only a template may go.
        470 => Some(SendFailure::OutsideWindow),
        // "Identity change of the contact": the document says to send again in a few minutes.
        480 => Some(SendFailure::Retry),
        _ => None,
    }
}

/// `(#code) title: details` per error, else the body's `message`, else the start of the body.
fn describe(response: &HttpResponse, body: Option<&ErrorResponse>, errors: &[ApiError]) -> String {
    if !errors.is_empty() {
        let described: Vec<String> = errors.iter().map(describe_error).collect();
        return described.join("; ");
    }
    match body.and_then(|body| body.message.as_deref()) {
        Some(message) => format!("http {}: {message}", response.status),
        None => excerpt(response),
    }
}

fn describe_error(error: &ApiError) -> String {
    let mut detail = format!("(#{})", error.code);
    if let Some(title) = &error.title {
        detail.push(' ');
        detail.push_str(title);
    }
    if let Some(details) = &error.details {
        detail.push_str(": ");
        detail.push_str(details);
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_document_has_a_decision() {
        assert_eq!(by_code(470), Some(SendFailure::OutsideWindow));
        assert_eq!(by_code(480), Some(SendFailure::Retry));
        assert_eq!(by_code(131_047), None);
    }

    #[test]
    fn describes_title_then_details() {
        let error = ApiError {
            code: 470,
            title: Some("Re-engagement message".to_owned()),
            details: Some("more than 24 hours".to_owned()),
        };
        assert_eq!(
            describe_error(&error),
            "(#470) Re-engagement message: more than 24 hours"
        );
    }
}
