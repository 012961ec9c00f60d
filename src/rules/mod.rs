//! The rules of SPEC §4: pure functions from one student's history and the school calendar to
//! findings. No I/O and no clock: the evaluation day is an input.

mod absence_rate;
mod around_weekend_holiday;
mod consecutive_days;
mod days_per_half_year;
mod early_year;
mod edge_lessons;
mod history;
mod lateness;
mod pending_excuse;
mod rising_trend;
mod same_weekday;
mod subject_avoidance;
mod unexcused;

pub use history::{DayRecord, History, Lessons};

use crate::calendar::Calendar;
use crate::model::{Absence, Finding, Severity, StudentId};
use chrono::NaiveDate;

/// Rule ids in the order SPEC §4 lists them.
pub const RULE_IDS: [&str; 12] = [
    "days_per_half_year",
    "absence_rate",
    "consecutive_days",
    "unexcused",
    "pending_excuse",
    "same_weekday",
    "around_weekend_holiday",
    "edge_lessons",
    "subject_avoidance",
    "lateness",
    "early_year",
    "rising_trend",
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
        [self.watch, self.warning, self.critical]
            .into_iter()
            .flatten()
            .reduce(f64::min)
    }
}

/// A count over a rolling window of weeks up to the evaluation day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windowed {
    pub bands: Bands,
    /// Length of the window in weeks (7 calendar days each).
    pub weeks: u32,
}

/// `around_weekend_holiday`: absence days next to a weekend or holiday.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AroundWeekendParams {
    /// Thresholds on the number of such days.
    pub bands: Bands,
    /// Share of all absence days in the window (percent) they must reach as well.
    pub min_share_percent: f64,
    pub weeks: u32,
}

/// `early_year`: absence days in the first school days of the school year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyYearParams {
    pub bands: Bands,
    /// The first this-many school days are counted.
    pub school_days: u32,
}

/// `rising_trend`: the recent absence rate against the student's own rate before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RisingTrendParams {
    pub enabled: bool,
    /// The recent rate must be at least this many times the earlier one ...
    pub ratio: f64,
    /// ... and at least this high (percent of school days).
    pub min_rate_percent: f64,
    pub recent_weeks: u32,
    pub baseline_weeks: u32,
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
    /// School days an absence has waited for an excuse decision.
    pub pending_excuse: Bands,
    /// Consecutive weeks absent on the same weekday.
    pub same_weekday: Bands,
    pub around_weekend_holiday: AroundWeekendParams,
    /// Days with the first or last lessons missed while present.
    pub edge_lessons: Windowed,
    /// Times one subject was missed while present.
    pub subject_avoidance: Windowed,
    /// Late arrivals.
    pub lateness: Windowed,
    pub early_year: EarlyYearParams,
    pub rising_trend: RisingTrendParams,
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
            pending_excuse: Bands::new(None, Some(3.0), None),
            same_weekday: Bands::new(None, Some(2.0), Some(4.0)),
            around_weekend_holiday: AroundWeekendParams {
                bands: Bands::new(None, Some(3.0), None),
                min_share_percent: 60.0,
                weeks: 8,
            },
            edge_lessons: Windowed {
                bands: Bands::new(None, Some(3.0), Some(6.0)),
                weeks: 4,
            },
            subject_avoidance: Windowed {
                bands: Bands::new(None, Some(3.0), Some(5.0)),
                weeks: 6,
            },
            lateness: Windowed {
                bands: Bands::new(None, Some(5.0), Some(10.0)),
                weeks: 4,
            },
            early_year: EarlyYearParams {
                bands: Bands::new(Some(2.0), Some(5.0), None),
                school_days: 20,
            },
            rising_trend: RisingTrendParams {
                enabled: true,
                ratio: 2.0,
                min_rate_percent: 10.0,
                recent_weeks: 4,
                baseline_weeks: 12,
            },
        }
    }
}

impl RuleParams {
    /// Switches a rule on or off by id; `false` for an unknown id.
    pub fn set_enabled(&mut self, rule: &str, enabled: bool) -> bool {
        match rule {
            "days_per_half_year" => self.days_per_half_year.enabled = enabled,
            "absence_rate" => self.absence_rate.enabled = enabled,
            "consecutive_days" => self.consecutive_days.enabled = enabled,
            "unexcused" => {
                self.unexcused_days.enabled = enabled;
                self.unexcused_lessons.enabled = enabled;
            }
            "pending_excuse" => self.pending_excuse.enabled = enabled,
            "same_weekday" => self.same_weekday.enabled = enabled,
            "around_weekend_holiday" => self.around_weekend_holiday.bands.enabled = enabled,
            "edge_lessons" => self.edge_lessons.bands.enabled = enabled,
            "subject_avoidance" => self.subject_avoidance.bands.enabled = enabled,
            "lateness" => self.lateness.bands.enabled = enabled,
            "early_year" => self.early_year.bands.enabled = enabled,
            "rising_trend" => self.rising_trend.enabled = enabled,
            _ => return false,
        }
        true
    }

    /// Only the given rules switched on (for tests and focused evaluations).
    pub fn only(rules: &[&str]) -> RuleParams {
        let mut p = RuleParams::default();
        for id in RULE_IDS {
            p.set_enabled(id, rules.contains(&id));
        }
        p
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
    findings.extend(pending_excuse::evaluate(&history, calendar, params));
    findings.extend(same_weekday::evaluate(&history, calendar, params));
    findings.extend(around_weekend_holiday::evaluate(&history, calendar, params));
    findings.extend(edge_lessons::evaluate(&history, calendar, params));
    findings.extend(subject_avoidance::evaluate(&history, calendar, params));
    findings.extend(lateness::evaluate(&history, calendar, params));
    findings.extend(early_year::evaluate(&history, calendar, params));
    findings.extend(rising_trend::evaluate(&history, calendar, params));
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

/// `2026-03-02`. Written by hand: chrono's formatter parses its pattern on every call, and the
/// rules write a date for every evidence entry of every student.
fn date_str(d: NaiveDate) -> String {
    use chrono::Datelike;
    use std::fmt::Write;
    let mut s = String::with_capacity(10);
    let _ = write!(s, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
    s
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

/// Lesson numbers as compact ranges: `[1, 2, 5]` → `L1-2,5`; empty for no lessons.
///
/// Evidence strings are `YYYY-MM-DD`, optionally followed by space-separated tokens: `L…`
/// (lessons), `+Nmin` (minutes late) or a subject short name. The mail renders them per language.
fn lessons_token(lessons: Lessons) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |run: Option<(u32, u32)>, parts: &mut Vec<String>| {
        if let Some((start, end)) = run {
            parts.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
        }
    };
    for n in lessons.iter() {
        run = match run {
            Some((start, end)) if end + 1 == n => Some((start, n)),
            other => {
                flush(other, &mut parts);
                Some((n, n))
            }
        };
    }
    flush(run, &mut parts);
    if parts.is_empty() {
        String::new()
    } else {
        format!("L{}", parts.join(","))
    }
}

/// One evidence entry: the date and any non-empty tokens.
fn evidence_entry(day: NaiveDate, tokens: &[&str]) -> String {
    let mut s = date_str(day);
    for t in tokens.iter().filter(|t| !t.is_empty()) {
        s.push(' ');
        s.push_str(t);
    }
    s
}
