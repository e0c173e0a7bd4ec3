//! The Ivosights API requests chatflow makes: a send to one of the `send-*-message` endpoints,
//! marking a message read, downloading an inbound file, pulling undelivered webhooks and reading
//! the business profile as a health check — all with the `X-API-KEY` header as a [`Secret`].

use serde_json::Value;

use super::Ivosights;
use super::send::message_body;
use crate::message::Outbound;
use crate::provider::encoding::path_segment;
use crate::provider::{BuildError, HeaderValue, HttpRequest};

impl Ivosights {
    /// `POST /api/v1/messages/send-<kind>-message` sending `message` to `to` (digits).
    pub(super) fn message_request(
        &self,
        to: &str,
        message: &Outbound,
    ) -> Result<HttpRequest, BuildError> {
        let wa_id = recipient(to)?;
        let (endpoint, body) = message_body(&wa_id, message)?;
        let url = format!("{}/api/v1/messages/{endpoint}", self.base_url);
        Ok(self.request("POST", url, Some(body)))
    }

    /// `PUT /api/v1/messages/{id}/read`; `None` for an id that cannot be a path segment.
    pub(super) fn read_receipt(&self, message_id: &str) -> Option<HttpRequest> {
        let url = format!(
            "{}/api/v1/messages/{}/read",
            self.base_url,
            path_segment(message_id)?
        );
        Some(self.request("PUT", url, None))
    }

    /// `GET /api/v1/media/{id}`, whose answer is the file itself.
    pub(super) fn media_file(&self, media_id: &str) -> Option<HttpRequest> {
        let url = format!("{}/api/v1/media/{}", self.base_url, path_segment(media_id)?);
        Some(self.request("GET", url, None))
    }

    /// `GET /api/v1/webhooks/{id}/pull-pending-notifications`: the notifications Ivosights gave
    /// up delivering after three attempts.
    pub(super) fn pull_pending(&self, webhook_id: &str) -> Option<HttpRequest> {
        let url = format!(
            "{}/api/v1/webhooks/{}/pull-pending-notifications",
            self.base_url,
            path_segment(webhook_id)?
        );
        Some(self.request("GET", url, None))
    }

    /// `GET /api/v1/settings/business-profile`: the cheapest call that needs a working key.
    pub(super) fn business_profile(&self) -> HttpRequest {
        let url = format!("{}/api/v1/settings/business-profile", self.base_url);
        self.request("GET", url, None)
    }

    /// A request with the three headers every example of the document sends.
    fn request(&self, method: &'static str, url: String, body: Option<Value>) -> HttpRequest {
        let plain =
            |name: &str, value: &str| (name.to_owned(), HeaderValue::Plain(value.to_owned()));
        HttpRequest {
            method,
            url,
            headers: vec![
                (
                    "X-API-KEY".to_owned(),
                    HeaderValue::Secret(self.api_key.clone()),
                ),
                plain("Content-Type", "application/json"),
                plain("Accept", "application/json"),
            ],
            body,
        }
    }
}

/// The `wa_id`: the digits, as every example of the document writes it.
fn recipient(to: &str) -> Result<String, BuildError> {
    let to = to.trim();
    let digits = to.strip_prefix('+').unwrap_or(to);
    if digits.is_empty() {
        return Err(BuildError("the recipient is empty".to_owned()));
    }
    Ok(digits.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_an_id_in_its_path_segment() {
        assert_eq!(
            path_segment("ABGGFmkiWVVPAgo66iFiii_-TG0-").as_deref(),
            Some("ABGGFmkiWVVPAgo66iFiii_-TG0-")
        );
        assert_eq!(path_segment("../me?x").as_deref(), Some("..%2Fme%3Fx"));
        assert_eq!(path_segment(".."), None);
        assert_eq!(path_segment(""), None);
    }

    #[test]
    fn sends_to_the_digits() {
        assert_eq!(
            recipient(" +628123456789").ok().as_deref(),
            Some("628123456789")
        );
        assert!(recipient("+").is_err());
    }
}
