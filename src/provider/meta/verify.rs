//! Proof that a webhook comes from Meta (spec §1): the `X-Hub-Signature-256` HMAC over the body,
//! and the `hub.verify_token` handshake Meta performs before it sends any webhook.

use std::collections::HashMap;
use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::provider::secret::constant_time_eq;
use crate::provider::{Handshake, Secret, VerifyError, WebhookRequest};

/// The signature header, lower-cased as [`WebhookRequest::header`] expects.
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Checks `sha256=<hex>` against the raw body and, failing that, against the body with every
/// non-ASCII character escaped, since Meta signs the escaped form (spec §1.2).
pub(super) fn signature(
    app_secret: &Secret,
    request: &WebhookRequest<'_>,
) -> Result<(), VerifyError> {
    let header = request
        .header(SIGNATURE_HEADER)
        .ok_or(VerifyError::Missing(SIGNATURE_HEADER))?;
    let given = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|digits| hex::decode(digits).ok())
        .ok_or(VerifyError::Mismatch(SIGNATURE_HEADER))?;
    if signs(app_secret, request.body, &given) {
        return Ok(());
    }
    match escape_non_ascii(request.body) {
        Some(escaped) if signs(app_secret, escaped.as_bytes(), &given) => Ok(()),
        _ => Err(VerifyError::Mismatch(SIGNATURE_HEADER)),
    }
}

/// Accepts the subscription when the mode is `subscribe` and the token is ours (spec §1.1).
pub(super) fn handshake(verify_token: &Secret, query: &HashMap<String, String>) -> Handshake {
    let field = |name: &str| query.get(name).map(String::as_str);
    match (
        field("hub.mode"),
        field("hub.verify_token"),
        field("hub.challenge"),
    ) {
        (Some("subscribe"), Some(token), Some(challenge))
            if verify_token.matches(token.as_bytes()) =>
        {
            Handshake::Accept(challenge.to_owned())
        }
        _ => Handshake::Reject,
    }
}

/// Whether `given` is the HMAC-SHA256 of `body` under `app_secret`, compared in constant time.
fn signs(app_secret: &Secret, body: &[u8], given: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    constant_time_eq(&mac.finalize().into_bytes(), given)
}

/// The body with each non-ASCII character as `\uXXXX` per UTF-16 unit, lowercase hex; `None`
/// when there is nothing to escape or the body is not UTF-8.
fn escape_non_ascii(body: &[u8]) -> Option<String> {
    if body.is_ascii() {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let mut escaped = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        if character.is_ascii() {
            escaped.push(character);
            continue;
        }
        for unit in character.encode_utf16(&mut [0; 2]) {
            let _ = write!(escaped, "\\u{unit:04x}");
        }
    }
    Some(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &[u8], header: Option<&str>) -> Result<(), VerifyError> {
        let headers: Vec<(String, String)> = header
            .map(|value| (SIGNATURE_HEADER.to_owned(), value.to_owned()))
            .into_iter()
            .collect();
        signature(
            &Secret::new("app_secret"),
            &WebhookRequest {
                headers: &headers,
                body,
            },
        )
    }

    const EMPTY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    const EMPTY_SIGNATURE: &str =
        "sha256=c236c758c9b2bd40b388a550eeca09eaca72384dd0aa5e7c31d19cddac5bba46";
    const CAFE: &str = r#"{"text":{"body":"café 😮"}}"#;
    const CAFE_ESCAPED: &str = r#"{"text":{"body":"caf\u00e9 \ud83d\ude2e"}}"#;
    const CAFE_RAW_SIGNATURE: &str =
        "sha256=85087d1c951b50b74f275de4d6ee29f5e1d9cb5c01c1d72c32de548836e1c048";
    const CAFE_ESCAPED_SIGNATURE: &str =
        "sha256=488637ec38265cf9bae3e0d2d3fca1019674b34ddb9988296f043b4df4f4443f";

    #[test]
    fn accepts_the_spec_test_vector() {
        assert_eq!(check(EMPTY, Some(EMPTY_SIGNATURE)), Ok(()));
        assert_eq!(
            check(
                EMPTY,
                Some(&EMPTY_SIGNATURE.to_uppercase().replace("SHA256=", "sha256="))
            ),
            Ok(())
        );
    }

    #[test]
    fn refuses_a_wrong_malformed_or_missing_signature() {
        let mismatch = Err(VerifyError::Mismatch(SIGNATURE_HEADER));
        assert_eq!(
            check(b"{\"object\":\"x\"}", Some(EMPTY_SIGNATURE)),
            mismatch
        );
        assert_eq!(check(EMPTY, Some("c236c758")), mismatch);
        assert_eq!(check(EMPTY, Some("sha256=not-hex")), mismatch);
        assert_eq!(
            check(EMPTY, None),
            Err(VerifyError::Missing(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn accepts_unicode_signed_raw_or_escaped() {
        assert_eq!(
            escape_non_ascii(CAFE.as_bytes()).as_deref(),
            Some(CAFE_ESCAPED)
        );
        assert_eq!(check(CAFE.as_bytes(), Some(CAFE_RAW_SIGNATURE)), Ok(()));
        assert_eq!(check(CAFE.as_bytes(), Some(CAFE_ESCAPED_SIGNATURE)), Ok(()));
        assert_eq!(
            check(CAFE_ESCAPED.as_bytes(), Some(CAFE_ESCAPED_SIGNATURE)),
            Ok(())
        );
        assert_eq!(
            check(CAFE_ESCAPED.as_bytes(), Some(CAFE_RAW_SIGNATURE)),
            Err(VerifyError::Mismatch(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn answers_the_handshake_only_with_the_right_token() {
        let token = Secret::new("my-verify-token");
        let query = |mode: &str, token: &str| -> HashMap<String, String> {
            [
                ("hub.mode", mode),
                ("hub.verify_token", token),
                ("hub.challenge", "1158201444"),
            ]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
        };
        assert_eq!(
            handshake(&token, &query("subscribe", "my-verify-token")),
            Handshake::Accept("1158201444".to_owned())
        );
        assert_eq!(
            handshake(&token, &query("subscribe", "guess")),
            Handshake::Reject
        );
        assert_eq!(
            handshake(&token, &query("unsubscribe", "my-verify-token")),
            Handshake::Reject
        );
        assert_eq!(handshake(&token, &HashMap::new()), Handshake::Reject);
    }
}
