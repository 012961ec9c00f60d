//! `lateness`: late arrivals (`type = DELAY`) in the last weeks (Hessen: 5 late arrivals;
//! lateness is one of the early forms of avoidance).

use super::{History, RuleParams, evidence_entry, finding, half_year_period};
use crate::calendar::Calendar;
use crate::model::Finding;

pub const ID: &str = "lateness";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    let mut evidence = Vec::new();
    for (day, rec) in h.days_since(h.window_start(p.lateness.weeks)) {
        for minutes in &rec.delay_minutes {
            evidence.push(evidence_entry(*day, &[&format!("+{minutes}min")]));
        }
    }
    let count = evidence.len() as u32;
    let severity = p.lateness.bands.classify(f64::from(count))?;
    let half = calendar.half_year(h.today)?;
    Some(finding(
        h,
        ID,
        severity,
        half_year_period(calendar, half.number),
        count,
        evidence,
    ))
}
