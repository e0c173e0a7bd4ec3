//! When cron triggers are due (DESIGN §6): Vixie weekdays, the day-of-month/day-of-week OR rule,
//! time zones, both DST changes, seconds, catch-up, year fields and leap days.
//!
//! Times are written and compared as wall-clock readings with the zone's abbreviation, so a test
//! says what a user in that zone would see on the clock.

use chatflow::flow::schedule::{CronSchedule, parse_cron};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

const NEW_YORK: &str = "America/New_York";
const BERLIN: &str = "Europe/Berlin";

/// The next `count` due times after the wall-clock reading `after` in `zone`.
fn next(expression: &str, zone: &str, after: &str, count: usize) -> Vec<String> {
    due_after(expression, zone, at(zone, after), count)
}

/// The next `count` due times after the instant `after`, read on the wall in `zone`.
fn due_after(expression: &str, zone: &str, after: i64, count: usize) -> Vec<String> {
    let schedule = schedule(expression, zone);
    std::iter::successors(schedule.next_after(after), |&due| schedule.next_after(due))
        .take(count)
        .map(|due| wall(zone, due))
        .collect()
}

/// The weekdays of the next seven due times after Monday 2027-01-04 noon UTC.
fn weekdays(expression: &str) -> Vec<String> {
    next(expression, "UTC", "2027-01-04 12:00:00", 7)
        .iter()
        .map(|due| due[..3].to_owned())
        .collect()
}

fn schedule(expression: &str, zone: &str) -> CronSchedule {
    CronSchedule::parse(expression, Some(zone)).unwrap_or_else(|error| panic!("{error}"))
}

/// The instant of a wall-clock reading in `zone`, the first when the reading happens twice.
fn at(zone: &str, reading: &str) -> i64 {
    let zone: Tz = zone.parse().unwrap();
    let naive = NaiveDateTime::parse_from_str(reading, "%Y-%m-%d %H:%M:%S").unwrap();
    zone.from_local_datetime(&naive)
        .earliest()
        .unwrap()
        .timestamp()
}

fn utc(reading: &str) -> i64 {
    at("UTC", reading)
}

fn wall(zone: &str, instant: i64) -> String {
    let zone: Tz = zone.parse().unwrap();
    DateTime::from_timestamp(instant, 0)
        .unwrap()
        .with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

#[test]
fn five_fields_number_weekdays_like_vixie() {
    let every_day = ["Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Mon"];
    assert_eq!(weekdays("0 9 * * 0"), ["Sun"; 7]);
    assert_eq!(weekdays("0 9 * * 7"), ["Sun"; 7]);
    assert_eq!(weekdays("0 9 * * 1"), ["Mon"; 7]);
    assert_eq!(weekdays("0 9 * * 0-7"), every_day);
    assert_eq!(weekdays("0 9 * * Mon-Sun"), every_day);
    assert_eq!(
        weekdays("0 9 * * 1-5"),
        ["Tue", "Wed", "Thu", "Fri", "Mon", "Tue", "Wed"]
    );
    assert_eq!(weekdays("0 9 * * 1-5"), weekdays("0 9 * * Mon-Fri"));
    assert_eq!(
        weekdays("0 9 * * 6-7"),
        ["Sat", "Sun", "Sat", "Sun", "Sat", "Sun", "Sat"]
    );
    assert_eq!(
        weekdays("0 9 * * */2"),
        ["Tue", "Thu", "Sat", "Sun", "Tue", "Thu", "Sat"]
    );
    assert_eq!(
        weekdays("0 9 * * 2-7/2"),
        ["Tue", "Thu", "Sat", "Tue", "Thu", "Sat", "Tue"]
    );
}

#[test]
fn six_fields_keep_the_crates_weekdays_from_sunday_1() {
    assert_eq!(weekdays("0 0 9 * * 1"), ["Sun"; 7]);
    assert_eq!(weekdays("0 0 9 * * 7"), ["Sat"; 7]);
}

#[test]
fn a_day_matches_by_day_of_month_or_weekday_when_both_are_given() {
    assert_eq!(
        next("0 9 13 * 5", "UTC", "2026-04-01 00:00:00", 6),
        [
            "Fri 2026-04-03 09:00:00 UTC",
            "Fri 2026-04-10 09:00:00 UTC",
            "Mon 2026-04-13 09:00:00 UTC",
            "Fri 2026-04-17 09:00:00 UTC",
            "Fri 2026-04-24 09:00:00 UTC",
            "Fri 2026-05-01 09:00:00 UTC",
        ]
    );
    // Vixie: a field starting with `*` counts as unrestricted, so these AND: odd Mondays.
    assert_eq!(
        next("0 9 */2 * 1", "UTC", "2026-04-01 00:00:00", 3),
        [
            "Mon 2026-04-13 09:00:00 UTC",
            "Mon 2026-04-27 09:00:00 UTC",
            "Mon 2026-05-11 09:00:00 UTC",
        ]
    );
}

#[test]
fn six_fields_need_both_day_of_month_and_weekday() {
    assert_eq!(
        next("0 0 9 13 * Fri", "UTC", "2026-01-01 00:00:00", 3),
        [
            "Fri 2026-02-13 09:00:00 UTC",
            "Fri 2026-03-13 09:00:00 UTC",
            "Fri 2026-11-13 09:00:00 UTC",
        ]
    );
}

#[test]
fn a_daily_schedule_fires_at_the_zones_wall_clock_time() {
    let jakarta = "Asia/Jakarta";
    assert_eq!(
        next("0 9 * * Mon-Fri", jakarta, "2027-01-04 10:00:00", 2),
        ["Tue 2027-01-05 09:00:00 WIB", "Wed 2027-01-06 09:00:00 WIB"]
    );
    let daily = schedule("0 9 * * *", jakarta);
    assert_eq!(
        daily.next_after(utc("2027-01-04 00:00:00")),
        Some(utc("2027-01-04 02:00:00"))
    );
    assert_eq!(
        daily.next_after(utc("2027-01-04 02:00:00")),
        Some(utc("2027-01-05 02:00:00"))
    );
}

#[test]
fn new_york_spring_forward_fires_a_skipped_time_at_the_end_of_the_gap() {
    assert_eq!(
        next("30 2 * * *", NEW_YORK, "2026-03-07 12:00:00", 3),
        [
            "Sun 2026-03-08 03:00:00 EDT",
            "Mon 2026-03-09 02:30:00 EDT",
            "Tue 2026-03-10 02:30:00 EDT",
        ]
    );
    assert_eq!(
        next("0 * * * *", NEW_YORK, "2026-03-08 00:30:00", 3),
        [
            "Sun 2026-03-08 01:00:00 EST",
            "Sun 2026-03-08 03:00:00 EDT",
            "Sun 2026-03-08 04:00:00 EDT",
        ]
    );
}

#[test]
fn every_time_a_gap_swallows_fires_once_at_its_end() {
    assert_eq!(
        next("* * * * *", NEW_YORK, "2026-03-08 01:58:00", 3),
        [
            "Sun 2026-03-08 01:59:00 EST",
            "Sun 2026-03-08 03:00:00 EDT",
            "Sun 2026-03-08 03:01:00 EDT",
        ]
    );
    assert_eq!(
        next("0,30 2,3 * * *", NEW_YORK, "2026-03-08 01:00:00", 3),
        [
            "Sun 2026-03-08 03:00:00 EDT",
            "Sun 2026-03-08 03:30:00 EDT",
            "Mon 2026-03-09 02:00:00 EDT",
        ]
    );
    let per_minute = schedule("* * * * *", NEW_YORK);
    let fires = per_minute.due_between(
        at(NEW_YORK, "2026-03-08 01:00:00"),
        at(NEW_YORK, "2026-03-08 04:00:00"),
        1000,
    );
    assert_eq!(
        fires.len(),
        59 + 1 + 60,
        "01:01–01:59 EST, 03:00 once, 03:01–04:00 EDT"
    );
}

#[test]
fn new_york_fall_back_fires_a_repeated_time_on_its_first_pass_only() {
    assert_eq!(
        next("30 1 * * *", NEW_YORK, "2026-10-31 12:00:00", 2),
        ["Sun 2026-11-01 01:30:00 EDT", "Mon 2026-11-02 01:30:00 EST",]
    );
    // 01:15 EST, in the second pass: 01:30 EDT is behind us and 01:30 EST is not fired.
    assert_eq!(
        due_after("30 1 * * *", NEW_YORK, utc("2026-11-01 06:15:00"), 1),
        ["Mon 2026-11-02 01:30:00 EST"]
    );
}

#[test]
fn new_york_hourly_fires_each_wall_clock_hour_once_across_fall_back() {
    assert_eq!(
        next("0 * * * *", NEW_YORK, "2026-11-01 00:30:00", 3),
        [
            "Sun 2026-11-01 01:00:00 EDT",
            "Sun 2026-11-01 02:00:00 EST",
            "Sun 2026-11-01 03:00:00 EST",
        ]
    );
    // From 01:30 EST, in the second pass, the next hour on the wall is 02:00.
    assert_eq!(
        due_after("0 * * * *", NEW_YORK, utc("2026-11-01 06:30:00"), 1),
        ["Sun 2026-11-01 02:00:00 EST"]
    );
}

#[test]
fn an_hourly_schedule_fires_once_per_wall_clock_hour_for_a_whole_year() {
    let hourly = schedule("0 * * * *", NEW_YORK);
    let fires = hourly.due_between(
        at(NEW_YORK, "2025-12-31 23:59:59"),
        at(NEW_YORK, "2026-12-31 23:00:00"),
        10_000,
    );
    assert_eq!(
        fires.len(),
        365 * 24 - 1,
        "02:00 and 03:00 on 8 March share 03:00"
    );
    assert!(fires.windows(2).all(|pair| pair[0] < pair[1]));
    let mut readings: Vec<String> = fires
        .iter()
        .map(|&due| wall(NEW_YORK, due)[4..20].to_owned())
        .collect();
    readings.dedup();
    assert_eq!(
        readings.len(),
        fires.len(),
        "no wall-clock hour fires twice"
    );
}

#[test]
fn berlin_spring_forward_fires_a_skipped_time_at_the_end_of_the_gap() {
    assert_eq!(
        next("30 2 * * *", BERLIN, "2026-03-28 12:00:00", 2),
        [
            "Sun 2026-03-29 03:00:00 CEST",
            "Mon 2026-03-30 02:30:00 CEST",
        ]
    );
    assert_eq!(
        next("0 * * * *", BERLIN, "2026-03-29 00:30:00", 3),
        [
            "Sun 2026-03-29 01:00:00 CET",
            "Sun 2026-03-29 03:00:00 CEST",
            "Sun 2026-03-29 04:00:00 CEST",
        ]
    );
}

#[test]
fn berlin_fall_back_fires_a_repeated_time_on_its_first_pass_only() {
    assert_eq!(
        next("30 2 * * *", BERLIN, "2026-10-24 12:00:00", 2),
        [
            "Sun 2026-10-25 02:30:00 CEST",
            "Mon 2026-10-26 02:30:00 CET",
        ]
    );
    assert_eq!(
        next("0 * * * *", BERLIN, "2026-10-25 01:30:00", 3),
        [
            "Sun 2026-10-25 02:00:00 CEST",
            "Sun 2026-10-25 03:00:00 CET",
            "Sun 2026-10-25 04:00:00 CET",
        ]
    );
}

#[test]
fn a_gap_at_midnight_or_a_whole_skipped_day_fires_when_the_clock_resumes() {
    // Santiago springs forward at midnight: 00:00 on 6 September 2026 does not exist.
    assert_eq!(
        next("0 0 * * *", "America/Santiago", "2026-09-05 12:00:00", 2),
        ["Sun 2026-09-06 01:00:00 -03", "Mon 2026-09-07 00:00:00 -03"]
    );
    // Samoa skipped Friday 30 December 2011 when it crossed the date line.
    assert_eq!(
        next("0 9 * * *", "Pacific/Apia", "2011-12-29 12:00:00", 2),
        ["Sat 2011-12-31 00:00:00 +14", "Sat 2011-12-31 09:00:00 +14"]
    );
}

#[test]
fn six_fields_fire_every_two_seconds() {
    let every_two = CronSchedule::parse("*/2 * * * * *", None).unwrap();
    let start = utc("2026-06-01 12:00:01");
    assert_eq!(
        every_two.due_between(start, start + 10, 100),
        [start + 1, start + 3, start + 5, start + 7, start + 9]
    );
    assert_eq!(every_two.next_after(start + 1), Some(start + 3));
}

#[test]
fn a_per_second_schedule_steps_over_a_gap_in_one_second() {
    let every_second = schedule("* * * * * *", NEW_YORK);
    let before_gap = at(NEW_YORK, "2026-03-08 01:59:59");
    assert_eq!(every_second.next_after(before_gap), Some(before_gap + 1));
    assert_eq!(
        wall(NEW_YORK, before_gap + 1),
        "Sun 2026-03-08 03:00:00 EDT"
    );
}

#[test]
fn catch_up_lists_what_an_outage_missed() {
    let hourly = CronSchedule::parse("0 * * * *", None).unwrap();
    let last_fired = utc("2026-06-01 10:00:00");
    let back_up = utc("2026-06-01 13:20:00");
    let missed = [
        utc("2026-06-01 11:00:00"),
        utc("2026-06-01 12:00:00"),
        utc("2026-06-01 13:00:00"),
    ];
    assert_eq!(hourly.due_between(last_fired, back_up, 10), missed);
    assert_eq!(hourly.due_between(last_fired, back_up, 2), missed[..2]);
    assert_eq!(
        hourly.due_between(last_fired, missed[2], 10),
        missed,
        "the end is included"
    );
    assert!(hourly.due_between(last_fired, back_up, 0).is_empty());
    assert!(hourly.due_between(back_up, last_fired, 10).is_empty());
}

#[test]
fn catch_up_across_fall_back_lists_each_wall_clock_hour_once() {
    let hourly = schedule("0 * * * *", NEW_YORK);
    let missed = hourly.due_between(
        at(NEW_YORK, "2026-11-01 00:00:00"),
        at(NEW_YORK, "2026-11-01 03:00:00"),
        10,
    );
    let readings: Vec<String> = missed.iter().map(|&due| wall(NEW_YORK, due)).collect();
    assert_eq!(
        readings,
        [
            "Sun 2026-11-01 01:00:00 EDT",
            "Sun 2026-11-01 02:00:00 EST",
            "Sun 2026-11-01 03:00:00 EST",
        ]
    );
}

#[test]
fn a_year_field_in_the_past_is_never_due() {
    let past = CronSchedule::parse("0 0 9 1 1 * 2020", None).unwrap();
    assert_eq!(past.next_after(utc("2026-01-01 00:00:00")), None);
    assert!(
        past.due_between(utc("2026-01-01 00:00:00"), i64::MAX, 10)
            .is_empty()
    );
    assert_eq!(
        next("0 0 9 1 1 * 2020,2030", "UTC", "2026-01-01 00:00:00", 2),
        ["Tue 2030-01-01 09:00:00 UTC"]
    );
    let this_year_only = CronSchedule::parse("0 0 9 * * * 2026", None).unwrap();
    assert_eq!(this_year_only.next_after(utc("2026-12-31 09:00:00")), None);
}

#[test]
fn february_29_waits_for_the_next_leap_year() {
    assert_eq!(
        next("0 9 29 2 *", "UTC", "2026-03-01 00:00:00", 2),
        ["Tue 2028-02-29 09:00:00 UTC", "Sun 2032-02-29 09:00:00 UTC"]
    );
    // 2100 is not a leap year; the search is not capped at 2100 as the cron crate's is.
    assert_eq!(
        next("0 9 29 2 *", "UTC", "2097-01-01 00:00:00", 1),
        ["Fri 2104-02-29 09:00:00 UTC"]
    );
    assert_eq!(
        next("0 0 9 29 2 Mon", "UTC", "2026-01-01 00:00:00", 2),
        ["Mon 2044-02-29 09:00:00 UTC", "Mon 2072-02-29 09:00:00 UTC"]
    );
}

#[test]
fn a_far_due_time_is_found_without_stepping_through_seconds() {
    // Stepping second by second would take 2.3 billion steps to get there.
    assert_eq!(
        next("* * * * * * 2099", "UTC", "2026-01-01 00:00:00", 2),
        ["Thu 2099-01-01 00:00:00 UTC", "Thu 2099-01-01 00:00:01 UTC"]
    );
}

/// In UTC, where no DST change applies, and with at most one of the day fields restricted, the
/// cron crate's own iteration is right; the two must agree.
#[test]
fn without_dst_or_the_or_rule_due_times_agree_with_the_cron_crate() {
    let expressions = [
        "0 9 * * 1-5",
        "*/7 3-5 * * *",
        "5 4 1,15 * *",
        "30 9 * Jan,Jul Sun",
        "15,45 */3 * * Mon-Fri",
        "*/2 * * * * *",
        "10-20/5 0 12 29 2 * 2028-2040",
        "0 0 0 31 * *",
    ];
    for expression in expressions {
        let ours = CronSchedule::parse(expression, None).unwrap();
        let theirs = parse_cron(expression).unwrap();
        let mut after = utc("2026-01-01 00:00:00");
        for _ in 0..400 {
            let start = DateTime::from_timestamp(after, 0).unwrap();
            let expected = theirs
                .after(&start)
                .next()
                .map(|due: DateTime<Utc>| due.timestamp());
            assert_eq!(
                ours.next_after(after),
                expected,
                "{expression} after {start}"
            );
            after += 37 * 3600 + 13;
        }
    }
}
