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
    // Each absence day with its position among the school days: a run is a stretch of
    // consecutive positions. Only the student's absence days are walked, not the whole year.
    let positions = h
        .days
        .iter()
        .filter(|(_, r)| r.absence_day)
        .filter_map(|(d, _)| h.school_days.binary_search(d).ok().map(|i| (i, *d)));
    let mut runs: Vec<Vec<NaiveDate>> = Vec::new();
    let mut last_index: Option<usize> = None;
    for (i, day) in positions {
        match (last_index, runs.last_mut()) {
            (Some(prev), Some(run)) if prev + 1 == i => run.push(day),
            _ => runs.push(vec![day]),
        }
        last_index = Some(i);
    }
    runs.into_iter()
        .filter(|run| run.last().is_some_and(|last| *last >= cutoff))
        .filter_map(|run| {
            let severity = p.consecutive_days.classify(run.len() as f64)?;
            Some(finding(
                h,
                ID,
                severity,
                date_str(run[0]),
                run.len() as u32,
                run.into_iter().map(date_str).collect(),
            ))
        })
        .collect()
}
