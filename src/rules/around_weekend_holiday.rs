//! `around_weekend_holiday`: absence days right before or after a weekend or holiday, when they
//! are most of a student's absences (the "Friday effect"; many schools demand a medical
//! certificate for days next to the holidays).

use super::{History, RuleParams, date_str, finding, half_year_period};
use crate::calendar::Calendar;
use crate::model::Finding;

pub const ID: &str = "around_weekend_holiday";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    let params = &p.around_weekend_holiday;
    let half = calendar.half_year(h.today)?;
    let from = h.window_start(params.weeks);
    let absent = h.absence_days_between(from, h.today);
    if absent.is_empty() {
        return None;
    }
    let adjacent: Vec<_> = absent
        .iter()
        .copied()
        .filter(|d| {
            let before = d.pred_opt().is_some_and(|x| !calendar.is_school_day(x));
            let after = d.succ_opt().is_some_and(|x| !calendar.is_school_day(x));
            before || after
        })
        .collect();
    let count = adjacent.len() as u32;
    let share = f64::from(count) * 100.0 / absent.len() as f64;
    if share < params.min_share_percent {
        return None;
    }
    let severity = params.bands.classify(f64::from(count))?;
    Some(finding(
        h,
        ID,
        severity,
        half_year_period(calendar, half.number),
        count,
        adjacent.into_iter().map(date_str).collect(),
    ))
}
