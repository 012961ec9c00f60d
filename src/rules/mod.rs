//! The rules of SPEC §4: pure functions from one student's history and the school calendar to
//! findings. No I/O and no clock: the evaluation day is an input.

mod absence_rate;
mod consecutive_days;
mod days_per_half_year;
mod history;
mod same_weekday;
mod unexcused;

pub use history::{DayRecord, History};

use crate::calendar::Calendar;
use crate::model::{Absence, Finding, Severity, StudentId};
use chrono::NaiveDate;

/// Rule ids in the order they are listed in SPEC §4 (implemented ones).
pub const RULE_IDS: [&str; 5] = [
    "days_per_half_year",
    "absence_rate",
    "consecutive_days",
    "unexcused",
    "same_weekday",
];

/// Streak-like findings (a run of days, a weekday chain) stay active while their last day lies
/// within this many school days before the evaluation day; afterwards they resolve.
pub const RECENT_SCHOOL_DAYS: usize = 10;

/// Thresholds of one rule, mildest first. A threshold of `None` means the rule never reports
/// that severity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    pub enabled: bool,
    pub watch: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
}

impl Bands {
    pub const fn new(watch: Option<f64>, warning: Option<f64>, critical: Option<f64>) -> Bands {
        Bands {
            enabled: true,
            watch,
            warning,
            critical,
        }
    }

    /// The highest severity whose threshold `value` reaches.
    pub fn classify(&self, value: f64) -> Option<Severity> {
        if !self.enabled {
            return None;
        }
        [
            (Severity::Critical, self.critical),
            (Severity::Warning, self.warning),
            (Severity::Watch, self.watch),
        ]
        .into_iter()
        .find(|(_, t)| t.is_some_and(|t| value >= t))
        .map(|(s, _)| s)
    }

    /// The mildest threshold, i.e. the smallest value that gives any finding.
    pub fn lowest(&self) -> Option<f64> {
        [self.watch, self.warning, self.critical].into_iter().flatten().reduce(f64::min)
    }
}

/// Parameters of every rule, with SPEC §4's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleParams {
    /// Lessons missed that make an absence day; 0 = half the bell schedule, rounded up.
    pub absence_day_min_lessons: u32,
    pub days_per_half_year: Bands,
    /// Percent of school days absent since the school year's start.
    pub absence_rate: Bands,
    pub absence_rate_min_school_days: u32,
    pub consecutive_days: Bands,
    /// Unexcused absence days in the half-year; `enabled` switches the whole rule.
    pub unexcused_days: Bands,
    /// Unexcused lessons in the half-year.
    pub unexcused_lessons: Bands,
    /// Consecutive weeks absent on the same weekday.
    pub same_weekday: Bands,
}

impl Default for RuleParams {
    fn default() -> Self {
        RuleParams {
            absence_day_min_lessons: 0,
            days_per_half_year: Bands::new(Some(5.0), Some(11.0), Some(21.0)),
            absence_rate: Bands::new(Some(5.0), Some(10.0), Some(20.0)),
            absence_rate_min_school_days: 20,
            consecutive_days: Bands::new(None, Some(3.0), Some(5.0)),
            unexcused_days: Bands::new(None, Some(3.0), Some(5.0)),
            unexcused_lessons: Bands::new(None, Some(15.0), Some(30.0)),
            same_weekday: Bands::new(None, Some(2.0), Some(4.0)),
        }
    }
}

/// Evaluates every enabled rule for one student as of `today` (school-local date).
/// `absences` may contain other students' records and odd data; they are filtered here.
pub fn evaluate_student(
    student: &StudentId,
    absences: &[Absence],
    calendar: &Calendar,
    params: &RuleParams,
    today: NaiveDate,
) -> Vec<Finding> {
    let history = History::build(student, absences, calendar, params, today);
    let mut findings = Vec::new();
    findings.extend(days_per_half_year::evaluate(&history, calendar, params));
    findings.extend(absence_rate::evaluate(&history, calendar, params));
    findings.extend(consecutive_days::evaluate(&history, calendar, params));
    findings.extend(unexcused::evaluate(&history, calendar, params));
    findings.extend(same_weekday::evaluate(&history, calendar, params));
    findings
}

/// Builds a finding for the history's student.
fn finding(
    history: &History,
    rule: &str,
    severity: Severity,
    period: String,
    value: u32,
    evidence: Vec<String>,
) -> Finding {
    Finding {
        student: history.student.clone(),
        rule: rule.to_string(),
        severity,
        period,
        value,
        evidence,
    }
}

/// `2025-2026/2`: the half-year period label.
fn half_year_period(calendar: &Calendar, number: u8) -> String {
    format!("{}/{}", calendar.school_year().label(), number)
}

fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

