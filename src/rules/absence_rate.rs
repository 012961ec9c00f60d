//! `absence_rate`: share of school days absent since the school year's start
//! (Attendance Works / AIR EWIMS: 5 % watch, 10 % chronic, 20 % severe).

use super::{History, RuleParams, date_str, finding};
use crate::calendar::Calendar;
use crate::model::Finding;

pub const ID: &str = "absence_rate";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    let school_days = h.school_days.len() as u32;
    if school_days == 0 || school_days < p.absence_rate_min_school_days {
        return None;
    }
    let year = calendar.school_year();
    let days = h.absence_days_between(year.start, h.today);
    let percent = f64::from(days.len() as u32) * 100.0 / f64::from(school_days);
    let severity = p.absence_rate.classify(percent)?;
    Some(finding(
        h,
        ID,
        severity,
        year.label(),
        percent.floor() as u32,
        days.into_iter().map(date_str).collect(),
    ))
}
