//! Functions chatflow adds to Rhai for templates and scripts: the clock and time formatting.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rhai::{Engine, EvalAltResult, INT};

/// Registers `now()` and `format_time(ts, fmt[, tz])`.
pub fn register(engine: &mut Engine) {
    engine.register_fn("now", super::clock_now);
    engine.register_fn("format_time", |ts: INT, format: &str| {
        format_time(ts, format, "UTC")
    });
    engine.register_fn("format_time", format_time);
}

/// Formats Unix seconds with a strftime pattern in an IANA time zone.
fn format_time(ts: INT, format: &str, zone: &str) -> Result<String, Box<EvalAltResult>> {
    let zone: Tz = zone
        .parse()
        .map_err(|_| format!("unknown time zone \"{zone}\"; use an IANA name like Asia/Jakarta"))?;
    let instant = DateTime::<Utc>::from_timestamp(ts, 0)
        .ok_or_else(|| format!("timestamp {ts} is out of range"))?;
    let mut out = String::new();
    use std::fmt::Write;
    write!(out, "{}", instant.with_timezone(&zone).format(format))
        .map_err(|_| format!("invalid time format \"{format}\""))?;
    Ok(out)
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
}
