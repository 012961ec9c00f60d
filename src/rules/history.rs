//! One student's register entries folded into school days: the common input of every rule.

use super::RuleParams;
use crate::calendar::Calendar;
use crate::model::{Absence, AbsenceKind, ExcuseStatus, StudentId};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// Lesson length assumed when no bell schedule is configured.
const FALLBACK_LESSON_MINUTES: u32 = 45;
/// Most lessons a school day can have; caps counts built from entries' minutes.
const MAX_LESSONS_PER_DAY: u32 = 16;
/// Absence-day threshold when no bell schedule is configured (half of six lessons).
const FALLBACK_DAY_MIN_LESSONS: u32 = 3;

/// What happened on one school day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayRecord {
    /// Lessons missed (absences, not late arrivals).
    pub lessons_missed: u32,
    /// Their lesson numbers, sorted (empty without a bell schedule).
    pub lessons: Vec<u32>,
    /// Lesson numbers missed unexcused, sorted (empty without a bell schedule).
    pub unexcused_lesson_numbers: Vec<u32>,
    /// Subjects of the absences that day with their lesson numbers (sorted by subject).
    pub subjects: Vec<(String, Vec<u32>)>,
    /// Minutes of each late arrival.
    pub delay_minutes: Vec<u32>,
    /// Lessons missed in unexcused absences.
    pub unexcused_lessons: u32,
    /// Whether any absence of the day is still without an excuse decision.
    pub pending: bool,
    /// Whether the day counts as an absence day (enough lessons missed).
    pub absence_day: bool,
    /// Whether the absence day is unexcused (any unexcused absence that day).
    pub unexcused_day: bool,
    /// Late arrivals.
    pub delays: u32,
}

/// A student's history up to the evaluation day.
#[derive(Debug, Clone)]
pub struct History<'c> {
    pub student: StudentId,
    pub today: NaiveDate,
    /// School days from the school year's start up to and including `today`.
    pub school_days: &'c [NaiveDate],
    /// Days with any entry; only school days up to `today`. Entries on weekends, holidays,
    /// outside the school year or in the future are ignored.
    pub days: BTreeMap<NaiveDate, DayRecord>,
}

impl<'c> History<'c> {
    pub fn build(
        student: &StudentId,
        absences: &[Absence],
        calendar: &'c Calendar,
        params: &RuleParams,
        today: NaiveDate,
    ) -> History<'c> {
        let school_days = calendar.school_days_until(today);
        let with_schedule = !calendar.periods().is_empty();
        let min_lessons = match params.absence_day_min_lessons {
            0 if with_schedule => (calendar.periods().len() as u32).div_ceil(2),
            0 => FALLBACK_DAY_MIN_LESSONS,
            n => n,
        };

        // Per day: the set of missed lessons (a schedule) or a count (no schedule), so that
        // overlapping records do not count a lesson twice.
        #[derive(Default)]
        struct Acc {
            subjects: BTreeMap<String, BTreeSet<u32>>,
            delay_minutes: Vec<u32>,
            missed: BTreeSet<u32>,
            unexcused: BTreeSet<u32>,
            missed_count: u32,
            unexcused_count: u32,
            pending: bool,
            any_unexcused: bool,
            delays: u32,
        }
        let mut acc: BTreeMap<NaiveDate, Acc> = BTreeMap::new();
        for a in absences.iter().filter(|a| &a.student == student) {
            let day = a.date();
            if day > today || !calendar.is_school_day(day) {
                continue;
            }
            let entry = acc.entry(day).or_default();
            match a.kind {
                AbsenceKind::Delay => {
                    entry.delays += 1;
                    entry.delay_minutes.push(a.minutes);
                }
                AbsenceKind::Absence => {
                    let unexcused = a.status == ExcuseStatus::Unexcused;
                    entry.pending |= a.status == ExcuseStatus::Pending;
                    entry.any_unexcused |= unexcused;
                    if with_schedule {
                        let end = if a.end.date() > day {
                            chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(a.end.time())
                        } else {
                            a.end.time()
                        };
                        let lessons = calendar.lessons_between(a.start.time(), end);
                        if let Some(subject) = &a.subject {
                            entry
                                .subjects
                                .entry(subject.clone())
                                .or_default()
                                .extend(lessons.iter().copied());
                        }
                        for lesson in lessons {
                            entry.missed.insert(lesson);
                            if unexcused {
                                entry.unexcused.insert(lesson);
                            }
                        }
                    } else {
                        if let Some(subject) = &a.subject {
                            entry.subjects.entry(subject.clone()).or_default();
                        }
                        // A register entry never spans more than a school day's lessons.
                        let n = a
                            .minutes
                            .div_ceil(FALLBACK_LESSON_MINUTES)
                            .clamp(1, MAX_LESSONS_PER_DAY);
                        entry.missed_count = (entry.missed_count + n).min(MAX_LESSONS_PER_DAY);
                        if unexcused {
                            entry.unexcused_count =
                                (entry.unexcused_count + n).min(MAX_LESSONS_PER_DAY);
                        }
                    }
                }
            }
        }

        let days = acc
            .into_iter()
            .map(|(day, mut a)| {
                // Evidence must not depend on the order the server listed the entries in.
                a.delay_minutes.sort_unstable();
                let (missed, unexcused) = if with_schedule {
                    (a.missed.len() as u32, a.unexcused.len() as u32)
                } else {
                    (a.missed_count, a.unexcused_count)
                };
                let absence_day = missed > 0 && missed >= min_lessons;
                (
                    day,
                    DayRecord {
                        lessons_missed: missed,
                        lessons: a.missed.iter().copied().collect(),
                        unexcused_lesson_numbers: a.unexcused.iter().copied().collect(),
                        subjects: a
                            .subjects
                            .into_iter()
                            .map(|(s, l)| (s, l.into_iter().collect()))
                            .collect(),
                        delay_minutes: a.delay_minutes,
                        unexcused_lessons: unexcused,
                        pending: a.pending,
                        absence_day,
                        unexcused_day: absence_day && a.any_unexcused,
                        delays: a.delays,
                    },
                )
            })
            .collect();

        History {
            student: student.clone(),
            today,
            school_days,
            days,
        }
    }

    pub fn is_absence_day(&self, day: NaiveDate) -> bool {
        self.days.get(&day).is_some_and(|d| d.absence_day)
    }

    /// Absence days within `[from, to]`.
    pub fn absence_days_between(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        self.days
            .range(from..=to)
            .filter(|(_, r)| r.absence_day)
            .map(|(d, _)| *d)
            .collect()
    }

    /// School days of the window of `weeks` weeks that ends on the evaluation day.
    pub fn window_start(&self, weeks: u32) -> NaiveDate {
        self.today - chrono::Duration::days(i64::from(weeks) * 7 - 1)
    }

    /// Days with entries inside `[from, today]`.
    pub fn days_since(&self, from: NaiveDate) -> impl Iterator<Item = (&NaiveDate, &DayRecord)> {
        self.days.range(from..=self.today)
    }

    /// School days within `[from, to]` (both inclusive).
    pub fn school_days_between(&self, from: NaiveDate, to: NaiveDate) -> usize {
        let lo = self.school_days.partition_point(|d| *d < from);
        let hi = self.school_days.partition_point(|d| *d <= to);
        hi.saturating_sub(lo)
    }

    /// The school day `n` school days before the evaluation day (0 = the last school day up to
    /// today). Streaks ending before it are no longer recent.
    pub fn recent_cutoff(&self, n: usize) -> Option<NaiveDate> {
        let len = self.school_days.len();
        if len == 0 {
            return None;
        }
        Some(self.school_days[len.saturating_sub(n + 1)])
    }
}
