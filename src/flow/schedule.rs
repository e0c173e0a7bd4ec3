//! Cron expressions as users write them: 5 fields in Vixie style (minute first, Sunday 0 or 7),
//! or 6–7 fields with seconds first, translated to the `cron` crate's dialect.

use std::str::FromStr;

use cron::Schedule;

/// Parses a 5-, 6- or 7-field cron expression.
///
/// # Errors
/// A message saying what is wrong with the expression, for `path:line:col` reports.
pub fn parse_cron(expression: &str) -> Result<Schedule, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let translated = match fields.len() {
        5 => {
            let dow = vixie_days_of_week(fields[4])?;
            format!(
                "0 {} {} {} {} {dow}",
                fields[0], fields[1], fields[2], fields[3]
            )
        }
        6 | 7 => fields.join(" "),
        n => {
            return Err(format!(
                "cron \"{expression}\" has {n} fields; write 5 (minute hour day month weekday) or 6–7 (seconds first)"
            ));
        }
    };
    Schedule::from_str(&translated).map_err(|error| {
        let text = error.to_string();
        let reason = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(&text)
            .trim();
        format!("invalid cron \"{expression}\": {reason}")
    })
}

/// Vixie numbers weekdays 0–7 from Sunday (0 and 7 both Sunday); the `cron` crate 1–7 from Sunday.
fn vixie_days_of_week(field: &str) -> Result<String, String> {
    let items: Result<Vec<String>, String> = field.split(',').map(vixie_item).collect();
    Ok(items?.join(","))
}

fn vixie_item(item: &str) -> Result<String, String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    let step = step.map(|s| format!("/{s}")).unwrap_or_default();
    let translated = match range.split_once('-') {
        Some((from, to)) => match (day_number(from)?, day_number(to)?) {
            (Some(from), Some(7)) if from > 0 => format!("{}-7{step},1", from + 1),
            (Some(from), Some(to)) => format!("{}-{}{step}", shift(from), shift(to)),
            _ => format!("{range}{step}"),
        },
        None => match day_number(range)? {
            Some(day) => format!("{}{step}", shift(day)),
            None => format!("{range}{step}"),
        },
    };
    Ok(translated)
}

/// A numeric weekday, or `None` for names and `*`.
fn day_number(text: &str) -> Result<Option<u8>, String> {
    match text.parse::<u8>() {
        Ok(day) if day <= 7 => Ok(Some(day)),
        Ok(day) => Err(format!(
            "weekday {day} is out of range; use 0–7 (0 and 7 are Sunday) or Mon–Sun"
        )),
        Err(_) => Ok(None),
    }
}

fn shift(day: u8) -> u8 {
    day % 7 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Utc, Weekday};

    fn next_weekdays(expression: &str) -> Vec<Weekday> {
        let schedule = parse_cron(expression).unwrap();
        let start = Utc.with_ymd_and_hms(2027, 1, 4, 12, 0, 0).unwrap(); // a Monday
        schedule
            .after(&start)
            .take(7)
            .map(|t| t.weekday())
            .collect()
    }

    #[test]
    fn five_fields_use_vixie_weekdays() {
        assert_eq!(next_weekdays("0 9 * * 0")[0], Weekday::Sun);
        assert_eq!(next_weekdays("0 9 * * 7")[0], Weekday::Sun);
        assert_eq!(next_weekdays("0 9 * * 1")[0], Weekday::Mon);
        let weekdays = next_weekdays("0 9 * * 1-5");
        assert!(
            !weekdays.contains(&Weekday::Sat) && !weekdays.contains(&Weekday::Sun),
            "{weekdays:?}"
        );
        let weekend = next_weekdays("0 9 * * 6-7");
        assert!(
            weekend
                .iter()
                .all(|d| matches!(d, Weekday::Sat | Weekday::Sun)),
            "{weekend:?}"
        );
        assert_eq!(next_weekdays("0 9 * * Mon-Fri").len(), 7);
    }

    #[test]
    fn seconds_first_forms_pass_through() {
        assert!(parse_cron("*/30 * * * * *").is_ok());
        assert!(parse_cron("0 0 9 * * Mon-Fri 2027").is_ok());
    }

    #[test]
    fn bad_expressions_say_what_to_write() {
        assert!(parse_cron("* * *").unwrap_err().contains("write 5"));
        assert!(parse_cron("0 9 * * 8").unwrap_err().contains("0–7"));
        assert!(parse_cron("61 9 * * *").is_err());
    }
}
