//! Meta's answer to a send, read as a decision: the message id, or what the outbox should do
//! about the failure, decided by `error.code` first (spec §4.5) because Meta reports rate limits
//! as HTTP 400, and by the HTTP status only when the body carries no known code.

use crate::message::meta::sent_message_id;
use crate::provider::classify::excerpt;
use std::time::Duration;

use super::NAME;
use super::wire::{ErrorResponse, GraphError};
use crate::provider::classify::{by_status, retry_after};
use crate::provider::{HttpResponse, SendError, SendFailure, Sent};

/// The provider's message id of an accepted send, or the classified failure.
pub(super) fn read_response(response: &HttpResponse) -> Result<Sent, SendError> {
    if (200..300).contains(&response.status) {
        return Ok(Sent {
            provider_id: sent_message_id(&response.body),
        });
    }
    let wait = retry_after(response.headers.get("retry-after").map(String::as_str));
    let error = serde_json::from_slice::<ErrorResponse>(&response.body)
        .ok()
        .map(|body| body.error);
    let decision = error
        .as_ref()
        .and_then(|error| by_code(error.code?, wait))
        .unwrap_or_else(|| by_status(response.status, wait));
    let detail = match &error {
        Some(error) => describe(error),
        None => excerpt(response),
    };
    Err(SendError {
        provider: NAME,
        decision,
        detail,
    })
}

/// The error codes of spec §4.5 and the bot action the table gives each; `None` for a code the
/// table does not list, which is then decided by HTTP status.
pub(super) fn by_code(code: i64, wait: Option<Duration>) -> Option<SendFailure> {
    let decision = match code {
        // Re-engagement: over 24 h since the user last wrote; only a template may go. 470 is the
        // On-Premises code for the same rule.
        131_047 | 470 => SendFailure::OutsideWindow,
        // The user stopped marketing messages: never retry, respect the opt-out.
        131_050 => SendFailure::OptedOut,
        // Throughput, pair, app and WABA rate limits; the spam rate limit asks to slow down too.
        130_429 | 131_056 | 4 | 80_007 | 131_048 => SendFailure::RateLimited(wait),
        // Something went wrong, maintenance mode, service temporarily unavailable.
        131_000 | 131_057 | 1 | 2 | 131_016 => SendFailure::Retry,
        // The recipient cannot get it: undeliverable, unsupported type, recipient is the sender,
        // Meta's per-user marketing limit (no resend for 24 h), an experiment, a country ban.
        131_026 | 131_051 | 131_021 | 131_049 | 130_472 | 130_497 => SendFailure::DoNotRetry,
        // The request is wrong: parameters, media, templates.
        131_009 | 131_008 | 100 | 135_000 | 131_052 | 131_053 | 132_000 | 132_001 | 132_012
        | 132_015 | 132_016 => SendFailure::DoNotRetry,
        // The account is blocked, locked, unpaid, unauthorized or lacks permissions: an operator
        // must act (an expired token included: chatflow cannot refresh it).
        368 | 131_031 | 131_042 | 0 | 190 | 3 | 10 | 200..=299 => SendFailure::DoNotRetry,
        _ => return None,
    };
    Some(decision)
}

/// `(#code) message: details [fbtrace_id …]`, from what Meta said; it holds no credential.
fn describe(error: &GraphError) -> String {
    let message = error.message.as_deref().unwrap_or("no message");
    let mut detail = match error.code {
        Some(code) if !message.starts_with("(#") => format!("(#{code}) {message}"),
        _ => message.to_owned(),
    };
    if let Some(details) = error
        .error_data
        .as_ref()
        .and_then(|data| data.details.as_deref())
    {
        detail.push_str(": ");
        detail.push_str(details);
    }
    if let Some(trace) = &error.fbtrace_id {
        detail.push_str(" [fbtrace_id ");
        detail.push_str(trace);
        detail.push(']');
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_table_has_a_decision() {
        let codes = [
            131_047, 470, 130_429, 131_056, 131_026, 131_051, 131_000, 368, 4, 80_007, 131_048,
            131_049, 131_050, 131_052, 131_053, 131_057, 131_009, 131_008, 100, 135_000, 131_021,
            131_042, 131_031, 130_497, 130_472, 132_000, 132_001, 132_012, 132_015, 132_016, 0,
            190, 10, 200, 250, 299, 3, 1, 2, 131_016,
        ];
        for code in codes {
            assert!(by_code(code, None).is_some(), "{code}");
        }
        assert_eq!(by_code(133_004, None), None);
        assert_eq!(by_code(300, None), None);
    }

    #[test]
    fn describes_with_the_code_once() {
        let error: ErrorResponse = serde_json::from_str(
            r#"{"error": {"message": "Invalid OAuth access token - Cannot parse access token", "code": 190}}"#,
        )
        .expect("error json");
        assert_eq!(
            describe(&error.error),
            "(#190) Invalid OAuth access token - Cannot parse access token"
        );
    }
}
