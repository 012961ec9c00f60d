//! Planting absences: every student gets a pattern from one table row and a ground-truth entry.
//!
//! Planted rows cross a rule's default threshold clearly, at every severity the rule reports by
//! default (watch, warning, critical), recent enough to be active on the reference day; near-miss
//! rows stay just below warning; ordinary students are sporadically ill or clean. A row is a
//! plain function on a [`DayPlan`](plan::DayPlan) plus what it [`Need`]s from the calendar, so a
//! new rule needs one function and one table line. [`plan`] holds the placing machinery,
//! [`rows`] the row functions.
//!
//! How the harmless categories (near miss, illness, clean) stay below warning under the default
//! rules (the ground-truth tests check it against the real rules):
//! - Absence days: episodes of one or two school days with at least two present school days
//!   between them, and a guard ([`Ctx::quiet`](plan::Ctx::quiet)) that refuses any day after
//!   which a rule counting absence days would reach warning: absence rate, days per half-year,
//!   early year, runs, same-weekday chains, days next to weekends, and the rising trend. The
//!   last one is why a harmless student with absences in the last four weeks has some in the
//!   weeks before as well: two sick days in a month after a clean term are a rising trend.
//! - Excuses: full days are excused, or pending only in the last three school days.
//! - Partial days and late arrivals: at most two days with an edge lesson missed in four weeks,
//!   a subject missed on at most two days in six weeks, at most four late arrivals in four weeks,
//!   fewer than 15 unexcused lessons in the half-year.

mod plan;
mod rows;

#[cfg(test)]
pub(super) use plan::RECENT_SCHOOL_DAYS;

use super::school::bell_schedule;
use super::{LESSON_MINUTES, SimKlasse, SimStudent};
use crate::calendar::Calendar;
use crate::config::Period;
use crate::model::{Absence, AbsenceKind, Severity, StudentId};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use plan::{Ctx, DayPlan, Entry, RISING_MIN_BASELINE_DAYS, RISING_MIN_RECENT_DAYS};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rows::*;

/// What a student was generated to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A pattern past a rule's threshold: the expected findings must appear.
    Planted,
    /// Just below a rule's warning threshold: no finding at warning or above.
    NearMiss,
    /// Ordinary sporadic illness: no finding at warning or above.
    Illness,
    /// No absence, or one: no finding at warning or above.
    Clean,
}

/// Ground truth for one student.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlantedCase {
    pub student: StudentId,
    pub category: Category,
    /// The table row that planted it, e.g. `consecutive_days/critical`.
    pub plant: &'static str,
    /// What was planted, with dates, for a human comparing it with the findings.
    pub description: String,
    /// Findings that must appear as (rule id, severity); planted students may have more.
    pub expected: Vec<(String, Severity)>,
}

/// Absences of the whole school and the ground truth, one case per student.
pub(super) struct Planting {
    pub absences: Vec<Absence>,
    pub cases: Vec<PlantedCase>,
    pub skipped: Vec<SkippedPlant>,
}

/// One set of planted and near-miss students per this many students.
const STUDENTS_PER_PLANT_SET: usize = 150;
/// Share of ordinary students with sporadic illness (the others are clean).
const ILLNESS_SHARE: f64 = 0.55;

/// What a table row did.
struct Outcome {
    description: String,
    expected: Vec<(String, Severity)>,
}

fn outcome(description: String, expected: &[(&str, Severity)]) -> Option<Outcome> {
    Some(Outcome {
        description,
        expected: expected
            .iter()
            .map(|(rule, sev)| ((*rule).to_string(), *sev))
            .collect(),
    })
}

type PlantFn = fn(&mut ChaCha8Rng, &Ctx, &mut DayPlan) -> Option<Outcome>;

/// What a row needs from the calendar on the reference day. Some rules cannot show on every
/// day: `early_year` is evaluated only early in the school year, `rising_trend` needs weeks of
/// history, and a count in the last weeks needs that many school days in them (not so right after
/// the summer or Christmas holidays). A row whose need fails is not planted and is listed in
/// [`Scenario::skipped`](super::Scenario::skipped) instead; a row that is planted must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// Plantable on every reference day the scenario chooses.
    Always,
    /// The school year has at most twice `early_year`'s counted school days behind it (the rule
    /// is silent afterwards).
    EarlyYear,
    /// `rising_trend` compares: 10 school days in its recent weeks, 20 in the weeks before.
    RisingTrend,
    /// At least `school_days` school days in the last `weeks` weeks.
    Window { weeks: u32, school_days: usize },
    /// A harmless student can have `days` absence days in `rising_trend`'s recent weeks: with
    /// few school days in them (after the autumn holidays), two sick days are a rising trend
    /// unless the weeks before had some too, and early in the year those would already make a
    /// 10 % absence rate.
    QuietRecent { days: usize },
}

impl Need {
    /// Why the need fails on the context's reference day; `None` if it holds.
    fn unmet(&self, ctx: &Ctx) -> Option<String> {
        match *self {
            Need::Always => None,
            Need::EarlyYear => ctx.early_year().is_none().then(|| {
                format!(
                    "early_year counts only while the school year has at most {} school days; it has {}",
                    2 * ctx.params.early_year.school_days,
                    ctx.school_days()
                )
            }),
            Need::RisingTrend => ctx.trend.is_none().then(|| {
                let rt = ctx.params.rising_trend;
                let recent = ctx.weeks(rt.recent_weeks);
                format!(
                    "rising_trend needs {RISING_MIN_RECENT_DAYS} school days in the last {} weeks and {RISING_MIN_BASELINE_DAYS} in the {} weeks before; there are {} and {}",
                    rt.recent_weeks,
                    rt.baseline_weeks,
                    recent.len(),
                    ctx.weeks(rt.recent_weeks + rt.baseline_weeks).len() - recent.len()
                )
            }),
            Need::QuietRecent { days } => {
                let w = ctx.trend.as_ref()?;
                let limit = ctx.below_ten_percent().min(10);
                let fits = (0..=w.baseline.len())
                    .find(|b| ctx.trend_quiet(days, *b))
                    .is_some_and(|b| days + b <= limit);
                (!fits).then(|| {
                    format!(
                        "{days} absence days in the {} school days of rising_trend's recent weeks need so many before them ({} school days) that the absence rate would reach 10 % ({} school days so far)",
                        w.recent.len(),
                        w.baseline.len(),
                        ctx.school_days()
                    )
                })
            }
            Need::Window { weeks, school_days } => {
                let have = ctx.weeks(weeks).len();
                (have < school_days).then(|| {
                    format!(
                        "needs {school_days} school days in the last {weeks} weeks; there are {have}"
                    )
                })
            }
        }
    }
}

/// A table row that was not planted on this reference day, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedPlant {
    /// The row's key, e.g. `early_year/warning`.
    pub plant: &'static str,
    pub need: Need,
    pub reason: String,
}

/// One row of the planting table.
struct Plant {
    key: &'static str,
    category: Category,
    need: Need,
    plant: PlantFn,
}

/// Planted patterns, one student each per plant set. Add a rule: add its rows here. Every rule
/// has a row per severity it reports by default and a near miss.
const PLANTED: &[Plant] = &[
    Plant {
        key: "days_per_half_year/watch",
        category: Category::Planted,
        need: Need::Always,
        plant: days_half_watch,
    },
    Plant {
        key: "days_per_half_year/warning",
        category: Category::Planted,
        need: Need::Always,
        plant: days_half_warning,
    },
    Plant {
        key: "days_per_half_year/critical",
        category: Category::Planted,
        need: Need::Always,
        plant: days_half_critical,
    },
    Plant {
        key: "absence_rate/watch",
        category: Category::Planted,
        need: Need::Always,
        plant: rate_watch,
    },
    Plant {
        key: "absence_rate/warning",
        category: Category::Planted,
        need: Need::Always,
        plant: rate_warning,
    },
    Plant {
        key: "absence_rate/critical",
        category: Category::Planted,
        need: Need::Always,
        plant: rate_critical,
    },
    Plant {
        key: "consecutive_days/warning",
        category: Category::Planted,
        need: Need::Always,
        plant: consecutive_warning,
    },
    Plant {
        key: "consecutive_days/critical",
        category: Category::Planted,
        need: Need::Always,
        plant: consecutive_critical,
    },
    Plant {
        key: "unexcused/warning-days",
        category: Category::Planted,
        need: Need::Always,
        plant: unexcused_warning_days,
    },
    Plant {
        key: "unexcused/warning-lessons",
        category: Category::Planted,
        need: Need::Always,
        plant: unexcused_warning_lessons,
    },
    Plant {
        key: "unexcused/critical",
        category: Category::Planted,
        need: Need::Always,
        plant: unexcused_critical,
    },
    Plant {
        key: "pending_excuse/warning",
        category: Category::Planted,
        need: Need::Always,
        plant: pending_warning,
    },
    Plant {
        key: "same_weekday/warning",
        category: Category::Planted,
        need: Need::Always,
        plant: same_weekday_warning,
    },
    Plant {
        key: "same_weekday/critical",
        category: Category::Planted,
        need: Need::Always,
        plant: same_weekday_critical,
    },
    Plant {
        key: "around_weekend_holiday/warning",
        category: Category::Planted,
        need: Need::Always,
        plant: around_warning,
    },
    Plant {
        key: "edge_lessons/warning",
        category: Category::Planted,
        need: Need::Window {
            weeks: 4,
            school_days: EDGE_WARNING,
        },
        plant: edge_warning,
    },
    Plant {
        key: "edge_lessons/critical",
        category: Category::Planted,
        need: Need::Window {
            weeks: 4,
            school_days: EDGE_CRITICAL,
        },
        plant: edge_critical,
    },
    Plant {
        key: "subject_avoidance/warning",
        category: Category::Planted,
        need: Need::Window {
            weeks: 6,
            school_days: 10,
        },
        plant: subject_warning,
    },
    Plant {
        key: "subject_avoidance/critical",
        category: Category::Planted,
        need: Need::Window {
            weeks: 6,
            school_days: 15,
        },
        plant: subject_critical,
    },
    Plant {
        key: "lateness/warning",
        category: Category::Planted,
        need: Need::Window {
            weeks: 4,
            school_days: LATE_WARNING,
        },
        plant: lateness_warning,
    },
    Plant {
        key: "lateness/critical",
        category: Category::Planted,
        need: Need::Window {
            weeks: 4,
            school_days: LATE_CRITICAL,
        },
        plant: lateness_critical,
    },
    Plant {
        key: "early_year/watch",
        category: Category::Planted,
        need: Need::EarlyYear,
        plant: early_watch,
    },
    Plant {
        key: "early_year/warning",
        category: Category::Planted,
        need: Need::EarlyYear,
        plant: early_warning,
    },
    Plant {
        key: "rising_trend/warning",
        category: Category::Planted,
        need: Need::RisingTrend,
        plant: rising_warning,
    },
    Plant {
        key: "days_per_half_year/near-miss",
        category: Category::NearMiss,
        need: Need::Always,
        plant: days_half_near,
    },
    Plant {
        key: "absence_rate/near-miss",
        category: Category::NearMiss,
        need: Need::Always,
        plant: rate_near,
    },
    Plant {
        key: "consecutive_days/near-miss",
        category: Category::NearMiss,
        need: Need::QuietRecent { days: 2 },
        plant: consecutive_near,
    },
    Plant {
        key: "unexcused/near-miss",
        category: Category::NearMiss,
        need: Need::Always,
        plant: unexcused_near,
    },
    Plant {
        key: "pending_excuse/near-miss",
        category: Category::NearMiss,
        need: Need::Always,
        plant: pending_near,
    },
    Plant {
        key: "same_weekday/near-miss",
        category: Category::NearMiss,
        need: Need::QuietRecent { days: 2 },
        plant: same_weekday_near,
    },
    Plant {
        key: "around_weekend_holiday/near-miss",
        category: Category::NearMiss,
        need: Need::Always,
        plant: around_near,
    },
    Plant {
        key: "edge_lessons/near-miss",
        category: Category::NearMiss,
        need: Need::Window {
            weeks: 4,
            school_days: EDGE_NEAR,
        },
        plant: edge_near,
    },
    Plant {
        key: "subject_avoidance/near-miss",
        category: Category::NearMiss,
        need: Need::Window {
            weeks: 6,
            school_days: 5,
        },
        plant: subject_near,
    },
    Plant {
        key: "lateness/near-miss",
        category: Category::NearMiss,
        need: Need::Window {
            weeks: 4,
            school_days: LATE_NEAR,
        },
        plant: lateness_near,
    },
    Plant {
        key: "early_year/near-miss",
        category: Category::NearMiss,
        need: Need::EarlyYear,
        plant: early_near,
    },
    Plant {
        key: "rising_trend/near-miss",
        category: Category::NearMiss,
        need: Need::RisingTrend,
        plant: rising_near,
    },
];

/// The plant key whose student has no WebUntis account in larger schools (a critical case that
/// the mails must show as "Schüler/in (ID …)").
const UNLISTED_PLANT: &str = "unexcused/critical";

/// The table's keys in order: the rows a school of any size plants, before needs are checked.
pub fn plant_keys() -> impl Iterator<Item = &'static str> {
    PLANTED.iter().map(|p| p.key)
}

/// The class-register records of one planned entry.
fn records(
    student: &StudentId,
    klasse: &SimKlasse,
    periods: &[Period],
    entry: &Entry,
) -> Vec<Absence> {
    let at = |day: NaiveDate, lesson: u32, end: bool| -> Option<NaiveDateTime> {
        let p = periods.get(lesson.checked_sub(1)? as usize)?;
        Some(day.and_time(if end { p.end } else { p.start }))
    };
    let record = |start, end, minutes, subject: Option<&str>, status, kind| Absence {
        student: student.clone(),
        start,
        end,
        minutes,
        subject: subject.map(str::to_string),
        status,
        kind,
    };
    match *entry {
        Entry::FullDay { day, status } => {
            let n = klasse.lessons_on(day).len() as u32;
            match (at(day, 1, false), at(day, n, true)) {
                (Some(start), Some(end)) => vec![record(
                    start,
                    end,
                    n * LESSON_MINUTES,
                    None,
                    status,
                    AbsenceKind::Absence,
                )],
                _ => Vec::new(),
            }
        }
        Entry::Lessons {
            day,
            first,
            last,
            status,
        } => {
            // One record per run of lessons of the same subject (a double period is one).
            let lessons = klasse.lessons_on(day);
            let mut out = Vec::new();
            let mut lesson = first;
            while lesson <= last {
                let subject = lessons.get(lesson as usize - 1).copied();
                let mut end_lesson = lesson;
                while end_lesson < last && lessons.get(end_lesson as usize).copied() == subject {
                    end_lesson += 1;
                }
                if let (Some(start), Some(end)) =
                    (at(day, lesson, false), at(day, end_lesson, true))
                {
                    out.push(record(
                        start,
                        end,
                        (end_lesson - lesson + 1) * LESSON_MINUTES,
                        subject,
                        status,
                        AbsenceKind::Absence,
                    ));
                }
                lesson = end_lesson + 1;
            }
            out
        }
        Entry::Delay {
            day,
            minutes,
            status,
        } => match at(day, 1, false) {
            Some(start) => vec![record(
                start,
                start + Duration::minutes(i64::from(minutes)),
                minutes,
                klasse.lessons_on(day).first().copied(),
                status,
                AbsenceKind::Delay,
            )],
            None => Vec::new(),
        },
    }
}

/// Plants every student of the roster: the planted and near-miss table once per plant set,
/// then ordinary students; marks 1-2 students as having no WebUntis account.
pub(super) fn plant_school(
    rng: &mut ChaCha8Rng,
    cal: &Calendar,
    today: NaiveDate,
    klassen: &[SimKlasse],
    students: &mut [SimStudent],
) -> Planting {
    let ctx = Ctx::new(cal, today, bell_schedule());

    let count = students.len();
    let sets = ((count + STUDENTS_PER_PLANT_SET / 2) / STUDENTS_PER_PLANT_SET).max(1);
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(rng);

    struct Planned<'k> {
        plan: DayPlan<'k>,
        category: Category,
        key: &'static str,
        description: String,
        expected: Vec<(String, Severity)>,
    }
    let mut planned: Vec<Option<Planned>> = (0..count).map(|_| None).collect();
    // Rows the reference day cannot show are skipped, loudly: they go into the ground truth's
    // list of skipped plants rather than onto a student.
    let mut skipped = Vec::new();
    let mut applicable = Vec::new();
    for row in PLANTED {
        match row.need.unmet(&ctx) {
            Some(reason) => skipped.push(SkippedPlant {
                plant: row.key,
                need: row.need,
                reason,
            }),
            None => applicable.push(row),
        }
    }
    let rows: Vec<&Plant> = (0..sets).flat_map(|_| applicable.iter().copied()).collect();
    for (pos, student_idx) in order.iter().copied().enumerate() {
        let Some(klasse) = students
            .get(student_idx)
            .and_then(|s| klassen.get(s.klasse))
        else {
            continue;
        };
        let mut plan = DayPlan::new(klasse);
        let entry = if let Some(row) = rows.get(pos) {
            match (row.plant)(rng, &ctx, &mut plan) {
                Some(o) => Planned {
                    plan,
                    category: row.category,
                    key: row.key,
                    description: o.description,
                    expected: o.expected,
                },
                None => Planned {
                    plan: DayPlan::new(klasse),
                    category: Category::Clean,
                    key: "clean",
                    description: format!("no absence ({} did not fit this calendar)", row.key),
                    expected: Vec::new(),
                },
            }
        } else if rng.random_bool(ILLNESS_SHARE) {
            let description = illness(rng, &ctx, &mut plan);
            Planned {
                plan,
                category: Category::Illness,
                key: "illness",
                description,
                expected: Vec::new(),
            }
        } else {
            let description = clean(rng, &ctx, &mut plan);
            Planned {
                plan,
                category: Category::Clean,
                key: "clean",
                description,
                expected: Vec::new(),
            }
        };
        if let Some(slot) = planned.get_mut(student_idx) {
            *slot = Some(entry);
        }
    }

    // Students without a WebUntis account: an ordinary one with absences, and in larger
    // schools a critical case.
    let mut unlisted = Vec::new();
    if let Some(idx) = order.iter().copied().find(|i| {
        planned
            .get(*i)
            .and_then(Option::as_ref)
            .is_some_and(|p| p.category == Category::Illness && !p.plan.entries.is_empty())
    }) {
        unlisted.push(idx);
    }
    if count >= 100
        && let Some(idx) = order.iter().copied().find(|i| {
            planned
                .get(*i)
                .and_then(Option::as_ref)
                .is_some_and(|p| p.key == UNLISTED_PLANT)
        })
    {
        unlisted.push(idx);
    }
    for idx in unlisted {
        if let Some(s) = students.get_mut(idx) {
            s.has_account = false;
            s.id = StudentId::from_untis(s.untis_id);
        }
    }

    let periods = bell_schedule();
    let mut absences = Vec::new();
    let mut cases = Vec::with_capacity(count);
    for (student, planned) in students.iter().zip(planned) {
        let Some(mut p) = planned else { continue };
        p.plan.entries.sort_by_key(|e| match *e {
            Entry::FullDay { day, .. } => (day, 0),
            Entry::Lessons { day, first, .. } => (day, first),
            Entry::Delay { day, .. } => (day, 0),
        });
        for entry in &p.plan.entries {
            absences.extend(records(&student.id, p.plan.klasse, &periods, entry));
        }
        let mut description = p.description;
        if !student.has_account {
            description.push_str("; no WebUntis account (missing from OneRoster)");
        }
        cases.push(PlantedCase {
            student: student.id.clone(),
            category: p.category,
            plant: p.key,
            description,
            expected: p.expected,
        });
    }
    Planting {
        absences,
        cases,
        skipped,
    }
}
