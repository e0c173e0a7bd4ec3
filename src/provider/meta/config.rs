//! A Meta channel's settings (DESIGN §7): read strictly, so a misspelt key or a missing credential
//! is reported by name when the server starts rather than as a 401 at the first send.

use crate::provider::registry::api_root;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::Meta;
use crate::provider::Secret;
use crate::provider::registry::{SettingsError, read_settings};

/// The Graph API version chatflow was written against; pinned because Meta's default moves.
const DEFAULT_BASE_URL: &str = "https://graph.facebook.com/v21.0";

/// The Meta keys of a channel, exactly as written in `chatflow.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(deserialize_with = "id")]
    phone_number_id: String,
    access_token: Secret,
    app_secret: Secret,
    verify_token: Secret,
    #[serde(default)]
    mark_read: bool,
}

/// Reads and checks the settings of one channel.
pub(super) fn read(
    base_url: Option<&str>,
    settings: &Map<String, Value>,
) -> Result<Meta, SettingsError> {
    let settings: Settings = read_settings(settings)?;
    check_phone_number_id(&settings.phone_number_id)?;
    Ok(Meta {
        base_url: api_root(base_url, DEFAULT_BASE_URL)?,
        phone_number_id: settings.phone_number_id,
        access_token: settings.access_token,
        app_secret: settings.app_secret,
        verify_token: settings.verify_token,
        mark_read: settings.mark_read,
    })
}

/// An unquoted id in YAML is a number; it is the same id, so both spellings are taken.
fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => Ok(text),
        Value::Number(number) if number.is_u64() => Ok(number.to_string()),
        other => Err(D::Error::custom(format!(
            "expected an id of digits, found {other}"
        ))),
    }
}

/// The id goes into every request path, so anything but digits is a mistake worth naming now.
fn check_phone_number_id(id: &str) -> Result<(), SettingsError> {
    if !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(());
    }
    Err(SettingsError::at(
        "phone_number_id",
        format!(
            "`phone_number_id` must be the digits of the number's id (WhatsApp > API setup in \
             Meta's app dashboard), not {id:?}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn complete() -> Value {
        json!({"phone_number_id": "106540352242922", "access_token": "token",
               "app_secret": "secret", "verify_token": "verify"})
    }

    #[test]
    fn defaults_the_graph_api_root_and_tolerates_a_trailing_slash() {
        let meta = read(None, &settings(complete())).expect("complete settings");
        assert_eq!(meta.base_url, DEFAULT_BASE_URL);
        assert!(!meta.mark_read);
        let meta =
            read(Some("http://127.0.0.1:9/v24.0/"), &settings(complete())).expect("custom root");
        assert_eq!(meta.base_url, "http://127.0.0.1:9/v24.0");
    }

    #[test]
    fn takes_an_unquoted_phone_number_id() {
        let mut value = complete();
        value["phone_number_id"] = json!(106_540_352_242_922_u64);
        let meta = read(None, &settings(value)).expect("numeric id");
        assert_eq!(meta.phone_number_id(), "106540352242922");
    }

    #[test]
    fn names_a_bad_phone_number_id_or_base_url() {
        let mut value = complete();
        value["phone_number_id"] = json!("+1 555 0100");
        let error = read(None, &settings(value)).expect_err("not an id");
        assert_eq!(error.key.as_deref(), Some("phone_number_id"));
        let error = read(Some("graph.facebook.com"), &settings(complete())).expect_err("no scheme");
        assert_eq!(error.key.as_deref(), Some("base_url"));
    }
}
