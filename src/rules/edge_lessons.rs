//! `edge_lessons`: the first lesson(s) or the last lessons of a day missed while present that
//! day (Hessen Schulportal: lessons 1/2 or 5/6, 7/8, from the third time). Needs the bell
//! schedule; without one the rule cannot tell lessons apart and stays silent.

use super::{History, RuleParams, evidence_entry, finding, half_year_period, lessons_token};
use crate::calendar::Calendar;
use crate::model::Finding;

pub const ID: &str = "edge_lessons";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    let periods = calendar.periods();
    let first = periods.first()?.number;
    // "Late" lessons: those in the second half of the bell schedule.
    let half = (periods.len() as u32).div_ceil(2);
    let late_from = periods.get(half as usize).map(|x| x.number)?;
    let mut evidence = Vec::new();
    for (day, rec) in h.days_since(h.window_start(p.edge_lessons.weeks)) {
        if rec.absence_day || rec.lessons.is_empty() {
            continue;
        }
        let morning = rec.lessons.first() == Some(first);
        let afternoon = rec.lessons.first().is_some_and(|l| l >= late_from);
        if morning || afternoon {
            evidence.push(evidence_entry(*day, &[&lessons_token(rec.lessons)]));
        }
    }
    let count = evidence.len() as u32;
    let severity = p.edge_lessons.bands.classify(f64::from(count))?;
    let half_year = calendar.half_year(h.today)?;
    Some(finding(
        h,
        ID,
        severity,
        half_year_period(calendar, half_year.number),
        count,
        evidence,
    ))
}
