//! When the daemon does what, as pure functions of the school config and the current instant.
//!
//! Every slot is computed in the school's local time with chrono-tz on each call, never with a
//! fixed UTC offset: a cron library that caches the offset (tokio-cron-scheduler does) would send
//! the Monday digest an hour off after every daylight-saving change. A local time that the change
//! skips (02:30 on 29 March 2026 in Berlin) counts as the first quarter hour after the gap; a
//! repeated one (02:30 on 25 October 2026) as its first occurrence, so it runs once.

use crate::calendar::is_school_day_on;
use crate::config::{SchoolConfig, WeeklySlot};
use crate::sync::local_instant;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeDelta, Utc};

/// Syncs outside `sync_hours` or on days without school: often enough to notice excuses entered
/// in the evening, rarely enough to leave WebUntis alone.
pub const OFF_HOURS_SYNC: TimeDelta = TimeDelta::hours(1);

/// The daily retention job's school-local time: after the nightly reconcile, before school.
pub fn retention_at() -> NaiveTime {
    NaiveTime::from_hms_opt(3, 30, 0).unwrap_or(NaiveTime::MIN)
}

/// Whether `day` (school-local) is a school day: a weekday that is neither a public holiday of
/// the school's state nor inside a configured holiday.
pub fn is_school_day(school: &SchoolConfig, day: NaiveDate) -> bool {
    is_school_day_on(&school.state, &school.holidays, day)
}

/// Whether `t` falls inside `sync_hours` on a school day.
pub fn in_sync_hours(school: &SchoolConfig, t: DateTime<Utc>) -> bool {
    let local = t.with_timezone(&school.timezone);
    let hours = school.untis.sync_hours;
    // A range that wraps past midnight belongs to the day it started on.
    let day = if hours.start > hours.end && local.time() < hours.end {
        local.date_naive().pred_opt().unwrap_or(local.date_naive())
    } else {
        local.date_naive()
    };
    hours.contains(local.time()) && is_school_day(school, day)
}

/// The first instant after `after` at which the local clock reads `at`.
pub fn next_daily(tz: chrono_tz::Tz, at: NaiveTime, after: DateTime<Utc>) -> DateTime<Utc> {
    let mut day = after.with_timezone(&tz).date_naive();
    for _ in 0..3 {
        if let Some(t) = local_instant(tz, day.and_time(at))
            && t > after
        {
            return t;
        }
        day = day.succ_opt().unwrap_or(day);
    }
    after + TimeDelta::days(1)
}

/// The next sync after the one that started at `last`: `sync_every` inside the sync hours on
/// school days, hourly otherwise, at the latest when the sync hours open or the nightly
/// reconcile is due. The first sync (no `last`) and a sync missed while the daemon was down are
/// due `now`.
pub fn next_sync(
    school: &SchoolConfig,
    now: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let Some(last) = last else {
        return now;
    };
    let every = TimeDelta::from_std(school.untis.sync_every).unwrap_or(OFF_HOURS_SYNC);
    let period = if in_sync_hours(school, last) {
        every
    } else {
        OFF_HOURS_SYNC
    };
    let mut next = last + period;
    if let Some(open) = next_window_open(school, last) {
        next = next.min(open);
    }
    next = next.min(next_daily(
        school.timezone,
        school.untis.full_reconcile_at,
        last,
    ));
    next.max(now)
}

/// When the sync hours next open on a school day, if that is today or tomorrow (local).
fn next_window_open(school: &SchoolConfig, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut day = after.with_timezone(&school.timezone).date_naive();
    for _ in 0..2 {
        if is_school_day(school, day)
            && let Some(t) =
                local_instant(school.timezone, day.and_time(school.untis.sync_hours.start))
            && t > after
        {
            return Some(t);
        }
        day = day.succ_opt()?;
    }
    None
}

/// The two weekly digests: to each class teacher about their Klassen, and the optional
/// school-wide one to the social workers. Each has its own slot and bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Digest {
    ClassTeachers,
    SchoolWide,
}

impl Digest {
    pub const ALL: [Digest; 2] = [Digest::ClassTeachers, Digest::SchoolWide];

    /// The configured slot; `None` when this digest is off for the school (the school-wide one
    /// needs `social_worker_digest`, social workers, and `social_workers_see = "school"`).
    pub fn slot(self, school: &SchoolConfig) -> Option<WeeklySlot> {
        match self {
            Digest::ClassTeachers => Some(school.notify.digest),
            Digest::SchoolWide => school.notify.social_worker_digest.filter(|_| {
                school.recipients.social_workers_see_school
                    && !school.recipients.social_workers.is_empty()
            }),
        }
    }

    /// The mark that records the last slot whose digests were made.
    pub fn done_mark(self) -> &'static str {
        match self {
            Digest::ClassTeachers => "daemon|digest-slot",
            Digest::SchoolWide => "daemon|school-digest-slot",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The slot of `kind` in the ISO week that contains the local day `day`.
pub fn digest_slot_in_week(
    school: &SchoolConfig,
    kind: Digest,
    day: NaiveDate,
) -> Option<DateTime<Utc>> {
    let slot = kind.slot(school)?;
    let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let slot_day = monday + Duration::days(i64::from(slot.weekday.num_days_from_monday()));
    local_instant(school.timezone, slot_day.and_time(slot.time))
}

/// The latest slot of `kind` at or before `now`.
pub fn last_digest_slot(
    school: &SchoolConfig,
    kind: Digest,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&school.timezone).date_naive();
    [today, today - Duration::days(7)]
        .into_iter()
        .filter_map(|d| digest_slot_in_week(school, kind, d))
        .find(|t| *t <= now)
}

/// The first slot of `kind` after `now`.
pub fn next_digest(
    school: &SchoolConfig,
    kind: Digest,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&school.timezone).date_naive();
    [today, today + Duration::days(7)]
        .into_iter()
        .filter_map(|d| digest_slot_in_week(school, kind, d))
        .find(|t| *t > now)
}

/// The slot of `kind` that is due now, if any: the latest slot at or before `now` that is not
/// done yet. A slot missed while the daemon was down is due once (only the latest: recipients
/// get one digest, not a backlog); slots before the daemon's first start for this school
/// (`first_start`) are never due, so a fresh database does not greet teachers with a digest on
/// a Wednesday.
pub fn due_digest(
    school: &SchoolConfig,
    kind: Digest,
    now: DateTime<Utc>,
    first_start: DateTime<Utc>,
    last_done: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let slot = last_digest_slot(school, kind, now)?;
    (slot >= first_start && last_done.is_none_or(|done| done < slot)).then_some(slot)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::{TimeRange, WeeklySlot};
    use crate::sim::{Scenario, SimConfig};
    use chrono::TimeZone;
    use chrono::Weekday;
    use chrono_tz::Europe::Berlin;

    fn school(digest: (Weekday, u32, u32), every_min: u64) -> SchoolConfig {
        let today = NaiveDate::from_ymd_opt(2026, 3, 13).unwrap();
        let scenario = Scenario::generate(1, 8, today);
        let mut s = scenario.school_config(
            "gym-schedule",
            "Schedule",
            url::Url::parse("http://127.0.0.1:9").unwrap(),
            &SimConfig::default(),
            &[],
        );
        // Only public holidays: the table below names its school days.
        s.holidays.clear();
        s.state = "NW".into();
        s.untis.sync_every = std::time::Duration::from_secs(every_min * 60);
        s.untis.sync_hours = TimeRange {
            start: NaiveTime::from_hms_opt(6, 30, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        };
        s.notify.digest = WeeklySlot {
            weekday: digest.0,
            time: NaiveTime::from_hms_opt(digest.1, digest.2, 0).unwrap(),
        };
        s
    }

    /// A school-local wall-clock time (first occurrence) as UTC.
    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Berlin
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn sync_times_follow_local_hours_across_dst() {
        let s = school((Weekday::Mon, 7, 0), 15);
        // (last sync, expected next)
        let cases = [
            // Inside the hours on a school day: every 15 minutes.
            (local(2026, 3, 27, 10, 0), local(2026, 3, 27, 10, 15)),
            // Friday evening: hourly.
            (local(2026, 3, 27, 18, 0), local(2026, 3, 27, 19, 0)),
            // Saturday night before the spring change: the reconcile at 02:30 falls into the
            // skipped hour on Sunday 29 March and runs at 03:00 CEST (01:00Z).
            (utc("2026-03-29T00:40:00Z"), utc("2026-03-29T01:00:00Z")),
            // Hourly on the short night: one real hour, not one wall-clock hour.
            (utc("2026-03-29T00:10:00Z"), utc("2026-03-29T01:00:00Z")),
            // Monday after the change: the hours open at 06:30 CEST (04:30Z), not 05:30Z.
            (local(2026, 3, 30, 6, 0), utc("2026-03-30T04:30:00Z")),
            (utc("2026-03-30T04:30:00Z"), utc("2026-03-30T04:45:00Z")),
            // Autumn: 02:30 occurs twice on 25 October; the reconcile runs at the first (00:30Z).
            (utc("2026-10-25T00:00:00Z"), utc("2026-10-25T00:30:00Z")),
            // After the first 02:30, hourly through the repeated hour, no second reconcile.
            (utc("2026-10-25T00:30:00Z"), utc("2026-10-25T01:30:00Z")),
            (utc("2026-10-25T01:30:00Z"), utc("2026-10-25T02:30:00Z")),
            // Monday 26 October: the hours open at 06:30 CET (05:30Z).
            (local(2026, 10, 26, 6, 0), utc("2026-10-26T05:30:00Z")),
            // Easter Monday 2026 (6 April) is a public holiday: hourly all day.
            (local(2026, 4, 6, 10, 0), local(2026, 4, 6, 11, 0)),
        ];
        for (last, want) in cases {
            assert_eq!(next_sync(&s, last, Some(last)), want, "after {last}");
        }
        // The first sync, and one missed while down, are due at once.
        let now = local(2026, 3, 27, 10, 7);
        assert_eq!(next_sync(&s, now, None), now);
        assert_eq!(next_sync(&s, now, Some(local(2026, 3, 26, 10, 0))), now);
    }

    #[test]
    fn digest_slots_keep_local_time_across_dst() {
        // (slot, now, expected next digest)
        let cases = [
            // Monday 07:00: CET before 29 March, CEST after.
            (
                (Weekday::Mon, 7, 0),
                local(2026, 3, 24, 12, 0),
                utc("2026-03-30T05:00:00Z"),
            ),
            (
                (Weekday::Mon, 7, 0),
                local(2026, 3, 23, 6, 59),
                utc("2026-03-23T06:00:00Z"),
            ),
            (
                (Weekday::Mon, 7, 0),
                local(2026, 10, 20, 12, 0),
                utc("2026-10-26T06:00:00Z"),
            ),
            // A slot inside the skipped hour runs right after the gap (03:00 CEST).
            (
                (Weekday::Sun, 2, 30),
                local(2026, 3, 25, 12, 0),
                utc("2026-03-29T01:00:00Z"),
            ),
            // A slot inside the repeated hour runs once, at its first occurrence (CEST).
            (
                (Weekday::Sun, 2, 30),
                local(2026, 10, 20, 12, 0),
                utc("2026-10-25T00:30:00Z"),
            ),
            (
                (Weekday::Sun, 2, 30),
                utc("2026-10-25T00:30:00Z"),
                utc("2026-11-01T01:30:00Z"),
            ),
        ];
        for (slot, now, want) in cases {
            let s = school(slot, 15);
            assert_eq!(
                next_digest(&s, Digest::ClassTeachers, now),
                Some(want),
                "{slot:?} after {now}"
            );
        }
    }

    #[test]
    fn a_digest_missed_while_down_is_due_once_and_none_before_the_first_start() {
        let s = school((Weekday::Mon, 7, 0), 15);
        let slot = utc("2026-10-26T06:00:00Z");
        let first_start = local(2026, 10, 1, 9, 0);
        // Before the slot nothing of this week is due; last week's slot was done.
        let last_week = utc("2026-10-19T05:00:00Z");
        assert_eq!(
            due_digest(
                &s,
                Digest::ClassTeachers,
                local(2026, 10, 26, 6, 59),
                first_start,
                Some(last_week)
            ),
            None
        );
        // At the slot, and later that week after a downtime, it is due until done.
        assert_eq!(
            due_digest(
                &s,
                Digest::ClassTeachers,
                slot,
                first_start,
                Some(last_week)
            ),
            Some(slot)
        );
        let back = local(2026, 10, 28, 14, 0);
        assert_eq!(
            due_digest(
                &s,
                Digest::ClassTeachers,
                back,
                first_start,
                Some(last_week)
            ),
            Some(slot)
        );
        assert_eq!(
            due_digest(&s, Digest::ClassTeachers, back, first_start, Some(slot)),
            None
        );
        // Down for two weeks: only the latest slot is due, once.
        let later = local(2026, 11, 10, 8, 0);
        assert_eq!(
            due_digest(
                &s,
                Digest::ClassTeachers,
                later,
                first_start,
                Some(last_week)
            ),
            Some(utc("2026-11-09T06:00:00Z"))
        );
        // A fresh database started on a Wednesday sends nothing until next Monday.
        let fresh = local(2026, 10, 28, 9, 0);
        assert_eq!(
            due_digest(&s, Digest::ClassTeachers, fresh, fresh, None),
            None
        );
        assert_eq!(
            due_digest(
                &s,
                Digest::ClassTeachers,
                slot + Duration::days(7),
                fresh,
                None
            ),
            Some(slot + Duration::days(7))
        );
    }

    #[test]
    fn daily_slots_across_dst() {
        let at = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            next_daily(Berlin, at, utc("2026-03-28T12:00:00Z")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            next_daily(Berlin, at, utc("2026-03-29T01:00:00Z")),
            utc("2026-03-30T00:30:00Z")
        );
        assert_eq!(
            next_daily(Berlin, retention_at(), utc("2026-10-25T00:00:00Z")),
            utc("2026-10-25T02:30:00Z")
        );
    }
}
