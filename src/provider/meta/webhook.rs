//! A webhook body to events (spec §2): every entry and change is read on its own, so one odd part
//! never costs the rest of the batch; what is not a message, status or preference change is
//! kept raw in [`Parsed::unrecognized`].

use serde::Deserialize;
use serde_json::Value;

use super::wire::{
    Change, Entry, MessagesValue, Metadata, OBJECT, PreferencesValue, UserPreference,
};
use crate::message::InboundEvent;
use crate::message::inbound::PreferenceChange;
use crate::message::meta::{MetaParseError, parse_message, parse_status};
use crate::provider::{ParseError, Parsed, RoutedEvent};

/// Reads a verified body. Only bytes that are not JSON are an error.
pub(super) fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|error| ParseError(format!("body is not json: {error}")))?;
    let mut parsed = Parsed::default();
    let Some(entries) = entries(&body) else {
        parsed.unrecognized.push(body);
        return Ok(parsed);
    };
    for entry in entries {
        read_entry(entry, &mut parsed);
    }
    Ok(parsed)
}

/// `entry[]` of a WhatsApp Business Account body; `None` for any other JSON.
fn entries(body: &Value) -> Option<&Vec<Value>> {
    if body.get("object")?.as_str()? != OBJECT {
        return None;
    }
    body.get("entry")?.as_array()
}

fn read_entry(entry: &Value, parsed: &mut Parsed) {
    let Ok(Entry { changes }) = Entry::deserialize(entry) else {
        parsed.unrecognized.push(entry.clone());
        return;
    };
    for change in &changes {
        read_change(change, parsed);
    }
}

/// Dispatches one change by its `field`; a field chatflow does not act on is kept whole.
fn read_change(change: &Value, parsed: &mut Parsed) {
    let read = match Change::deserialize(change) {
        Ok(Change { field, value }) if field == "messages" => read_messages(&value, parsed),
        Ok(Change { field, value }) if field == "user_preferences" => {
            read_preferences(&value, parsed)
        }
        _ => false,
    };
    if !read {
        parsed.unrecognized.push(change.clone());
    }
}

/// Messages, statuses and value-level errors of one number; `false` when `value` holds none.
fn read_messages(value: &Value, parsed: &mut Parsed) -> bool {
    let Ok(value) = MessagesValue::deserialize(value) else {
        return false;
    };
    if value.messages.is_none() && value.statuses.is_none() && value.errors.is_none() {
        return false;
    }
    let route = route(value.metadata);
    let contacts = value.contacts.unwrap_or_default();
    for message in value.messages.unwrap_or_default() {
        let read = parse_message(&message, profile_name(&contacts, &message));
        push(
            parsed,
            route.as_deref(),
            message,
            read.map(InboundEvent::Message),
        );
    }
    for status in value.statuses.unwrap_or_default() {
        let read = parse_status(&status);
        push(
            parsed,
            route.as_deref(),
            status,
            read.map(InboundEvent::Status),
        );
    }
    parsed.unrecognized.extend(value.errors.unwrap_or_default());
    true
}

/// Marketing stops and resumes of one number; `false` when `value` is not that.
fn read_preferences(value: &Value, parsed: &mut Parsed) -> bool {
    let Ok(value) = PreferencesValue::deserialize(value) else {
        return false;
    };
    let route = route(value.metadata);
    for object in value.user_preferences {
        match preference(&object) {
            Some(change) => parsed.events.push(RoutedEvent {
                route: route.clone(),
                event: InboundEvent::Preference(change),
            }),
            None => parsed.unrecognized.push(object),
        }
    }
    true
}

/// Adds a read event, or keeps the object raw when it could not be read (the rest still counts).
fn push(
    parsed: &mut Parsed,
    route: Option<&str>,
    object: Value,
    read: Result<InboundEvent, MetaParseError>,
) {
    match read {
        Ok(event) => parsed.events.push(RoutedEvent {
            route: route.map(str::to_owned),
            event,
        }),
        Err(error) => {
            tracing::warn!(message = "Meta webhook object kept as unrecognized.", %error);
            parsed.unrecognized.push(object);
        }
    }
}

fn route(metadata: Option<Metadata>) -> Option<String> {
    metadata.and_then(|metadata| metadata.phone_number_id)
}

/// The sender's profile name: the contact whose `wa_id` or `user_id` is the message's `from` or
/// `from_user_id`, else the only contact there is.
fn profile_name<'a>(contacts: &'a [Value], message: &Value) -> Option<&'a str> {
    let sender: Vec<&str> = ids(message, ["from", "from_user_id"]).collect();
    let is_sender =
        |contact: &&Value| ids(contact, ["wa_id", "user_id"]).any(|id| sender.contains(&id));
    let contact = contacts.iter().find(is_sender).or(match contacts {
        [only] => Some(only),
        _ => None,
    })?;
    contact.pointer("/profile/name")?.as_str()
}

/// The non-empty string values of `keys` in `object`.
fn ids<'v>(object: &'v Value, keys: [&'static str; 2]) -> impl Iterator<Item = &'v str> {
    keys.into_iter()
        .filter_map(|key| object.get(key)?.as_str())
        .filter(|id| !id.is_empty())
}

/// A marketing preference: `stop` opts out; `resume` and `signup` (through a sign-up link) opt
/// back in. Anything else, or a change without a contact or time, is not one.
fn preference(object: &Value) -> Option<PreferenceChange> {
    let wire = UserPreference::deserialize(object).ok()?;
    if wire
        .category
        .as_deref()
        .is_some_and(|category| category != "marketing_messages")
    {
        return None;
    }
    let opted_out = match wire.value.as_str() {
        "stop" => true,
        "resume" | "signup" => false,
        _ => return None,
    };
    let contact = [wire.wa_id, wire.user_id]
        .into_iter()
        .flatten()
        .find(|id| !id.is_empty())?;
    Some(PreferenceChange {
        contact,
        opted_out,
        timestamp: unix_seconds(&wire.timestamp)?,
    })
}

/// Unix seconds, which Meta sends as a number here and as a string elsewhere.
fn unix_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(field: &str, value: Value) -> Vec<u8> {
        let body = json!({"object": OBJECT, "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}]});
        body.to_string().into_bytes()
    }

    #[test]
    fn refuses_only_bytes_that_are_not_json() {
        let error = parse(b"<html>").expect_err("not json");
        assert!(error.0.starts_with("body is not json: "), "{error}");
        for other in [
            json!([1]),
            json!({"object": "page", "entry": []}),
            json!({"object": OBJECT}),
        ] {
            let parsed = parse(other.to_string().as_bytes()).expect("json of another shape");
            assert_eq!((parsed.events.len(), parsed.unrecognized), (0, vec![other]));
        }
    }

    #[test]
    fn keeps_a_broken_message_raw_and_reads_its_neighbours() {
        let broken = json!({"id": "wamid.B", "timestamp": "1", "type": "text", "text": {"body": "no sender"}});
        let good = json!({"id": "wamid.G", "from": "1555", "timestamp": "1", "type": "text", "text": {"body": "hi"}});
        let value = json!({"metadata": {"phone_number_id": "42"}, "messages": [broken, good],
                           "errors": [{"code": 131_000}]});
        let parsed = parse(&body("messages", value)).expect("json");
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].route.as_deref(), Some("42"));
        assert_eq!(parsed.unrecognized, vec![broken, json!({"code": 131_000})]);
    }

    #[test]
    fn reads_a_marketing_stop_as_an_opt_out() {
        let value = json!({"metadata": {"phone_number_id": "42"}, "user_preferences": [
            {"wa_id": "1555", "category": "marketing_messages", "value": "stop", "timestamp": "1731705721"},
            {"wa_id": "1555", "category": "marketing_messages", "value": "maybe", "timestamp": 1}]});
        let parsed = parse(&body("user_preferences", value)).expect("json");
        let expected = PreferenceChange {
            contact: "1555".to_owned(),
            opted_out: true,
            timestamp: 1_731_705_721,
        };
        assert_eq!(parsed.events[0].event, InboundEvent::Preference(expected));
        assert_eq!(parsed.unrecognized.len(), 1);
    }

    #[test]
    fn names_the_sender_from_its_own_contact() {
        let contacts = [
            json!({"wa_id": "1", "profile": {"name": "Ann"}}),
            json!({"user_id": "US.2", "profile": {"name": "Bo"}}),
        ];
        assert_eq!(
            profile_name(&contacts, &json!({"from": "", "from_user_id": "US.2"})),
            Some("Bo")
        );
        assert_eq!(profile_name(&contacts, &json!({"from": "3"})), None);
        assert_eq!(
            profile_name(&contacts[..1], &json!({"from": "3"})),
            Some("Ann")
        );
    }
}
