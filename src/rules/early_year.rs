//! `early_year`: absence days in the first school days of the school year (Baltimore, Olson
//! 2014: 2-4 days missed in September make chronic absence five times as likely, more than 4
//! days sixteen times). The signal is shown until twice that many school days have passed;
//! after that the year-long rules speak for the student.

use super::{History, RuleParams, date_str, finding};
use crate::calendar::Calendar;
use crate::model::Finding;

pub const ID: &str = "early_year";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    let n = p.early_year.school_days as usize;
    if n == 0 || h.school_days.len() > 2 * n {
        return None;
    }
    let last = *h
        .school_days
        .get(n.min(h.school_days.len()).checked_sub(1)?)?;
    let year = calendar.school_year();
    let days = h.absence_days_between(year.start, last);
    let count = days.len() as u32;
    let severity = p.early_year.bands.classify(f64::from(count))?;
    Some(finding(
        h,
        ID,
        severity,
        year.label(),
        count,
        days.into_iter().map(date_str).collect(),
    ))
}
