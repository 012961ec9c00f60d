//! `unexcused`: unexcused absence in the current half-year, by days or by lessons
//! (Berlin since 2018: 5 days or 30 single lessons; Austria: 3 days).

use super::{History, RuleParams, finding, half_year_period};
use crate::calendar::Calendar;
use crate::model::Finding;

pub const ID: &str = "unexcused";

pub fn evaluate(h: &History, calendar: &Calendar, p: &RuleParams) -> Option<Finding> {
    if !p.unexcused_days.enabled {
        return None;
    }
    let half = calendar.half_year(h.today)?;
    let mut days = 0u32;
    let mut lessons = 0u32;
    let mut evidence = Vec::new();
    for (date, rec) in h.days.range(half.start..=h.today) {
        if rec.unexcused_lessons == 0 {
            continue;
        }
        lessons = lessons.saturating_add(rec.unexcused_lessons);
        if rec.unexcused_day {
            days += 1;
            evidence.push(date.format("%Y-%m-%d").to_string());
        } else {
            evidence.push(super::evidence_entry(
                *date,
                &[&super::lessons_token(rec.unexcused_lesson_numbers)],
            ));
        }
    }
    let by_days = p.unexcused_days.classify(f64::from(days));
    let lesson_bands = super::Bands {
        enabled: true,
        ..p.unexcused_lessons
    };
    let by_lessons = lesson_bands.classify(f64::from(lessons));
    let severity = by_days.max(by_lessons)?;
    Some(finding(
        h,
        ID,
        severity,
        half_year_period(calendar, half.number),
        days,
        evidence,
    ))
}
