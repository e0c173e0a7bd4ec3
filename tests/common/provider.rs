//! Provider test inputs: DSL fixtures as messages, and provider answers as `HttpResponse`s.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use chatflow::message::{MessageSpec, Outbound};
use chatflow::provider::HttpResponse;

/// A DSL message fixture (`tests/fixtures/dsl/*.yaml`).
pub fn message_spec(path: &Path) -> MessageSpec {
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    serde_yaml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A DSL message fixture as the engine would send it.
pub fn outbound(path: &Path) -> Outbound {
    message_spec(path).to_outbound().expect("fixture converts")
}

/// An answer with `status`, `headers` and a text `body`.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    let headers = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// An answer described by a fixture case `{status, headers?, body}` (a string body is sent as
/// is, any other JSON serialized).
pub fn response_case(case: &Value) -> HttpResponse {
    let body = match &case["body"] {
        Value::String(raw) => raw.clone().into_bytes(),
        json => json.to_string().into_bytes(),
    };
    let headers: HashMap<String, String> = case["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect();
    let status = case["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .expect("a status");
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// What `provider` makes of `response`, as snapshot tables show it: the sent id, or the
/// decision and detail (the error must name the provider).
pub fn answer(provider: &impl chatflow::provider::Provider, response: &HttpResponse) -> Value {
    match provider.read_response(response) {
        Ok(sent) => serde_json::json!({"sent": sent.provider_id}),
        Err(error) => {
            assert_eq!(error.provider, provider.name());
            serde_json::json!({"decision": format!("{:?}", error.decision), "detail": error.detail})
        }
    }
}
