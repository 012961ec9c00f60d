//! `rising_trend`: the absence rate of the last weeks against the student's own rate in the
//! weeks before. No source gives a number; research frames a change in attendance as the
//! warning signal (Kearney et al. 2023), so the default asks for a doubling to at least 10 %.

use super::{History, RuleParams, date_str, finding, half_year_period};
use crate::calendar::Calendar;
use crate::model::{Finding, Severity};
use chrono::Duration;

pub const ID: &str = "rising_trend";

/// School days the earlier period needs before a comparison means anything.
const MIN_BASELINE_SCHOOL_DAYS: usize = 20;
/// School days the recent period needs.
const MIN_RECENT_SCHOOL_DAYS: usize = 10;

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    let params = &p.rising_trend;
    if !params.enabled {
        return None;
    }
    let recent_from = h.window_start(params.recent_weeks);
    let baseline_to = recent_from.pred_opt()?;
    let baseline_from = recent_from - Duration::days(i64::from(params.baseline_weeks) * 7);
    let recent_days = h.school_days_between(recent_from, h.today);
    let baseline_days = h.school_days_between(baseline_from, baseline_to);
    if recent_days < MIN_RECENT_SCHOOL_DAYS || baseline_days < MIN_BASELINE_SCHOOL_DAYS {
        return None;
    }
    let recent = h.absence_days_between(recent_from, h.today);
    let baseline = h.absence_days_between(baseline_from, baseline_to);
    let recent_rate = recent.len() as f64 * 100.0 / recent_days as f64;
    let baseline_rate = baseline.len() as f64 * 100.0 / baseline_days as f64;
    if recent_rate < params.min_rate_percent || recent_rate < params.ratio * baseline_rate {
        return None;
    }
    let half = calendar.half_year(h.today)?;
    Some(finding(
        h,
        ID,
        Severity::Warning,
        half_year_period(calendar, half.number),
        recent_rate.floor() as u32,
        recent.into_iter().map(date_str).collect(),
    ))
}
