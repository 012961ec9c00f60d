//! `consecutive_days`: a run of absence days on consecutive school days. Weekends and holidays
//! neither break a run nor count in it (Hamburg: five consecutive days; PowerSchool, Gibbon: 3).

use super::{History, RECENT_SCHOOL_DAYS, RuleParams, date_str, finding};
use crate::calendar::Calendar;
use crate::model::Finding;
use chrono::NaiveDate;

pub const ID: &str = "consecutive_days";

pub fn evaluate(h: &History, _calendar: &Calendar, p: &RuleParams) -> Vec<Finding> {
    let Some(cutoff) = h.recent_cutoff(RECENT_SCHOOL_DAYS) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut run: Vec<NaiveDate> = Vec::new();
    // Walk the school days in order; a school day without absence ends the run.
    for day in h
        .school_days
        .iter()
        .copied()
        .chain(std::iter::once(NaiveDate::MAX))
    {
        if day != NaiveDate::MAX && h.is_absence_day(day) {
            run.push(day);
            continue;
        }
        if let (Some(first), Some(last)) = (run.first(), run.last())
            && *last >= cutoff
            && let Some(severity) = p.consecutive_days.classify(run.len() as f64)
        {
            out.push(finding(
                h,
                ID,
                severity,
                date_str(*first),
                run.len() as u32,
                run.iter().copied().map(date_str).collect(),
            ));
        }
        run.clear();
    }
    out
}
