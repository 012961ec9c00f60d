//! Property tests of [`evaluate_student`] over random histories of one student.
//!
//! Inputs: absences on random days of and around the school year (weekends, holidays, outside
//! the year, after the evaluation day), random start/end times (reversed, crossing midnight,
//! outside the bell schedule), random status, kind and subject, records of another student,
//! duplicates and overlaps; a random evaluation day inside and outside the school year; a
//! calendar of a random state with school holidays, with and without a bell schedule; and
//! random thresholds for the rules a config may tune (rising, as config validation demands).
//!
//! Properties:
//! - no rule panics;
//! - evaluation is deterministic: the same input twice gives identical findings, and shuffling
//!   the input gives identical findings once the findings are sorted;
//! - adding one absence (a full school day, or a late arrival) never lowers the highest
//!   severity of a count-based rule: `days_per_half_year`, `absence_rate`, `consecutive_days`,
//!   `unexcused`, `pending_excuse`, `lateness`, `early_year`;
//! - every finding has evidence, each entry starts with an ISO date inside the school year and
//!   not after the evaluation day, and its severity is what the rule's thresholds give for its
//!   value.
//!
//! Not monotone by design, and therefore not checked for monotonicity: `same_weekday` (an
//! extra absence day can break "present the day before and after"), `around_weekend_holiday`
//! (an extra mid-week absence lowers the share of days next to a weekend), `edge_lessons` and
//! `subject_avoidance` (an extra absence can turn a partial day into a full absence day, which
//! these rules skip) and `rising_trend` (an extra absence in the baseline raises the baseline).
//!
//! Failing cases are not persisted (no regression files beside the sources); a case found once
//! becomes a named test at the end of this module. `PROPTEST_CASES` overrides the case count.

use super::*;
use crate::calendar::STATES;
use crate::config::{Holiday, Period};
use crate::model::{AbsenceKind, ExcuseStatus, SchoolYear};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::collections::BTreeMap;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = CASES;
    }
    c.failure_persistence = None;
    c
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

const YEAR: SchoolYear = SchoolYear {
    start: NaiveDate::from_ymd_opt(2025, 8, 1).unwrap(),
    end: NaiveDate::from_ymd_opt(2026, 7, 31).unwrap(),
};

/// First day random absences and extra absences fall on; they reach this many days on.
fn first_day() -> NaiveDate {
    d(2025, 7, 18)
}
const DAY_SPAN: i64 = 410;

fn student() -> StudentId {
    StudentId("s1".into())
}

fn holidays() -> Vec<Holiday> {
    let h = |from: NaiveDate, to: NaiveDate, name: &str| Holiday {
        from,
        to,
        name: name.into(),
    };
    vec![
        h(d(2025, 10, 13), d(2025, 10, 25), "Herbstferien"),
        h(d(2025, 12, 22), d(2026, 1, 6), "Weihnachtsferien"),
        h(d(2026, 3, 30), d(2026, 4, 11), "Osterferien"),
        h(d(2026, 5, 15), d(2026, 5, 15), "Brückentag"),
        // Reaches beyond the school year's end.
        h(d(2026, 7, 20), d(2026, 9, 1), "Sommerferien"),
    ]
}

/// A bell schedule of `n` lessons (with breaks), listed in a scrambled order.
fn bell_schedule(n: u32) -> Vec<Period> {
    let mut out: Vec<Period> = (0..n)
        .map(|i| {
            let start = hm(7, 45) + Duration::minutes(i64::from(i) * 50 + i64::from(i / 2) * 15);
            Period {
                number: i + 1,
                start,
                end: start + Duration::minutes(45),
            }
        })
        .collect();
    out.reverse();
    out
}

#[derive(Debug, Clone)]
struct CalendarSpec {
    state: &'static str,
    with_holidays: bool,
    half_year_starts: Vec<NaiveDate>,
    /// Lessons of the bell schedule; 0 = no bell schedule.
    lessons: u32,
}

impl CalendarSpec {
    fn build(&self) -> Calendar {
        let holidays = if self.with_holidays {
            holidays()
        } else {
            Vec::new()
        };
        Calendar::new(
            YEAR,
            self.state,
            &holidays,
            &self.half_year_starts,
            &bell_schedule(self.lessons),
        )
    }
}

fn calendar_spec() -> impl Strategy<Value = CalendarSpec> {
    (
        prop::sample::select(STATES.to_vec()),
        prop::bool::weighted(0.8),
        prop_oneof![
            Just(Vec::new()),
            Just(vec![d(2026, 2, 2)]),
            (0i64..400).prop_map(|o| vec![first_day() + Duration::days(o)]),
        ],
        prop_oneof![2 => Just(0u32), 3 => Just(6u32), 2 => Just(8u32), 1 => 1u32..=3],
    )
        .prop_map(
            |(state, with_holidays, half_year_starts, lessons)| CalendarSpec {
                state,
                with_holidays,
                half_year_starts,
                lessons,
            },
        )
}

/// Rising thresholds, each level present or not; `max` bounds the values (percent rules).
fn bands(max: u32) -> impl Strategy<Value = Bands> {
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(1..=max, 3),
        prop::array::uniform3(prop::bool::weighted(0.7)),
        prop::bool::ANY,
    )
        .prop_map(|(enabled, mut values, present, half)| {
            values.sort_unstable();
            let level = |i: usize| {
                let v = f64::from(values[i]) - if half && values[i] > 1 { 0.5 } else { 0.0 };
                present[i].then_some(v)
            };
            Bands {
                enabled,
                watch: level(0),
                warning: level(1),
                critical: level(2),
            }
        })
}

/// Defaults, with what a config may change drawn at random.
fn params() -> impl Strategy<Value = RuleParams> {
    prop_oneof![
        1 => Just(RuleParams::default()),
        3 => (
            0u32..=16,
            bands(40),
            prop_oneof![bands(30), bands(100)],
            prop_oneof![0u32..=40, 0u32..=366],
            bands(12),
            bands(12),
            bands(60),
            bands(8),
        )
            .prop_map(
                |(min_lessons, days, rate, rate_min, consecutive, unexcused_days, lessons, weekday)| {
                    // `enabled` of the unexcused table switches days and lessons alike.
                    RuleParams {
                        absence_day_min_lessons: min_lessons,
                        days_per_half_year: days,
                        absence_rate: rate,
                        absence_rate_min_school_days: rate_min,
                        consecutive_days: consecutive,
                        unexcused_days,
                        unexcused_lessons: Bands {
                            enabled: unexcused_days.enabled,
                            ..lessons
                        },
                        same_weekday: weekday,
                        ..RuleParams::default()
                    }
                },
            ),
    ]
}

/// A day for a record: anywhere from before the school year to after it, or clustered in the
/// weeks around the evaluation day or at the school year's start, where the rules look.
fn record_day(today: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        2 => (0..DAY_SPAN).prop_map(|o| first_day() + Duration::days(o)),
        3 => (-70i64..5).prop_map(move |o| today + Duration::days(o)),
        1 => (0i64..45).prop_map(|o| YEAR.start + Duration::days(o)),
    ]
}

/// Start time and length in minutes of a record.
fn span() -> impl Strategy<Value = (NaiveTime, i64)> {
    prop_oneof![
        // The whole school day (of the 8-lesson schedule; 07:45 to 15:05).
        2 => Just((hm(7, 45), 440)),
        // Some lessons on the bell schedule's grid.
        2 => (0i64..8, 1i64..5).prop_map(|(i, n)| {
            let start = hm(7, 45) + Duration::minutes(i * 50 + (i / 2) * 15);
            (start, n * 50)
        }),
        // Anything: before or after the bell schedule, reversed, past midnight.
        1 => (
            (0u32..24 * 60).prop_map(|m| hm(m / 60, m % 60)),
            prop_oneof![1 => -180i64..0, 4 => 0i64..400, 1 => 400i64..2000],
        ),
    ]
}

fn absence(today: NaiveDate) -> impl Strategy<Value = Absence> {
    (
        prop::bool::weighted(0.9),
        record_day(today),
        span(),
        prop_oneof![4 => 0u32..600, 1 => Just(u32::MAX), 1 => any::<u32>()],
        prop::sample::select(vec![None, Some("M"), Some("D"), Some("E"), Some("Sp")]),
        prop::sample::select(vec![
            ExcuseStatus::Excused,
            ExcuseStatus::Unexcused,
            ExcuseStatus::Pending,
        ]),
        prop_oneof![3 => Just(AbsenceKind::Absence), 1 => Just(AbsenceKind::Delay)],
    )
        .prop_map(
            |(ours, day, (start, length), minutes, subject, status, kind)| {
                let start: NaiveDateTime = day.and_time(start);
                Absence {
                    student: if ours {
                        student()
                    } else {
                        StudentId("s2".into())
                    },
                    start,
                    end: start + Duration::minutes(length),
                    minutes,
                    subject: subject.map(str::to_string),
                    status,
                    kind,
                }
            },
        )
}

/// Records with some of them repeated (the register may send a record twice).
fn absences(today: NaiveDate) -> impl Strategy<Value = Vec<Absence>> {
    (
        prop::collection::vec(absence(today), 0..100),
        prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    )
        .prop_map(|(mut list, dups)| {
            if !list.is_empty() {
                let copies: Vec<Absence> = dups.iter().map(|i| i.get(&list).clone()).collect();
                list.extend(copies);
            }
            list
        })
}

/// Evaluation day: mostly inside the school year, sometimes before or after it.
fn today() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        6 => (0i64..365).prop_map(|o| YEAR.start + Duration::days(o)),
        1 => (1i64..60).prop_map(|o| YEAR.start - Duration::days(o)),
        1 => (1i64..90).prop_map(|o| YEAR.end + Duration::days(o)),
    ]
}

#[derive(Debug, Clone)]
struct Input {
    calendar: CalendarSpec,
    params: RuleParams,
    absences: Vec<Absence>,
    today: NaiveDate,
}

impl Input {
    fn evaluate_with(&self, calendar: &Calendar, absences: &[Absence]) -> Vec<Finding> {
        evaluate_student(&student(), absences, calendar, &self.params, self.today)
    }
}

fn input() -> impl Strategy<Value = Input> {
    (calendar_spec(), params(), today())
        .prop_flat_map(|(c, p, t)| (Just(c), Just(p), absences(t), Just(t)))
        .prop_map(|(calendar, params, absences, today)| Input {
            calendar,
            params,
            absences,
            today,
        })
}

/// The extra record of the monotonicity property.
#[derive(Debug, Clone)]
struct Extra {
    day: NaiveDate,
    status: ExcuseStatus,
    subject: Option<String>,
    delay: bool,
}

impl Extra {
    fn absence(&self, calendar: &Calendar) -> Absence {
        let periods = calendar.periods();
        let (start, end, minutes) = match (periods.first(), periods.last()) {
            (Some(first), Some(last)) => {
                let minutes = (last.end - first.start).num_minutes();
                (first.start, last.end, u32::try_from(minutes).unwrap())
            }
            // Without a bell schedule a day is six lessons of 45 minutes.
            _ => (hm(8, 0), hm(13, 30), 6 * 45),
        };
        if self.delay {
            return Absence {
                student: student(),
                start: self.day.and_time(start),
                end: self.day.and_time(start + Duration::minutes(10)),
                minutes: 10,
                subject: self.subject.clone(),
                status: self.status,
                kind: AbsenceKind::Delay,
            };
        }
        Absence {
            student: student(),
            start: self.day.and_time(start),
            end: self.day.and_time(end),
            minutes,
            subject: self.subject.clone(),
            status: self.status,
            kind: AbsenceKind::Absence,
        }
    }
}

fn extra() -> impl Strategy<Value = Extra> {
    (
        0..DAY_SPAN,
        prop::sample::select(vec![
            ExcuseStatus::Excused,
            ExcuseStatus::Unexcused,
            ExcuseStatus::Pending,
        ]),
        prop::sample::select(vec![None, Some("M"), Some("Ch")]),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(day, status, subject, delay)| Extra {
            day: first_day() + Duration::days(day),
            status,
            subject: subject.map(str::to_string),
            delay,
        })
}

/// Rules whose highest severity never falls when an absence is added.
const MONOTONE_RULES: [&str; 7] = [
    "days_per_half_year",
    "absence_rate",
    "consecutive_days",
    "unexcused",
    "pending_excuse",
    "lateness",
    "early_year",
];

fn highest_severity(findings: &[Finding]) -> BTreeMap<&str, Severity> {
    let mut out: BTreeMap<&str, Severity> = BTreeMap::new();
    for f in findings {
        let e = out.entry(f.rule.as_str()).or_insert(f.severity);
        *e = (*e).max(f.severity);
    }
    out
}

fn shuffle_keys() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(any::<u32>(), 120)
}

/// `list` reordered by `keys` (a stable sort of the positions by their key).
fn shuffle(list: &[Absence], keys: &[u32]) -> Vec<Absence> {
    let mut order: Vec<usize> = (0..list.len()).collect();
    order.sort_by_key(|i| keys.get(*i).copied().unwrap_or(0));
    order.into_iter().map(|i| list[i].clone()).collect()
}

/// Findings in a canonical order, each with its evidence sorted.
fn normalized(findings: Vec<Finding>) -> Vec<Finding> {
    sorted(
        findings
            .into_iter()
            .map(|mut f| {
                f.evidence.sort();
                f
            })
            .collect(),
    )
}

/// Findings in a canonical order.
fn sorted(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        (&a.rule, &a.period, a.severity, a.value, &a.evidence).cmp(&(
            &b.rule,
            &b.period,
            b.severity,
            b.value,
            &b.evidence,
        ))
    });
    findings
}

/// The bands a rule classifies its value with, where the value is the classified quantity.
fn exact_bands<'a>(rule: &str, p: &'a RuleParams) -> Option<&'a Bands> {
    Some(match rule {
        "days_per_half_year" => &p.days_per_half_year,
        "consecutive_days" => &p.consecutive_days,
        "pending_excuse" => &p.pending_excuse,
        "same_weekday" => &p.same_weekday,
        "around_weekend_holiday" => &p.around_weekend_holiday.bands,
        "edge_lessons" => &p.edge_lessons.bands,
        "subject_avoidance" => &p.subject_avoidance.bands,
        "lateness" => &p.lateness.bands,
        "early_year" => &p.early_year.bands,
        _ => return None,
    })
}

/// Rules whose value is the number of evidence entries.
const VALUE_IS_EVIDENCE_COUNT: [&str; 8] = [
    "days_per_half_year",
    "consecutive_days",
    "same_weekday",
    "around_weekend_holiday",
    "edge_lessons",
    "subject_avoidance",
    "lateness",
    "early_year",
];

/// Severity of the mildest configured threshold: no finding can be milder.
fn mildest_level(b: &Bands) -> Option<Severity> {
    [
        (Severity::Watch, b.watch),
        (Severity::Warning, b.warning),
        (Severity::Critical, b.critical),
    ]
    .into_iter()
    .find(|(_, t)| t.is_some())
    .map(|(s, _)| s)
}

fn check_finding(f: &Finding, input: &Input) -> Result<(), TestCaseError> {
    let p = &input.params;
    prop_assert!(
        RULE_IDS.contains(&f.rule.as_str()),
        "unknown rule {}",
        f.rule
    );
    prop_assert_eq!(&f.student, &student());
    prop_assert!(!f.evidence.is_empty(), "no evidence: {:?}", f);
    for e in &f.evidence {
        let day = e
            .get(..10)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
        prop_assert!(
            day.is_some(),
            "evidence {:?} does not start with a date: {:?}",
            e,
            f
        );
        let day = day.unwrap_or(NaiveDate::MIN);
        prop_assert!(
            e.len() == 10 || e.as_bytes().get(10) == Some(&b' '),
            "evidence {:?}: date not followed by a space",
            e
        );
        prop_assert!(
            YEAR.contains(day),
            "evidence {} outside the school year: {:?}",
            e,
            f
        );
        prop_assert!(
            day <= input.today,
            "evidence {} after {}: {:?}",
            e,
            input.today,
            f
        );
    }
    if VALUE_IS_EVIDENCE_COUNT.contains(&f.rule.as_str()) {
        prop_assert_eq!(f.value as usize, f.evidence.len(), "{:?}", f);
    }
    if let Some(b) = exact_bands(&f.rule, p) {
        prop_assert_eq!(b.classify(f64::from(f.value)), Some(f.severity), "{:?}", f);
    }
    match f.rule.as_str() {
        "absence_rate" => {
            // The value is the percentage rounded down; the severity lies between the
            // classes of the value and the next whole percent.
            let b = &p.absence_rate;
            let lo = b.classify(f64::from(f.value));
            let hi = b.classify(f64::from(f.value) + 1.0);
            prop_assert!(b.enabled);
            prop_assert!(lo <= Some(f.severity) && Some(f.severity) <= hi, "{:?}", f);
        }
        "unexcused" => {
            prop_assert!(p.unexcused_days.enabled);
            let by_days = p.unexcused_days.classify(f64::from(f.value));
            prop_assert!(by_days <= Some(f.severity), "{:?}", f);
            let mildest = [
                mildest_level(&p.unexcused_days),
                mildest_level(&p.unexcused_lessons),
            ]
            .into_iter()
            .flatten()
            .min();
            prop_assert!(mildest <= Some(f.severity), "{:?}", f);
        }
        "rising_trend" => {
            prop_assert!(p.rising_trend.enabled);
            prop_assert_eq!(f.severity, Severity::Warning);
            prop_assert!(f64::from(f.value) + 1.0 > p.rising_trend.min_rate_percent);
        }
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// No panic, and every finding is well-formed and classified by the params.
    #[test]
    fn findings_are_sound(input in input()) {
        let calendar = input.calendar.build();
        let findings = input.evaluate_with(&calendar, &input.absences);
        for f in &findings {
            check_finding(f, &input)?;
        }
    }

    /// Same input, same findings; shuffled input, same findings up to their order and the
    /// order of their evidence entries (see `shuffled_input_keeps_the_evidence_order`).
    #[test]
    fn evaluation_is_deterministic(input in input(), keys in shuffle_keys()) {
        let calendar = input.calendar.build();
        let first = input.evaluate_with(&calendar, &input.absences);
        let again = input.evaluate_with(&calendar, &input.absences);
        prop_assert_eq!(&first, &again);
        let other = input.evaluate_with(&calendar, &shuffle(&input.absences, &keys));
        prop_assert_eq!(normalized(first), normalized(other));
    }

    /// Shuffled input gives the findings with their evidence in the same order.
    #[test]

    fn shuffled_input_keeps_the_evidence_order(input in input(), keys in shuffle_keys()) {
        let calendar = input.calendar.build();
        let first = input.evaluate_with(&calendar, &input.absences);
        let other = input.evaluate_with(&calendar, &shuffle(&input.absences, &keys));
        prop_assert_eq!(sorted(first), sorted(other));
    }

    /// One more absence never lowers a count-based rule's highest severity.
    #[test]
    fn an_extra_absence_never_lowers_count_findings(input in input(), extra in extra()) {
        let calendar = input.calendar.build();
        let before = input.evaluate_with(&calendar, &input.absences);
        let mut more = input.absences.clone();
        more.push(extra.absence(&calendar));
        let after = input.evaluate_with(&calendar, &more);
        let (b, a) = (highest_severity(&before), highest_severity(&after));
        for rule in MONOTONE_RULES {
            prop_assert!(
                b.get(rule) <= a.get(rule),
                "{}: {:?} before, {:?} after adding {:?}",
                rule,
                b.get(rule),
                a.get(rule),
                extra
            );
        }
    }
}

// Cases the properties found, as plain tests.

/// Five late arrivals in March 2026, two of them on the same day.
fn five_delays() -> Vec<Absence> {
    [
        (d(2026, 3, 2), 10),
        (d(2026, 3, 3), 20),
        (d(2026, 3, 3), 5),
        (d(2026, 3, 4), 15),
        (d(2026, 3, 5), 25),
    ]
    .into_iter()
    .map(|(day, minutes)| Absence {
        student: student(),
        start: day.and_time(hm(7, 45)),
        end: day.and_time(hm(7, 45) + Duration::minutes(minutes)),
        minutes: minutes as u32,
        subject: None,
        status: ExcuseStatus::Excused,
        kind: AbsenceKind::Delay,
    })
    .collect()
}

fn nw_calendar(lessons: u32) -> Calendar {
    CalendarSpec {
        state: "NW",
        with_holidays: true,
        half_year_starts: Vec::new(),
        lessons,
    }
    .build()
}

/// Minimal case of `shuffled_input_keeps_the_evidence_order`: the two late arrivals of
/// 2026-03-03 are listed in input order (`+20min, +5min` or `+5min, +20min`).
#[test]

fn lateness_evidence_follows_input_order() {
    let calendar = nw_calendar(6);
    let today = d(2026, 3, 6);
    let p = RuleParams::default();
    let list = five_delays();
    let mut swapped = list.clone();
    swapped.swap(1, 2);
    let a = evaluate_student(&student(), &list, &calendar, &p, today);
    let b = evaluate_student(&student(), &swapped, &calendar, &p, today);
    assert_eq!(a, b);
}

/// The same case up to the evidence order: the finding itself does not depend on the order.
#[test]
fn lateness_finding_does_not_depend_on_input_order() {
    let calendar = nw_calendar(6);
    let today = d(2026, 3, 6);
    let p = RuleParams::default();
    let list = five_delays();
    let mut swapped = list.clone();
    swapped.swap(1, 2);
    let a = evaluate_student(&student(), &list, &calendar, &p, today);
    let b = evaluate_student(&student(), &swapped, &calendar, &p, today);
    assert_eq!(normalized(a.clone()), normalized(b));
    let lateness: Vec<&Finding> = a.iter().filter(|f| f.rule == "lateness").collect();
    assert_eq!(lateness.len(), 1);
    assert_eq!(lateness[0].value, 5);
    assert_eq!(lateness[0].severity, Severity::Warning);
}

/// `minutes` as WebUntis may send it (clamped to `u32::MAX`), unexcused, on `n` school days,
/// `per_day` records a day, without a bell schedule (lessons are counted from minutes then).
fn huge_minutes(n: usize, per_day: usize) -> (Calendar, Vec<Absence>, NaiveDate) {
    let calendar = nw_calendar(0);
    let days = calendar.school_days(d(2026, 2, 2), d(2026, 7, 10));
    let list: Vec<Absence> = days
        .iter()
        .take(n)
        .flat_map(|day| {
            (0..per_day).map(|i| Absence {
                student: student(),
                start: day.and_time(hm(8, i as u32)),
                end: day.and_time(hm(13, 0)),
                minutes: u32::MAX,
                subject: None,
                status: ExcuseStatus::Unexcused,
                kind: AbsenceKind::Absence,
            })
        })
        .collect();
    (calendar, list, d(2026, 7, 10))
}

/// 45 records of `u32::MAX` minutes on one day.
#[test]

fn huge_minutes_on_one_day_do_not_overflow() {
    let (calendar, list, today) = huge_minutes(1, 45);
    evaluate_student(&student(), &list, &calendar, &RuleParams::default(), today);
}

/// One record of `u32::MAX` minutes on each of 45 days.
#[test]

fn huge_minutes_on_many_days_do_not_overflow() {
    let (calendar, list, today) = huge_minutes(45, 1);
    evaluate_student(&student(), &list, &calendar, &RuleParams::default(), today);
}
