//! The `generic` provider: any HTTP API, described in the channel's config — an inbound JSON
//! mapping, an optional shared-secret header, and an outbound request template (DESIGN §7).
//! It renders text only; the engine degrades everything else to text before it gets here.

use crate::provider::classify::excerpt;
use crate::provider::registry::is_web_url;
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::classify::{by_status, retry_after};
use super::mapping::{InboundMapping, JsonPointer, SecretHeader};
use super::registry::{SettingsError, read_settings};
use super::{
    BuildError, Capabilities, HeaderValue, HttpRequest, HttpResponse, ParseError, Parsed, Provider,
    Secret, SendError, Sent, VerifyError, WebhookRequest,
};
use crate::message::Outbound;

/// Why anything but text is refused: the engine degrades every message it can to text first,
/// so what still arrives has no text form (media by id without a caption, say).
const NOT_TEXT: &str =
    "a generic channel sends text only, and this message has no text form; give it a fallback_text";

/// A provider described entirely by its channel's config.
#[derive(Debug, Clone)]
pub struct Generic {
    mapping: InboundMapping,
    secret_header: Option<SecretHeader>,
    method: Method,
    url: String,
    headers: Vec<(String, Secret)>,
    body: Value,
    id_pointer: Option<JsonPointer>,
}

/// The generic channel's own keys (DESIGN §4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    inbound: InboundMapping,
    #[serde(default)]
    inbound_secret_header: Option<SecretHeader>,
    outbound: OutboundSettings,
}

/// `outbound:` — the request that sends one text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundSettings {
    /// May start with `{{base_url}}`.
    url: String,
    #[serde(default)]
    method: Method,
    /// Every value is treated as a secret: configs put tokens here.
    #[serde(default)]
    headers: IndexMap<String, Secret>,
    /// Any JSON; `{{to}}` and `{{text}}` inside its strings are filled in per message.
    body: Value,
    /// Where the response keeps the provider's message id.
    #[serde(default)]
    id_pointer: Option<JsonPointer>,
}

/// The methods that carry a body; a send always has one.
#[derive(Debug, Clone, Copy, Default)]
enum Method {
    #[default]
    Post,
    Put,
    Patch,
}

impl<'de> Deserialize<'de> for Method {
    /// Any case, since `post` is as clear as `POST`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match name.to_ascii_uppercase().as_str() {
            "POST" => Ok(Self::Post),
            "PUT" => Ok(Self::Put),
            "PATCH" => Ok(Self::Patch),
            _ => Err(serde::de::Error::custom(format!(
                "method \"{name}\" sends no body; use POST, PUT or PATCH"
            ))),
        }
    }
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }
}

impl Generic {
    /// Builds the provider from a channel's keys, checking the placeholders now so a typo such
    /// as `{{txt}}` fails at startup rather than at the first send.
    ///
    /// # Errors
    /// A missing, unknown or malformed key, an unknown placeholder, or `{{base_url}}` in the
    /// URL without a `base_url`.
    pub fn from_settings(
        base_url: Option<&str>,
        settings: &Map<String, Value>,
    ) -> Result<Self, SettingsError> {
        let settings: Settings = read_settings(settings)?;
        let outbound = settings.outbound;
        let url = outbound_url(&outbound.url, base_url)?;
        fill(&outbound.body, "", "")
            .map_err(|name| unknown_placeholder("body", &name, "{{to}} and {{text}}"))?;
        Ok(Self {
            mapping: settings.inbound,
            secret_header: settings.inbound_secret_header,
            method: outbound.method,
            url,
            headers: outbound.headers.into_iter().collect(),
            body: outbound.body,
            id_pointer: outbound.id_pointer,
        })
    }

    /// The message id in a success response, when `outbound.id_pointer` finds one.
    fn provider_id(&self, body: &[u8]) -> Option<String> {
        let pointer = self.id_pointer.as_ref()?;
        pointer.text(&serde_json::from_slice(body).ok()?)
    }
}

/// The send URL with `{{base_url}}` filled in (without its trailing `/`, so
/// `{{base_url}}/send` reads naturally).
fn outbound_url(template: &str, base_url: Option<&str>) -> Result<String, SettingsError> {
    let base = base_url.map(|url| url.trim_end_matches('/'));
    let lookup = |name: &str| if name == "base_url" { base } else { None };
    let url = substitute(template, &lookup).map_err(|name| match name.as_str() {
        "base_url" => SettingsError::at("base_url", NO_BASE_URL),
        _ => unknown_placeholder("url", &name, "{{base_url}}"),
    })?;
    if !is_web_url(&url) {
        return Err(SettingsError::at(
            "outbound",
            format!("outbound.url \"{url}\" is not an http(s) URL"),
        ));
    }
    Ok(url)
}

/// Why a URL with `{{base_url}}` cannot be built.
const NO_BASE_URL: &str =
    "outbound.url uses {{base_url}} but the channel has no base_url; set it or write the full URL";

/// A placeholder in `outbound.<field>` that is not one of `known`.
fn unknown_placeholder(field: &str, name: &str, known: &str) -> SettingsError {
    let message = format!("outbound.{field}: unknown placeholder {{{{{name}}}}}; it takes {known}");
    SettingsError::at("outbound", message)
}

/// `value` with `{{to}}` and `{{text}}` filled in inside every string (object keys are left
/// alone). Working on parsed JSON, never on its text, means quotes or newlines in what a user
/// or bot wrote cannot break the body.
///
/// # Errors
/// The name of the first unknown placeholder.
fn fill(value: &Value, to: &str, text: &str) -> Result<Value, String> {
    Ok(match value {
        Value::String(template) => {
            let lookup = |name: &str| match name {
                "to" => Some(to),
                "text" => Some(text),
                _ => None,
            };
            Value::String(substitute(template, &lookup)?)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| fill(item, to, text))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, item)| Ok((key.clone(), fill(item, to, text)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Replaces each `{{name}}` (spaces inside allowed) by `lookup(name)`, in one pass: what is
/// put in is never searched again, so a user typing `{{to}}` gets exactly that.
///
/// # Errors
/// The first name `lookup` does not know.
fn substitute<'a>(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<&'a str>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        let name = rest[open + 2..open + 2 + close].trim();
        out.push_str(&rest[..open]);
        out.push_str(lookup(name).ok_or_else(|| name.to_owned())?);
        rest = &rest[open + 2 + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Provider for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::TEXT_ONLY
    }

    /// The secret header when one is configured; without it every webhook is accepted, as the
    /// config asked (the URL itself is then the only secret).
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        match &self.secret_header {
            Some(header) => header.verify(request),
            None => Ok(()),
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Parsed, ParseError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| ParseError(format!("body is not JSON: {error}")))?;
        Ok(self.mapping.parse_webhook(&value))
    }

    fn send_request(&self, to: &str, message: &Outbound) -> Result<HttpRequest, BuildError> {
        let Outbound::Text { text } = message else {
            return Err(BuildError(NOT_TEXT.to_owned()));
        };
        let body = fill(&self.body, to, &text.body).map_err(|name| {
            BuildError(format!(
                "unknown placeholder {{{{{name}}}}} in outbound.body"
            ))
        })?;
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::Secret(value.clone())))
            .collect();
        Ok(HttpRequest {
            method: self.method.as_str(),
            url: self.url.clone(),
            headers,
            body: Some(body),
        })
    }

    /// 2xx is sent, with the message id read through `outbound.id_pointer` when the response
    /// has one (a success without an id is still a success); anything else is judged by its
    /// HTTP status, since a generic API's error codes are unknown.
    fn read_response(&self, response: &HttpResponse) -> Result<Sent, SendError> {
        if (200..300).contains(&response.status) {
            return Ok(Sent {
                provider_id: self.provider_id(&response.body),
            });
        }
        let wait = retry_after(response.headers.get("retry-after").map(String::as_str));
        Err(SendError {
            provider: self.name(),
            decision: by_status(response.status, wait),
            detail: excerpt(response),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_in_one_pass_and_names_unknown_placeholders() {
        let lookup = |name: &str| (name == "text").then_some("{{text}} \"quoted\"");
        assert_eq!(
            substitute("say: {{ text }}!", &lookup),
            Ok("say: {{text}} \"quoted\"!".to_owned())
        );
        assert_eq!(substitute("{{txt}}", &lookup), Err("txt".to_owned()));
        assert_eq!(
            substitute("open {{ only", &lookup),
            Ok("open {{ only".to_owned())
        );
    }
}
