//! `days_per_half_year`: absence days (any reason) in the current half-year
//! (Hessen Schulportal, Schleswig-Holstein: 5 / 11 / 21; "severe" above 40 is noted).

use super::{History, RuleParams, date_str, finding, half_year_period};
use crate::calendar::Calendar;
use crate::model::Finding;

pub const ID: &str = "days_per_half_year";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    let half = calendar.half_year(h.today)?;
    let days = h.absence_days_between(half.start, h.today);
    let count = days.len() as u32;
    let severity = p.days_per_half_year.classify(f64::from(count))?;
    Some(finding(
        h,
        ID,
        severity,
        half_year_period(calendar, half.number),
        count,
        days.into_iter().map(date_str).collect(),
    ))
}
