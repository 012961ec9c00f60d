//! The school calendar: school days (no weekends, public holidays of the state, configured school
//! holidays), half-years and the bell schedule.

use crate::config::{Holiday, Period};
use crate::model::SchoolYear;
use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use std::collections::BTreeMap;

/// The German states (ISO 3166-2:DE suffixes) whose public holidays we know.
pub const STATES: [&str; 16] = [
    "BW", "BY", "BE", "BB", "HB", "HH", "HE", "MV", "NI", "NW", "RP", "SL", "SN", "ST", "SH", "TH",
];

/// Easter Sunday (Gregorian calendar), by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

/// Public holidays of a state in a calendar year, with their German names. Holidays that fall
/// on a weekend are listed too; they simply do not change anything.
pub fn public_holidays(state: &str, year: i32) -> Vec<(NaiveDate, &'static str)> {
    let mut out = Vec::new();
    let fixed = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d);
    let in_states = |list: &[&str]| list.contains(&state);
    let Some(easter) = easter_sunday(year) else {
        return out;
    };
    let mut add = |date: Option<NaiveDate>, name: &'static str| {
        if let Some(d) = date {
            out.push((d, name));
        }
    };
    add(fixed(1, 1), "Neujahr");
    if in_states(&["BW", "BY", "ST"]) {
        add(fixed(1, 6), "Heilige Drei Könige");
    }
    if (state == "BE" && year >= 2019) || (state == "MV" && year >= 2023) {
        add(fixed(3, 8), "Internationaler Frauentag");
    }
    add(Some(easter - Duration::days(2)), "Karfreitag");
    add(Some(easter + Duration::days(1)), "Ostermontag");
    add(fixed(5, 1), "Tag der Arbeit");
    add(Some(easter + Duration::days(39)), "Christi Himmelfahrt");
    add(Some(easter + Duration::days(50)), "Pfingstmontag");
    if in_states(&["BW", "BY", "HE", "NW", "RP", "SL"]) {
        add(Some(easter + Duration::days(60)), "Fronleichnam");
    }
    if state == "SL" {
        add(fixed(8, 15), "Mariä Himmelfahrt");
    }
    if state == "TH" && year >= 2019 {
        add(fixed(9, 20), "Weltkindertag");
    }
    add(fixed(10, 3), "Tag der Deutschen Einheit");
    if in_states(&["BB", "HB", "HH", "MV", "NI", "SN", "ST", "SH", "TH"]) {
        add(fixed(10, 31), "Reformationstag");
    }
    if in_states(&["BW", "BY", "NW", "RP", "SL"]) {
        add(fixed(11, 1), "Allerheiligen");
    }
    if state == "SN" {
        // The Wednesday before 23 November.
        if let Some(nov23) = fixed(11, 23) {
            let back = (nov23.weekday().num_days_from_monday() + 7 - 2) % 7;
            let back = if back == 0 { 7 } else { back };
            add(Some(nov23 - Duration::days(back.into())), "Buß- und Bettag");
        }
    }
    add(fixed(12, 25), "1. Weihnachtstag");
    add(fixed(12, 26), "2. Weihnachtstag");
    out
}

/// Whether `day` is a school day by weekday, the public holidays of `state` and `holidays`,
/// without regard to a school year (the daemon's schedule asks this before any sync).
pub fn is_school_day_on(state: &str, holidays: &[Holiday], day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
        && !holidays.iter().any(|h| h.from <= day && day <= h.to)
        && !public_holidays(state, day.year())
            .iter()
            .any(|(d, _)| *d == day)
}

/// Why a day is not a school day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayOff {
    Weekend,
    PublicHoliday(String),
    SchoolHoliday(String),
    OutsideSchoolYear,
}

/// One half-year of the school year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfYear {
    /// 1 or 2.
    pub number: u8,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// A school's calendar for one school year.
#[derive(Debug, Clone)]
pub struct Calendar {
    year: SchoolYear,
    public: BTreeMap<NaiveDate, String>,
    holidays: Vec<Holiday>,
    half_year_starts: Vec<NaiveDate>,
    periods: Vec<Period>,
    /// `is_school_day` per day of the school year, from its start: the rules ask this for
    /// every day of every student, so it is computed once.
    school_day: Vec<bool>,
    /// The school days of the year in order, for the same reason.
    school_day_list: Vec<NaiveDate>,
}

impl Calendar {
    /// `half_year_starts` may be empty: then the half-years start at the school year's start and
    /// on 1 February. `periods` is the bell schedule (sorted or not).
    pub fn new(
        year: SchoolYear,
        state: &str,
        holidays: &[Holiday],
        half_year_starts: &[NaiveDate],
        periods: &[Period],
    ) -> Calendar {
        let mut public = BTreeMap::new();
        for y in year.start.year()..=year.end.year() {
            for (d, name) in public_holidays(state, y) {
                public.insert(d, name.to_string());
            }
        }
        let mut starts: Vec<NaiveDate> = half_year_starts
            .iter()
            .copied()
            .filter(|d| year.contains(*d))
            .collect();
        if starts.is_empty() {
            starts.push(year.start);
            if let Some(feb1) = NaiveDate::from_ymd_opt(year.end.year(), 2, 1)
                && year.contains(feb1)
                && feb1 > year.start
            {
                starts.push(feb1);
            }
        }
        starts.sort();
        starts.dedup();
        if starts[0] > year.start {
            // Days before the first configured start belong to the first half-year.
            starts[0] = year.start;
        }
        let mut periods = periods.to_vec();
        periods.sort_by_key(|p| p.number);
        let mut calendar = Calendar {
            year,
            public,
            holidays: holidays.to_vec(),
            half_year_starts: starts,
            periods,
            school_day: Vec::new(),
            school_day_list: Vec::new(),
        };
        calendar.school_day = year
            .start
            .iter_days()
            .take_while(|d| *d <= year.end)
            .map(|d| calendar.day_off(d).is_none())
            .collect();
        calendar.school_day_list = year
            .start
            .iter_days()
            .zip(calendar.school_day.iter())
            .filter(|(_, school)| **school)
            .map(|(d, _)| d)
            .collect();
        calendar
    }

    /// The school days of the school year up to and including `day`, in order.
    pub fn school_days_until(&self, day: NaiveDate) -> &[NaiveDate] {
        let n = self.school_day_list.partition_point(|d| *d <= day);
        &self.school_day_list[..n]
    }

    pub fn school_year(&self) -> SchoolYear {
        self.year
    }

    /// `None` for a school day, else why the day is off.
    pub fn day_off(&self, day: NaiveDate) -> Option<DayOff> {
        if !self.year.contains(day) {
            return Some(DayOff::OutsideSchoolYear);
        }
        if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            return Some(DayOff::Weekend);
        }
        if let Some(name) = self.public.get(&day) {
            return Some(DayOff::PublicHoliday(name.clone()));
        }
        if let Some(h) = self.holidays.iter().find(|h| h.from <= day && day <= h.to) {
            return Some(DayOff::SchoolHoliday(h.name.clone()));
        }
        None
    }

    pub fn is_school_day(&self, day: NaiveDate) -> bool {
        usize::try_from((day - self.year.start).num_days())
            .ok()
            .and_then(|i| self.school_day.get(i).copied())
            .unwrap_or(false)
    }

    /// School days from `from` to `to`, both inclusive.
    pub fn school_days(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let lo = self.school_day_list.partition_point(|d| *d < from);
        let hi = self.school_day_list.partition_point(|d| *d <= to);
        self.school_day_list[lo..hi.max(lo)].to_vec()
    }

    /// The last school day before `day`, within the school year.
    pub fn prev_school_day(&self, day: NaiveDate) -> Option<NaiveDate> {
        let mut d = day.pred_opt()?;
        while d >= self.year.start {
            if self.is_school_day(d) {
                return Some(d);
            }
            d = d.pred_opt()?;
        }
        None
    }

    /// The first school day after `day`, within the school year.
    pub fn next_school_day(&self, day: NaiveDate) -> Option<NaiveDate> {
        let mut d = day.succ_opt()?;
        while d <= self.year.end {
            if self.is_school_day(d) {
                return Some(d);
            }
            d = d.succ_opt()?;
        }
        None
    }

    /// The half-year that contains `day`, if the day lies in the school year.
    pub fn half_year(&self, day: NaiveDate) -> Option<HalfYear> {
        if !self.year.contains(day) {
            return None;
        }
        let idx = self.half_year_starts.iter().rposition(|s| *s <= day)?;
        let start = self.half_year_starts[idx];
        let end = match self.half_year_starts.get(idx + 1) {
            Some(next) => next.pred_opt().unwrap_or(*next),
            None => self.year.end,
        };
        Some(HalfYear {
            number: u8::try_from(idx + 1).unwrap_or(u8::MAX),
            start,
            end,
        })
    }

    /// Bell schedule, sorted by lesson number.
    pub fn periods(&self) -> &[Period] {
        &self.periods
    }

    /// Lesson numbers whose time overlaps `[start, end)`.
    pub fn lessons_between(&self, start: NaiveTime, end: NaiveTime) -> Vec<u32> {
        self.periods
            .iter()
            .filter(|p| p.start < end && start < p.end)
            .map(|p| p.number)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cal(state: &str) -> Calendar {
        Calendar::new(
            SchoolYear {
                start: d("2025-08-01"),
                end: d("2026-07-31"),
            },
            state,
            &[Holiday {
                from: d("2025-10-13"),
                to: d("2025-10-25"),
                name: "Herbstferien".into(),
            }],
            &[],
            &[],
        )
    }

    #[test]
    fn easter_dates() {
        for (y, e) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
        ] {
            assert_eq!(easter_sunday(y), Some(d(e)), "{y}");
        }
    }

    #[test]
    fn state_holidays() {
        let c = cal("NW");
        assert_eq!(
            c.day_off(d("2026-06-04")),
            Some(DayOff::PublicHoliday("Fronleichnam".into()))
        );
        assert_eq!(c.day_off(d("2025-11-01")), Some(DayOff::Weekend));
        assert!(cal("BY").day_off(d("2026-01-06")).is_some());
        assert!(cal("NW").is_school_day(d("2026-01-07")));
        assert!(cal("HH").day_off(d("2025-10-31")).is_some());
        assert!(cal("NW").is_school_day(d("2025-10-31")));
        assert_eq!(
            cal("SN").day_off(d("2025-11-19")),
            Some(DayOff::PublicHoliday("Buß- und Bettag".into()))
        );
        assert_eq!(
            c.day_off(d("2025-10-14")),
            Some(DayOff::SchoolHoliday("Herbstferien".into()))
        );
        assert_eq!(c.day_off(d("2026-08-03")), Some(DayOff::OutsideSchoolYear));
    }

    #[test]
    fn neighbours_skip_weekends_and_holidays() {
        let c = cal("NW");
        assert_eq!(c.prev_school_day(d("2025-10-27")), Some(d("2025-10-10")));
        assert_eq!(c.next_school_day(d("2025-10-10")), Some(d("2025-10-27")));
    }

    #[test]
    fn default_half_years() {
        let c = cal("NW");
        let h = c.half_year(d("2026-01-30")).unwrap();
        assert_eq!(
            (h.number, h.start, h.end),
            (1, d("2025-08-01"), d("2026-01-31"))
        );
        let h = c.half_year(d("2026-02-01")).unwrap();
        assert_eq!(
            (h.number, h.start, h.end),
            (2, d("2026-02-01"), d("2026-07-31"))
        );
    }
}
