//! `pending_excuse`: an absence still without excuse decision some school days later
//! (Niedersachsen: the reason is due by the third day; WebUntis shows such entries as "?").

use super::{History, RuleParams, evidence_entry, finding};
use crate::calendar::Calendar;
use crate::model::Finding;

pub const ID: &str = "pending_excuse";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    let mut longest = 0u32;
    let mut evidence = Vec::new();
    for (day, rec) in h.days.iter().filter(|(_, r)| r.pending) {
        // School days that have passed since the absence, the day itself not counted.
        let waited = h.school_days_between(day.succ_opt()?, h.today) as u32;
        if p.pending_excuse.classify(f64::from(waited)).is_some() {
            longest = longest.max(waited);
            evidence.push(evidence_entry(*day, &[&super::lessons_token(rec.lessons)]));
        }
    }
    let severity = p.pending_excuse.classify(f64::from(longest))?;
    Some(finding(
        h,
        ID,
        severity,
        calendar.school_year().label(),
        longest,
        evidence,
    ))
}
