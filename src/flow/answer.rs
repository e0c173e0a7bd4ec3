//! Answer validation for `ask` steps (DESIGN §6): what a user's reply saves, by the ask's `type`,
//! or why it is not an answer so the step can re-prompt.
//!
//! Pure: a message and the step's options in, a JSON value or a [`Rejection`] out. Anything that
//! could be read two ways (`1.000`, a national phone number) is rejected rather than guessed, since
//! a re-prompt costs one message and a wrong saved value costs the conversation.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::{Captures, Regex};
use serde_json::{Value, json};

use crate::flow::model::AskKind;
use crate::flow::normalize::normalize;
use crate::message::outbound::Choice;
use crate::message::{Content, InboundMessage};

/// `2027-01-31`, also with single-digit month or day.
static ISO_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})-(\d{1,2})-(\d{1,2})$").expect("the ISO date pattern is valid")
});

/// `31/01/2027`, `31-01-2027`, `31.01.2027`, also with single-digit day or month.
static DAY_FIRST_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{1,2})([/.-])(\d{1,2})([/.-])(\d{4})$")
        .expect("the day-first date pattern is valid")
});

/// Why a message does not answer an `ask`, in words a log reader understands.
///
/// The runtime only needs "invalid" to re-prompt; the reason is for logs and conversation tests,
/// so it never repeats what the user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The message is of a kind this ask cannot take, such as a photo for a `number`.
    #[error("expected {}, got {got}", .expected.as_str())]
    WrongKind {
        /// The ask's `type`.
        expected: AskKind,
        /// The message's event name (`image`, `button`, …).
        got: &'static str,
    },
    /// The text is blank.
    #[error("empty answer")]
    Empty,
    /// The text is not a plain decimal number.
    #[error("not a number")]
    NotANumber,
    /// `1.000`, `1,000.5` and the like: thousands or decimals cannot be told apart.
    #[error("ambiguous thousands or decimal separator")]
    AmbiguousNumber,
    /// A decimal where a whole number was asked.
    #[error("not a whole number")]
    NotAnInteger,
    /// Too large to save as a number.
    #[error("number out of range")]
    OutOfRange,
    /// Not shaped like `name@example.com`.
    #[error("not an email address")]
    NotAnEmail,
    /// Letters or other characters that never appear in a phone number.
    #[error("not a phone number")]
    NotAPhone,
    /// A national number (leading `0`) whose country we cannot know.
    #[error("phone number without country code")]
    NoCountryCode,
    /// Fewer than 7 or more than 15 digits (E.164 allows at most 15).
    #[error("phone number must have 7 to 15 digits")]
    PhoneLength,
    /// A shared contact card that carries no phone number.
    #[error("contact card without phone number")]
    NoPhoneInContact,
    /// Not written as `2027-01-31` or `31/01/2027`.
    #[error("not a date")]
    NotADate,
    /// Well written but not in the calendar, such as `31/02/2027`.
    #[error("no such date")]
    NoSuchDate,
    /// A `choice` ask whose step offers no options: no answer can be right.
    #[error("no options to choose from")]
    NoOptions,
    /// The reply names none of the step's options.
    #[error("no such option")]
    NoSuchOption,
}

/// The value an `ask` of `kind` saves for `message`, or why the message does not answer it.
///
/// `options` are the step's buttons or list rows, flattened across sections in the order shown,
/// so a typed number counts across all of them; only `choice` looks at them.
///
/// # Errors
///
/// A [`Rejection`] when the message is of the wrong kind or does not read as this `kind`; the
/// step then re-prompts or goes to `on_fail`.
pub fn accept(
    kind: AskKind,
    message: &InboundMessage,
    options: &[Choice],
) -> Result<Value, Rejection> {
    match kind {
        AskKind::Text => typed_text(kind, message).map(Value::from),
        AskKind::Number => typed_text(kind, message).and_then(parse_number),
        AskKind::Integer => typed_text(kind, message).and_then(parse_integer),
        AskKind::Email => typed_text(kind, message).and_then(parse_email),
        AskKind::Phone => phone(message),
        AskKind::Date => typed_text(kind, message).and_then(parse_date),
        AskKind::Choice => choose(message, options),
        AskKind::Location => location(message),
        AskKind::Media => media(message),
        AskKind::FlowReply => flow_reply(message),
        AskKind::Any => Ok(anything(message)),
    }
}

/// The trimmed typed text; captions and button titles do not count as typing.
fn typed_text(kind: AskKind, message: &InboundMessage) -> Result<&str, Rejection> {
    let Content::Text { body } = &message.content else {
        return Err(wrong_kind(kind, message));
    };
    let text = body.trim();
    if text.is_empty() {
        return Err(Rejection::Empty);
    }
    Ok(text)
}

fn wrong_kind(expected: AskKind, message: &InboundMessage) -> Rejection {
    Rejection::WrongKind {
        expected,
        got: message.event_name(),
    }
}

/// `1.5`, `1,5`, `-2`, `+.5`: one optional sign, digits, at most one decimal mark.
fn parse_number(text: &str) -> Result<Value, Rejection> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once(['.', ',']).unwrap_or((unsigned, ""));
    let digits_only = whole
        .chars()
        .chain(fraction.chars())
        .all(|c| c.is_ascii_digit());
    if !digits_only || (whole.is_empty() && fraction.is_empty()) {
        return Err(number_shape_error(unsigned));
    }
    if looks_grouped(whole, fraction) {
        return Err(Rejection::AmbiguousNumber);
    }
    let value: f64 = text
        .replace(',', ".")
        .parse()
        .map_err(|_| Rejection::NotANumber)?;
    if !value.is_finite() {
        return Err(Rejection::OutOfRange);
    }
    Ok(Value::from(value))
}

/// Tells a number written with several separators (`1.000.000`, `1,000.5`) from one that is no
/// number at all.
fn number_shape_error(unsigned: &str) -> Rejection {
    let mut groups = unsigned.split(['.', ',']);
    let several = groups.clone().count() > 2;
    if several && groups.all(is_digits) {
        Rejection::AmbiguousNumber
    } else {
        Rejection::NotANumber
    }
}

/// `1.500` or `12,000`: reads as a thousands group as easily as three decimals.
///
/// A whole part of `0` or of four or more digits cannot be a group, so `0.125` and `1234.567` pass.
fn looks_grouped(whole: &str, fraction: &str) -> bool {
    fraction.len() == 3 && (1..=3).contains(&whole.len()) && !whole.starts_with('0')
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_digit())
}

/// `42`, `+5`, `-3`; a decimal is reported as such so the log says why.
fn parse_integer(text: &str) -> Result<Value, Rejection> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !is_digits(unsigned) {
        return Err(match parse_number(text) {
            Ok(_) => Rejection::NotAnInteger,
            Err(rejection) => rejection,
        });
    }
    text.parse::<i64>()
        .map(Value::from)
        .map_err(|_| Rejection::OutOfRange)
}

/// Lower-cased; one `@`, a local part without spaces or quoting characters, a dotted domain.
fn parse_email(text: &str) -> Result<Value, Rejection> {
    let email = text.to_lowercase();
    let (local, domain) = email.split_once('@').ok_or(Rejection::NotAnEmail)?;
    if !is_local_part(local) || !is_domain(domain) {
        return Err(Rejection::NotAnEmail);
    }
    Ok(Value::String(email))
}

fn is_local_part(local: &str) -> bool {
    let allowed = |c: char| !c.is_whitespace() && !c.is_control() && !"\"(),:;<>@[\\]".contains(c);
    !local.is_empty()
        && local.chars().all(allowed)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

fn is_domain(domain: &str) -> bool {
    let is_label = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    domain.contains('.') && domain.split('.').all(is_label)
}

/// A typed number, or the first number of a shared contact card.
fn phone(message: &InboundMessage) -> Result<Value, Rejection> {
    match &message.content {
        Content::Contacts { contacts } => contact_phone(contacts),
        _ => typed_text(AskKind::Phone, message).and_then(parse_phone),
    }
}

/// The first phone of the first card; its `wa_id` when present, as that is the full WhatsApp
/// number while `phone` is however the user saved it (often without country code).
fn contact_phone(contacts: &[Value]) -> Result<Value, Rejection> {
    let first = contacts
        .first()
        .and_then(|card| card.get("phones"))
        .and_then(|phones| phones.get(0))
        .ok_or(Rejection::NoPhoneInContact)?;
    let number = ["wa_id", "phone"]
        .iter()
        .find_map(|key| first.get(key).and_then(Value::as_str))
        .ok_or(Rejection::NoPhoneInContact)?;
    parse_phone(number)
}

/// `+62 812-3456-789`, `0062 (812) 3456789`, `628123456789` → `+628123456789`.
fn parse_phone(text: &str) -> Result<Value, Rejection> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    let digits = compact
        .strip_prefix('+')
        .or_else(|| compact.strip_prefix("00"))
        .unwrap_or(&compact);
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(Rejection::NotAPhone);
    }
    if digits.starts_with('0') {
        return Err(Rejection::NoCountryCode);
    }
    if !(7..=15).contains(&digits.len()) {
        return Err(Rejection::PhoneLength);
    }
    Ok(Value::String(format!("+{digits}")))
}

/// ISO or day-first; never month-first, so `01/31/2027` is `no such date`.
fn parse_date(text: &str) -> Result<Value, Rejection> {
    let (year, month, day) = date_parts(text).ok_or(Rejection::NotADate)?;
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(Rejection::NoSuchDate)?;
    Ok(Value::String(date.format("%Y-%m-%d").to_string()))
}

/// Year, month and day as written; day-first dates must use one separator throughout.
fn date_parts(text: &str) -> Option<(i32, u32, u32)> {
    if let Some(caps) = ISO_DATE.captures(text) {
        return Some((field(&caps, 1)?, field(&caps, 2)?, field(&caps, 3)?));
    }
    let caps = DAY_FIRST_DATE.captures(text)?;
    if caps[2] != caps[4] {
        return None;
    }
    Some((field(&caps, 5)?, field(&caps, 3)?, field(&caps, 1)?))
}

fn field<T: std::str::FromStr>(caps: &Captures<'_>, group: usize) -> Option<T> {
    caps.get(group)?.as_str().parse().ok()
}

/// By reply id (exactly), or by typed title, id or 1-based number (normalized).
fn choose(message: &InboundMessage, options: &[Choice]) -> Result<Value, Rejection> {
    if options.is_empty() {
        return Err(Rejection::NoOptions);
    }
    let chosen = match (&message.content, message.reply_id()) {
        (Content::Text { body }, _) => chosen_by_text(body, options),
        (_, Some(id)) => options.iter().find(|option| option.id == id),
        (_, None) => return Err(wrong_kind(AskKind::Choice, message)),
    };
    chosen
        .map(|option| Value::String(option.id.clone()))
        .ok_or(Rejection::NoSuchOption)
}

/// A title wins over an id, and both over a position, so an option titled `2` is chosen by `2`.
fn chosen_by_text<'a>(text: &str, options: &'a [Choice]) -> Option<&'a Choice> {
    let answer = normalize(text);
    if answer.is_empty() {
        return None;
    }
    let matching = |name: fn(&Choice) -> &str| {
        options
            .iter()
            .find(|option| normalize(name(option)) == answer)
    };
    matching(|option| &option.title)
        .or_else(|| matching(|option| &option.id))
        .or_else(|| chosen_by_number(&answer, options))
}

fn chosen_by_number<'a>(answer: &str, options: &'a [Choice]) -> Option<&'a Choice> {
    let position: usize = answer.parse().ok()?;
    options.get(position.checked_sub(1)?)
}

fn location(message: &InboundMessage) -> Result<Value, Rejection> {
    let Content::Location(place) = &message.content else {
        return Err(wrong_kind(AskKind::Location, message));
    };
    Ok(json!({
        "latitude": place.latitude,
        "longitude": place.longitude,
        "name": place.name,
        "address": place.address,
    }))
}

fn media(message: &InboundMessage) -> Result<Value, Rejection> {
    let Content::Media(file) = &message.content else {
        return Err(wrong_kind(AskKind::Media, message));
    };
    Ok(json!({
        "type": file.kind.as_str(),
        "id": file.id,
        "url": file.url,
        "mime_type": file.mime_type,
        "caption": file.caption,
        "filename": file.filename,
    }))
}

fn flow_reply(message: &InboundMessage) -> Result<Value, Rejection> {
    let Content::FlowReply { response, .. } = &message.content else {
        return Err(wrong_kind(AskKind::FlowReply, message));
    };
    Ok(response.clone())
}

/// Typed text as text; anything else (button taps included) as the whole content map.
fn anything(message: &InboundMessage) -> Value {
    match &message.content {
        Content::Text { body } => Value::from(body.trim()),
        content => serde_json::to_value(content)
            .expect("content has string keys only, so it always serializes to JSON"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::message::MediaKind;
    use crate::message::inbound::{InboundMedia, SharedLocation};

    fn message(content: Content) -> InboundMessage {
        InboundMessage {
            id: "wamid.1".to_owned(),
            from: "6281234567890".to_owned(),
            name: None,
            timestamp: 1_800_000_000,
            content,
            reply_to: None,
            referral: None,
        }
    }

    fn typed(body: &str) -> InboundMessage {
        message(Content::Text {
            body: body.to_owned(),
        })
    }

    fn button(id: &str, title: &str) -> InboundMessage {
        message(Content::ButtonReply {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    }

    fn photo(caption: Option<&str>) -> InboundMessage {
        message(Content::Media(InboundMedia {
            kind: MediaKind::Image,
            id: Some("media-1".to_owned()),
            url: None,
            mime_type: Some("image/jpeg".to_owned()),
            caption: caption.map(str::to_owned),
            filename: None,
            sha256: None,
        }))
    }

    fn answer(kind: AskKind, text: &str) -> Result<Value, Rejection> {
        accept(kind, &typed(text), &[])
    }

    fn sizes() -> Vec<Choice> {
        [
            ("small", "Small"),
            ("medium", "Médium"),
            ("large", "Large 🍕"),
        ]
        .into_iter()
        .map(|(id, title)| Choice {
            id: id.to_owned(),
            title: title.to_owned(),
            description: None,
        })
        .collect()
    }

    fn choose(reply: &InboundMessage) -> Result<Value, Rejection> {
        accept(AskKind::Choice, reply, &sizes())
    }

    #[test]
    fn text_saves_the_trimmed_typed_text() {
        assert_eq!(
            answer(AskKind::Text, "  Jane Doe \n"),
            Ok(json!("Jane Doe"))
        );
    }

    #[test]
    fn text_rejects_a_blank_message() {
        assert_eq!(answer(AskKind::Text, "   "), Err(Rejection::Empty));
    }

    #[test]
    fn text_is_not_answered_by_a_caption_or_a_button() {
        let expected = |got| {
            Err(Rejection::WrongKind {
                expected: AskKind::Text,
                got,
            })
        };
        assert_eq!(
            accept(AskKind::Text, &photo(Some("me")), &[]),
            expected("image")
        );
        assert_eq!(
            accept(AskKind::Text, &button("yes", "Yes"), &[]),
            expected("button")
        );
    }

    #[test]
    fn number_accepts_a_decimal_point() {
        assert_eq!(answer(AskKind::Number, "1.5"), Ok(json!(1.5)));
    }

    #[test]
    fn number_accepts_a_decimal_comma() {
        assert_eq!(answer(AskKind::Number, "1,5"), Ok(json!(1.5)));
    }

    #[test]
    fn number_accepts_signs_spaces_and_bare_decimals() {
        assert_eq!(answer(AskKind::Number, " -2 "), Ok(json!(-2.0)));
        assert_eq!(answer(AskKind::Number, "+3,25"), Ok(json!(3.25)));
        assert_eq!(answer(AskKind::Number, ",5"), Ok(json!(0.5)));
        assert_eq!(answer(AskKind::Number, "42"), Ok(json!(42.0)));
    }

    #[test]
    fn number_accepts_three_decimals_when_they_cannot_be_a_thousands_group() {
        assert_eq!(answer(AskKind::Number, "0.125"), Ok(json!(0.125)));
        assert_eq!(answer(AskKind::Number, "1234,567"), Ok(json!(1234.567)));
    }

    #[test]
    fn number_rejects_thousands_separators_as_ambiguous() {
        for text in [
            "1.000",
            "50.000",
            "1,000",
            "1.000,5",
            "1,000.5",
            "1.000.000",
        ] {
            assert_eq!(
                answer(AskKind::Number, text),
                Err(Rejection::AmbiguousNumber),
                "{text}"
            );
        }
    }

    #[test]
    fn number_rejects_words_units_and_special_values() {
        for text in [
            "five", "5 kg", "1e5", "NaN", "inf", "-", ".", "1..5", "--1", "1 000",
        ] {
            assert_eq!(
                answer(AskKind::Number, text),
                Err(Rejection::NotANumber),
                "{text}"
            );
        }
    }

    #[test]
    fn number_rejects_a_value_too_large_for_a_float() {
        let huge = "9".repeat(400);
        assert_eq!(answer(AskKind::Number, &huge), Err(Rejection::OutOfRange));
    }

    #[test]
    fn integer_accepts_signs_and_spaces() {
        assert_eq!(answer(AskKind::Integer, "+5"), Ok(json!(5)));
        assert_eq!(answer(AskKind::Integer, " -3 "), Ok(json!(-3)));
        assert_eq!(answer(AskKind::Integer, "0042"), Ok(json!(42)));
    }

    #[test]
    fn integer_saves_a_json_integer() {
        let saved = answer(AskKind::Integer, "7");
        assert!(saved.is_ok_and(|value| value.is_i64()));
    }

    #[test]
    fn integer_rejects_decimals_with_the_reason() {
        assert_eq!(
            answer(AskKind::Integer, "1.5"),
            Err(Rejection::NotAnInteger)
        );
        assert_eq!(
            answer(AskKind::Integer, "1,000"),
            Err(Rejection::AmbiguousNumber)
        );
        assert_eq!(
            answer(AskKind::Integer, "three"),
            Err(Rejection::NotANumber)
        );
    }

    #[test]
    fn integer_rejects_a_value_beyond_i64() {
        assert_eq!(
            answer(AskKind::Integer, "9223372036854775808"),
            Err(Rejection::OutOfRange)
        );
    }

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(
            answer(AskKind::Email, "  Jane.Doe+pizza@Example.CO.id "),
            Ok(json!("jane.doe+pizza@example.co.id"))
        );
    }

    #[test]
    fn email_rejects_what_cannot_be_an_address() {
        for text in [
            "jane",
            "@example.com",
            "jane@",
            "jane@example",
            "jane@@example.com",
            "jane doe@example.com",
            "jane@exa mple.com",
            "jane@example..com",
            "jane.@example.com",
            "jane@-example.com",
            "jane@example.com, joe@example.com",
        ] {
            assert_eq!(
                answer(AskKind::Email, text),
                Err(Rejection::NotAnEmail),
                "{text}"
            );
        }
    }

    #[test]
    fn phone_keeps_plus_and_digits_of_any_common_spelling() {
        for text in [
            "+62 812-3456-7890",
            "0062 (812) 3456.7890",
            "62 812 3456 7890",
            "+6281234567890",
        ] {
            assert_eq!(
                answer(AskKind::Phone, text),
                Ok(json!("+6281234567890")),
                "{text}"
            );
        }
    }

    #[test]
    fn phone_rejects_letters() {
        assert_eq!(
            answer(AskKind::Phone, "+62 812 CALL ME"),
            Err(Rejection::NotAPhone)
        );
        assert_eq!(
            answer(AskKind::Phone, "62+8123456"),
            Err(Rejection::NotAPhone)
        );
    }

    #[test]
    fn phone_rejects_a_national_number_without_country_code() {
        assert_eq!(
            answer(AskKind::Phone, "0812 3456 7890"),
            Err(Rejection::NoCountryCode)
        );
    }

    #[test]
    fn phone_needs_7_to_15_digits() {
        assert_eq!(
            answer(AskKind::Phone, "+12 345"),
            Err(Rejection::PhoneLength)
        );
        assert_eq!(answer(AskKind::Phone, "+1234567"), Ok(json!("+1234567")));
        assert_eq!(
            answer(AskKind::Phone, "+1234567890123456"),
            Err(Rejection::PhoneLength)
        );
    }

    #[test]
    fn phone_accepts_a_shared_contact_card() {
        let card = message(Content::Contacts {
            contacts: vec![
                json!({"name": {"formatted_name": "Jane"}, "phones": [
                    {"phone": "0812-3456-7890", "wa_id": "6281234567890", "type": "CELL"},
                    {"phone": "+1 650 555 1234"}
                ]}),
                json!({"phones": [{"phone": "+44 20 7946 0000"}]}),
            ],
        });
        assert_eq!(
            accept(AskKind::Phone, &card, &[]),
            Ok(json!("+6281234567890"))
        );
    }

    #[test]
    fn phone_from_a_card_without_wa_id_uses_the_saved_number() {
        let card = message(Content::Contacts {
            contacts: vec![json!({"phones": [{"phone": "+1 (650) 555-1234"}]})],
        });
        assert_eq!(
            accept(AskKind::Phone, &card, &[]),
            Ok(json!("+16505551234"))
        );
    }

    #[test]
    fn phone_rejects_a_card_without_a_number() {
        let card = message(Content::Contacts {
            contacts: vec![json!({"name": {"formatted_name": "Jane"}})],
        });
        assert_eq!(
            accept(AskKind::Phone, &card, &[]),
            Err(Rejection::NoPhoneInContact)
        );
    }

    #[test]
    fn date_accepts_iso_and_day_first_forms() {
        for text in [
            "2027-01-31",
            "31/01/2027",
            "31-01-2027",
            "31.01.2027",
            " 31/1/2027 ",
        ] {
            assert_eq!(
                answer(AskKind::Date, text),
                Ok(json!("2027-01-31")),
                "{text}"
            );
        }
    }

    #[test]
    fn date_accepts_single_digit_day_and_month() {
        assert_eq!(answer(AskKind::Date, "1/2/2027"), Ok(json!("2027-02-01")));
        assert_eq!(answer(AskKind::Date, "2027-2-1"), Ok(json!("2027-02-01")));
    }

    #[test]
    fn date_rejects_days_not_in_the_calendar() {
        assert_eq!(
            answer(AskKind::Date, "31/02/2027"),
            Err(Rejection::NoSuchDate)
        );
        assert_eq!(
            answer(AskKind::Date, "29.02.2027"),
            Err(Rejection::NoSuchDate)
        );
        assert_eq!(
            answer(AskKind::Date, "2027-13-01"),
            Err(Rejection::NoSuchDate)
        );
        assert_eq!(answer(AskKind::Date, "29/02/2028"), Ok(json!("2028-02-29")));
    }

    #[test]
    fn date_rejects_other_spellings() {
        for text in [
            "tomorrow",
            "31/01/27",
            "31/01-2027",
            "2027/01/31",
            "31 01 2027",
            "31/01/2027 10:00",
        ] {
            assert_eq!(
                answer(AskKind::Date, text),
                Err(Rejection::NotADate),
                "{text}"
            );
        }
    }

    #[test]
    fn choice_by_button_id() {
        assert_eq!(choose(&button("medium", "Médium")), Ok(json!("medium")));
    }

    #[test]
    fn choice_by_list_row_and_template_quick_reply() {
        let row = message(Content::ListReply {
            id: "large".to_owned(),
            title: "Large 🍕".to_owned(),
            description: None,
        });
        let quick = message(Content::QuickReply {
            payload: "small".to_owned(),
            text: "Small".to_owned(),
        });
        assert_eq!(choose(&row), Ok(json!("large")));
        assert_eq!(choose(&quick), Ok(json!("small")));
    }

    #[test]
    fn choice_rejects_a_button_of_another_message() {
        assert_eq!(
            choose(&button("huge", "Small")),
            Err(Rejection::NoSuchOption)
        );
    }

    #[test]
    fn choice_by_title_ignores_case_accents_and_emoji() {
        assert_eq!(choose(&typed("medium")), Ok(json!("medium")));
        assert_eq!(choose(&typed("  MÉDIUM! ")), Ok(json!("medium")));
        assert_eq!(choose(&typed("large")), Ok(json!("large")));
    }

    #[test]
    fn choice_by_typed_id() {
        let options = vec![Choice {
            id: "size_xl".to_owned(),
            title: "Extra large".to_owned(),
            description: None,
        }];
        assert_eq!(
            accept(AskKind::Choice, &typed("SIZE_XL"), &options),
            Ok(json!("size_xl"))
        );
    }

    #[test]
    fn choice_by_number() {
        assert_eq!(choose(&typed("2")), Ok(json!("medium")));
        assert_eq!(choose(&typed(" 3. ")), Ok(json!("large")));
    }

    #[test]
    fn choice_rejects_a_number_out_of_range() {
        assert_eq!(choose(&typed("0")), Err(Rejection::NoSuchOption));
        assert_eq!(choose(&typed("4")), Err(Rejection::NoSuchOption));
    }

    #[test]
    fn choice_prefers_a_title_over_a_position() {
        let options: Vec<Choice> = ["1", "2", "5"]
            .into_iter()
            .map(|qty| Choice {
                id: format!("qty_{qty}"),
                title: qty.to_owned(),
                description: None,
            })
            .collect();
        assert_eq!(
            accept(AskKind::Choice, &typed("5"), &options),
            Ok(json!("qty_5"))
        );
        assert_eq!(
            accept(AskKind::Choice, &typed("3"), &options),
            Ok(json!("qty_5"))
        );
    }

    #[test]
    fn choice_rejects_unknown_text_and_punctuation_alone() {
        assert_eq!(choose(&typed("extra large")), Err(Rejection::NoSuchOption));
        assert_eq!(choose(&typed("🍕")), Err(Rejection::NoSuchOption));
    }

    #[test]
    fn choice_without_options_rejects_everything() {
        assert_eq!(
            accept(AskKind::Choice, &typed("1"), &[]),
            Err(Rejection::NoOptions)
        );
    }

    #[test]
    fn choice_is_not_answered_by_a_photo() {
        assert_eq!(
            choose(&photo(Some("small"))),
            Err(Rejection::WrongKind {
                expected: AskKind::Choice,
                got: "image"
            })
        );
    }

    #[test]
    fn location_saves_coordinates_with_null_name_and_address() {
        let pin = message(Content::Location(SharedLocation {
            latitude: -6.2,
            longitude: 106.8,
            name: None,
            address: None,
            url: None,
        }));
        assert_eq!(
            accept(AskKind::Location, &pin, &[]),
            Ok(json!({"latitude": -6.2, "longitude": 106.8, "name": null, "address": null}))
        );
    }

    #[test]
    fn location_saves_a_named_place() {
        let place = message(Content::Location(SharedLocation {
            latitude: 48.8584,
            longitude: 2.2945,
            name: Some("Tour Eiffel".to_owned()),
            address: Some("Champ de Mars, Paris".to_owned()),
            url: Some("https://example.com".to_owned()),
        }));
        assert_eq!(
            accept(AskKind::Location, &place, &[]),
            Ok(json!({
                "latitude": 48.8584,
                "longitude": 2.2945,
                "name": "Tour Eiffel",
                "address": "Champ de Mars, Paris",
            }))
        );
    }

    #[test]
    fn location_is_not_answered_by_an_address_typed_as_text() {
        assert_eq!(
            answer(AskKind::Location, "Champ de Mars"),
            Err(Rejection::WrongKind {
                expected: AskKind::Location,
                got: "text"
            })
        );
    }

    #[test]
    fn media_saves_the_file_reference_with_nulls_for_what_is_missing() {
        assert_eq!(
            accept(AskKind::Media, &photo(Some("my receipt")), &[]),
            Ok(json!({
                "type": "image",
                "id": "media-1",
                "url": null,
                "mime_type": "image/jpeg",
                "caption": "my receipt",
                "filename": null,
            }))
        );
    }

    #[test]
    fn media_names_the_kind_of_a_document() {
        let pdf = message(Content::Media(InboundMedia {
            kind: MediaKind::Document,
            id: None,
            url: Some("https://files.example/receipt.pdf".to_owned()),
            mime_type: None,
            caption: None,
            filename: Some("receipt.pdf".to_owned()),
            sha256: None,
        }));
        let saved = accept(AskKind::Media, &pdf, &[]);
        assert_eq!(
            saved.as_ref().map(|value| &value["type"]),
            Ok(&json!("document"))
        );
        assert_eq!(
            saved.map(|value| value["filename"].clone()),
            Ok(json!("receipt.pdf"))
        );
    }

    #[test]
    fn media_is_not_answered_by_text() {
        assert_eq!(
            answer(AskKind::Media, "here"),
            Err(Rejection::WrongKind {
                expected: AskKind::Media,
                got: "text"
            })
        );
    }

    #[test]
    fn flow_reply_saves_the_parsed_response() {
        let reply = message(Content::FlowReply {
            name: "flow".to_owned(),
            body: Some("Sent".to_owned()),
            response: json!({"size": "large", "flow_token": "t1"}),
        });
        assert_eq!(
            accept(AskKind::FlowReply, &reply, &[]),
            Ok(json!({"size": "large", "flow_token": "t1"}))
        );
    }

    #[test]
    fn flow_reply_is_not_answered_by_a_button() {
        assert_eq!(
            accept(AskKind::FlowReply, &button("ok", "OK"), &[]),
            Err(Rejection::WrongKind {
                expected: AskKind::FlowReply,
                got: "button"
            })
        );
    }

    #[test]
    fn any_saves_typed_text_as_text() {
        assert_eq!(answer(AskKind::Any, " hello "), Ok(json!("hello")));
    }

    #[test]
    fn any_saves_other_messages_as_their_content_map() {
        assert_eq!(
            accept(AskKind::Any, &button("yes", "Yes!"), &[]),
            Ok(json!({"type": "button_reply", "id": "yes", "title": "Yes!"}))
        );
    }

    #[test]
    fn rejections_read_well_in_logs() {
        let wrong = Rejection::WrongKind {
            expected: AskKind::FlowReply,
            got: "image",
        };
        assert_eq!(wrong.to_string(), "expected flow_reply, got image");
        assert_eq!(Rejection::NoSuchOption.to_string(), "no such option");
        assert_eq!(Rejection::NotANumber.to_string(), "not a number");
    }
}
