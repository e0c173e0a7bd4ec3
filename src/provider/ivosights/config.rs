//! An Ivosights channel's settings (DESIGN §7): read strictly, so a misspelt key or a missing
//! credential is reported by name when the server starts rather than as a 401 at the first send.

use crate::provider::registry::api_root;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Ivosights;
use super::verify::encode_credentials;
use crate::provider::Secret;
use crate::provider::registry::{SettingsError, read_settings};

/// The production API root of the document's "Base URL".
const DEFAULT_BASE_URL: &str = "https://waba.ivosights.com";

/// The path segment the document prefixes to endpoints to reach the sandbox.
const SANDBOX_SUFFIX: &str = "/sandbox";

/// The Ivosights keys of a channel, exactly as written in `chatflow.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    api_key: Secret,
    #[serde(default)]
    inbound_basic_auth: Option<BasicAuth>,
    #[serde(default)]
    webhook_id: Option<String>,
    #[serde(default)]
    mark_read: bool,
}

/// `inbound_basic_auth: {username, password}`: the HTTP auth set on the webhook in Ivosights'
/// dashboard (`http_auth` of `GET /api/v1/webhooks`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuth {
    username: String,
    password: Secret,
}

/// Reads and checks the settings of one channel.
pub(super) fn read(
    base_url: Option<&str>,
    settings: &Map<String, Value>,
) -> Result<Ivosights, SettingsError> {
    let settings: Settings = read_settings(settings)?;
    if settings.api_key.expose().trim().is_empty() {
        return Err(SettingsError::at(
            "api_key",
            "`api_key` is empty; copy the API key from the developer section of the ivosights dashboard",
        ));
    }
    let base_url = api_root(base_url, DEFAULT_BASE_URL)?;
    Ok(Ivosights {
        sandbox: base_url.ends_with(SANDBOX_SUFFIX),
        base_url,
        api_key: settings.api_key,
        inbound_basic_auth: settings.inbound_basic_auth.map(credentials).transpose()?,
        webhook_id: settings.webhook_id.map(webhook_id).transpose()?,
        mark_read: settings.mark_read,
    })
}

/// The Basic auth token Ivosights will send; a colon in the user name could not be told apart
/// from the one that ends it (RFC 7617), so it is refused.
fn credentials(auth: BasicAuth) -> Result<Secret, SettingsError> {
    if auth.username.contains(':') {
        return Err(SettingsError::at(
            "inbound_basic_auth",
            "`inbound_basic_auth.username` cannot contain a colon (basic auth ends the user name at the first one)",
        ));
    }
    Ok(encode_credentials(&auth.username, &auth.password))
}

/// The webhook's id goes into the pull path, so an empty one is a mistake worth naming now.
fn webhook_id(id: String) -> Result<String, SettingsError> {
    let id = id.trim().to_owned();
    if id.is_empty() {
        return Err(SettingsError::at(
            "webhook_id",
            "`webhook_id` is empty; use the `id` of the webhook in GET /api/v1/webhooks, or leave the key out",
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn defaults_to_production_and_tells_the_sandbox_by_its_path() {
        let ivosights = read(None, &settings(json!({"api_key": "k"}))).expect("complete");
        assert_eq!(ivosights.base_url, DEFAULT_BASE_URL);
        assert!(!ivosights.sandbox && !ivosights.mark_read);
        let sandbox = read(
            Some("https://waba.ivosights.com/sandbox/"),
            &settings(json!({"api_key": "k"})),
        )
        .expect("sandbox");
        assert_eq!(sandbox.base_url, "https://waba.ivosights.com/sandbox");
        assert!(sandbox.sandbox);
    }

    #[test]
    fn names_an_empty_key_a_colon_user_or_a_bad_base_url() {
        let error = read(None, &settings(json!({"api_key": " "}))).expect_err("empty key");
        assert_eq!(error.key.as_deref(), Some("api_key"));
        let colon =
            json!({"api_key": "k", "inbound_basic_auth": {"username": "a:b", "password": "p"}});
        let error = read(None, &settings(colon)).expect_err("colon");
        assert_eq!(error.key.as_deref(), Some("inbound_basic_auth"));
        let error = read(None, &settings(json!({"api_key": "k", "webhook_id": ""})))
            .expect_err("empty webhook id");
        assert_eq!(error.key.as_deref(), Some("webhook_id"));
        let error = read(
            Some("waba.ivosights.com"),
            &settings(json!({"api_key": "k"})),
        )
        .expect_err("url");
        assert_eq!(error.key.as_deref(), Some("base_url"));
    }
}
