//! `subject_avoidance`: the same subject missed again and again while present that day
//! (Hessen Schulportal "Fachvermeidung": 3 times, 5 = extreme). One finding per subject.

use super::{History, RuleParams, evidence_entry, finding, half_year_period, lessons_token};
use crate::calendar::Calendar;
use crate::model::Finding;
use std::collections::BTreeMap;

pub const ID: &str = "subject_avoidance";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Vec<Finding> {
    let Some(half) = calendar.half_year(h.today) else {
        return Vec::new();
    };
    let mut by_subject: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (day, rec) in h.days_since(h.window_start(p.subject_avoidance.weeks)) {
        if rec.absence_day {
            continue;
        }
        for (subject, lessons) in &rec.subjects {
            by_subject
                .entry(subject.as_str())
                .or_default()
                .push(evidence_entry(*day, &[&lessons_token(*lessons), subject]));
        }
    }
    by_subject
        .into_iter()
        .filter_map(|(subject, evidence)| {
            let count = evidence.len() as u32;
            let severity = p.subject_avoidance.bands.classify(f64::from(count))?;
            Some(finding(
                h,
                ID,
                severity,
                format!("{}:{subject}", half_year_period(calendar, half.number)),
                count,
                evidence,
            ))
        })
        .collect()
}
