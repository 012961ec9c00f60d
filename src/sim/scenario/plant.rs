//! Planting absences: every student gets a pattern from one table row and a ground-truth entry.
//!
//! Planted rows cross a rule's default threshold clearly (at warning and at critical), near-miss
//! rows stay just below warning, ordinary students are sporadically ill or clean. A row is a
//! plain function on a [`DayPlan`], so a new rule needs one function and one table line.
//!
//! How the harmless categories stay harmless under the default rules (the ground-truth test
//! checks it): their absence days come in episodes of one or two school days with at least two
//! present school days between episodes (no run of 3), single-day episodes never fall on the
//! same weekday in consecutive school weeks (no `same_weekday` chain), full days are excused or
//! pending (no unexcused days), and the number of absence days stays below 10 % of the school
//! days so far and below 11 in the half-year.

use super::school::bell_schedule;
use super::{LESSON_MINUTES, SimKlasse, SimStudent};
use crate::calendar::Calendar;
use crate::config::Period;
use crate::model::{Absence, AbsenceKind, ExcuseStatus, Severity, StudentId};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::ops::Range;

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

/// Streak-like rules look back this many school days; planted streaks end well inside it.
/// Mirrors `rules::RECENT_SCHOOL_DAYS` (a test notices a drift).
pub(super) const RECENT_SCHOOL_DAYS: usize = 10;
/// Planted streaks and chains end within this many school days before the reference day.
const PLANT_RECENT: usize = 5;
const _: () = assert!(PLANT_RECENT < RECENT_SCHOOL_DAYS);
/// Absences in this many last school days may still wait for an excuse decision.
const PENDING_DAYS: usize = 3;
/// One set of planted and near-miss students per this many students.
const STUDENTS_PER_PLANT_SET: usize = 150;
/// Share of ordinary students with sporadic illness (the others are clean).
const ILLNESS_SHARE: f64 = 0.55;

/// The school calendar as the planting sees it.
struct Ctx<'a> {
    cal: &'a Calendar,
    /// School days from the school year's start up to the reference day.
    days: Vec<NaiveDate>,
    /// Index in `days` of the current half-year's first school day.
    half_start: usize,
}

impl Ctx<'_> {
    fn school_days(&self) -> usize {
        self.days.len()
    }

    fn year(&self) -> Range<usize> {
        0..self.days.len()
    }

    fn half(&self) -> Range<usize> {
        self.half_start..self.days.len()
    }

    /// The last `n` school days.
    fn recent(&self, n: usize) -> Range<usize> {
        self.days.len().saturating_sub(n)..self.days.len()
    }

    fn day(&self, idx: usize) -> NaiveDate {
        self.days.get(idx).copied().unwrap_or(NaiveDate::MIN)
    }

    fn index_of(&self, day: NaiveDate) -> Option<usize> {
        self.days.binary_search(&day).ok()
    }

    /// Largest number of absence days that keeps the absence rate below 10 %.
    fn below_ten_percent(&self) -> usize {
        self.school_days().div_ceil(10).saturating_sub(1)
    }

    fn span(&self, idx: &[usize]) -> String {
        match (idx.iter().min(), idx.iter().max()) {
            (Some(a), Some(b)) if a == b => date(self.day(*a)),
            (Some(a), Some(b)) => format!("{}..{}", date(self.day(*a)), date(self.day(*b))),
            _ => "-".to_string(),
        }
    }
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Whether two days share a weekday with no school day of that weekday between them: single
/// absences on both would form a `same_weekday` chain.
fn chained(cal: &Calendar, a: NaiveDate, b: NaiveDate) -> bool {
    if a == b || a.weekday() != b.weekday() {
        return false;
    }
    let (lo, hi) = (a.min(b), a.max(b));
    let mut d = lo + Duration::days(7);
    while d < hi {
        if cal.is_school_day(d) {
            return false;
        }
        d += Duration::days(7);
    }
    true
}

/// One planned class-register entry, before it becomes records.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// All lessons of the day.
    FullDay {
        day: NaiveDate,
        status: ExcuseStatus,
    },
    /// Lessons `first..=last` (1-based).
    Lessons {
        day: NaiveDate,
        first: u32,
        last: u32,
        status: ExcuseStatus,
    },
    /// Late for lesson 1.
    Delay {
        day: NaiveDate,
        minutes: u32,
        status: ExcuseStatus,
    },
}

/// How a planted day is excused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Excuse {
    Excused,
    Unexcused,
    /// Excused, but absences of the last days may still wait for the decision (pending).
    Usual,
}

/// Rules for placing absence days.
struct Spacing<'f> {
    /// Present school days required between episodes.
    gap: usize,
    /// Keep single days off a `same_weekday` chain with other single days.
    avoid_chain: bool,
    /// Which school days (by index) may be used.
    filter: &'f dyn Fn(usize) -> bool,
}

fn any_day(_: usize) -> bool {
    true
}

/// Spacing that keeps ordinary and near-miss students below every streak rule.
const SAFE: Spacing<'static> = Spacing {
    gap: 2,
    avoid_chain: true,
    filter: &any_day,
};
/// Spacing for planted students, whose extra findings are allowed.
const LOOSE: Spacing<'static> = Spacing {
    gap: 1,
    avoid_chain: false,
    filter: &any_day,
};

/// One student's planned entries.
struct DayPlan<'k> {
    klasse: &'k SimKlasse,
    entries: Vec<Entry>,
    /// Absence days (indices into `Ctx::days`).
    absent: BTreeSet<usize>,
    /// Absence days planted as single-day episodes.
    single: BTreeSet<usize>,
    /// Days with any entry.
    busy: BTreeSet<usize>,
}

impl<'k> DayPlan<'k> {
    fn new(klasse: &'k SimKlasse) -> Self {
        DayPlan {
            klasse,
            entries: Vec::new(),
            absent: BTreeSet::new(),
            single: BTreeSet::new(),
            busy: BTreeSet::new(),
        }
    }

    fn lessons(&self, ctx: &Ctx, idx: usize) -> u32 {
        self.klasse.lessons_on(ctx.day(idx)).len() as u32
    }

    fn status(rng: &mut ChaCha8Rng, ctx: &Ctx, idx: usize, excuse: Excuse) -> ExcuseStatus {
        match excuse {
            Excuse::Excused => ExcuseStatus::Excused,
            Excuse::Unexcused => ExcuseStatus::Unexcused,
            Excuse::Usual => {
                if idx + PENDING_DAYS >= ctx.school_days() && rng.random_bool(0.6) {
                    ExcuseStatus::Pending
                } else {
                    ExcuseStatus::Excused
                }
            }
        }
    }

    fn fits(&self, ctx: &Ctx, start: usize, len: usize, sp: &Spacing) -> bool {
        let end = start + len;
        if len == 0 || end > ctx.school_days() {
            return false;
        }
        if (start..end).any(|i| self.busy.contains(&i) || !(sp.filter)(i)) {
            return false;
        }
        let lo = start.saturating_sub(sp.gap);
        if self.absent.range(lo..end + sp.gap).next().is_some() {
            return false;
        }
        if sp.avoid_chain && len == 1 {
            let day = ctx.day(start);
            if self
                .single
                .iter()
                .any(|o| chained(ctx.cal, ctx.day(*o), day))
            {
                return false;
            }
        }
        true
    }

    /// A start for an episode of `len` days in `range`: random tries, then a full scan.
    fn find(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        range: &Range<usize>,
        len: usize,
        sp: &Spacing,
    ) -> Option<usize> {
        let end = range.end.min(ctx.school_days());
        if len == 0 || range.start + len > end {
            return None;
        }
        let starts = end - len + 1 - range.start;
        for _ in 0..48 {
            let s = range.start + rng.random_range(0..starts);
            if self.fits(ctx, s, len, sp) {
                return Some(s);
            }
        }
        let offset = rng.random_range(0..starts);
        (0..starts)
            .map(|k| range.start + (offset + k) % starts)
            .find(|s| self.fits(ctx, *s, len, sp))
    }

    /// Adds full-day absences on the school days `start..start + len`.
    fn add_days(
        &mut self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        start: usize,
        len: usize,
        excuse: Excuse,
    ) {
        for idx in start..start + len {
            let status = Self::status(rng, ctx, idx, excuse);
            self.entries.push(Entry::FullDay {
                day: ctx.day(idx),
                status,
            });
            self.absent.insert(idx);
            self.busy.insert(idx);
        }
        if len == 1 {
            self.single.insert(start);
        }
    }

    /// Places up to `total` absence days in episodes of 1..=`max_len` days; returns how many.
    #[allow(
        clippy::too_many_arguments,
        reason = "a flat call reads best in the plant table"
    )]
    fn place_days(
        &mut self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        range: Range<usize>,
        total: usize,
        max_len: usize,
        sp: &Spacing,
        excuse: Excuse,
    ) -> usize {
        let mut placed = 0;
        while placed < total {
            let len = rng.random_range(1..=max_len.clamp(1, total - placed));
            let found = self
                .find(rng, ctx, &range, len, sp)
                .map(|s| (s, len))
                .or_else(|| self.find(rng, ctx, &range, 1, sp).map(|s| (s, 1)));
            let Some((start, len)) = found else { break };
            self.add_days(rng, ctx, start, len, excuse);
            placed += len;
        }
        placed
    }

    /// Places exactly `total` absence days, packing them densely if spacing cannot fit them
    /// (planted students only: dense packing may add findings, which they may have).
    fn place_days_dense(
        &mut self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        range: Range<usize>,
        total: usize,
        max_len: usize,
        excuse: Excuse,
    ) -> bool {
        let mut placed = self.place_days(rng, ctx, range.clone(), total, max_len, &LOOSE, excuse);
        let mut free: Vec<usize> = range.filter(|i| !self.busy.contains(i)).collect();
        free.shuffle(rng);
        for idx in free {
            if placed >= total {
                break;
            }
            self.add_days(rng, ctx, idx, 1, excuse);
            placed += 1;
        }
        placed >= total
    }

    /// A lesson block of `len` lessons on a day without other entries.
    fn add_lessons(
        &mut self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        range: &Range<usize>,
        len: u32,
        status: ExcuseStatus,
    ) -> Option<usize> {
        let idx = self.find(
            rng,
            ctx,
            range,
            1,
            &Spacing {
                gap: 0,
                avoid_chain: false,
                filter: &any_day,
            },
        )?;
        let lessons = self.lessons(ctx, idx);
        if lessons < len {
            return None;
        }
        let first = rng.random_range(1..=lessons - len + 1);
        self.entries.push(Entry::Lessons {
            day: ctx.day(idx),
            first,
            last: first + len - 1,
            status,
        });
        self.busy.insert(idx);
        Some(idx)
    }

    fn add_delay(&mut self, rng: &mut ChaCha8Rng, ctx: &Ctx, range: &Range<usize>) {
        let sp = Spacing {
            gap: 0,
            avoid_chain: false,
            filter: &any_day,
        };
        if let Some(idx) = self.find(rng, ctx, range, 1, &sp) {
            let status = if rng.random_bool(0.5) {
                ExcuseStatus::Unexcused
            } else {
                ExcuseStatus::Excused
            };
            self.entries.push(Entry::Delay {
                day: ctx.day(idx),
                minutes: rng.random_range(5..=20),
                status,
            });
            self.busy.insert(idx);
        }
    }

    fn absent_list(&self) -> Vec<usize> {
        self.absent.iter().copied().collect()
    }
}

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

fn days_half_warning(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let target = rng.random_range(13..=17);
    if !plan.place_days_dense(rng, ctx, ctx.half(), target, 2, Excuse::Usual) {
        return None;
    }
    outcome(
        format!(
            "{target} absence days (excused) in the current half-year, {}",
            ctx.span(&plan.absent_list())
        ),
        &[("days_per_half_year", Severity::Warning)],
    )
}

fn days_half_critical(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let target = if ctx.half().len() >= 40 { 24 } else { 22 };
    if !plan.place_days_dense(rng, ctx, ctx.half(), target, 4, Excuse::Usual) {
        return None;
    }
    outcome(
        format!(
            "{target} absence days (excused) in the current half-year, {}",
            ctx.span(&plan.absent_list())
        ),
        &[("days_per_half_year", Severity::Critical)],
    )
}

/// Absence days for a rate of `percent` of the school days so far.
fn days_for_rate(ctx: &Ctx, percent: usize) -> usize {
    (ctx.school_days() * percent).div_ceil(100)
}

fn rate_warning(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let target = days_for_rate(ctx, 14);
    if !plan.place_days_dense(rng, ctx, ctx.year(), target, 2, Excuse::Usual) {
        return None;
    }
    outcome(
        format!(
            "{target} of {} school days absent (about 14 %), spread over the school year",
            ctx.school_days()
        ),
        &[("absence_rate", Severity::Warning)],
    )
}

fn rate_critical(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let target = days_for_rate(ctx, 27);
    if !plan.place_days_dense(rng, ctx, ctx.year(), target, 3, Excuse::Usual) {
        return None;
    }
    outcome(
        format!(
            "{target} of {} school days absent (about 27 %), spread over the school year",
            ctx.school_days()
        ),
        &[("absence_rate", Severity::Critical)],
    )
}

/// A run of `len` absence days ending within the last few school days.
fn recent_run(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    len: usize,
    excuse: Excuse,
) -> Option<String> {
    let last = ctx
        .school_days()
        .checked_sub(1 + rng.random_range(0..PLANT_RECENT - 1))?;
    let first = (last + 1).checked_sub(len)?;
    plan.add_days(rng, ctx, first, len, excuse);
    Some(ctx.span(&plan.absent_list()))
}

fn consecutive_warning(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let span = recent_run(rng, ctx, plan, 4, Excuse::Usual)?;
    outcome(
        format!("4 consecutive absence days {span}"),
        &[("consecutive_days", Severity::Warning)],
    )
}

fn consecutive_critical(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let len = rng.random_range(6..=8);
    let span = recent_run(rng, ctx, plan, len, Excuse::Usual)?;
    outcome(
        format!("{len} consecutive absence days {span}"),
        &[("consecutive_days", Severity::Critical)],
    )
}

/// `count` unexcused full days in the current half-year on days with six lessons.
fn unexcused_days(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    count: usize,
) -> Option<String> {
    let klasse = plan.klasse;
    let six_lessons = |i: usize| klasse.lessons_on(ctx.day(i)).len() == 6;
    let sp = Spacing {
        gap: 2,
        avoid_chain: true,
        filter: &six_lessons,
    };
    let placed = plan.place_days(rng, ctx, ctx.half(), count, 1, &sp, Excuse::Unexcused);
    (placed == count).then(|| {
        plan.absent
            .iter()
            .map(|i| date(ctx.day(*i)))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn unexcused_warning_days(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let days = unexcused_days(rng, ctx, plan, 4)?;
    outcome(
        format!("4 unexcused days of 6 lessons (24 lessons) in the current half-year: {days}"),
        &[("unexcused", Severity::Warning)],
    )
}

fn unexcused_critical(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let days = unexcused_days(rng, ctx, plan, 6)?;
    outcome(
        format!("6 unexcused days in the current half-year: {days}"),
        &[("unexcused", Severity::Critical)],
    )
}

fn unexcused_warning_lessons(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    const BLOCKS: usize = 9;
    let mut days = Vec::new();
    for _ in 0..BLOCKS {
        days.push(plan.add_lessons(rng, ctx, &ctx.half(), 2, ExcuseStatus::Unexcused)?);
    }
    outcome(
        format!(
            "{} unexcused lessons in {BLOCKS} blocks of 2 on days otherwise present, {}",
            BLOCKS * 2,
            ctx.span(&days)
        ),
        &[("unexcused", Severity::Warning)],
    )
}

/// School-day indices of `len` same-weekday absences a week apart (holiday weeks skipped), the
/// last one among the last school days.
fn weekday_chain(rng: &mut ChaCha8Rng, ctx: &Ctx, len: usize) -> Option<Vec<usize>> {
    let mut candidates: Vec<usize> = ctx.recent(PLANT_RECENT).collect();
    candidates.shuffle(rng);
    for last in candidates {
        let mut chain = vec![last];
        let mut day = ctx.day(last);
        while chain.len() < len {
            day -= Duration::days(7);
            if day < ctx.cal.school_year().start {
                break;
            }
            if let Some(idx) = ctx.index_of(day) {
                chain.push(idx);
            }
        }
        if chain.len() == len {
            chain.reverse();
            return Some(chain);
        }
    }
    None
}

fn same_weekday(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    weeks: usize,
) -> Option<String> {
    let chain = weekday_chain(rng, ctx, weeks)?;
    for idx in &chain {
        plan.add_days(rng, ctx, *idx, 1, Excuse::Usual);
    }
    let weekday = weekday_name(ctx.day(*chain.first()?).weekday());
    Some(format!(
        "absent on {weeks} {weekday}s in a row, present the days around: {}",
        chain
            .iter()
            .map(|i| date(ctx.day(*i)))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn same_weekday_warning(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let d = same_weekday(rng, ctx, plan, 3)?;
    outcome(d, &[("same_weekday", Severity::Warning)])
}

fn same_weekday_critical(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let d = same_weekday(rng, ctx, plan, 5)?;
    outcome(d, &[("same_weekday", Severity::Critical)])
}

fn weekday_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn days_half_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    // 10 days in the half-year is one below warning, unless that would already be 10 % of the
    // school days so far (in the first half-year it is): then as many as stay below 10 %.
    let target = ctx.below_ten_percent().min(10);
    let placed = plan.place_days(rng, ctx, ctx.half(), target, 2, &SAFE, Excuse::Excused);
    outcome(
        format!(
            "{placed} absence days in the current half-year (warning from 11; rate kept below 10 %), in episodes of 1-2 days"
        ),
        &[],
    )
}

fn rate_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let target = ctx.below_ten_percent();
    // At most 8 in the current half-year, so that days_per_half_year stays below warning.
    let in_half = if ctx.half_start == 0 {
        target
    } else {
        (target * ctx.half().len() / ctx.school_days()).min(8)
    };
    let mut placed = plan.place_days(rng, ctx, ctx.half(), in_half, 2, &SAFE, Excuse::Excused);
    placed += plan.place_days(
        rng,
        ctx,
        0..ctx.half_start,
        target - in_half,
        2,
        &SAFE,
        Excuse::Excused,
    );
    outcome(
        format!(
            "{placed} of {} school days absent ({:.1} %, warning from 10 %), in episodes of 1-2 days",
            ctx.school_days(),
            placed as f64 * 100.0 / ctx.school_days().max(1) as f64
        ),
        &[],
    )
}

fn consecutive_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let span = recent_run(rng, ctx, plan, 2, Excuse::Usual)?;
    outcome(
        format!("2 consecutive absence days {span} (warning from 3)"),
        &[],
    )
}

fn unexcused_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let days = unexcused_days(rng, ctx, plan, 2)?;
    plan.add_lessons(rng, ctx, &ctx.half(), 2, ExcuseStatus::Unexcused)?;
    outcome(
        format!(
            "2 unexcused days of 6 lessons ({days}) and 2 unexcused single lessons: 2 days, 14 lessons (warning from 3 days or 15 lessons)"
        ),
        &[],
    )
}

fn same_weekday_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    // Every other school week on the same weekday: in the weeks between, that weekday is a
    // school day on which the student is present, so no chain forms.
    let mut candidates: Vec<usize> = ctx.recent(PLANT_RECENT).collect();
    candidates.shuffle(rng);
    let every_other_week = |last: usize, count: usize| -> Option<Vec<usize>> {
        let mut same_weekday = Vec::new();
        let mut day = ctx.day(last);
        while day >= ctx.cal.school_year().start && same_weekday.len() < 2 * count - 1 {
            if let Some(idx) = ctx.index_of(day) {
                same_weekday.push(idx);
            }
            day -= Duration::days(7);
        }
        let chain: Vec<usize> = same_weekday.into_iter().step_by(2).collect();
        (chain.len() == count).then_some(chain)
    };
    let chain = candidates
        .iter()
        .find_map(|l| every_other_week(*l, 3))
        .or_else(|| candidates.iter().find_map(|l| every_other_week(*l, 2)))?;
    for idx in &chain {
        plan.add_days(rng, ctx, *idx, 1, Excuse::Excused);
    }
    outcome(
        format!(
            "absent on the same weekday every other week ({}), never in consecutive weeks",
            chain
                .iter()
                .rev()
                .map(|i| date(ctx.day(*i)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        &[],
    )
}

/// Ordinary sporadic illness: a few excused episodes of 1-2 days, a partial day, maybe late
/// arrivals, maybe a recent absence still pending.
fn illness(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> String {
    let budget = (ctx.school_days() * 6 / 100).clamp(1, 6);
    let mut used = 0;
    let mut notes = Vec::new();
    if rng.random_bool(0.2)
        && let Some(idx) = plan.find(rng, ctx, &ctx.recent(PENDING_DAYS), 1, &SAFE)
    {
        plan.entries.push(Entry::FullDay {
            day: ctx.day(idx),
            status: ExcuseStatus::Pending,
        });
        plan.absent.insert(idx);
        plan.busy.insert(idx);
        plan.single.insert(idx);
        used += 1;
        notes.push(format!(
            "a recent absence still pending ({})",
            date(ctx.day(idx))
        ));
    }
    let episodes = rng.random_range(1..=3);
    let mut days = 0;
    for _ in 0..episodes {
        if used >= budget {
            break;
        }
        let len: usize = (if rng.random_bool(0.4) { 2 } else { 1 }).min(budget - used);
        days += plan.place_days(rng, ctx, ctx.year(), len, len, &SAFE, Excuse::Usual);
        used = plan.absent.len();
    }
    if days > 0 {
        notes.push(format!("{days} sick day(s) in short episodes"));
    }
    if rng.random_bool(0.4) {
        let unexcused = rng.random_bool(0.15);
        let (len, status) = if unexcused {
            (1, ExcuseStatus::Unexcused)
        } else {
            (rng.random_range(1..=2), ExcuseStatus::Excused)
        };
        if plan
            .add_lessons(rng, ctx, &ctx.year(), len, status)
            .is_some()
        {
            notes.push(format!(
                "{len} {} lesson(s) missed on a day otherwise present",
                if unexcused { "unexcused" } else { "excused" }
            ));
        }
    }
    if rng.random_bool(0.3) {
        let delays = rng.random_range(1..=2);
        for _ in 0..delays {
            plan.add_delay(rng, ctx, &ctx.year());
        }
        notes.push(format!("{delays} late arrival(s)"));
    }
    if notes.is_empty() {
        "no absence".to_string()
    } else {
        notes.join("; ")
    }
}

/// No absence, or a single one.
fn clean(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> String {
    match rng.random_range(0..20) {
        0..=10 => "no absence".to_string(),
        11..=14 => {
            if plan.place_days(rng, ctx, ctx.year(), 1, 1, &SAFE, Excuse::Usual) == 1 {
                "one sick day".to_string()
            } else {
                "no absence".to_string()
            }
        }
        15..=17 => match plan.add_lessons(rng, ctx, &ctx.year(), 1, ExcuseStatus::Excused) {
            Some(_) => "one excused lesson missed".to_string(),
            None => "no absence".to_string(),
        },
        _ => {
            plan.add_delay(rng, ctx, &ctx.year());
            "one late arrival".to_string()
        }
    }
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
