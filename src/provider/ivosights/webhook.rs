//! A webhook body — or the answer of the pending-notifications pull — to events.
//!
//! A notification is the WhatsApp On-Premises API's bare `{contacts, messages, statuses}`. Its
//! message and status objects are the ones the Cloud API inherited, read by the shared
//! [`crate::message::meta`] reader once the On-Premises spellings are put in Cloud form: a `voice`
//! message is an `audio` one with `voice: true`, and a changed number is `system.new_wa_id`
//! where the Cloud API has `system.wa_id`.
//!
//! The document shows no answer of the pull, so it is read as one notification, a list of them,
//! or a list under `data` (how the API's other listings answer). What is none of these, and any
//! object that cannot be read, is kept raw in [`Parsed::unrecognized`].

use serde::Deserialize;
use serde_json::Value;

use super::wire::Notification;
use crate::message::InboundEvent;
use crate::message::meta::{MetaParseError, parse_message, parse_status};
use crate::provider::{ParseError, Parsed, RoutedEvent};

/// Reads a verified body. Only bytes that are not JSON are an error.
pub(super) fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|error| ParseError(format!("body is not json: {error}")))?;
    let mut parsed = Parsed::default();
    for notification in notifications(&body) {
        read_notification(notification, &mut parsed);
    }
    Ok(parsed)
}

/// The notifications of a body: the body itself, or the items of a pulled list.
fn notifications(body: &Value) -> Vec<&Value> {
    match body {
        Value::Array(items) => items.iter().collect(),
        Value::Object(object) if !is_notification(body) => match object.get("data") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![body],
        },
        _ => vec![body],
    }
}

fn is_notification(value: &Value) -> bool {
    value.get("messages").is_some() || value.get("statuses").is_some()
}

/// Messages and statuses of one notification; anything else is kept whole.
fn read_notification(value: &Value, parsed: &mut Parsed) {
    let notification = Notification::deserialize(value)
        .ok()
        .filter(|_| is_notification(value));
    let Some(notification) = notification else {
        parsed.unrecognized.push(value.clone());
        return;
    };
    for message in notification.messages.unwrap_or_default() {
        let name = profile_name(&notification.contacts, &message);
        let read = parse_message(&cloud_form(&message), name);
        push(parsed, message, read.map(InboundEvent::Message));
    }
    for status in notification.statuses.unwrap_or_default() {
        let read = parse_status(&status);
        push(parsed, status, read.map(InboundEvent::Status));
    }
}

/// Adds a read event, or keeps the object raw when it could not be read (the rest still counts).
fn push(parsed: &mut Parsed, object: Value, read: Result<InboundEvent, MetaParseError>) {
    match read {
        Ok(event) => parsed.events.push(RoutedEvent { route: None, event }),
        Err(error) => {
            tracing::warn!(message = "Ivosights webhook object kept as unrecognized.", %error);
            parsed.unrecognized.push(object);
        }
    }
}

/// The sender's profile name: the contact whose `wa_id` is the message's `from`, else the only
/// contact there is.
fn profile_name<'a>(contacts: &'a [Value], message: &Value) -> Option<&'a str> {
    let from = message.get("from").and_then(Value::as_str);
    let is_sender =
        |contact: &&Value| from.is_some() && contact.get("wa_id").and_then(Value::as_str) == from;
    let contact = contacts.iter().find(is_sender).or(match contacts {
        [only] => Some(only),
        _ => None,
    })?;
    contact.pointer("/profile/name")?.as_str()
}

/// The message with the On-Premises spellings in Cloud form (see the module doc); a `voice`
/// message without its object is left as it is, so it is kept whole as unsupported.
fn cloud_form(message: &Value) -> Value {
    let mut message = message.clone();
    let Some(object) = message.as_object_mut() else {
        return message;
    };
    let is_voice = object.get("type").and_then(Value::as_str) == Some("voice");
    if is_voice && let Some(Value::Object(voice)) = object.get("voice") {
        let mut audio = voice.clone();
        audio.insert("voice".to_owned(), Value::Bool(true));
        object.remove("voice");
        object.insert("type".to_owned(), Value::from("audio"));
        object.insert("audio".to_owned(), Value::Object(audio));
    }
    if let Some(Value::Object(system)) = object.get_mut("system")
        && let Some(new_id) = system.get("new_wa_id").cloned()
    {
        system.entry("wa_id").or_insert(new_id);
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn puts_voice_and_new_wa_id_in_cloud_form() {
        let voice = json!({"type": "voice", "voice": {"id": "v1"}});
        assert_eq!(
            cloud_form(&voice),
            json!({"type": "audio", "audio": {"id": "v1", "voice": true}})
        );
        let system = json!({"type": "system", "system": {"new_wa_id": "2"}});
        assert_eq!(
            cloud_form(&system),
            json!({"type": "system", "system": {"new_wa_id": "2", "wa_id": "2"}})
        );
        let bare = json!({"type": "voice"});
        assert_eq!(cloud_form(&bare), bare);
    }

    #[test]
    fn names_the_sender_from_its_own_contact() {
        let contacts = [
            json!({"wa_id": "1", "profile": {"name": "Ann"}}),
            json!({"wa_id": "2", "profile": {"name": "Bo"}}),
        ];
        assert_eq!(profile_name(&contacts, &json!({"from": "2"})), Some("Bo"));
        assert_eq!(profile_name(&contacts, &json!({"from": "3"})), None);
        assert_eq!(
            profile_name(&contacts[..1], &json!({"from": "3"})),
            Some("Ann")
        );
    }
}
