//! One student's register entries folded into school days: the common input of every rule.

use super::RuleParams;
use crate::calendar::Calendar;
use crate::model::{Absence, AbsenceKind, ExcuseStatus, StudentId};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Lesson length assumed when no bell schedule is configured.
const FALLBACK_LESSON_MINUTES: u32 = 45;
/// Most lessons a school day can have; caps counts built from entries' minutes.
const MAX_LESSONS_PER_DAY: u32 = 16;
/// Absence-day threshold when no bell schedule is configured (half of six lessons).
const FALLBACK_DAY_MIN_LESSONS: u32 = 3;

/// A set of lesson numbers (1..=31) as a bit mask: a school day has at most 16 lessons, and the
/// rules build one per day of every student, so it must not allocate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lessons(u32);

impl Lessons {
    pub fn insert(&mut self, lesson: u32) {
        if let Some(bit) = 1u32.checked_shl(lesson) {
            self.0 |= bit;
        }
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// The lowest lesson number.
    pub fn first(self) -> Option<u32> {
        (!self.is_empty()).then(|| self.0.trailing_zeros())
    }

    /// Lesson numbers in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..32).filter(move |n| self.0 & (1 << n) != 0)
    }
}

impl FromIterator<u32> for Lessons {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut l = Lessons::default();
        for n in iter {
            l.insert(n);
        }
        l
    }
}

/// What happened on one school day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayRecord {
    /// Lessons missed (absences, not late arrivals).
    pub lessons_missed: u32,
    /// Their lesson numbers (empty without a bell schedule).
    pub lessons: Lessons,
    /// Lesson numbers missed unexcused (empty without a bell schedule).
    pub unexcused_lesson_numbers: Lessons,
    /// Subjects of the absences that day with their lesson numbers (sorted by subject).
    pub subjects: Vec<(String, Lessons)>,
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

/// The lesson set of `subject` in a day's short list, added if missing.
fn subject_slot<'a>(subjects: &'a mut Vec<(String, Lessons)>, subject: &str) -> &'a mut Lessons {
    let idx = match subjects.iter().position(|(s, _)| s == subject) {
        Some(i) => i,
        None => {
            subjects.push((subject.to_string(), Lessons::default()));
            subjects.len() - 1
        }
    };
    &mut subjects[idx].1
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
            subjects: Vec<(String, Lessons)>,
            delay_minutes: Vec<u32>,
            missed: Lessons,
            unexcused: Lessons,
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
                            let slot = subject_slot(&mut entry.subjects, subject);
                            for l in &lessons {
                                slot.insert(*l);
                            }
                        }
                        for lesson in lessons {
                            entry.missed.insert(lesson);
                            if unexcused {
                                entry.unexcused.insert(lesson);
                            }
                        }
                    } else {
                        if let Some(subject) = &a.subject {
                            subject_slot(&mut entry.subjects, subject);
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
                    (a.missed.len(), a.unexcused.len())
                } else {
                    (a.missed_count, a.unexcused_count)
                };
                let absence_day = missed > 0 && missed >= min_lessons;
                (
                    day,
                    DayRecord {
                        lessons_missed: missed,
                        lessons: a.missed,
                        unexcused_lesson_numbers: a.unexcused,
                        subjects: {
                            let mut subjects = a.subjects;
                            subjects.sort_by(|x, y| x.0.cmp(&y.0));
                            subjects
                        },
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
