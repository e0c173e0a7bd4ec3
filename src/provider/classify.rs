//! What to do about a failed send, as a type: every provider maps its own error codes onto
//! these few decisions (body code first, HTTP status only as a fallback — Meta reports rate
//! limits as HTTP 400), and the outbox acts on the decision, never on error text.

use std::time::Duration;

/// The decision for one failed send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Transient: try again with backoff.
    Retry,
    /// Too fast: try again after this long (or with backoff when the provider did not say).
    RateLimited(Option<Duration>),
    /// Outside the 24-hour window: only a template can be sent.
    OutsideWindow,
    /// The contact opted out (e.g. Meta 131050): never retry, mark them opted out.
    OptedOut,
    /// Permanent: retrying the same request cannot succeed.
    DoNotRetry,
}

/// A failed send, with what the provider said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} send failed ({decision:?}): {detail}")]
pub struct SendError {
    /// The provider's name.
    pub provider: &'static str,
    /// What to do.
    pub decision: SendFailure,
    /// The provider's code and words, for logs and the dead-letter list (no secrets).
    pub detail: String,
}

/// The fallback for providers whose body carries no code: by HTTP status.
#[must_use]
pub fn by_status(status: u16, retry_after: Option<Duration>) -> SendFailure {
    match status {
        429 => SendFailure::RateLimited(retry_after),
        408 | 425 | 500..=599 => SendFailure::Retry,
        _ => SendFailure::DoNotRetry,
    }
}

/// Reads a `Retry-After` header value in seconds.
#[must_use]
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// How much of an unexpected body goes into a failure's detail.
const EXCERPT_CHARS: usize = 200;

/// `http <status>: <said>` — what the provider's answer said, or else the start of its body
/// (whitespace collapsed), for logs and the dead-letter list. Never holds the request URL,
/// which may carry a token.
#[must_use]
pub fn failure_detail(response: &super::HttpResponse, said: Option<&str>) -> String {
    let said = said.map_or_else(
        || {
            let text = String::from_utf8_lossy(&response.body);
            let words: Vec<&str> = text.split_whitespace().collect();
            words.join(" ").chars().take(EXCERPT_CHARS).collect()
        },
        str::to_owned,
    );
    match said.trim() {
        "" => format!("http {}", response.status),
        said => format!("http {}: {said}", response.status),
    }
}

/// `http <status>` and the start of a body that is not the provider's error JSON (a proxy's
/// error page, say).
#[must_use]
pub fn excerpt(response: &super::HttpResponse) -> String {
    failure_detail(response, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fallback() {
        assert_eq!(
            by_status(429, Some(Duration::from_secs(3))),
            SendFailure::RateLimited(Some(Duration::from_secs(3)))
        );
        assert_eq!(by_status(503, None), SendFailure::Retry);
        assert_eq!(by_status(400, None), SendFailure::DoNotRetry);
        assert_eq!(retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
    }
}
