//! Planting absences: every student gets a pattern from one table row and a ground-truth entry.
//!
//! Planted rows cross a rule's default threshold clearly (at warning and at critical), near-miss
//! rows stay just below warning, ordinary students are sporadically ill or clean. A row is a
//! plain function on a [`DayPlan`](plan::DayPlan), so a new rule needs one function and one
//! table line. [`plan`] holds the placing machinery, [`rows`] the row functions.
//!
//! How the harmless categories stay harmless under the default rules (the ground-truth test
//! checks it): their absence days come in episodes of one or two school days with at least two
//! present school days between episodes (no run of 3), single-day episodes never fall on the
//! same weekday in consecutive school weeks (no `same_weekday` chain), full days are excused or
//! pending (no unexcused days), and the number of absence days stays below 10 % of the school
//! days so far and below 11 in the half-year.

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
use plan::{Ctx, DayPlan, Entry};
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

/// One row of the planting table.
struct Plant {
    key: &'static str,
    category: Category,
    plant: PlantFn,
}

/// Planted patterns, one student each per plant set. Add a rule: add its rows here.
const PLANTED: &[Plant] = &[
    Plant {
        key: "days_per_half_year/warning",
        category: Category::Planted,
        plant: days_half_warning,
    },
    Plant {
        key: "days_per_half_year/critical",
        category: Category::Planted,
        plant: days_half_critical,
    },
    Plant {
        key: "absence_rate/warning",
        category: Category::Planted,
        plant: rate_warning,
    },
    Plant {
        key: "absence_rate/critical",
        category: Category::Planted,
        plant: rate_critical,
    },
    Plant {
        key: "consecutive_days/warning",
        category: Category::Planted,
        plant: consecutive_warning,
    },
    Plant {
        key: "consecutive_days/critical",
        category: Category::Planted,
        plant: consecutive_critical,
    },
    Plant {
        key: "unexcused/warning-days",
        category: Category::Planted,
        plant: unexcused_warning_days,
    },
    Plant {
        key: "unexcused/warning-lessons",
        category: Category::Planted,
        plant: unexcused_warning_lessons,
    },
    Plant {
        key: "unexcused/critical",
        category: Category::Planted,
        plant: unexcused_critical,
    },
    Plant {
        key: "same_weekday/warning",
        category: Category::Planted,
        plant: same_weekday_warning,
    },
    Plant {
        key: "same_weekday/critical",
        category: Category::Planted,
        plant: same_weekday_critical,
    },
    Plant {
        key: "days_per_half_year/near-miss",
        category: Category::NearMiss,
        plant: days_half_near,
    },
    Plant {
        key: "absence_rate/near-miss",
        category: Category::NearMiss,
        plant: rate_near,
    },
    Plant {
        key: "consecutive_days/near-miss",
        category: Category::NearMiss,
        plant: consecutive_near,
    },
    Plant {
        key: "unexcused/near-miss",
        category: Category::NearMiss,
        plant: unexcused_near,
    },
    Plant {
        key: "same_weekday/near-miss",
        category: Category::NearMiss,
        plant: same_weekday_near,
    },
];

/// The plant key whose student has no WebUntis account in larger schools (a critical case that
/// the mails must show as "Schüler/in (ID …)").
const UNLISTED_PLANT: &str = "unexcused/critical";

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
    let year = cal.school_year();
    let days = cal.school_days(year.start, today);
    let half_start_day = cal.half_year(today).map_or(year.start, |h| h.start);
    let half_start = days
        .iter()
        .position(|d| *d >= half_start_day)
        .unwrap_or(days.len());
    let ctx = Ctx {
        cal,
        days,
        half_start,
    };

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
    let rows: Vec<&Plant> = (0..sets).flat_map(|_| PLANTED.iter()).collect();
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
    Planting { absences, cases }
}
