//! Table tests at the thresholds of every rule (SPEC §4 defaults).

use super::*;
use crate::config::{Holiday, Period};
use crate::model::{AbsenceKind, ExcuseStatus, SchoolYear};
use chrono::{NaiveDate, NaiveTime};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn t(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

/// NW, school year 2025/26, Herbstferien and Weihnachtsferien, six lessons a day.
fn calendar() -> Calendar {
    let periods: Vec<Period> = [
        ("07:45", "08:30"),
        ("08:30", "09:15"),
        ("09:35", "10:20"),
        ("10:20", "11:05"),
        ("11:25", "12:10"),
        ("12:10", "12:55"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (a, b))| Period {
        number: i as u32 + 1,
        start: t(a),
        end: t(b),
    })
    .collect();
    Calendar::new(
        SchoolYear {
            start: d("2025-08-01"),
            end: d("2026-07-31"),
        },
        "NW",
        &[
            Holiday {
                from: d("2025-10-13"),
                to: d("2025-10-25"),
                name: "Herbstferien".into(),
            },
            Holiday {
                from: d("2025-12-22"),
                to: d("2026-01-06"),
                name: "Weihnachtsferien".into(),
            },
        ],
        &[],
        &periods,
    )
}

fn student() -> StudentId {
    StudentId("s1".into())
}

fn entry(day: &str, from: &str, to: &str, status: ExcuseStatus) -> Absence {
    let day = d(day);
    Absence {
        student: student(),
        start: day.and_time(t(from)),
        end: day.and_time(t(to)),
        minutes: 45,
        subject: Some("M".into()),
        status,
        kind: AbsenceKind::Absence,
    }
}

fn full_day(day: &str, status: ExcuseStatus) -> Absence {
    entry(day, "07:45", "12:55", status)
}

fn days(list: &[&str], status: ExcuseStatus) -> Vec<Absence> {
    list.iter().map(|x| full_day(x, status)).collect()
}

fn eval(absences: &[Absence], today: &str) -> Vec<Finding> {
    evaluate_student(
        &student(),
        absences,
        &calendar(),
        &RuleParams::default(),
        d(today),
    )
}

fn of_rule(findings: &[Finding], rule: &str) -> Vec<(Severity, u32)> {
    findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.severity, f.value))
        .collect()
}

/// School days from `from`, `n` of them (Mon-Fri outside holidays).
fn school_days_from(from: &str, n: usize) -> Vec<String> {
    let cal = calendar();
    cal.school_days(d(from), d("2026-07-31"))
        .into_iter()
        .take(n)
        .map(|x| x.format("%Y-%m-%d").to_string())
        .collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn bands_classify_at_the_boundaries() {
    let b = Bands::new(Some(5.0), Some(11.0), Some(21.0));
    assert_eq!(b.classify(4.0), None);
    assert_eq!(b.classify(5.0), Some(Severity::Watch));
    assert_eq!(b.classify(10.0), Some(Severity::Watch));
    assert_eq!(b.classify(11.0), Some(Severity::Warning));
    assert_eq!(b.classify(21.0), Some(Severity::Critical));
    let off = Bands {
        enabled: false,
        ..b
    };
    assert_eq!(off.classify(100.0), None);
}

#[test]
fn consecutive_days_thresholds() {
    let cases: &[(usize, Option<Severity>)] = &[
        (2, None),
        (3, Some(Severity::Warning)),
        (4, Some(Severity::Warning)),
        (5, Some(Severity::Critical)),
    ];
    for &(n, expected) in cases {
        // Runs starting on a Monday in March 2026.
        let run = school_days_from("2026-03-02", n);
        let f = eval(&days(&refs(&run), ExcuseStatus::Excused), "2026-03-13");
        assert_eq!(
            of_rule(&f, "consecutive_days").first().map(|x| x.0),
            expected,
            "{n} days"
        );
    }
}

#[test]
fn weekends_and_holidays_neither_break_nor_count_in_a_streak() {
    // Thu, Fri before the Herbstferien and Mon, Tue, Wed after them: one run of five.
    let run = [
        "2025-10-09",
        "2025-10-10",
        "2025-10-27",
        "2025-10-28",
        "2025-10-29",
    ];
    let f = eval(&days(&run, ExcuseStatus::Excused), "2025-10-30");
    assert_eq!(
        of_rule(&f, "consecutive_days"),
        vec![(Severity::Critical, 5)]
    );
    // Absences recorded on holidays are ignored: they do not extend a run of two.
    let mut two = days(&["2025-10-09", "2025-10-10"], ExcuseStatus::Excused);
    two.extend(days(
        &["2025-10-13", "2025-10-14", "2025-10-11"],
        ExcuseStatus::Unexcused,
    ));
    let f = eval(&two, "2025-10-30");
    assert!(of_rule(&f, "consecutive_days").is_empty(), "{f:?}");
    assert!(of_rule(&f, "unexcused").is_empty(), "{f:?}");
}

#[test]
fn old_streaks_resolve() {
    let run = school_days_from("2026-02-02", 3);
    let recent = eval(&days(&refs(&run), ExcuseStatus::Excused), "2026-02-06");
    assert_eq!(of_rule(&recent, "consecutive_days").len(), 1);
    let later = eval(&days(&refs(&run), ExcuseStatus::Excused), "2026-03-13");
    assert!(of_rule(&later, "consecutive_days").is_empty());
}

#[test]
fn a_day_counts_from_half_the_lessons() {
    // Two of six lessons: no absence day; three: an absence day.
    let two: Vec<Absence> = ["2026-03-02", "2026-03-03", "2026-03-04"]
        .iter()
        .map(|x| entry(x, "07:45", "09:15", ExcuseStatus::Excused))
        .collect();
    assert!(of_rule(&eval(&two, "2026-03-05"), "consecutive_days").is_empty());
    let three: Vec<Absence> = ["2026-03-02", "2026-03-03", "2026-03-04"]
        .iter()
        .map(|x| entry(x, "07:45", "10:20", ExcuseStatus::Excused))
        .collect();
    assert_eq!(
        of_rule(&eval(&three, "2026-03-05"), "consecutive_days").len(),
        1
    );
}

#[test]
fn days_per_half_year_thresholds() {
    // Isolated Wednesdays and Fridays every other week, so no other rule interferes.
    let pool: Vec<String> = calendar()
        .school_days(d("2026-02-02"), d("2026-07-10"))
        .into_iter()
        .filter(|x| x.format("%u").to_string() == "3")
        .map(|x| x.format("%Y-%m-%d").to_string())
        .collect();
    for (n, expected) in [
        (4, None),
        (5, Some(Severity::Watch)),
        (11, Some(Severity::Warning)),
    ] {
        if n > pool.len() {
            continue;
        }
        let f = eval(
            &days(&refs(&pool[..n]), ExcuseStatus::Excused),
            "2026-07-10",
        );
        let got = of_rule(&f, "days_per_half_year").first().map(|x| x.0);
        assert_eq!(got, expected, "{n} days");
    }
    assert_eq!(
        of_rule(
            &eval(
                &days(&refs(&pool[..10]), ExcuseStatus::Excused),
                "2026-07-10"
            ),
            "days_per_half_year"
        ),
        vec![(Severity::Watch, 10)]
    );
    // 21 days: critical.
    let many = school_days_from("2026-02-02", 21);
    let f = eval(&days(&refs(&many), ExcuseStatus::Excused), "2026-03-31");
    assert_eq!(
        of_rule(&f, "days_per_half_year"),
        vec![(Severity::Critical, 21)]
    );
    // First half-year's days do not count in the second.
    let f = eval(
        &days(
            &refs(&school_days_from("2025-09-01", 6)),
            ExcuseStatus::Excused,
        ),
        "2026-03-02",
    );
    assert!(of_rule(&f, "days_per_half_year").is_empty());
}

#[test]
fn absence_rate_thresholds_and_minimum_school_days() {
    // The first 40 school days; 2 / 4 / 8 absence days = 5 % / 10 % / 20 %.
    let all = school_days_from("2025-08-01", 40);
    let today = all[39].clone();
    // Spread the absences over Wednesdays so no streak forms.
    let weds: Vec<String> = all
        .iter()
        .filter(|x| d(x).format("%u").to_string() == "3")
        .cloned()
        .collect();
    for (n, expected) in [
        (1, None),
        (2, Some(Severity::Watch)),
        (3, Some(Severity::Watch)),
        (4, Some(Severity::Warning)),
        (8, Some(Severity::Critical)),
    ] {
        let f = eval(&days(&refs(&weds[..n]), ExcuseStatus::Excused), &today);
        assert_eq!(
            of_rule(&f, "absence_rate").first().map(|x| x.0),
            expected,
            "{n} of 40 days"
        );
    }
    // Fewer than 20 school days: not judged yet.
    let early = school_days_from("2025-08-01", 19);
    let f = eval(&days(&refs(&early[..5]), ExcuseStatus::Excused), &early[18]);
    assert!(of_rule(&f, "absence_rate").is_empty());
}

#[test]
fn unexcused_by_days_and_by_lessons() {
    let mondays = [
        "2026-02-02",
        "2026-02-16",
        "2026-03-02",
        "2026-03-16",
        "2026-03-30",
    ];
    for (n, expected) in [
        (2, None),
        (3, Some(Severity::Warning)),
        (4, Some(Severity::Warning)),
        (5, Some(Severity::Critical)),
    ] {
        let f = eval(&days(&mondays[..n], ExcuseStatus::Unexcused), "2026-03-31");
        assert_eq!(
            of_rule(&f, "unexcused").first().map(|x| x.0),
            expected,
            "{n} days"
        );
    }
    // Excused and pending days do not count.
    assert!(
        of_rule(
            &eval(&days(&mondays, ExcuseStatus::Excused), "2026-03-31"),
            "unexcused"
        )
        .is_empty()
    );
    assert!(
        of_rule(
            &eval(&days(&mondays, ExcuseStatus::Pending), "2026-03-31"),
            "unexcused"
        )
        .is_empty()
    );
    // Lessons: single unexcused lessons on 14 / 15 different days.
    let lessons: Vec<String> = school_days_from("2026-02-02", 30)
        .into_iter()
        .step_by(2)
        .collect();
    let single = |n: usize| -> Vec<Absence> {
        lessons[..n]
            .iter()
            .map(|x| entry(x, "09:35", "10:20", ExcuseStatus::Unexcused))
            .collect()
    };
    assert!(of_rule(&eval(&single(14), "2026-03-31"), "unexcused").is_empty());
    assert_eq!(
        of_rule(&eval(&single(15), "2026-03-31"), "unexcused"),
        vec![(Severity::Warning, 0)]
    );
}

#[test]
fn same_weekday_thresholds() {
    let tuesdays = ["2026-02-03", "2026-02-10", "2026-02-17", "2026-02-24"];
    for (n, expected) in [
        (1, None),
        (2, Some(Severity::Warning)),
        (3, Some(Severity::Warning)),
        (4, Some(Severity::Critical)),
    ] {
        // Evaluated on the Thursday after the last absent Tuesday.
        let today = (d(tuesdays[n - 1]) + chrono::Duration::days(2)).to_string();
        let f = eval(&days(&tuesdays[..n], ExcuseStatus::Excused), &today);
        assert_eq!(
            of_rule(&f, "same_weekday").first().map(|x| x.0),
            expected,
            "{n} weeks"
        );
    }
    // Absent the day before too: not the pattern.
    let mut v = days(&tuesdays[..2], ExcuseStatus::Excused);
    v.push(full_day("2026-02-09", ExcuseStatus::Excused));
    assert!(of_rule(&eval(&v, "2026-02-27"), "same_weekday").is_empty());
    // A gap week breaks the chain.
    let gap = days(&["2026-02-03", "2026-02-17"], ExcuseStatus::Excused);
    assert!(of_rule(&eval(&gap, "2026-02-27"), "same_weekday").is_empty());
}

#[test]
fn odd_data_does_not_panic() {
    let cal = calendar();
    let p = RuleParams::default();
    // Empty history, a day before the school year, entries after today, reversed times.
    assert!(evaluate_student(&student(), &[], &cal, &p, d("2025-08-01")).is_empty());
    assert!(evaluate_student(&student(), &[], &cal, &p, d("2024-01-01")).is_empty());
    let mut odd = days(&["2026-03-02", "2026-03-02"], ExcuseStatus::Excused);
    odd.push(entry(
        "2026-03-03",
        "12:00",
        "08:00",
        ExcuseStatus::Unexcused,
    ));
    odd.push(full_day("2027-01-01", ExcuseStatus::Unexcused));
    let _ = evaluate_student(&student(), &odd, &cal, &p, d("2026-03-05"));
}

fn delay(day: &str, minutes: u32) -> Absence {
    let day = d(day);
    Absence {
        student: student(),
        start: day.and_time(t("07:45")),
        end: day.and_time(t("07:45")) + chrono::Duration::minutes(i64::from(minutes)),
        minutes,
        subject: Some("D".into()),
        status: ExcuseStatus::Unexcused,
        kind: AbsenceKind::Delay,
    }
}

fn lesson(day: &str, from: &str, to: &str, subject: &str) -> Absence {
    let mut a = entry(day, from, to, ExcuseStatus::Unexcused);
    a.subject = Some(subject.into());
    a
}

#[test]
fn pending_excuse_after_three_school_days() {
    // Absent (pending) on Monday 2026-03-02; school days pass Tue, Wed, Thu.
    let pending = days(&["2026-03-02"], ExcuseStatus::Pending);
    for (today, expected) in [
        ("2026-03-04", None),
        ("2026-03-05", Some((Severity::Warning, 3))),
        ("2026-03-09", Some((Severity::Warning, 5))),
    ] {
        let f = eval(&pending, today);
        assert_eq!(
            of_rule(&f, "pending_excuse").first().copied(),
            expected,
            "{today}"
        );
    }
    // Weekends do not count as waiting days: Friday 2026-03-06, three school days later is Wed.
    let friday = days(&["2026-03-06"], ExcuseStatus::Pending);
    assert!(of_rule(&eval(&friday, "2026-03-10"), "pending_excuse").is_empty());
    assert_eq!(
        of_rule(&eval(&friday, "2026-03-11"), "pending_excuse").len(),
        1
    );
    // Once decided, it is gone.
    let decided = days(&["2026-03-02"], ExcuseStatus::Excused);
    assert!(of_rule(&eval(&decided, "2026-03-09"), "pending_excuse").is_empty());
    // A pending single lesson counts too; the evidence names the lesson.
    let one = vec![entry("2026-03-02", "09:35", "10:20", ExcuseStatus::Pending)];
    let f = eval(&one, "2026-03-05");
    let finding = f.iter().find(|f| f.rule == "pending_excuse").unwrap();
    assert_eq!(finding.evidence, vec!["2026-03-02 L3".to_string()]);
}

#[test]
fn around_weekend_holiday_needs_count_and_share() {
    // Mondays and Fridays in February/March 2026.
    let edge = ["2026-02-06", "2026-02-16", "2026-02-27"];
    let f = eval(&days(&edge[..2], ExcuseStatus::Excused), "2026-03-13");
    assert!(of_rule(&f, "around_weekend_holiday").is_empty(), "2 days");
    let f = eval(&days(&edge, ExcuseStatus::Excused), "2026-03-13");
    assert_eq!(
        of_rule(&f, "around_weekend_holiday"),
        vec![(Severity::Warning, 3)]
    );
    // Three of five is 60 %: still a finding; three of six is not.
    let mut v = days(&edge, ExcuseStatus::Excused);
    v.extend(days(&["2026-02-11", "2026-03-04"], ExcuseStatus::Excused));
    assert_eq!(
        of_rule(&eval(&v, "2026-03-13"), "around_weekend_holiday").len(),
        1
    );
    v.extend(days(&["2026-02-19"], ExcuseStatus::Excused));
    assert!(of_rule(&eval(&v, "2026-03-13"), "around_weekend_holiday").is_empty());
    // A day before the Herbstferien counts as adjacent to a holiday.
    let holiday = days(
        &["2025-10-10", "2025-10-27", "2025-10-06"],
        ExcuseStatus::Excused,
    );
    let f = eval(&holiday, "2025-10-30");
    assert_eq!(of_rule(&f, "around_weekend_holiday").len(), 1, "{f:?}");
    // Outside the 8-week window: not counted.
    assert!(
        of_rule(
            &eval(&days(&edge, ExcuseStatus::Excused), "2026-04-30"),
            "around_weekend_holiday"
        )
        .is_empty()
    );
}

#[test]
fn edge_lessons_first_or_last_while_present() {
    let mornings = [
        "2026-03-02",
        "2026-03-04",
        "2026-03-06",
        "2026-03-10",
        "2026-03-12",
        "2026-03-16",
    ];
    let first = |n: usize| -> Vec<Absence> {
        mornings[..n]
            .iter()
            .map(|x| lesson(x, "07:45", "08:30", "M"))
            .collect()
    };
    for (n, expected) in [
        (2, None),
        (3, Some(Severity::Warning)),
        (5, Some(Severity::Warning)),
        (6, Some(Severity::Critical)),
    ] {
        let f = eval(&first(n), "2026-03-16");
        assert_eq!(
            of_rule(&f, "edge_lessons").first().map(|x| x.0),
            expected,
            "{n}"
        );
    }
    // Last lessons (5-6 of six) count; a middle lesson does not; nor a whole absence day.
    let mut v: Vec<Absence> = ["2026-03-02", "2026-03-03", "2026-03-04"]
        .iter()
        .map(|x| lesson(x, "11:25", "12:55", "E"))
        .collect();
    assert_eq!(of_rule(&eval(&v, "2026-03-05"), "edge_lessons").len(), 1);
    v.pop();
    v.push(lesson("2026-03-04", "09:35", "10:20", "E"));
    assert!(of_rule(&eval(&v, "2026-03-05"), "edge_lessons").is_empty());
    let full = days(
        &["2026-03-02", "2026-03-03", "2026-03-04"],
        ExcuseStatus::Excused,
    );
    assert!(of_rule(&eval(&full, "2026-03-05"), "edge_lessons").is_empty());
    // Evidence carries the lessons.
    let f = eval(&first(3), "2026-03-16");
    let e = &f
        .iter()
        .find(|f| f.rule == "edge_lessons")
        .unwrap()
        .evidence;
    assert_eq!(e[0], "2026-03-02 L1");
}

#[test]
fn subject_avoidance_per_subject() {
    let dates = [
        "2026-02-09",
        "2026-02-16",
        "2026-02-23",
        "2026-03-02",
        "2026-03-09",
    ];
    let mk = |n: usize, subject: &str| -> Vec<Absence> {
        dates[..n]
            .iter()
            .map(|x| lesson(x, "09:35", "10:20", subject))
            .collect()
    };
    for (n, expected) in [
        (2, None),
        (3, Some(Severity::Warning)),
        (4, Some(Severity::Warning)),
        (5, Some(Severity::Critical)),
    ] {
        let f = eval(&mk(n, "PH"), "2026-03-13");
        assert_eq!(
            of_rule(&f, "subject_avoidance").first().map(|x| x.0),
            expected,
            "{n}"
        );
    }
    // Two subjects with two misses each: nothing; each subject is its own finding.
    let mut v = mk(2, "PH");
    v.extend(
        dates[2..4]
            .iter()
            .map(|x| lesson(x, "09:35", "10:20", "CH")),
    );
    assert!(of_rule(&eval(&v, "2026-03-13"), "subject_avoidance").is_empty());
    let mut both = mk(3, "PH");
    both.extend(dates[..3].iter().map(|x| lesson(x, "10:20", "11:05", "CH")));
    let f = eval(&both, "2026-03-13");
    let periods: Vec<&str> = f
        .iter()
        .filter(|f| f.rule == "subject_avoidance")
        .map(|f| f.period.as_str())
        .collect();
    assert_eq!(periods, vec!["2025-2026/2:CH", "2025-2026/2:PH"]);
    // Missed on an absence day (most lessons gone): not avoidance of one subject.
    let mut days_absent = days(&dates[..3], ExcuseStatus::Excused);
    days_absent.extend(mk(3, "PH"));
    assert!(of_rule(&eval(&days_absent, "2026-03-13"), "subject_avoidance").is_empty());
}

#[test]
fn lateness_in_the_last_four_weeks() {
    let dates = school_days_from("2026-02-23", 12);
    let late = |n: usize| -> Vec<Absence> { dates[..n].iter().map(|x| delay(x, 10)).collect() };
    let today = dates[11].clone();
    for (n, expected) in [
        (4, None),
        (5, Some(Severity::Warning)),
        (9, Some(Severity::Warning)),
        (10, Some(Severity::Critical)),
    ] {
        let f = eval(&late(n), &today);
        assert_eq!(
            of_rule(&f, "lateness").first().map(|x| x.0),
            expected,
            "{n}"
        );
    }
    let f = eval(&late(5), &today);
    assert_eq!(
        f.iter().find(|f| f.rule == "lateness").unwrap().evidence[0],
        format!("{} +10min", dates[0])
    );
    // Late arrivals are no absences.
    assert!(of_rule(&f, "consecutive_days").is_empty());
    // Five weeks later they have left the window.
    assert!(of_rule(&eval(&late(10), "2026-04-30"), "lateness").is_empty());
}

#[test]
fn early_year_counts_the_first_twenty_school_days() {
    let first = school_days_from("2025-08-01", 40);
    let absent = |idx: &[usize]| -> Vec<Absence> {
        idx.iter()
            .map(|i| full_day(&first[*i], ExcuseStatus::Excused))
            .collect()
    };
    let today = first[25].clone();
    for (idx, expected) in [
        (&[3][..], None),
        (&[3, 9][..], Some(Severity::Watch)),
        (&[1, 5, 9, 13][..], Some(Severity::Watch)),
        (&[1, 5, 9, 13, 17][..], Some(Severity::Warning)),
    ] {
        let f = eval(&absent(idx), &today);
        assert_eq!(
            of_rule(&f, "early_year").first().map(|x| x.0),
            expected,
            "{idx:?}"
        );
    }
    // Days after the 20th school day do not count.
    assert!(of_rule(&eval(&absent(&[3, 22]), &today), "early_year").is_empty());
    // After 40 school days the signal has been shown long enough.
    let late = school_days_from("2025-08-01", 41)[40].clone();
    assert!(of_rule(&eval(&absent(&[1, 5, 9, 13, 17]), &late), "early_year").is_empty());
}

#[test]
fn rising_trend_compares_with_the_weeks_before() {
    // Evaluated on 2026-03-27: recent = 2026-02-28..03-27, baseline = the 12 weeks before.
    let today = "2026-03-27";
    let recent = |n: usize| -> Vec<Absence> {
        ["2026-03-04", "2026-03-11", "2026-03-18", "2026-03-25"][..n]
            .iter()
            .map(|x| full_day(x, ExcuseStatus::Excused))
            .collect()
    };
    // 1 of 20 school days (5 %): below 10 %.
    assert!(of_rule(&eval(&recent(1), today), "rising_trend").is_empty());
    // 2 of 20 (10 %) with a clean baseline: a finding.
    assert_eq!(
        of_rule(&eval(&recent(2), today), "rising_trend"),
        vec![(Severity::Warning, 10)]
    );
    // The same with a baseline of 3 days in ~40 school days (7.5 %): 10 % is less than double.
    let mut v = recent(2);
    v.extend(days(
        &["2026-01-14", "2026-01-21", "2026-02-04"],
        ExcuseStatus::Excused,
    ));
    assert!(of_rule(&eval(&v, today), "rising_trend").is_empty());
    // 4 of 20 (20 %) against 7.5 %: more than double.
    let mut v = recent(4);
    v.extend(days(
        &["2026-01-14", "2026-01-21", "2026-02-04"],
        ExcuseStatus::Excused,
    ));
    assert_eq!(
        of_rule(&eval(&v, today), "rising_trend"),
        vec![(Severity::Warning, 20)]
    );
    // Early in the school year there is no baseline yet.
    let early = school_days_from("2025-08-01", 25);
    let v: Vec<Absence> = early[20..24]
        .iter()
        .map(|x| full_day(x, ExcuseStatus::Excused))
        .collect();
    assert!(of_rule(&eval(&v, &early[24]), "rising_trend").is_empty());
}

#[test]
fn disabled_rules_report_nothing() {
    let mut p = RuleParams::default();
    p.consecutive_days.enabled = false;
    p.lateness.bands.enabled = false;
    p.rising_trend.enabled = false;
    let mut v = days(
        &[
            "2026-03-02",
            "2026-03-03",
            "2026-03-04",
            "2026-03-05",
            "2026-03-06",
        ],
        ExcuseStatus::Excused,
    );
    v.extend(
        school_days_from("2026-03-09", 6)
            .iter()
            .map(|x| delay(x, 5)),
    );
    let f = evaluate_student(&student(), &v, &calendar(), &p, d("2026-03-16"));
    for rule in ["consecutive_days", "lateness", "rising_trend"] {
        assert!(of_rule(&f, rule).is_empty(), "{rule}: {f:?}");
    }
    assert!(!of_rule(&f, "days_per_half_year").is_empty());
}

#[test]
fn every_rule_id_can_be_switched() {
    let mut p = RuleParams::default();
    for id in RULE_IDS {
        assert!(p.set_enabled(id, false), "{id}");
    }
    assert!(!p.set_enabled("no_such_rule", false));
    // All off: even a heavy history gives nothing.
    let heavy = days(
        &refs(&school_days_from("2026-02-02", 30)),
        ExcuseStatus::Unexcused,
    );
    let last = d(&school_days_from("2026-02-02", 30)[29]);
    assert!(evaluate_student(&student(), &heavy, &calendar(), &p, last).is_empty());
    let only = RuleParams::only(&["consecutive_days"]);
    let f = evaluate_student(&student(), &heavy, &calendar(), &only, last);
    assert!(
        f.iter().all(|f| f.rule == "consecutive_days") && !f.is_empty(),
        "{f:?}"
    );
}
