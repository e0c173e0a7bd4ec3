//! Proof that a webhook comes from Ivosights: the HTTP Basic auth a webhook can be given in
//! Ivosights' dashboard (`http_auth` in `GET /api/v1/webhooks`), compared in constant time.
//! Ivosights signs nothing, so without it any caller who knows the URL is believed.

use crate::provider::encoding::base64;
use crate::provider::{Secret, VerifyError, WebhookRequest};

/// The header Basic auth travels in, lower-cased as [`WebhookRequest::header`] expects.
const AUTHORIZATION: &str = "authorization";

/// The token of `Authorization: Basic <token>` for these credentials, computed once so each
/// webhook is checked with one constant-time comparison.
pub(super) fn encode_credentials(username: &str, password: &Secret) -> Secret {
    let pair = format!("{username}:{}", password.expose());
    Secret::new(base64(pair.as_bytes()))
}

/// Checks `Authorization: Basic <token>` (scheme in any case) against the expected token.
pub(super) fn basic_auth(
    expected: &Secret,
    request: &WebhookRequest<'_>,
) -> Result<(), VerifyError> {
    let header = request
        .header(AUTHORIZATION)
        .ok_or(VerifyError::Missing(AUTHORIZATION))?
        .trim();
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, token)| token.trim())
        .ok_or(VerifyError::Mismatch(AUTHORIZATION))?;
    if expected.matches(token.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch(AUTHORIZATION))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_scheme_in_any_case_and_nothing_but_basic() {
        let expected = encode_credentials("user", &Secret::new("password"));
        let check = |value: &str| {
            let headers = vec![(AUTHORIZATION.to_owned(), value.to_owned())];
            basic_auth(
                &expected,
                &WebhookRequest {
                    headers: &headers,
                    body: b"{}",
                },
            )
        };
        assert_eq!(check("basic dXNlcjpwYXNzd29yZA=="), Ok(()));
        assert_eq!(check(" Basic  dXNlcjpwYXNzd29yZA== "), Ok(()));
        let mismatch = Err(VerifyError::Mismatch(AUTHORIZATION));
        assert_eq!(check("Bearer dXNlcjpwYXNzd29yZA=="), mismatch);
        assert_eq!(check("dXNlcjpwYXNzd29yZA=="), mismatch);
    }
}
