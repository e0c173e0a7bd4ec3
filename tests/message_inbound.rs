//! Inbound Meta webhooks: every message and status of the real-shaped fixtures, the reference's
//! own examples and malformed objects, read into the normalized model.

use std::error::Error;
use std::fs;
use std::path::Path;

use chatflow::message::inbound::InboundEvent;
use chatflow::message::meta::{parse_message, parse_status};
use serde_json::{Map, Value, json};

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).expect("fixture is readable");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn objects(name: &str) -> Value {
    read_json(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/meta/objects")
            .join(name),
    )
}

/// An error with its causes, so a snapshot shows what serde found.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn shown<T, E: Error>(result: Result<T, E>, event: impl FnOnce(T) -> InboundEvent) -> Value {
    match result {
        Ok(parsed) => serde_json::to_value(event(parsed)).expect("events serialize"),
        Err(error) => json!({"error": chain(&error)}),
    }
}

/// The sender's profile name: the contact whose `wa_id` (or `user_id`) is the sender, else the
/// only contact there is.
fn profile_name<'a>(value: &'a Value, message: &Value) -> Option<&'a str> {
    let contacts = value.get("contacts")?.as_array()?;
    let sender = |contact: &&Value| {
        ["wa_id", "user_id"].iter().any(|key| {
            let id = contact.get(key).and_then(Value::as_str);
            id.is_some_and(|id| {
                !id.is_empty()
                    && [message.get("from"), message.get("from_user_id")]
                        .contains(&Some(&json!(id)))
            })
        })
    };
    let contact = contacts.iter().find(sender).or(match contacts.as_slice() {
        [only] => Some(only),
        _ => None,
    })?;
    contact.pointer("/profile/name")?.as_str()
}

/// Every message and status of one webhook body, normalized, in order.
fn events(body: &Value) -> Vec<Value> {
    let mut events = Vec::new();
    let entries = body
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let changes = entries.flat_map(|entry| {
        entry
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    });
    for value in changes.filter_map(|change| change.get("value")) {
        for message in value
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let parsed = parse_message(message, profile_name(value, message));
            events.push(shown(parsed, InboundEvent::Message));
        }
        for status in value
            .get("statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            events.push(shown(parse_status(status), InboundEvent::Status));
        }
    }
    events
}

#[test]
fn normalizes_every_message_and_status_of_the_webhook_fixtures() {
    insta::glob!("fixtures/meta/*.json", |path| {
        let cases = read_json(path);
        let cases = cases
            .as_object()
            .expect("fixture maps case names to webhook bodies");
        let normalized: Map<String, Value> = cases
            .iter()
            .map(|(case, body)| (case.clone(), Value::Array(events(body))))
            .collect();
        assert!(
            normalized
                .values()
                .all(|events| !events.as_array().is_some_and(Vec::is_empty))
        );
        insta::assert_json_snapshot!(normalized);
    });
}

#[test]
fn reads_every_message_fixture_without_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/meta");
    for entry in fs::read_dir(dir).expect("fixture folder exists") {
        let path = entry.expect("readable").path();
        if path.extension().is_none_or(|ext| ext != "json") || path.ends_with("call_status.json") {
            continue;
        }
        for (case, body) in read_json(&path).as_object().expect("cases").iter() {
            for event in events(body) {
                assert!(
                    event.get("error").is_none(),
                    "{}/{case}: {event}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn refuses_a_call_status_as_a_delivery_status() {
    let body = read_json(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/meta/call_status.json"),
    );
    let events = events(&body["call_status"]);
    assert_eq!(
        events,
        [json!({"error": "status \"RINGING\" is not a message delivery status"})]
    );
}

#[test]
fn normalizes_the_reference_examples() {
    let examples = objects("spec_examples.json");
    let mut normalized = Map::new();
    for (case, object) in examples["messages"].as_object().expect("messages").iter() {
        let message = parse_message(object, Some("Sheena Nelson"));
        assert!(message.is_ok(), "{case}: {message:?}");
        normalized.insert(
            format!("message {case}"),
            shown(message, InboundEvent::Message),
        );
    }
    for (case, object) in examples["statuses"].as_object().expect("statuses").iter() {
        let status = parse_status(object);
        assert!(status.is_ok(), "{case}: {status:?}");
        normalized.insert(
            format!("status {case}"),
            shown(status, InboundEvent::Status),
        );
    }
    insta::assert_json_snapshot!(normalized);
}

#[test]
fn refuses_malformed_objects_without_panicking() {
    let malformed = objects("malformed.json");
    let mut errors = Map::new();
    for (case, object) in malformed["messages"].as_object().expect("messages").iter() {
        let error = parse_message(object, None).expect_err(case);
        errors.insert(format!("message {case}"), Value::from(chain(&error)));
    }
    for (case, object) in malformed["statuses"].as_object().expect("statuses").iter() {
        let error = parse_status(object).expect_err(case);
        errors.insert(format!("status {case}"), Value::from(chain(&error)));
    }
    insta::assert_json_snapshot!(errors);
}

#[test]
fn helpers_a_text_trigger_relies_on_work_on_parsed_messages() {
    let examples = objects("spec_examples.json");
    let parse = |case: &str| parse_message(&examples["messages"][case], None).expect(case);
    assert_eq!(parse("button_reply").reply_id(), Some("change-button"));
    assert_eq!(parse("list_reply").text(), Some("Priority Mail Express"));
    assert_eq!(
        parse("quick_reply_without_payload").reply_id(),
        Some("Yes please")
    );
    assert_eq!(parse("image").text(), Some("Front of the box"));
    assert_eq!(parse("reaction_removed").event_name(), "reaction");
}
