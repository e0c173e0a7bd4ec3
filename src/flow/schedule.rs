//! Cron triggers as users write them (DESIGN §6), and when they are due.
//!
//! Users write 5 fields in Vixie style (minute first, Sunday 0 or 7) or 6–7 fields with seconds
//! first in the `cron` crate's dialect. The crate parses and reports errors; the due times are
//! computed here, on wall-clock time in the trigger's zone, because the crate's own iteration
//! breaks DESIGN §6: it ANDs day of month and day of week, never fires a time a DST change skips,
//! fires a repeated hour twice, and asked for what follows a time in the repeated hour it can
//! answer with the hour's first pass, which is already in the past.
//!
//! Rules, in the order they apply:
//! - **Days.** In 5 fields, when day of month and day of week are both restricted, a day matches
//!   if either does (Vixie and POSIX: `0 9 13 * 5` fires on every 13th and every Friday). Like
//!   Vixie, a field whose text starts with `*` counts as unrestricted even with a step, so
//!   `0 9 */2 * 1` is odd days that are Mondays. The 6–7-field dialect keeps the crate's meaning:
//!   both must match, weekdays 1–7 from Sunday.
//! - **Wall clock.** The fields pick local wall-clock times; each such time fires once.
//! - **Skipped times** (spring forward) fire at the first instant after the gap, once, however
//!   many of them the gap swallowed: `30 2 * * *` fires at 03:00 on the day New York skips
//!   02:00–03:00, and an hourly schedule fires at 03:00 once for both 02:00 and 03:00.
//! - **Repeated times** (fall back) fire on their first pass only: `30 1 * * *` fires at 01:30
//!   EDT, not again at 01:30 EST. An hourly schedule therefore has a two-hour step across the
//!   repeated hour (01:00 EDT, then 02:00 EST): every wall-clock time once, not every real hour.

use std::str::FromStr;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike,
};
use chrono_tz::Tz;
use cron::{Schedule, TimeUnitSpec};

/// A parsed cron trigger in a time zone.
///
/// Pure and cheap: finding the next due time jumps field by field (year, month, day, hour,
/// minute, second) instead of stepping through instants, so a per-second schedule across a long
/// gap, or `0 9 29 2 *` waiting for a leap year, costs a few hundred steps at most. The one slow
/// path is asking from inside the second pass of a repeated hour: the times of that hour, which
/// fired on the first pass, are skipped one by one (3,600 for a per-second schedule, once a year).
#[derive(Clone, Debug)]
pub struct CronSchedule {
    fields: Fields,
    zone: Tz,
}

impl CronSchedule {
    /// Parses the expression (5 fields Vixie, or 6–7 seconds-first) in IANA `zone` (None = UTC).
    ///
    /// # Errors
    /// A message saying what is wrong with the expression or the zone, for `path:line:col`
    /// reports; the same messages [`parse_cron`] gives the validator.
    pub fn parse(expression: &str, zone: Option<&str>) -> Result<Self, String> {
        let zone = zone.map_or(Ok(Tz::UTC), parse_zone)?;
        let (_, fields) = compile(expression)?;
        Ok(Self { fields, zone })
    }

    /// The first due time strictly after `after` (Unix seconds), or None if there is none (a year
    /// field in the past).
    #[must_use]
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let mut from = self
            .wall_clock(after)?
            .checked_add_signed(TimeDelta::seconds(1))?;
        let horizon = from.year().saturating_add(HORIZON_YEARS);
        loop {
            let wall = self.fields.next_match(from, horizon)?;
            let due = self.instant(wall)?;
            if due > after {
                return Some(due);
            }
            // `after` is in the second pass of a repeated hour and `wall` fired on the first.
            from = wall.checked_add_signed(TimeDelta::seconds(1))?;
        }
    }

    /// Due times in (from, to], in order, at most `limit` (for catch-up: what was missed while
    /// down).
    #[must_use]
    pub fn due_between(&self, from: i64, to: i64, limit: usize) -> Vec<i64> {
        std::iter::successors(self.next_after(from), |&due| self.next_after(due))
            .take_while(|&due| due <= to)
            .take(limit)
            .collect()
    }

    /// What a clock on the wall in the zone reads at `instant`.
    fn wall_clock(&self, instant: i64) -> Option<NaiveDateTime> {
        let utc = DateTime::from_timestamp(instant, 0)?;
        Some(utc.with_timezone(&self.zone).naive_local())
    }

    /// The instant a wall-clock time fires at: its only instant, the first of two in a repeated
    /// hour, or the end of the gap for a time a DST change skips.
    fn instant(&self, wall: NaiveDateTime) -> Option<i64> {
        match self.zone.from_local_datetime(&wall) {
            LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => Some(time.timestamp()),
            LocalResult::None => self.end_of_gap(wall),
        }
    }

    /// The first instant whose wall-clock reading is past `wall`, a time inside a DST gap: the
    /// instant of the change. Found by bisection, since chrono-tz only maps instants to offsets.
    fn end_of_gap(&self, wall: NaiveDateTime) -> Option<i64> {
        // Offsets stay within a day of UTC, so the reading a day before `wall`-as-UTC is earlier
        // than `wall` and the reading a day after is later.
        let as_utc = wall.and_utc().timestamp();
        let (mut before, mut after) = (as_utc - SECONDS_PER_DAY, as_utc + SECONDS_PER_DAY);
        while after - before > 1 {
            let middle = before + (after - before) / 2;
            if self.wall_clock(middle)? < wall {
                before = middle;
            } else {
                after = middle;
            }
        }
        Some(after)
    }
}

/// Parses a 5-, 6- or 7-field cron expression, for validation.
///
/// The returned crate `Schedule` knows neither the Vixie day rule nor the DST rules of DESIGN §6;
/// compute due times with [`CronSchedule`].
///
/// # Errors
/// A message saying what is wrong with the expression, for `path:line:col` reports.
pub fn parse_cron(expression: &str) -> Result<Schedule, String> {
    compile(expression).map(|(schedule, _)| schedule)
}

/// How far ahead a search goes without a year field to end it. Weekdays and leap days repeat
/// every 400 years (146 097 days, a whole number of weeks), so a schedule that fires at all fires
/// within one cycle; the bound only keeps a mistake from looping.
const HORIZON_YEARS: i32 = 400;

const SECONDS_PER_DAY: i64 = 86_400;

/// Parses the expression with the crate (for its error messages) and takes its field values.
fn compile(expression: &str) -> Result<(Schedule, Fields), String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let (translated, days) = match fields.as_slice() {
        [minute, hour, day_of_month, month, day_of_week] => (
            format!(
                "0 {minute} {hour} {day_of_month} {month} {}",
                vixie_days_of_week(day_of_week)?
            ),
            DayRule::vixie(day_of_month, day_of_week),
        ),
        [_, _, _, _, _, _] | [_, _, _, _, _, _, _] => (fields.join(" "), DayRule::Both),
        _ => {
            return Err(format!(
                "cron \"{expression}\" has {} fields; write 5 (minute hour day month weekday) or 6–7 (seconds first)",
                fields.len()
            ));
        }
    };
    let schedule =
        Schedule::from_str(&translated).map_err(|error| crate_error(expression, &error))?;
    let values = Fields::of(&schedule, days);
    values.check_days_exist(expression)?;
    Ok((schedule, values))
}

/// The crate's message is the expression with a caret line, then the reason; keep the reason.
fn crate_error(expression: &str, error: &cron::error::Error) -> String {
    let text = error.to_string();
    let reason = text
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or(&text)
        .trim();
    format!("invalid cron \"{expression}\": {reason}")
}

fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse()
        .map_err(|_| format!("unknown time zone \"{name}\"; use an IANA name such as Asia/Jakarta"))
}

/// How day of month and day of week combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DayRule {
    /// A day must match both (one of them may allow every day).
    Both,
    /// A day matches if either does: Vixie, when both fields are restricted.
    Either,
}

impl DayRule {
    /// Vixie decides on the text: a field starting with `*` is unrestricted, even `*/2`.
    fn vixie(day_of_month: &str, day_of_week: &str) -> Self {
        let restricted = |field: &str| !field.starts_with(['*', '?']);
        if restricted(day_of_month) && restricted(day_of_week) {
            Self::Either
        } else {
            Self::Both
        }
    }
}

/// The values each field allows, as bit sets, so the search can jump to the next allowed value.
#[derive(Clone, Debug)]
struct Fields {
    seconds: u64,
    minutes: u64,
    hours: u64,
    /// Bits 1–31.
    days_of_month: u64,
    /// Bits 1–12.
    months: u64,
    /// Bits 0–6 from Sunday, as chrono numbers them.
    days_of_week: u64,
    /// Sorted; None when the expression has no year field (or `*`), so no year ends the search.
    years: Option<Vec<i32>>,
    days: DayRule,
}

impl Fields {
    fn of(schedule: &Schedule, days: DayRule) -> Self {
        let years = schedule.years();
        Self {
            seconds: bits(schedule.seconds()),
            minutes: bits(schedule.minutes()),
            hours: bits(schedule.hours()),
            days_of_month: bits(schedule.days_of_month()),
            months: bits(schedule.months()),
            // The crate numbers weekdays 1–7 from Sunday.
            days_of_week: bits(schedule.days_of_week()) >> 1,
            years: (!years.is_all()).then(|| {
                years
                    .iter()
                    .filter_map(|year| i32::try_from(year).ok())
                    .collect()
            }),
            days,
        }
    }

    /// Rejects a day of month that none of the months has (`0 9 31 2 *`) when the day of month
    /// must match: such a schedule would never fire, which is a typo, not an intent.
    fn check_days_exist(&self, expression: &str) -> Result<(), String> {
        let Some(first_day) = next_bit(self.days_of_month, 1) else {
            return Ok(());
        };
        let fits = (1..=12)
            .filter(|&month| has(self.months, month))
            .any(|month| first_day <= longest_month(month));
        if self.days == DayRule::Either || fits {
            return Ok(());
        }
        Err(format!(
            "cron \"{expression}\" never fires: none of its months has a day {first_day}"
        ))
    }

    /// The first wall-clock time at or after `from` that the fields allow, up to the end of year
    /// `horizon`.
    fn next_match(&self, from: NaiveDateTime, horizon: i32) -> Option<NaiveDateTime> {
        let mut date = self.next_date(from.date(), horizon)?;
        if date == from.date() {
            if let Some(time) = self.next_time(from.time()) {
                return Some(date.and_time(time));
            }
            date = self.next_date(date.succ_opt()?, horizon)?;
        }
        Some(date.and_time(self.next_time(NaiveTime::MIN)?))
    }

    /// The first allowed date at or after `date`: wrong years and months are skipped whole,
    /// days one by one (at most 31 per allowed month).
    fn next_date(&self, mut date: NaiveDate, horizon: i32) -> Option<NaiveDate> {
        loop {
            let year = self
                .next_year(date.year())
                .filter(|&year| year <= horizon)?;
            let month = date.month();
            date = if year != date.year() {
                NaiveDate::from_ymd_opt(year, 1, 1)?
            } else if !has(self.months, month) {
                match next_bit(self.months, month) {
                    Some(next) => NaiveDate::from_ymd_opt(year, next, 1)?,
                    None => NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?,
                }
            } else if self.day_matches(date) {
                return Some(date);
            } else {
                date.succ_opt()?
            };
        }
    }

    /// The first allowed time of day at or after `earliest`, or None if the day has none left.
    fn next_time(&self, earliest: NaiveTime) -> Option<NaiveTime> {
        let mut at = earliest.num_seconds_from_midnight();
        while at < 86_400 {
            let (hour, minute, second) = (at / 3600, at / 60 % 60, at % 60);
            at = if !has(self.hours, hour) {
                next_bit(self.hours, hour).map_or(86_400, |next| next * 3600)
            } else if !has(self.minutes, minute) {
                next_bit(self.minutes, minute)
                    .map_or((hour + 1) * 3600, |next| hour * 3600 + next * 60)
            } else if !has(self.seconds, second) {
                let minute_start = at - second;
                next_bit(self.seconds, second).map_or(minute_start + 60, |next| minute_start + next)
            } else {
                return NaiveTime::from_num_seconds_from_midnight_opt(at, 0);
            };
        }
        None
    }

    fn next_year(&self, year: i32) -> Option<i32> {
        match &self.years {
            None => Some(year),
            Some(years) => years.get(years.partition_point(|&y| y < year)).copied(),
        }
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let of_month = has(self.days_of_month, date.day());
        let of_week = has(self.days_of_week, date.weekday().num_days_from_sunday());
        match self.days {
            DayRule::Both => of_month && of_week,
            DayRule::Either => of_month || of_week,
        }
    }
}

fn bits(spec: &impl TimeUnitSpec) -> u64 {
    spec.iter()
        .filter(|&value| value < 64)
        .fold(0, |set, value| set | 1 << value)
}

fn has(set: u64, value: u32) -> bool {
    value < 64 && set & (1 << value) != 0
}

/// The lowest value in `set` at or above `from`.
fn next_bit(set: u64, from: u32) -> Option<u32> {
    let rest = set.checked_shr(from)?;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

/// Days in the month in its longest year (February 29).
fn longest_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Translates a Vixie weekday field (0–7 from Sunday, 0 and 7 both Sunday) to the crate's 1–7
/// from Sunday. Each item is expanded to the days it names, so ranges and steps keep Vixie's
/// meaning (`0-7` is every day, `2-7/2` is Tuesday, Thursday, Saturday); an item this cannot
/// read goes through as written, for the crate to report.
fn vixie_days_of_week(field: &str) -> Result<String, String> {
    let items: Result<Vec<String>, String> = field.split(',').map(vixie_item).collect();
    Ok(items?.join(","))
}

fn vixie_item(item: &str) -> Result<String, String> {
    if item == "*" {
        return Ok(item.to_owned());
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    let bounds = match (range.split_once('-'), step) {
        _ if range == "*" => Some((0, 7)),
        (Some((first, last)), _) => vixie_range(first, last)?,
        // `5/2` runs to the end of the week, as the crate reads it.
        (None, Some(_)) => weekday(range)?.map(|day| (day, 7)),
        (None, None) => weekday(range)?.map(|day| (day, day)),
    };
    let Some((first, last)) = bounds else {
        return Ok(item.to_owned());
    };
    let days: Vec<String> = (first..=last)
        .step_by(vixie_step(step)?)
        .map(|day| (day % 7 + 1).to_string())
        .collect();
    Ok(days.join(","))
}

/// A range of weekdays; one ending on Sunday (`Mon-Sun`, `5-0`) runs to day 7.
fn vixie_range(first: &str, last: &str) -> Result<Option<(u8, u8)>, String> {
    let (Some(first), Some(last)) = (weekday(first)?, weekday(last)?) else {
        return Ok(None);
    };
    let last = if last == 0 { 7 } else { last };
    if first > last {
        return Err(format!(
            "weekday range {first}-{last} runs backwards; write it as two ranges"
        ));
    }
    Ok(Some((first, last)))
}

fn vixie_step(step: Option<&str>) -> Result<usize, String> {
    let Some(text) = step else {
        return Ok(1);
    };
    match text.parse::<usize>() {
        Ok(step) if step > 0 => Ok(step),
        _ => Err(format!(
            "weekday step \"{text}\" is not a whole number of 1 or more"
        )),
    }
}

/// A weekday 0–7 from Sunday, by number or English name; `None` for what this does not read.
fn weekday(text: &str) -> Result<Option<u8>, String> {
    if let Ok(day) = text.parse::<u8>() {
        return match day {
            0..=7 => Ok(Some(day)),
            _ => Err(format!(
                "weekday {day} is out of range; use 0–7 (0 and 7 are Sunday) or Mon–Sun"
            )),
        };
    }
    let day = match text.to_lowercase().as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        _ => return Ok(None),
    };
    Ok(Some(day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vixie_weekdays_become_the_crates_numbers() {
        let cases = [
            ("0", "1"),
            ("7", "1"),
            ("1-5", "2,3,4,5,6"),
            ("0-7", "1,2,3,4,5,6,7,1"),
            ("2-7/2", "3,5,7"),
            ("*/2", "1,3,5,7"),
            ("Mon-Sun", "2,3,4,5,6,7,1"),
            ("fri-0", "6,7,1"),
            ("5/2", "6,1"),
            ("Mon-Fry", "Mon-Fry"),
            ("1,3", "2,4"),
        ];
        for (vixie, crate_form) in cases {
            assert_eq!(
                vixie_days_of_week(vixie).as_deref(),
                Ok(crate_form),
                "{vixie}"
            );
        }
    }

    #[test]
    fn the_day_rule_follows_vixie_text() {
        assert_eq!(DayRule::vixie("13", "5"), DayRule::Either);
        assert_eq!(DayRule::vixie("1-31", "Mon"), DayRule::Either);
        assert_eq!(DayRule::vixie("*", "5"), DayRule::Both);
        assert_eq!(DayRule::vixie("*/2", "1"), DayRule::Both);
        assert_eq!(DayRule::vixie("13", "*"), DayRule::Both);
    }

    #[test]
    fn next_bit_finds_the_next_allowed_value() {
        let set = 1 << 3 | 1 << 10 | 1 << 63;
        assert_eq!(next_bit(set, 0), Some(3));
        assert_eq!(next_bit(set, 3), Some(3));
        assert_eq!(next_bit(set, 4), Some(10));
        assert_eq!(next_bit(set, 11), Some(63));
        assert_eq!(next_bit(1 << 5, 6), None);
        assert_eq!(next_bit(set, 64), None);
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
        assert!(parse_cron("0 9 * * 5-1").unwrap_err().contains("backwards"));
        assert!(parse_cron("0 9 * * 1-5/0").unwrap_err().contains("step"));
        assert!(parse_cron("61 9 * * *").is_err());
        let fry = parse_cron("0 9 * * Mon-Fry").unwrap_err();
        assert!(
            fry.contains("'Fry' is not a valid day of the week"),
            "{fry}"
        );
    }

    #[test]
    fn a_day_no_month_has_is_an_error_unless_a_weekday_can_fire() {
        let error = parse_cron("0 9 31 2,4 *").unwrap_err();
        assert!(error.contains("never fires"), "{error}");
        assert!(parse_cron("0 0 9 30 2 *").is_err());
        assert!(parse_cron("0 9 31 2 5").is_ok(), "Fridays of February");
        assert!(parse_cron("0 9 29 2 *").is_ok());
    }

    #[test]
    fn an_unknown_zone_is_an_error() {
        let error = CronSchedule::parse("0 9 * * *", Some("Asia/Jakart")).unwrap_err();
        assert!(error.contains("unknown time zone"), "{error}");
    }
}
