//! `[rules]` and `[school.rules]`: single values override [`RuleParams::default()`], first
//! globally, then per school. The merged values are checked, because a school may override
//! only `critical` and thereby drop below the global `warning`.
//!
//! A problem is reported for the table that wrote one of the values involved: a bad value in
//! `[rules]` is reported once there, not again for every school that inherits it, while a
//! school's `critical` below the global `warning` is reported for that school.

use super::file::RulesSection;
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

/// Longest window of a windowed rule: one year.
pub const MAX_WEEKS: u32 = 52;

/// Longest `early_year.school_days`: a school year has about 190 school days.
pub const MAX_EARLY_SCHOOL_DAYS: u32 = 200;

/// `rising_trend` judges only with at least 10 school days in the recent window and 20 in the
/// baseline (`MIN_RECENT_SCHOOL_DAYS`, `MIN_BASELINE_SCHOOL_DAYS` in `rules/rising_trend.rs`).
/// With five school days a week, shorter windows would silently never report.
const MIN_RECENT_WEEKS: u32 = 2;
const MIN_BASELINE_WEEKS: u32 = 4;

/// Applies `section` on top of `params`. Every key the section can hold has a place in
/// [`RuleParams`]; keys that belong to no rule were refused when the file was parsed.
pub fn apply(p: &mut RuleParams, s: &RulesSection) {
    set(&mut p.absence_day_min_lessons, s.absence_day_min_lessons);
    for (bands, t) in [
        (&mut p.days_per_half_year, &s.days_per_half_year),
        (&mut p.consecutive_days, &s.consecutive_days),
        (&mut p.pending_excuse, &s.pending_excuse),
        (&mut p.same_weekday, &s.same_weekday),
    ] {
        if let Some(t) = t {
            set_bands(bands, t.enabled, [t.watch, t.warning, t.critical]);
        }
    }
    if let Some(t) = &s.absence_rate {
        set_bands(
            &mut p.absence_rate,
            t.enabled,
            [t.watch, t.warning, t.critical],
        );
        set(&mut p.absence_rate_min_school_days, t.min_school_days);
    }
    if let Some(t) = &s.unexcused {
        set_bands(
            &mut p.unexcused_days,
            t.enabled,
            [t.watch, t.warning, t.critical],
        );
        // `enabled` switches the whole rule, days and lessons alike.
        set_bands(
            &mut p.unexcused_lessons,
            t.enabled,
            [None, t.warning_lessons, t.critical_lessons],
        );
    }
    if let Some(t) = &s.around_weekend_holiday {
        let a = &mut p.around_weekend_holiday;
        set_bands(&mut a.bands, t.enabled, [t.watch, t.warning, t.critical]);
        set(&mut a.min_share_percent, t.min_share);
        set(&mut a.weeks, t.weeks);
    }
    for (w, t) in [
        (&mut p.edge_lessons, &s.edge_lessons),
        (&mut p.subject_avoidance, &s.subject_avoidance),
        (&mut p.lateness, &s.lateness),
    ] {
        if let Some(t) = t {
            set_bands(&mut w.bands, t.enabled, [t.watch, t.warning, t.critical]);
            set(&mut w.weeks, t.weeks);
        }
    }
    if let Some(t) = &s.early_year {
        let e = &mut p.early_year;
        set_bands(&mut e.bands, t.enabled, [t.watch, t.warning, t.critical]);
        set(&mut e.school_days, t.school_days);
    }
    if let Some(t) = &s.rising_trend {
        let r = &mut p.rising_trend;
        set(&mut r.enabled, t.enabled);
        set(&mut r.ratio, t.ratio);
        set(&mut r.min_rate_percent, t.min_rate);
        set(&mut r.recent_weeks, t.recent_weeks);
        set(&mut r.baseline_weeks, t.baseline_weeks);
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// `thresholds` are watch, warning, critical; a threshold that is not given keeps its value.
fn set_bands(bands: &mut Bands, enabled: Option<bool>, thresholds: [Option<f64>; 3]) {
    set(&mut bands.enabled, enabled);
    let [watch, warning, critical] = thresholds;
    if watch.is_some() {
        bands.watch = watch;
    }
    if warning.is_some() {
        bands.warning = warning;
    }
    if critical.is_some() {
        bands.critical = critical;
    }
}

/// A severity level's key and its threshold in [`Bands`], mildest first.
type Level = (&'static str, fn(&Bands) -> Option<f64>);
const LEVELS: [Level; 3] = [
    ("watch", |b| b.watch),
    ("warning", |b| b.warning),
    ("critical", |b| b.critical),
];

/// The table whose merged values are checked.
#[derive(Clone, Copy)]
pub enum Layer<'a> {
    /// `[rules]`, over the built-in defaults.
    Global,
    /// `[school.rules]`, over the merged `[rules]`.
    School { global: &'a RuleParams },
}

/// Checks every parameter of `params` (the merged values of `layer`) and reports the problems
/// that involve a value this layer wrote. A value counts as written here when it differs from
/// the layer below; a value that equals it has the same problem there and is reported there
/// (the defaults have none).
pub fn check(params: &RuleParams, layer: Layer<'_>) -> Vec<RuleProblem> {
    let defaults = RuleParams::default();
    let (below, over_global) = match layer {
        Layer::Global => (defaults.clone(), false),
        Layer::School { global } => (global.clone(), true),
    };
    let mut c = Checker {
        here: params,
        below: Some(&below),
        defaults: &defaults,
        over_global,
        problems: Vec::new(),
    };
    c.all_rules();
    c.problems
}

/// How a rule's thresholds are read, for range checks and hints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Count,
    Percent,
}

struct Checker<'a> {
    here: &'a RuleParams,
    /// `None`: every value counts as written here (to check the defaults themselves).
    below: Option<&'a RuleParams>,
    defaults: &'a RuleParams,
    /// Whether `below` is `[rules]` rather than the defaults.
    over_global: bool,
    problems: Vec<RuleProblem>,
}

impl Checker<'_> {
    /// `None` when the value was written in the checked table, else where it comes from.
    fn origin<T: PartialEq>(&self, get: impl Fn(&RuleParams) -> T) -> Option<&'static str> {
        let below = self.below?;
        let value = get(self.here);
        if value != get(below) {
            None
        } else if self.over_global && value != get(self.defaults) {
            Some("from [rules]")
        } else {
            Some("the default")
        }
    }

    fn report(&mut self, key: String, message: String) {
        self.problems.push(RuleProblem { key, message });
    }

    fn all_rules(&mut self) {
        self.bands(
            "days_per_half_year",
            "",
            |p| p.days_per_half_year,
            Unit::Count,
        );
        self.bands("absence_rate", "", |p| p.absence_rate, Unit::Percent);
        self.value(
            "absence_rate.min_school_days",
            |p| p.absence_rate_min_school_days,
            |n| n <= 366,
            |n| format!("{n} school days never pass in one school year; use a value such as 20"),
        );
        self.bands("consecutive_days", "", |p| p.consecutive_days, Unit::Count);
        self.bands("unexcused", "", |p| p.unexcused_days, Unit::Count);
        self.bands(
            "unexcused",
            "_lessons",
            |p| p.unexcused_lessons,
            Unit::Count,
        );
        self.bands("pending_excuse", "", |p| p.pending_excuse, Unit::Count);
        self.bands("same_weekday", "", |p| p.same_weekday, Unit::Count);

        let rule = "around_weekend_holiday";
        self.bands(rule, "", |p| p.around_weekend_holiday.bands, Unit::Count);
        self.value(
            "around_weekend_holiday.min_share",
            |p| p.around_weekend_holiday.min_share_percent,
            |v| (0.0..=100.0).contains(&v),
            |v| format!("{v} is not a percentage from 0 to 100; give e.g. 60 for 60 % of the absence days"),
        );
        self.weeks(rule, "weeks", |p| p.around_weekend_holiday.weeks, 1, "");

        self.bands("edge_lessons", "", |p| p.edge_lessons.bands, Unit::Count);
        self.weeks("edge_lessons", "weeks", |p| p.edge_lessons.weeks, 1, "");
        self.bands(
            "subject_avoidance",
            "",
            |p| p.subject_avoidance.bands,
            Unit::Count,
        );
        self.weeks(
            "subject_avoidance",
            "weeks",
            |p| p.subject_avoidance.weeks,
            1,
            "",
        );
        self.bands("lateness", "", |p| p.lateness.bands, Unit::Count);
        self.weeks("lateness", "weeks", |p| p.lateness.weeks, 1, "");

        self.bands("early_year", "", |p| p.early_year.bands, Unit::Count);
        self.value(
            "early_year.school_days",
            |p| p.early_year.school_days,
            |n| (1..=MAX_EARLY_SCHOOL_DAYS).contains(&n),
            |n| format!("{n} is not a number of school days from 1 to {MAX_EARLY_SCHOOL_DAYS}; give e.g. 20 for about the first month"),
        );

        self.value(
            "rising_trend.ratio",
            |p| p.rising_trend.ratio,
            |v| v.is_finite() && v > 1.0,
            |v| format!("{v} is not above 1, so a rate that stays the same would count as rising; give e.g. 2 for a doubling"),
        );
        self.value(
            "rising_trend.min_rate",
            |p| p.rising_trend.min_rate_percent,
            |v| v > 0.0 && v <= 100.0,
            |v| format!("{v} is not a percentage above 0 and at most 100 (at 0 a student who is never absent would count as rising); give e.g. 10 for 10 % of school days"),
        );
        self.weeks(
            "rising_trend",
            "recent_weeks",
            |p| p.rising_trend.recent_weeks,
            MIN_RECENT_WEEKS,
            "the rule needs 10 school days in the recent weeks",
        );
        self.weeks(
            "rising_trend",
            "baseline_weeks",
            |p| p.rising_trend.baseline_weeks,
            MIN_BASELINE_WEEKS,
            "the rule needs 20 school days in the weeks before",
        );
    }

    /// One value with a validity test and the message for a value that fails it.
    fn value<T: PartialEq + Copy>(
        &mut self,
        key: &str,
        get: impl Fn(&RuleParams) -> T,
        valid: impl Fn(T) -> bool,
        message: impl Fn(T) -> String,
    ) {
        let v = get(self.here);
        if !valid(v) && self.origin(&get).is_none() {
            self.report(key.to_string(), message(v));
        }
    }

    /// A window in weeks: `min` to [`MAX_WEEKS`]; `why_min` explains a minimum above 1.
    fn weeks(
        &mut self,
        rule: &str,
        key: &str,
        get: impl Fn(&RuleParams) -> u32,
        min: u32,
        why_min: &str,
    ) {
        let v = get(self.here);
        if (min..=MAX_WEEKS).contains(&v) || self.origin(&get).is_some() {
            return;
        }
        let default = get(self.defaults);
        let message = if v > MAX_WEEKS {
            format!(
                "{v} weeks is longer than a year; give {min} to {MAX_WEEKS} weeks, e.g. {default}"
            )
        } else if v == 0 {
            format!(
                "0 weeks is no window at all; give {min} to {MAX_WEEKS} weeks, e.g. {default} (to switch the rule off, set `enabled = false`)"
            )
        } else {
            format!(
                "{key} = {v} is too short: {why_min}, so it would never report; give {min} to {MAX_WEEKS} weeks, e.g. {default}"
            )
        };
        self.report(format!("{rule}.{key}"), message);
    }

    /// Checks the value range of every threshold and that they rise from watch to critical.
    /// `suffix` names the keys (`warning_lessons` for the unexcused lesson thresholds).
    fn bands(&mut self, rule: &str, suffix: &str, get: fn(&RuleParams) -> Bands, unit: Unit) {
        let bands = get(self.here);
        // Valid thresholds with where they come from (`None`: written here).
        let mut valid: Vec<(&str, f64, Option<&str>)> = Vec::new();
        for (level, of) in LEVELS {
            let Some(v) = of(&bands) else { continue };
            let origin = self.origin(|p| of(&get(p)));
            let in_range = match unit {
                Unit::Count => v.is_finite() && v > 0.0,
                Unit::Percent => v.is_finite() && v > 0.0 && v <= 100.0,
            };
            if in_range {
                valid.push((level, v, origin));
                continue;
            }
            if origin.is_some() {
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
            self.report(format!("{rule}.{level}{suffix}"), message);
        }
        let noted = |v: f64, origin: Option<&str>| match origin {
            Some(o) => format!("{v} ({o})"),
            None => v.to_string(),
        };
        for pair in valid.windows(2) {
            let [(lower, lv, lo), (higher, hv, ho)] = pair else {
                continue;
            };
            if lv > hv && (lo.is_none() || ho.is_none()) {
                self.report(
                    rule.to_string(),
                    format!(
                        "thresholds must rise from watch to critical, but {lower}{suffix} = {} is above {higher}{suffix} = {}; raise {higher}{suffix} or lower {lower}{suffix}",
                        noted(*lv, *lo),
                        noted(*hv, *ho)
                    ),
                );
            }
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
    use crate::config::file::{
        AroundWeekendTable, BandsTable, EarlyYearTable, RisingTrendTable, UnexcusedTable,
        WindowedTable,
    };

    fn bands(
        watch: Option<f64>,
        warning: Option<f64>,
        critical: Option<f64>,
    ) -> Option<BandsTable> {
        Some(BandsTable {
            watch,
            warning,
            critical,
            ..BandsTable::default()
        })
    }

    fn windowed(
        warning: Option<f64>,
        critical: Option<f64>,
        weeks: Option<u32>,
    ) -> Option<WindowedTable> {
        Some(WindowedTable {
            warning,
            critical,
            weeks,
            ..WindowedTable::default()
        })
    }

    fn keys(problems: &[RuleProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    /// Parses `text` as a `[rules]` table, as the config file would hold it.
    fn section(text: &str) -> RulesSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn single_values_override_defaults_then_school_overrides_global() {
        let mut p = RuleParams::default();
        let global = RulesSection {
            consecutive_days: bands(None, Some(4.0), None),
            absence_day_min_lessons: Some(3),
            lateness: windowed(Some(4.0), None, Some(2)),
            ..RulesSection::default()
        };
        apply(&mut p, &global);
        let school = RulesSection {
            consecutive_days: bands(None, None, Some(7.0)),
            unexcused: Some(UnexcusedTable {
                enabled: Some(false),
                warning_lessons: Some(20.0),
                ..UnexcusedTable::default()
            }),
            lateness: windowed(None, Some(12.0), None),
            ..RulesSection::default()
        };
        apply(&mut p, &school);
        let d = RuleParams::default();
        assert_eq!(p.consecutive_days.warning, Some(4.0));
        assert_eq!(p.consecutive_days.critical, Some(7.0));
        assert_eq!(p.consecutive_days.watch, d.consecutive_days.watch);
        assert_eq!(p.absence_day_min_lessons, 3);
        assert!(!p.unexcused_days.enabled && !p.unexcused_lessons.enabled);
        assert_eq!(p.unexcused_lessons.warning, Some(20.0));
        assert_eq!(p.unexcused_lessons.critical, d.unexcused_lessons.critical);
        assert_eq!(p.days_per_half_year, d.days_per_half_year);
        assert_eq!(
            (
                p.lateness.bands.warning,
                p.lateness.bands.critical,
                p.lateness.weeks
            ),
            (Some(4.0), Some(12.0), 2)
        );
        assert_eq!(p.edge_lessons, d.edge_lessons);
    }

    #[test]
    fn every_key_of_every_rule_lands_in_its_own_field() {
        let mut p = RuleParams::default();
        apply(
            &mut p,
            &RulesSection {
                absence_day_min_lessons: Some(2),
                days_per_half_year: bands(Some(1.0), Some(2.0), Some(3.0)),
                absence_rate: Some(crate::config::file::AbsenceRateTable {
                    enabled: Some(false),
                    watch: Some(4.0),
                    warning: Some(5.0),
                    critical: Some(6.0),
                    min_school_days: Some(7),
                }),
                consecutive_days: bands(Some(8.0), Some(9.0), Some(10.0)),
                unexcused: Some(UnexcusedTable {
                    enabled: None,
                    watch: Some(11.0),
                    warning: Some(12.0),
                    critical: Some(13.0),
                    warning_lessons: Some(14.0),
                    critical_lessons: Some(15.0),
                }),
                pending_excuse: bands(Some(16.0), Some(17.0), Some(18.0)),
                same_weekday: bands(Some(19.0), Some(20.0), Some(21.0)),
                around_weekend_holiday: Some(AroundWeekendTable {
                    enabled: Some(false),
                    watch: Some(22.0),
                    warning: Some(23.0),
                    critical: Some(24.0),
                    min_share: Some(25.0),
                    weeks: Some(26),
                }),
                edge_lessons: Some(WindowedTable {
                    enabled: Some(false),
                    watch: Some(27.0),
                    warning: Some(28.0),
                    critical: Some(29.0),
                    weeks: Some(30),
                }),
                subject_avoidance: windowed(Some(31.0), Some(32.0), Some(33)),
                lateness: windowed(Some(34.0), Some(35.0), Some(36)),
                early_year: Some(EarlyYearTable {
                    enabled: Some(false),
                    watch: Some(37.0),
                    warning: Some(38.0),
                    critical: Some(39.0),
                    school_days: Some(40),
                }),
                rising_trend: Some(RisingTrendTable {
                    enabled: Some(false),
                    ratio: Some(1.5),
                    min_rate: Some(41.0),
                    recent_weeks: Some(42),
                    baseline_weeks: Some(43),
                }),
            },
        );
        let on = |w, x, c| Bands::new(Some(w), Some(x), Some(c));
        let off = |w, x, c| Bands {
            enabled: false,
            ..on(w, x, c)
        };
        let d = RuleParams::default();
        let expected = RuleParams {
            absence_day_min_lessons: 2,
            days_per_half_year: on(1.0, 2.0, 3.0),
            absence_rate: off(4.0, 5.0, 6.0),
            absence_rate_min_school_days: 7,
            consecutive_days: on(8.0, 9.0, 10.0),
            unexcused_days: on(11.0, 12.0, 13.0),
            unexcused_lessons: Bands::new(None, Some(14.0), Some(15.0)),
            pending_excuse: on(16.0, 17.0, 18.0),
            same_weekday: on(19.0, 20.0, 21.0),
            around_weekend_holiday: crate::rules::AroundWeekendParams {
                bands: off(22.0, 23.0, 24.0),
                min_share_percent: 25.0,
                weeks: 26,
            },
            edge_lessons: crate::rules::Windowed {
                bands: off(27.0, 28.0, 29.0),
                weeks: 30,
            },
            subject_avoidance: crate::rules::Windowed {
                bands: Bands {
                    warning: Some(31.0),
                    critical: Some(32.0),
                    ..d.subject_avoidance.bands
                },
                weeks: 33,
            },
            lateness: crate::rules::Windowed {
                bands: Bands {
                    warning: Some(34.0),
                    critical: Some(35.0),
                    ..d.lateness.bands
                },
                weeks: 36,
            },
            early_year: crate::rules::EarlyYearParams {
                bands: off(37.0, 38.0, 39.0),
                school_days: 40,
            },
            rising_trend: crate::rules::RisingTrendParams {
                enabled: false,
                ratio: 1.5,
                min_rate_percent: 41.0,
                recent_weeks: 42,
                baseline_weeks: 43,
            },
        };
        assert_eq!(p, expected);
    }

    #[test]
    fn the_defaults_pass_every_check() {
        let d = RuleParams::default();
        // No layer below: every default value counts as written, so every check runs on it.
        let mut c = Checker {
            here: &d,
            below: None,
            defaults: &d,
            over_global: false,
            problems: Vec::new(),
        };
        c.all_rules();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert!(check_min_lessons(&d, 8).is_none());
        assert!(check(&d, Layer::Global).is_empty());
    }

    #[test]
    fn every_check_runs_on_a_bad_value() {
        let mut p = RuleParams::default();
        apply(
            &mut p,
            &section(
                r#"
                absence_rate = { watch = 0, min_school_days = 400 }
                days_per_half_year = { critical = -1 }
                consecutive_days = { warning = 0 }
                unexcused = { watch = 0, critical_lessons = 0 }
                pending_excuse = { warning = 0 }
                same_weekday = { critical = 0 }
                around_weekend_holiday = { warning = 0, min_share = 101, weeks = 0 }
                edge_lessons = { critical = 0, weeks = 53 }
                subject_avoidance = { watch = 0, weeks = 0 }
                lateness = { warning = -5, weeks = 0 }
                early_year = { watch = 0, school_days = 0 }
                rising_trend = { ratio = 1, min_rate = 0, recent_weeks = 1, baseline_weeks = 3 }
                "#,
            ),
        );
        let problems = check(&p, Layer::Global);
        assert_eq!(
            keys(&problems),
            [
                "days_per_half_year.critical",
                "absence_rate.watch",
                "absence_rate.min_school_days",
                "consecutive_days.warning",
                "unexcused.watch",
                "unexcused.critical_lessons",
                "pending_excuse.warning",
                "same_weekday.critical",
                "around_weekend_holiday.warning",
                "around_weekend_holiday.min_share",
                "around_weekend_holiday.weeks",
                "edge_lessons.critical",
                "edge_lessons.weeks",
                "subject_avoidance.watch",
                "subject_avoidance.weeks",
                "lateness.warning",
                "lateness.weeks",
                "early_year.watch",
                "early_year.school_days",
                "rising_trend.ratio",
                "rising_trend.min_rate",
                "rising_trend.recent_weeks",
                "rising_trend.baseline_weeks",
            ],
            "{problems:#?}"
        );
        for p in &problems {
            assert!(p.message.contains("; "), "{p:?}");
            assert!(!p.message.contains('\n'), "{p:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let mut p = RuleParams::default();
        apply(
            &mut p,
            &section(
                r#"
                around_weekend_holiday = { min_share = 0, weeks = 52 }
                edge_lessons = { weeks = 1 }
                early_year = { school_days = 200 }
                rising_trend = { ratio = 1.01, min_rate = 100, recent_weeks = 2, baseline_weeks = 4 }
                absence_rate = { critical = 100 }
                "#,
            ),
        );
        assert_eq!(check(&p, Layer::Global), []);
        apply(
            &mut p,
            &section("around_weekend_holiday = { min_share = 100.5 }"),
        );
        assert_eq!(
            keys(&check(&p, Layer::Global)),
            ["around_weekend_holiday.min_share"]
        );
    }

    #[test]
    fn merged_thresholds_must_rise() {
        let mut p = RuleParams::default();
        // warning 11 stays from the defaults; critical 8 falls below it.
        apply(
            &mut p,
            &RulesSection {
                days_per_half_year: bands(None, None, Some(8.0)),
                ..RulesSection::default()
            },
        );
        let problems = check(&p, Layer::Global);
        assert_eq!(keys(&problems), ["days_per_half_year"]);
        assert_eq!(
            problems[0].message,
            "thresholds must rise from watch to critical, but warning = 11 (the default) is above critical = 8; raise critical or lower warning"
        );
    }

    #[test]
    fn a_school_is_blamed_only_for_what_it_writes() {
        let mut global = RuleParams::default();
        apply(
            &mut global,
            &section(
                "edge_lessons = { warning = 5 }
lateness = { weeks = 0 }",
            ),
        );
        assert_eq!(keys(&check(&global, Layer::Global)), ["lateness.weeks"]);
        let layer = Layer::School { global: &global };

        // Critical below the global warning: the school's problem, with the source of warning.
        let mut school = global.clone();
        apply(&mut school, &section("edge_lessons = { critical = 4 }"));
        let problems = check(&school, layer);
        assert_eq!(keys(&problems), ["edge_lessons"], "{problems:#?}");
        assert!(
            problems[0]
                .message
                .contains("warning = 5 (from [rules]) is above critical = 4;"),
            "{problems:#?}"
        );

        // Against a default it says so.
        let mut school = global.clone();
        apply(&mut school, &section("subject_avoidance = { warning = 9 }"));
        let problems = check(&school, layer);
        assert_eq!(keys(&problems), ["subject_avoidance"]);
        assert!(
            problems[0]
                .message
                .contains("warning = 9 is above critical = 5 (the default);"),
            "{problems:#?}"
        );

        // The inherited lateness.weeks = 0 was reported under [rules]: not again per school,
        // even when the school touches the same rule; nor when it writes the same value.
        let mut school = global.clone();
        apply(
            &mut school,
            &section(
                "lateness = { warning = 6, weeks = 0 }
edge_lessons = { warning = 5 }",
            ),
        );
        assert_eq!(check(&school, layer), []);
        // A school that fixes it is fine.
        apply(&mut school, &section("lateness = { weeks = 3 }"));
        assert_eq!(check(&school, layer), []);
    }

    #[test]
    fn percent_thresholds_are_checked_as_percentages() {
        let mut p = RuleParams::default();
        apply(
            &mut p,
            &RulesSection {
                absence_rate: Some(crate::config::file::AbsenceRateTable {
                    critical: Some(120.0),
                    ..Default::default()
                }),
                consecutive_days: bands(None, Some(-1.0), None),
                ..RulesSection::default()
            },
        );
        let problems = check(&p, Layer::Global);
        assert_eq!(
            keys(&problems),
            ["absence_rate.critical", "consecutive_days.warning"]
        );
        assert!(
            problems[0]
                .message
                .contains("not a percentage between 0 and 100")
        );
        assert!(problems[1].message.contains("not a positive number"));
    }

    #[test]
    fn lesson_thresholds_of_unexcused_are_checked_with_their_own_keys() {
        let mut p = RuleParams::default();
        apply(&mut p, &section("unexcused = { warning_lessons = 40 }"));
        let problems = check(&p, Layer::Global);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .message
                .contains("warning_lessons = 40 is above critical_lessons = 30 (the default)"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_key_of_another_rule_is_an_unknown_field() {
        for (text, field) in [
            ("[days_per_half_year]\nweeks = 4", "weeks"),
            ("[consecutive_days]\nmin_school_days = 5", "min_school_days"),
            ("[lateness]\nmin_share = 5", "min_share"),
            ("[rising_trend]\nwarning = 2", "warning"),
            ("[edge_lessons]\nschool_days = 2", "school_days"),
        ] {
            let e = toml::from_str::<RulesSection>(text).unwrap_err();
            assert!(
                e.message().starts_with(&format!("unknown field `{field}`")),
                "{text}: {e}"
            );
        }
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
