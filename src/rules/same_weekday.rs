//! `same_weekday`: absent on the same weekday in consecutive weeks while present the school day
//! before and after (Hessen Schulportal "Tagesfehlungen": at least two consecutive weeks).

use super::{History, RECENT_SCHOOL_DAYS, RuleParams, date_str, finding};
use crate::calendar::Calendar;
use crate::model::Finding;
use chrono::{Duration, NaiveDate};

pub const ID: &str = "same_weekday";

/// An absence day with presence on the neighbouring school days. A neighbour after the
/// evaluation day is not known yet and counts as present.
fn isolated(h: &History, calendar: &Calendar, day: NaiveDate) -> bool {
    if !h.is_absence_day(day) {
        return false;
    }
    let before = calendar
        .prev_school_day(day)
        .is_some_and(|d| h.is_absence_day(d));
    let after = calendar
        .next_school_day(day)
        .is_some_and(|d| d <= h.today && h.is_absence_day(d));
    !before && !after
}

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Vec<Finding> {
    let Some(cutoff) = h.recent_cutoff(RECENT_SCHOOL_DAYS) else {
        return Vec::new();
    };
    let isolated_days: Vec<NaiveDate> = h
        .days
        .iter()
        .filter(|(d, _)| isolated(h, calendar, **d))
        .map(|(d, _)| *d)
        .collect();
    let mut used = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for &start in &isolated_days {
        if used.contains(&start) {
            continue;
        }
        // Follow the chain week by week; a week in which that weekday is no school day
        // (holiday) neither breaks nor extends it.
        let mut chain = vec![start];
        let mut next = start + Duration::days(7);
        while next <= h.today {
            if isolated_days.binary_search(&next).is_ok() {
                chain.push(next);
            } else if calendar.is_school_day(next) {
                break;
            }
            next += Duration::days(7);
        }
        used.extend(chain.iter().copied());
        let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
            continue;
        };
        if *last < cutoff || chain.len() < 2 {
            continue;
        }
        if let Some(severity) = p.same_weekday.classify(chain.len() as f64) {
            out.push(finding(
                h,
                ID,
                severity,
                date_str(*first),
                chain.len() as u32,
                chain.iter().copied().map(date_str).collect(),
            ));
        }
    }
    out
}
