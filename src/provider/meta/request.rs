//! The Graph API requests chatflow makes (spec §5): send a message, mark one read, and fetch an
//! inbound media file in its two steps — all carrying the access token as a [`Secret`].

use crate::provider::encoding::path_segment;
use crate::provider::registry::is_web_url;

use serde::Serialize;
use serde_json::json;

use super::Meta;
use super::wire::{MediaLookup, SendBody, WHATSAPP};
use crate::message::Outbound;
use crate::provider::{BuildError, HeaderValue, HttpRequest, HttpResponse, Secret};

impl Meta {
    /// `POST /{phone_number_id}/messages` sending `message` to `to` (digits, no `+`).
    pub(super) fn message_request(
        &self,
        to: &str,
        message: &Outbound,
    ) -> Result<HttpRequest, BuildError> {
        let to = recipient(to)?;
        let message = addressed_by_name(message);
        let body = to_json(&SendBody::new(&to, &message))?;
        Ok(self.post_messages(body))
    }

    /// `POST /{phone_number_id}/messages` marking `message_id` read (spec §5.16).
    pub(super) fn read_receipt(&self, message_id: &str) -> HttpRequest {
        let body =
            json!({"messaging_product": WHATSAPP, "status": "read", "message_id": message_id});
        self.post_messages(body)
    }

    /// `GET /{media_id}`: where an inbound file can be downloaded.
    pub(super) fn media_lookup(&self, media_id: &str) -> Option<HttpRequest> {
        let url = format!("{}/{}", self.base_url, path_segment(media_id)?);
        Some(HttpRequest {
            method: "GET",
            url,
            headers: vec![self.authorization()],
            body: None,
        })
    }

    /// `GET <url>` of the lookup's answer, with the same token (the URL alone is not enough).
    pub(super) fn media_fetch(&self, lookup: &HttpResponse) -> Result<HttpRequest, BuildError> {
        if !(200..300).contains(&lookup.status) {
            return Err(BuildError(format!(
                "media lookup answered http {}",
                lookup.status
            )));
        }
        let MediaLookup { url } = serde_json::from_slice(&lookup.body)
            .map_err(|error| BuildError(format!("media lookup answer has no url: {error}")))?;
        if !is_web_url(&url) {
            return Err(BuildError(format!(
                "media lookup answered a url that is not http(s): {url:?}"
            )));
        }
        Ok(HttpRequest {
            method: "GET",
            url,
            headers: vec![self.authorization()],
            body: None,
        })
    }

    fn post_messages(&self, body: serde_json::Value) -> HttpRequest {
        let url = format!("{}/{}/messages", self.base_url, self.phone_number_id);
        let content_type = (
            "Content-Type".to_owned(),
            HeaderValue::Plain("application/json".to_owned()),
        );
        HttpRequest {
            method: "POST",
            url,
            headers: vec![self.authorization(), content_type],
            body: Some(body),
        }
    }

    fn authorization(&self) -> (String, HeaderValue) {
        let bearer = Secret::new(format!("Bearer {}", self.access_token.expose()));
        ("Authorization".to_owned(), HeaderValue::Secret(bearer))
    }
}

/// `+` and the digits, so Meta does not prepend the business's own country code (spec §5.1); a
/// business-scoped user id (spec §2) is sent as it is.
fn recipient(to: &str) -> Result<String, BuildError> {
    let to = to.trim();
    let digits = to.strip_prefix('+').unwrap_or(to);
    if digits.is_empty() {
        return Err(BuildError("the recipient is empty".to_owned()));
    }
    if digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(format!("+{digits}"));
    }
    Ok(to.to_owned())
}

/// Meta addresses templates by name and language; the id other providers need is left out.
fn addressed_by_name(message: &Outbound) -> Outbound {
    let mut message = message.clone();
    if let Outbound::Template { template } = &mut message {
        template.id = None;
    }
    message
}

fn to_json(body: &impl Serialize) -> Result<serde_json::Value, BuildError> {
    serde_json::to_value(body)
        .map_err(|error| BuildError(format!("the message is not valid json: {error}")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn meta() -> Meta {
        let settings = json!({"phone_number_id": "106540352242922", "access_token": "EAAG-token",
                              "app_secret": "s", "verify_token": "v", "mark_read": true});
        let settings = settings.as_object().cloned().expect("an object");
        Meta::from_settings(Some("https://graph.test/v24.0/"), &settings).expect("settings")
    }

    fn token(request: &HttpRequest) -> Option<&str> {
        request
            .headers
            .iter()
            .find_map(|(name, value)| match (name.as_str(), value) {
                ("Authorization", HeaderValue::Secret(secret)) => Some(secret.expose()),
                _ => None,
            })
    }

    fn lookup(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: HashMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn sends_the_token_on_the_wire_only() {
        let text = Outbound::Text {
            text: crate::message::outbound::Text {
                preview_url: None,
                body: "hi".into(),
            },
        };
        let request = meta().message_request("16505551234", &text).expect("text");
        assert_eq!(token(&request), Some("Bearer EAAG-token"));
        assert!(!format!("{request:?}").contains("EAAG"));
        assert_eq!(
            request.url,
            "https://graph.test/v24.0/106540352242922/messages"
        );
    }

    #[test]
    fn prefixes_digits_with_a_plus_and_keeps_user_ids() {
        assert_eq!(
            recipient("16505551234").ok().as_deref(),
            Some("+16505551234")
        );
        assert_eq!(
            recipient("+16505551234").ok().as_deref(),
            Some("+16505551234")
        );
        assert_eq!(
            recipient("US.13491208655302741918").ok().as_deref(),
            Some("US.13491208655302741918")
        );
        assert!(recipient(" + ").is_err());
    }

    #[test]
    fn fetches_media_in_two_steps_with_the_token() {
        let meta = meta();
        let first = meta.media_lookup("1339522734477770").expect("a valid id");
        assert_eq!(
            (first.method, first.url.as_str()),
            ("GET", "https://graph.test/v24.0/1339522734477770")
        );
        assert_eq!(
            meta.media_lookup("../me?x").expect("a valid id").url,
            "https://graph.test/v24.0/..%2Fme%3Fx"
        );
        let answer = r#"{"url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", "mime_type": "image/jpeg"}"#;
        let second = meta.media_fetch(&lookup(200, answer)).expect("url");
        assert_eq!(
            second.url,
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
        );
        assert_eq!(token(&second), Some("Bearer EAAG-token"));
        assert!(meta.media_fetch(&lookup(200, "{}")).is_err());
        assert!(meta.media_fetch(&lookup(404, answer)).is_err());
        assert!(
            meta.media_fetch(&lookup(200, r#"{"url": "file:///etc/passwd"}"#))
                .is_err()
        );
    }

    #[test]
    fn marks_read_with_the_documented_body() {
        let request = meta().read_receipt("wamid.INBOUND1");
        let expected = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.INBOUND1"});
        assert_eq!(request.body, Some(expected));
    }
}
