//! `[rules]` and `[school.rules]`: single values override [`RuleParams::default()`], first
//! globally, then per school. The merged thresholds are checked, because a school may override
//! only `critical` and thereby drop below the global `warning`.

use super::file::{RuleTable, RulesSection};
use crate::rules::{Bands, RuleParams};

/// A problem in a rules table: key below the rules prefix (`consecutive_days.warning`) and
/// message (`problem; fix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub key: String,
    pub message: String,
}

/// Largest `absence_day_min_lessons`: a bell schedule has at most this many lessons.
pub const MAX_LESSONS: u32 = 16;

/// How a rule's thresholds are read, for range checks and hints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Count,
    Percent,
}

/// Applies `section` on top of `params`. Keys that do not belong to a rule are reported.
pub fn apply(params: &mut RuleParams, section: &RulesSection) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    if let Some(n) = section.absence_day_min_lessons {
        params.absence_day_min_lessons = n;
    }
    let tables: [(&str, &Option<RuleTable>); 5] = [
        ("days_per_half_year", &section.days_per_half_year),
        ("absence_rate", &section.absence_rate),
        ("consecutive_days", &section.consecutive_days),
        ("unexcused", &section.unexcused),
        ("same_weekday", &section.same_weekday),
    ];
    for (rule, table) in tables {
        let Some(t) = table else { continue };
        let misplaced = |key: &str, owner: &str| RuleProblem {
            key: format!("{rule}.{key}"),
            message: format!("`{key}` applies only to the {owner} rule; remove it here"),
        };
        if rule != "absence_rate" && t.min_school_days.is_some() {
            problems.push(misplaced("min_school_days", "absence_rate"));
        }
        if rule != "unexcused" {
            if t.warning_lessons.is_some() {
                problems.push(misplaced("warning_lessons", "unexcused"));
            }
            if t.critical_lessons.is_some() {
                problems.push(misplaced("critical_lessons", "unexcused"));
            }
        }
        match rule {
            "days_per_half_year" => override_bands(&mut params.days_per_half_year, t),
            "absence_rate" => {
                override_bands(&mut params.absence_rate, t);
                if let Some(n) = t.min_school_days {
                    params.absence_rate_min_school_days = n;
                }
            }
            "consecutive_days" => override_bands(&mut params.consecutive_days, t),
            "unexcused" => {
                override_bands(&mut params.unexcused_days, t);
                // `enabled` switches the whole rule, days and lessons alike.
                if let Some(e) = t.enabled {
                    params.unexcused_lessons.enabled = e;
                }
                if let Some(w) = t.warning_lessons {
                    params.unexcused_lessons.warning = Some(w);
                }
                if let Some(c) = t.critical_lessons {
                    params.unexcused_lessons.critical = Some(c);
                }
            }
            _ => override_bands(&mut params.same_weekday, t),
        }
    }
    problems
}

fn override_bands(bands: &mut Bands, t: &RuleTable) {
    if let Some(e) = t.enabled {
        bands.enabled = e;
    }
    if let Some(v) = t.watch {
        bands.watch = Some(v);
    }
    if let Some(v) = t.warning {
        bands.warning = Some(v);
    }
    if let Some(v) = t.critical {
        bands.critical = Some(v);
    }
}

/// Rule ids that `section` mentions (their thresholds are checked where they are written).
pub fn mentioned_rules(section: &RulesSection) -> Vec<&'static str> {
    [
        ("days_per_half_year", section.days_per_half_year.is_some()),
        ("absence_rate", section.absence_rate.is_some()),
        ("consecutive_days", section.consecutive_days.is_some()),
        ("unexcused", section.unexcused.is_some()),
        ("same_weekday", section.same_weekday.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(rule, _)| rule)
    .collect()
}

/// Checks the merged thresholds of `rule` in `params`.
pub fn check_rule(params: &RuleParams, rule: &str) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    match rule {
        "days_per_half_year" => check_bands(
            &mut problems,
            rule,
            "",
            &params.days_per_half_year,
            Unit::Count,
        ),
        "absence_rate" => {
            check_bands(&mut problems, rule, "", &params.absence_rate, Unit::Percent);
            if params.absence_rate_min_school_days > 366 {
                problems.push(RuleProblem {
                    key: format!("{rule}.min_school_days"),
                    message: format!(
                        "{} school days never pass in one school year; use a value such as 20",
                        params.absence_rate_min_school_days
                    ),
                });
            }
        }
        "consecutive_days" => check_bands(
            &mut problems,
            rule,
            "",
            &params.consecutive_days,
            Unit::Count,
        ),
        "unexcused" => {
            check_bands(&mut problems, rule, "", &params.unexcused_days, Unit::Count);
            check_bands(
                &mut problems,
                rule,
                "_lessons",
                &params.unexcused_lessons,
                Unit::Count,
            );
        }
        "same_weekday" => check_bands(&mut problems, rule, "", &params.same_weekday, Unit::Count),
        _ => {}
    }
    problems
}

/// Checks the value range of every threshold and that they rise from watch to critical.
/// `suffix` names the keys (`warning_lessons` for the unexcused lesson thresholds).
fn check_bands(
    problems: &mut Vec<RuleProblem>,
    rule: &str,
    suffix: &str,
    bands: &Bands,
    unit: Unit,
) {
    let named = [
        ("watch", bands.watch),
        ("warning", bands.warning),
        ("critical", bands.critical),
    ];
    let mut valid: Vec<(&str, f64)> = Vec::new();
    for (level, value) in named {
        let Some(v) = value else { continue };
        let key = format!("{rule}.{level}{suffix}");
        let in_range = match unit {
            Unit::Count => v.is_finite() && v > 0.0,
            Unit::Percent => v.is_finite() && v > 0.0 && v <= 100.0,
        };
        if in_range {
            valid.push((level, v));
            continue;
        }
        let message = match unit {
            Unit::Count => format!(
                "{v} is not a positive number; give a count of at least 1 (to switch the rule off, set `enabled = false`)"
            ),
            Unit::Percent => format!(
                "{v} is not a percentage between 0 and 100; give e.g. 10 for 10 % (to switch the rule off, set `enabled = false`)"
            ),
        };
        problems.push(RuleProblem { key, message });
    }
    for pair in valid.windows(2) {
        let [(lower, lv), (higher, hv)] = pair else {
            continue;
        };
        if lv > hv {
            problems.push(RuleProblem {
                key: rule.to_string(),
                message: format!(
                    "thresholds must rise from watch to critical, but {lower}{suffix} = {lv} is above {higher}{suffix} = {hv}; raise {higher}{suffix} or lower {lower}{suffix}"
                ),
            });
        }
    }
}

/// Checks `absence_day_min_lessons` against the school's bell schedule (`lessons` periods;
/// 0 when none is configured).
pub fn check_min_lessons(params: &RuleParams, lessons: usize) -> Option<RuleProblem> {
    let n = params.absence_day_min_lessons;
    let key = "absence_day_min_lessons".to_string();
    if n > MAX_LESSONS {
        return Some(RuleProblem {
            key,
            message: format!(
                "{n} lessons is more than a school day has; give at most {MAX_LESSONS}, or 0 for half the bell schedule"
            ),
        });
    }
    if lessons > 0 && n as usize > lessons {
        return Some(RuleProblem {
            key,
            message: format!(
                "{n} lessons is more than the {lessons} of the bell schedule, so no day would ever count; give at most {lessons}, or 0 for half the bell schedule"
            ),
        });
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn table(watch: Option<f64>, warning: Option<f64>, critical: Option<f64>) -> Option<RuleTable> {
        Some(RuleTable {
            watch,
            warning,
            critical,
            ..RuleTable::default()
        })
    }

    #[test]
    fn single_values_override_defaults_then_school_overrides_global() {
        let mut p = RuleParams::default();
        let global = RulesSection {
            consecutive_days: table(None, Some(4.0), None),
            absence_day_min_lessons: Some(3),
            ..RulesSection::default()
        };
        assert!(apply(&mut p, &global).is_empty());
        let school = RulesSection {
            consecutive_days: table(None, None, Some(7.0)),
            unexcused: Some(RuleTable {
                enabled: Some(false),
                warning_lessons: Some(20.0),
                ..RuleTable::default()
            }),
            ..RulesSection::default()
        };
        assert!(apply(&mut p, &school).is_empty());
        let d = RuleParams::default();
        assert_eq!(p.consecutive_days.warning, Some(4.0));
        assert_eq!(p.consecutive_days.critical, Some(7.0));
        assert_eq!(p.consecutive_days.watch, d.consecutive_days.watch);
        assert_eq!(p.absence_day_min_lessons, 3);
        assert!(!p.unexcused_days.enabled && !p.unexcused_lessons.enabled);
        assert_eq!(p.unexcused_lessons.warning, Some(20.0));
        assert_eq!(p.unexcused_lessons.critical, d.unexcused_lessons.critical);
        assert_eq!(p.days_per_half_year, d.days_per_half_year);
    }

    #[test]
    fn the_defaults_pass_every_check() {
        let p = RuleParams::default();
        for rule in crate::rules::RULE_IDS {
            assert!(check_rule(&p, rule).is_empty(), "{rule}");
        }
        assert!(check_min_lessons(&p, 8).is_none());
    }

    #[test]
    fn merged_thresholds_must_rise() {
        let mut p = RuleParams::default();
        // warning 11 stays from the defaults; critical 8 falls below it.
        apply(
            &mut p,
            &RulesSection {
                days_per_half_year: table(None, None, Some(8.0)),
                ..RulesSection::default()
            },
        );
        let problems = check_rule(&p, "days_per_half_year");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "days_per_half_year");
        assert!(
            problems[0]
                .message
                .contains("warning = 11 is above critical = 8"),
            "{problems:?}"
        );
    }

    #[test]
    fn ranges_are_checked_per_unit() {
        let mut p = RuleParams::default();
        apply(
            &mut p,
            &RulesSection {
                absence_rate: table(Some(5.0), Some(10.0), Some(120.0)),
                consecutive_days: table(None, Some(-1.0), None),
                ..RulesSection::default()
            },
        );
        let rate = check_rule(&p, "absence_rate");
        assert_eq!(rate.len(), 1);
        assert_eq!(rate[0].key, "absence_rate.critical");
        let cons = check_rule(&p, "consecutive_days");
        assert_eq!(cons.len(), 1);
        assert_eq!(cons[0].key, "consecutive_days.warning");
    }

    #[test]
    fn lesson_thresholds_of_unexcused_are_checked_with_their_own_keys() {
        let mut p = RuleParams::default();
        let s = RulesSection {
            unexcused: Some(RuleTable {
                warning_lessons: Some(40.0),
                ..RuleTable::default()
            }),
            ..RulesSection::default()
        };
        apply(&mut p, &s);
        let problems = check_rule(&p, "unexcused");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .message
                .contains("warning_lessons = 40 is above critical_lessons = 30"),
            "{problems:?}"
        );
    }

    #[test]
    fn misplaced_keys_are_reported() {
        let mut p = RuleParams::default();
        let s = RulesSection {
            consecutive_days: Some(RuleTable {
                min_school_days: Some(5),
                warning_lessons: Some(1.0),
                ..RuleTable::default()
            }),
            ..RulesSection::default()
        };
        let problems = apply(&mut p, &s);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "consecutive_days.min_school_days",
                "consecutive_days.warning_lessons"
            ]
        );
    }

    #[test]
    fn min_lessons_fit_the_bell_schedule() {
        let p = RuleParams {
            absence_day_min_lessons: 9,
            ..RuleParams::default()
        };
        assert!(check_min_lessons(&p, 8).is_some());
        assert!(check_min_lessons(&p, 10).is_none());
        assert!(check_min_lessons(&p, 0).is_none());
        let p = RuleParams {
            absence_day_min_lessons: 17,
            ..RuleParams::default()
        };
        assert!(check_min_lessons(&p, 0).is_some());
    }
}
