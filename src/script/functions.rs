//! Helpers bots need, for templates and scripts alike: the clock, time formatting, date parsing
//! and arithmetic, text normalization, number and currency formatting, and random choice.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT};

/// A helper's failure, shown to the bot author with the script position.
type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// Registers every helper.
pub fn register(engine: &mut Engine) {
    register_time(engine);
    register_text(engine);
    register_numbers(engine);
    engine.register_fn("random_choice", random_choice);
    engine.register_fn("random_int", random_int);
}

fn register_time(engine: &mut Engine) {
    engine.register_fn("now", super::clock_now);
    engine.register_fn("format_time", |ts: INT, format: &str| {
        format_time(ts, format, "UTC")
    });
    engine.register_fn("format_time", format_time);
    engine.register_fn("parse_date", |text: &str| parse_date(text, "UTC"));
    engine.register_fn("parse_date", parse_date);
    engine.register_fn("add_days", |ts: INT, days: INT| ts + days * 86_400);
    engine.register_fn("add_duration", add_duration);
    engine.register_fn("days_between", |from: INT, to: INT| {
        (to - from).div_euclid(86_400)
    });
    engine.register_fn("weekday", |ts: INT| weekday(ts, "UTC"));
    engine.register_fn("weekday", weekday);
}

fn register_text(engine: &mut Engine) {
    engine.register_fn("normalize", |text: &str| {
        crate::flow::normalize::normalize(text)
    });
    engine.register_fn("contains_normalized", |text: &str, words: &str| {
        let words = crate::flow::normalize::normalize(words);
        !words.is_empty() && crate::flow::normalize::normalize(text).contains(&words)
    });
}

fn register_numbers(engine: &mut Engine) {
    engine.register_fn("parse_number", parse_number);
    engine.register_fn("format_number", |n: INT, decimals: INT| {
        format_number(n as FLOAT, decimals, ",", ".")
    });
    engine.register_fn("format_number", |n: FLOAT, decimals: INT| {
        format_number(n, decimals, ",", ".")
    });
    engine.register_fn("format_number", format_number);
    engine.register_fn(
        "format_number",
        |n: INT, decimals: INT, group: &str, point: &str| {
            format_number(n as FLOAT, decimals, group, point)
        },
    );
    engine.register_fn("format_currency", |amount: INT, code: &str| {
        format_currency(amount as FLOAT, code)
    });
    engine.register_fn("format_currency", format_currency);
}

/// Formats Unix seconds with a strftime pattern in an IANA time zone.
fn format_time(ts: INT, format: &str, zone: &str) -> Fallible<String> {
    let zone = time_zone(zone)?;
    let instant = DateTime::<Utc>::from_timestamp(ts, 0)
        .ok_or_else(|| format!("timestamp {ts} is out of range"))?;
    let mut out = String::new();
    use std::fmt::Write;
    write!(out, "{}", instant.with_timezone(&zone).format(format))
        .map_err(|_| format!("invalid time format \"{format}\""))?;
    Ok(out)
}

fn time_zone(zone: &str) -> Fallible<Tz> {
    zone.parse().map_err(|_| {
        format!("unknown time zone \"{zone}\"; use an IANA name like Asia/Jakarta").into()
    })
}

/// Unix seconds of a date a user typed — `2026-11-23`, `23/11/2026`, `23-11-2026` or
/// `2026-11-23 14:30` — at local midnight (or the given time) in `zone`; `()` when the text is
/// no such date, so a script can ask again.
fn parse_date(text: &str, zone: &str) -> Fallible<Dynamic> {
    let zone = time_zone(zone)?;
    let text = text.trim();
    let moment = ["%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| {
            ["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"]
                .iter()
                .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        });
    let local = moment.and_then(|moment| zone.from_local_datetime(&moment).earliest());
    Ok(local.map_or(Dynamic::UNIT, |local| Dynamic::from(local.timestamp())))
}

/// `ts` moved by a duration such as `2h`, `30m` or `1d 12h`.
fn add_duration(ts: INT, duration: &str) -> Fallible<INT> {
    let duration: crate::duration::Duration = duration
        .parse()
        .map_err(|error| format!("add_duration: {error}"))?;
    Ok(ts.saturating_add(duration.as_secs_i64()))
}

/// ISO weekday of `ts` in `zone`: Monday 1 … Sunday 7.
fn weekday(ts: INT, zone: &str) -> Fallible<INT> {
    let zone = time_zone(zone)?;
    let instant = DateTime::<Utc>::from_timestamp(ts, 0)
        .ok_or_else(|| format!("timestamp {ts} is out of range"))?;
    Ok(INT::from(
        instant.with_timezone(&zone).weekday().number_from_monday(),
    ))
}

/// A number a user typed — `3`, `2.5`, `2,5`, ` 1 000 ` — or `()` when the text is none, so a
/// script can test input without a runtime error.
fn parse_number(text: &str) -> Dynamic {
    let cleaned: String = text.trim().chars().filter(|c| !c.is_whitespace()).collect();
    let cleaned = cleaned.replace(',', ".");
    match cleaned.parse::<FLOAT>() {
        Ok(number) if number.is_finite() => Dynamic::from(number),
        _ => Dynamic::UNIT,
    }
}

/// `1234567.5` with 2 decimals as `1,234,567.50` (or with the given separators: `.` and `,`
/// in Indonesia and much of Europe).
fn format_number(n: FLOAT, decimals: INT, group: &str, point: &str) -> String {
    let decimals = usize::try_from(decimals.clamp(0, 12)).unwrap_or(0);
    let fixed = format!("{:.*}", decimals, n.abs());
    let (whole, fraction) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push_str(group);
        }
        grouped.push(digit);
    }
    let sign = if n < 0.0 && fixed.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}{point}{fraction}")
    }
}

/// An amount as people of the currency write it: `Rp 15.000`, `$1,234.50`, `€ 9,99`; an
/// unknown code is written before the amount (`CHF 12.00`).
fn format_currency(amount: FLOAT, code: &str) -> String {
    let code = code.trim().to_ascii_uppercase();
    let (symbol, decimals, group, point) = match code.as_str() {
        "IDR" => ("Rp ", 0, ".", ","),
        "USD" => ("$", 2, ",", "."),
        "EUR" => ("€ ", 2, ".", ","),
        "GBP" => ("£", 2, ",", "."),
        "INR" => ("₹", 2, ",", "."),
        "BRL" => ("R$ ", 2, ".", ","),
        "MYR" => ("RM ", 2, ",", "."),
        "SGD" => ("S$", 2, ",", "."),
        "JPY" => ("¥", 0, ",", "."),
        _ => ("", 2, ",", "."),
    };
    let number = format_number(amount, decimals, group, point);
    if symbol.is_empty() {
        format!("{code} {number}")
    } else {
        format!("{symbol}{number}")
    }
}

/// One item of `items` at random.
fn random_choice(items: Array) -> Fallible<Dynamic> {
    if items.is_empty() {
        return Err("random_choice() needs a non-empty array".into());
    }
    Ok(items[fastrand::usize(..items.len())].clone())
}

/// A random integer from `low` to `high`, both included.
fn random_int(low: INT, high: INT) -> Fallible<INT> {
    if low > high {
        return Err(format!("random_int({low}, {high}): the low end is above the high end").into());
    }
    Ok(fastrand::i64(low..=high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_the_given_zone() {
        assert_eq!(
            format_time(0, "%d %b %H:%M", "Asia/Jakarta").unwrap(),
            "01 Jan 07:00"
        );
        assert!(format_time(0, "%H", "Mars/Olympus").is_err());
    }

    #[test]
    fn parses_the_dates_people_type_in_their_zone() {
        let jakarta = |text| parse_date(text, "Asia/Jakarta").unwrap();
        let midnight = 1_795_366_800; // 2026-11-23 00:00 in Jakarta (UTC+7)
        for text in ["2026-11-23", "23/11/2026", "23-11-2026", " 23.11.2026 "] {
            assert_eq!(jakarta(text).as_int().ok(), Some(midnight), "{text}");
        }
        assert_eq!(
            jakarta("2026-11-23 14:30").as_int().ok(),
            Some(midnight + 14 * 3600 + 30 * 60)
        );
        assert!(jakarta("next tuesday").is_unit());
        assert!(jakarta("2026-02-30").is_unit());
    }

    #[test]
    fn numbers_people_type() {
        assert_eq!(parse_number("2,5").as_float().ok(), Some(2.5));
        assert_eq!(parse_number(" 1 000 ").as_float().ok(), Some(1000.0));
        assert!(parse_number("kg").is_unit());
        assert!(parse_number("inf").is_unit());
    }

    #[test]
    fn date_arithmetic() {
        assert_eq!(add_duration(0, "1d 2h").unwrap(), 93_600);
        assert!(add_duration(0, "soon").is_err());
        // 1970-01-01 was a Thursday.
        assert_eq!(weekday(0, "UTC").unwrap(), 4);
        assert_eq!(weekday(-3600, "UTC").unwrap(), 3);
    }

    #[test]
    fn numbers_and_currencies_are_written_as_people_read_them() {
        assert_eq!(format_number(1_234_567.891, 2, ",", "."), "1,234,567.89");
        assert_eq!(format_number(-1234.0, 0, ".", ","), "-1.234");
        assert_eq!(format_number(-0.001, 2, ",", "."), "0.00");
        assert_eq!(format_number(999.0, 0, ",", "."), "999");
        assert_eq!(format_currency(15_000.0, "idr"), "Rp 15.000");
        assert_eq!(format_currency(1234.5, "USD"), "$1,234.50");
        assert_eq!(format_currency(9.99, "EUR"), "€ 9,99");
        assert_eq!(format_currency(12.0, "CHF"), "CHF 12.00");
    }

    #[test]
    fn random_picks_stay_in_range() {
        let items: Array = vec![Dynamic::from(1_i64), Dynamic::from(2_i64)];
        for _ in 0..20 {
            let picked = random_choice(items.clone()).unwrap().as_int().unwrap();
            assert!(picked == 1 || picked == 2);
            let n = random_int(3, 5).unwrap();
            assert!((3..=5).contains(&n));
        }
        assert!(random_choice(Array::new()).is_err());
        assert!(random_int(5, 3).is_err());
    }
}
