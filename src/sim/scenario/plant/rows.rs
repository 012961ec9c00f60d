//! The table's row functions: planted patterns, near misses, ordinary illness and clean students.
//!
//! Planted rows are allowed extra findings (a long streak is a high absence rate too); near
//! misses, illness and clean students place their absence days with [`SAFE`] spacing, whose
//! guard keeps every absence-day rule below warning, and keep partial days and late arrivals
//! below the windowed rules' thresholds by construction.

use super::plan::*;
use super::{Outcome, outcome};
use crate::model::{ExcuseStatus, Severity};
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

/// Days with missed edge lessons planted for `edge_lessons` (warning from 3, critical from 6);
/// the near miss has two such days and one with a lesson in the middle.
pub(super) const EDGE_WARNING: usize = 4;
pub(super) const EDGE_CRITICAL: usize = 7;
pub(super) const EDGE_NEAR: usize = 3;
/// Late arrivals planted for `lateness` (warning from 5, critical from 10), one a day.
pub(super) const LATE_WARNING: usize = 6;
pub(super) const LATE_CRITICAL: usize = 11;
pub(super) const LATE_NEAR: usize = 4;
/// Days one subject is missed for `subject_avoidance` (warning from 3, critical from 5).
const SUBJECT_WARNING: usize = 4;
const SUBJECT_CRITICAL: usize = 6;
const SUBJECT_NEAR: usize = 2;

fn dates(ctx: &Ctx, idx: &[usize]) -> String {
    let mut idx = idx.to_vec();
    idx.sort_unstable();
    idx.iter()
        .map(|i| date(ctx.day(*i)))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- days_per_half_year ------------------------------------------------------------------

pub(super) fn days_half_watch(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let target = 7;
    if !plan.place_days_dense(rng, ctx, ctx.half(), target, 2, Excuse::Usual) {
        return None;
    }
    outcome(
        format!(
            "{target} absence days (excused) in the current half-year (watch from 5, warning from 11), {}",
            ctx.span(&plan.absent_list())
        ),
        &[("days_per_half_year", Severity::Watch)],
    )
}

pub(super) fn days_half_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
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

pub(super) fn days_half_critical(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
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
pub(super) fn days_for_rate(ctx: &Ctx, percent: usize) -> usize {
    (ctx.school_days() * percent).div_ceil(100)
}

pub(super) fn rate_watch(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    // About 7 %, and in any case from 5 % up to but not including 10 %.
    let target = days_for_rate(ctx, 7)
        .min(ctx.below_ten_percent())
        .max(days_for_rate(ctx, 5));
    if !plan.place_days_dense(rng, ctx, ctx.year(), target, 2, Excuse::Usual) {
        return None;
    }
    outcome(
        format!(
            "{target} of {} school days absent ({:.1} %; watch from 5 %, warning from 10 %), spread over the school year",
            ctx.school_days(),
            target as f64 * 100.0 / ctx.school_days().max(1) as f64
        ),
        &[("absence_rate", Severity::Watch)],
    )
}

pub(super) fn rate_warning(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
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

pub(super) fn rate_critical(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
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
pub(super) fn recent_run(
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

pub(super) fn consecutive_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let span = recent_run(rng, ctx, plan, 4, Excuse::Usual)?;
    outcome(
        format!("4 consecutive absence days {span}"),
        &[("consecutive_days", Severity::Warning)],
    )
}

pub(super) fn consecutive_critical(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let len = rng.random_range(6..=8);
    let span = recent_run(rng, ctx, plan, len, Excuse::Usual)?;
    outcome(
        format!("{len} consecutive absence days {span}"),
        &[("consecutive_days", Severity::Critical)],
    )
}

/// `count` unexcused full days in the current half-year on days with six lessons.
pub(super) fn unexcused_days(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    count: usize,
    quiet: bool,
) -> Option<String> {
    let klasse = plan.klasse;
    let six_lessons = |i: usize| klasse.lessons_on(ctx.day(i)).len() == 6;
    let sp = Spacing {
        gap: 2,
        avoid_chain: true,
        quiet,
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

pub(super) fn unexcused_warning_days(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let days = unexcused_days(rng, ctx, plan, 4, false)?;
    outcome(
        format!("4 unexcused days of 6 lessons (24 lessons) in the current half-year: {days}"),
        &[("unexcused", Severity::Warning)],
    )
}

pub(super) fn unexcused_critical(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let days = unexcused_days(rng, ctx, plan, 6, false)?;
    outcome(
        format!("6 unexcused days in the current half-year: {days}"),
        &[("unexcused", Severity::Critical)],
    )
}

pub(super) fn unexcused_warning_lessons(
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
pub(super) fn weekday_chain(rng: &mut ChaCha8Rng, ctx: &Ctx, len: usize) -> Option<Vec<usize>> {
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

pub(super) fn same_weekday(
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

pub(super) fn same_weekday_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let d = same_weekday(rng, ctx, plan, 3)?;
    outcome(d, &[("same_weekday", Severity::Warning)])
}

pub(super) fn same_weekday_critical(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let d = same_weekday(rng, ctx, plan, 5)?;
    outcome(d, &[("same_weekday", Severity::Critical)])
}

pub(super) fn weekday_name(w: Weekday) -> &'static str {
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

// ---- pending_excuse ----------------------------------------------------------------------

pub(super) fn pending_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    // School days that passed since the absence, the day itself not counted (as the rule counts).
    let waited = rng.random_range(5..=9);
    let idx = ctx.school_days().checked_sub(1 + waited)?;
    plan.add_days(rng, ctx, idx, 1, Excuse::Pending);
    outcome(
        format!(
            "absent on {}, still without an excuse decision {waited} school days later (warning from 3)",
            date(ctx.day(idx))
        ),
        &[("pending_excuse", Severity::Warning)],
    )
}

// ---- around_weekend_holiday --------------------------------------------------------------

pub(super) fn around_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    const DAYS: usize = 4;
    let window = ctx.weeks(ctx.params.around_weekend_holiday.weeks);
    let next_to_off = |i: usize| ctx.adjacent(i);
    let sp = Spacing {
        gap: 1,
        // Mondays in consecutive weeks would be a same_weekday chain too; keep the pattern pure.
        avoid_chain: true,
        quiet: false,
        filter: &next_to_off,
    };
    if plan.place_days(rng, ctx, window, DAYS, 1, &sp, Excuse::Usual) < DAYS {
        return None;
    }
    outcome(
        format!(
            "{DAYS} absence days, all next to a weekend or holiday, in the last {} weeks (warning from 3 and 60 %): {}",
            ctx.params.around_weekend_holiday.weeks,
            dates(ctx, &plan.absent_list())
        ),
        &[("around_weekend_holiday", Severity::Warning)],
    )
}

// ---- edge_lessons ------------------------------------------------------------------------

/// The subjects of lessons `first..=last` on the school day `idx`.
fn block_subjects(
    ctx: &Ctx,
    plan: &DayPlan,
    idx: usize,
    first: u32,
    last: u32,
) -> Vec<&'static str> {
    let lessons = plan.klasse.lessons_on(ctx.day(idx));
    let mut out: Vec<&'static str> = (first..=last)
        .filter_map(|l| lessons.get(l.checked_sub(1)? as usize).copied())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// On how many planned partial days since `from` each subject is missed (as
/// `subject_avoidance` counts).
fn subject_days(ctx: &Ctx, plan: &DayPlan, from: NaiveDate) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for e in &plan.entries {
        if let Entry::Lessons {
            day, first, last, ..
        } = *e
            && day >= from
            && let Some(idx) = ctx.index_of(day)
        {
            for s in block_subjects(ctx, plan, idx, first, last) {
                *out.entry(s).or_default() += 1;
            }
        }
    }
    out
}

/// `count` days in `edge_lessons`' window on which the first lesson(s) or the last ones are
/// missed while the rest is attended. Where the timetable allows, no subject is missed more
/// than `max_per_subject` times in `subject_avoidance`'s window, so that rule stays out of it.
fn edge_days(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    count: usize,
    max_per_subject: usize,
    strict: bool,
) -> Option<Vec<usize>> {
    let subject_from = ctx.window_start(ctx.params.subject_avoidance.weeks);
    let mut free = plan.free(ctx.weeks(ctx.params.edge_lessons.weeks));
    free.shuffle(rng);
    let mut chosen = Vec::new();
    for pass_strict in [true, false] {
        if !pass_strict && strict {
            break;
        }
        for &idx in &free {
            if chosen.len() == count {
                break;
            }
            if plan.busy.contains(&idx) {
                continue;
            }
            let n = plan.lessons(ctx, idx);
            let len = rng.random_range(1..=2).min(n);
            let (first, last) = if rng.random_bool(0.5) {
                (1, len)
            } else {
                (n + 1 - len, n)
            };
            if len == 0 || !ctx.edge(first) || len >= ctx.absence_day_lessons() {
                continue;
            }
            let counts = subject_days(ctx, plan, subject_from);
            let subjects = block_subjects(ctx, plan, idx, first, last);
            if pass_strict
                && subjects
                    .iter()
                    .any(|s| counts.get(s).copied().unwrap_or(0) >= max_per_subject)
            {
                continue;
            }
            plan.add_block(ctx, idx, first, last, ExcuseStatus::Unexcused);
            chosen.push(idx);
        }
    }
    (chosen.len() == count).then_some(chosen)
}

fn edge_planted(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    count: usize,
    severity: Severity,
) -> Option<Outcome> {
    let days = edge_days(rng, ctx, plan, count, 2, false)?;
    outcome(
        format!(
            "first or last lesson(s) missed (unexcused) while present, on {count} days in the last {} weeks: {}",
            ctx.params.edge_lessons.weeks,
            dates(ctx, &days)
        ),
        &[("edge_lessons", severity)],
    )
}

pub(super) fn edge_warning(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    edge_planted(rng, ctx, plan, EDGE_WARNING, Severity::Warning)
}

pub(super) fn edge_critical(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    edge_planted(rng, ctx, plan, EDGE_CRITICAL, Severity::Critical)
}

// ---- subject_avoidance -------------------------------------------------------------------

/// Lessons `first..=last` on a school day: (day index, first, last).
type Block = (usize, u32, u32);

/// Per subject, its lesson block on each free school day of `range`.
fn subject_blocks(
    ctx: &Ctx,
    plan: &DayPlan,
    range: Range<usize>,
) -> BTreeMap<&'static str, Vec<Block>> {
    let mut out: BTreeMap<&'static str, Vec<Block>> = BTreeMap::new();
    for idx in plan.free(range) {
        let lessons = plan.klasse.lessons_on(ctx.day(idx));
        let mut seen = BTreeSet::new();
        let mut pos = 0;
        while let Some(&subject) = lessons.get(pos) {
            let mut end = pos;
            while lessons.get(end + 1) == Some(&subject) {
                end += 1;
            }
            // One block per subject and day: the rule counts days.
            if seen.insert(subject) {
                out.entry(subject)
                    .or_default()
                    .push((idx, pos as u32 + 1, end as u32 + 1));
            }
            pos = end + 1;
        }
    }
    out
}

/// Misses one subject's lessons on `count` days of `subject_avoidance`'s window while the rest
/// of each day is attended; lessons in the middle of the day first, so `edge_lessons` stays
/// out of it where the timetable allows. The subject and the days.
fn subject_pattern(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    count: usize,
    status: ExcuseStatus,
) -> Option<(&'static str, Vec<usize>)> {
    let window = ctx.weeks(ctx.params.subject_avoidance.weeks);
    let max_len = ctx.absence_day_lessons();
    let eligible: Vec<(&'static str, Vec<Block>)> = subject_blocks(ctx, plan, window)
        .into_iter()
        .map(|(s, blocks)| {
            let short: Vec<_> = blocks
                .into_iter()
                .filter(|(_, f, l)| l + 1 - f < max_len)
                .collect();
            (s, short)
        })
        .filter(|(_, blocks)| blocks.len() >= count)
        .collect();
    let (subject, blocks) = eligible.choose(rng)?;
    let mut blocks = blocks.clone();
    blocks.shuffle(rng);
    blocks.sort_by_key(|(_, first, _)| ctx.edge(*first));
    let mut days = Vec::new();
    for (idx, first, last) in blocks.into_iter().take(count) {
        plan.add_block(ctx, idx, first, last, status);
        days.push(idx);
    }
    Some((subject, days))
}

fn subject_planted(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    count: usize,
    severity: Severity,
) -> Option<Outcome> {
    let (subject, days) = subject_pattern(rng, ctx, plan, count, ExcuseStatus::Unexcused)?;
    outcome(
        format!(
            "{subject} missed (unexcused) while present, on {count} days in the last {} weeks: {}",
            ctx.params.subject_avoidance.weeks,
            dates(ctx, &days)
        ),
        &[("subject_avoidance", severity)],
    )
}

pub(super) fn subject_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    subject_planted(rng, ctx, plan, SUBJECT_WARNING, Severity::Warning)
}

pub(super) fn subject_critical(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    subject_planted(rng, ctx, plan, SUBJECT_CRITICAL, Severity::Critical)
}

// ---- lateness ----------------------------------------------------------------------------

/// `count` late arrivals on distinct free school days of `range`; the days.
fn delays(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    range: &Range<usize>,
    count: usize,
) -> Option<Vec<usize>> {
    (0..count)
        .map(|_| plan.add_delay(rng, ctx, range))
        .collect()
}

fn lateness_planted(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    count: usize,
    severity: Severity,
) -> Option<Outcome> {
    let days = delays(rng, ctx, plan, &ctx.weeks(ctx.params.lateness.weeks), count)?;
    outcome(
        format!(
            "{count} late arrivals in the last {} weeks: {}",
            ctx.params.lateness.weeks,
            dates(ctx, &days)
        ),
        &[("lateness", severity)],
    )
}

pub(super) fn lateness_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    lateness_planted(rng, ctx, plan, LATE_WARNING, Severity::Warning)
}

pub(super) fn lateness_critical(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    lateness_planted(rng, ctx, plan, LATE_CRITICAL, Severity::Critical)
}

// ---- early_year --------------------------------------------------------------------------

fn early_planted(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
    count: usize,
    severity: Severity,
) -> Option<Outcome> {
    let first = ctx.early_year()?;
    if !plan.place_days_dense(rng, ctx, first.clone(), count, 2, Excuse::Usual) {
        return None;
    }
    outcome(
        format!(
            "{count} absence days in the first {} school days of the school year: {}",
            first.len(),
            dates(ctx, &plan.absent_list())
        ),
        &[("early_year", severity)],
    )
}

pub(super) fn early_watch(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    early_planted(rng, ctx, plan, 3, Severity::Watch)
}

pub(super) fn early_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    early_planted(rng, ctx, plan, 6, Severity::Warning)
}

// ---- rising_trend ------------------------------------------------------------------------

pub(super) fn rising_warning(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let w = ctx.trend.clone()?;
    // A quarter of the recent school days against one absence day before: far above 10 % and
    // twice the earlier rate.
    let recent = w.recent.len().div_ceil(4);
    if plan.place_days(rng, ctx, w.baseline.clone(), 1, 1, &LOOSE, Excuse::Excused) < 1
        || !plan.place_days_dense(rng, ctx, w.recent.clone(), recent, 2, Excuse::Usual)
    {
        return None;
    }
    outcome(
        format!(
            "{recent} of {} recent school days absent ({}), 1 of {} in the {} weeks before",
            w.recent.len(),
            dates(ctx, &plan.absent_list()),
            w.baseline.len(),
            ctx.params.rising_trend.baseline_weeks
        ),
        &[("rising_trend", Severity::Warning)],
    )
}

// ---- near misses -------------------------------------------------------------------------

pub(super) fn days_half_near(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    // 10 days in the half-year is one below warning, unless that would already be 10 % of the
    // school days so far (in the first half-year it is): then as many as stay below 10 %. The
    // guard may refuse some (a rising trend, too many Mondays and Fridays): as many as it takes.
    let target = ctx.below_ten_percent().min(10);
    let placed = plan.place_days(rng, ctx, ctx.half(), target, 2, &SAFE, Excuse::Excused);
    outcome(
        format!(
            "{placed} absence days in the current half-year (warning from 11; rate kept below 10 %), in episodes of 1-2 days"
        ),
        &[],
    )
}

pub(super) fn rate_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
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
        target - placed,
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

pub(super) fn consecutive_near(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let last = ctx
        .school_days()
        .checked_sub(1 + rng.random_range(0..PLANT_RECENT - 1))?;
    let first = last.checked_sub(1)?;
    if !plan.support_trend(rng, ctx, &[first, last])
        || !plan.try_days(rng, ctx, first, 2, &SAFE, Excuse::Usual)
    {
        return None;
    }
    outcome(
        format!(
            "2 consecutive absence days {} (warning from 3); earlier single sick days: {}",
            ctx.span(&[first, last]),
            plan.absent.len() - 2
        ),
        &[],
    )
}

pub(super) fn unexcused_near(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let days = unexcused_days(rng, ctx, plan, 2, true)?;
    plan.add_lessons(rng, ctx, &ctx.half(), 2, ExcuseStatus::Unexcused)?;
    outcome(
        format!(
            "2 unexcused days of 6 lessons ({days}) and 2 unexcused single lessons: 2 days, 14 lessons (warning from 3 days or 15 lessons)"
        ),
        &[],
    )
}

pub(super) fn pending_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    // Two school days waited: one short of warning.
    let waited = 2;
    let idx = ctx.school_days().checked_sub(1 + waited)?;
    if !plan.support_trend(rng, ctx, &[idx])
        || !plan.try_days(rng, ctx, idx, 1, &SAFE, Excuse::Pending)
    {
        return None;
    }
    outcome(
        format!(
            "absent on {}, still without an excuse decision {waited} school days later (warning from 3)",
            date(ctx.day(idx))
        ),
        &[],
    )
}

pub(super) fn same_weekday_near(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
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
        // Not on days next to a weekend or holiday: three of those would be a pattern of
        // around_weekend_holiday.
        (chain.len() == count && chain.iter().all(|i| !ctx.adjacent(*i))).then_some(chain)
    };
    let chain = candidates
        .iter()
        .find_map(|l| every_other_week(*l, 3))
        .or_else(|| candidates.iter().find_map(|l| every_other_week(*l, 2)))?;
    if !plan.support_trend(rng, ctx, &chain) {
        return None;
    }
    // Oldest first: the days before the recent weeks calm rising_trend for the later ones.
    let mut chain = chain;
    chain.sort_unstable();
    for idx in &chain {
        if !plan.try_days(rng, ctx, *idx, 1, &SAFE, Excuse::Excused) {
            return None;
        }
    }
    outcome(
        format!(
            "absent on the same weekday every other week ({}), never in consecutive weeks",
            dates(ctx, &chain)
        ),
        &[],
    )
}

pub(super) fn around_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    const DAYS: usize = 2;
    let weeks = ctx.params.around_weekend_holiday.weeks;
    let next_to_off = |i: usize| ctx.adjacent(i);
    let sp = Spacing {
        filter: &next_to_off,
        ..SAFE
    };
    if plan.place_days(rng, ctx, ctx.weeks(weeks), DAYS, 1, &sp, Excuse::Excused) < DAYS {
        return None;
    }
    outcome(
        format!(
            "{DAYS} absence days, both next to a weekend or holiday, in the last {weeks} weeks (warning from 3): {}",
            dates(ctx, &plan.absent_list())
        ),
        &[],
    )
}

pub(super) fn edge_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    // Two edge days, and a third day with a lesson in the middle missed, which does not count.
    let edge = edge_days(rng, ctx, plan, 2, 1, true)?;
    let subject_from = ctx.window_start(ctx.params.subject_avoidance.weeks);
    let mut free = plan.free(ctx.weeks(ctx.params.edge_lessons.weeks));
    free.shuffle(rng);
    let middle = free.into_iter().find_map(|idx| {
        let n = plan.lessons(ctx, idx);
        let lesson = (2..=n).find(|l| !ctx.edge(*l))?;
        let counts = subject_days(ctx, plan, subject_from);
        block_subjects(ctx, plan, idx, lesson, lesson)
            .iter()
            .all(|s| counts.get(s).copied().unwrap_or(0) < 2)
            .then_some((idx, lesson))
    })?;
    plan.add_block(ctx, middle.0, middle.1, middle.1, ExcuseStatus::Unexcused);
    outcome(
        format!(
            "first or last lesson missed while present on 2 days ({}), lesson {} on {} (warning from 3 edge days)",
            dates(ctx, &edge),
            middle.1,
            date(ctx.day(middle.0))
        ),
        &[],
    )
}

pub(super) fn subject_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let (subject, days) = subject_pattern(rng, ctx, plan, SUBJECT_NEAR, ExcuseStatus::Unexcused)?;
    // The subject once more just before the window: three times in all, twice in the window.
    let weeks = ctx.params.subject_avoidance.weeks;
    let window = ctx.weeks(weeks);
    let before = ctx
        .since(ctx.window_start(weeks) - Duration::weeks(2))
        .start..window.start;
    let earlier = subject_blocks(ctx, plan, before)
        .remove(subject)
        .and_then(|blocks| blocks.into_iter().next_back());
    if let Some((idx, first, last)) = earlier {
        plan.add_block(ctx, idx, first, last, ExcuseStatus::Unexcused);
    }
    outcome(
        format!(
            "{subject} missed while present on {SUBJECT_NEAR} days in the last {weeks} weeks ({}){} (warning from 3)",
            dates(ctx, &days),
            earlier.map_or(String::new(), |(idx, _, _)| format!(
                " and once before them ({})",
                date(ctx.day(idx))
            ))
        ),
        &[],
    )
}

pub(super) fn lateness_near(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let weeks = ctx.params.lateness.weeks;
    let window = ctx.weeks(weeks);
    let days = delays(rng, ctx, plan, &window, LATE_NEAR)?;
    // A few more in the weeks before the window, which the rule no longer counts.
    let before = ctx
        .since(ctx.window_start(weeks) - Duration::weeks(weeks.into()))
        .start..window.start;
    let earlier = (0..3)
        .filter_map(|_| plan.add_delay(rng, ctx, &before))
        .count();
    outcome(
        format!(
            "{LATE_NEAR} late arrivals in the last {weeks} weeks ({}), {earlier} more in the {weeks} weeks before (warning from 5)",
            dates(ctx, &days)
        ),
        &[],
    )
}

pub(super) fn early_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let first = ctx.early_year()?;
    // One below warning (5) would be 4, but early in the year 4 days are 10 % of the school days
    // so far, which absence_rate flags; so as many as keep the rate below 10 % (a watch).
    let target = ctx.below_ten_percent().min(4);
    let placed = plan.place_days(rng, ctx, first.clone(), target, 1, &SAFE, Excuse::Usual);
    if placed < target {
        return None;
    }
    outcome(
        format!(
            "{placed} absence days in the first {} school days (watch from 2, warning from 5; rate kept below 10 %): {}",
            first.len(),
            dates(ctx, &plan.absent_list())
        ),
        &[],
    )
}

pub(super) fn rising_near(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> Option<Outcome> {
    let w = ctx.trend.clone()?;
    let (r_days, b_days) = (w.recent.len(), w.baseline.len());
    // The recent rate at 10 % or just above, and just under twice the earlier rate: the fewest
    // earlier days that keep the ratio below 2.
    let recent = r_days.div_ceil(10);
    let baseline = (0..=b_days).find(|b| ctx.trend_quiet(recent, *b))?;
    let klasse = plan.klasse;
    let rising = plan.place_days(
        rng,
        ctx,
        w.baseline.clone(),
        baseline,
        1,
        &SAFE,
        Excuse::Excused,
    ) == baseline
        && plan.place_days(rng, ctx, w.recent.clone(), recent, 1, &SAFE, Excuse::Usual) == recent;
    if rising {
        return outcome(
            format!(
                "{recent} of {r_days} recent school days absent ({:.1} %), {baseline} of {b_days} before ({:.1} %): just under twice the earlier rate",
                recent as f64 * 100.0 / r_days as f64,
                baseline as f64 * 100.0 / b_days as f64,
            ),
            &[],
        );
    }
    // Too little room for that (the absence rate would reach 10 %): the recent rate just under
    // 10 % instead, with no earlier days.
    *plan = DayPlan::new(klasse);
    let recent = (r_days - 1) / 10;
    if recent == 0
        || plan.place_days(rng, ctx, w.recent.clone(), recent, 1, &SAFE, Excuse::Usual) < recent
    {
        return None;
    }
    outcome(
        format!(
            "{recent} of {r_days} recent school days absent ({:.1} %, under 10 %), none before",
            recent as f64 * 100.0 / r_days as f64
        ),
        &[],
    )
}

// ---- ordinary students -------------------------------------------------------------------

/// Ordinary sporadic illness: a few excused episodes of 1-2 days, a partial day, maybe late
/// arrivals, maybe a recent absence still pending. The guard refuses episodes that would look
/// like a pattern (a rising trend among them), so some students get fewer days than drawn.
pub(super) fn illness(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> String {
    let budget = (ctx.school_days() * 6 / 100).clamp(1, 6);
    let mut notes = Vec::new();
    if rng.random_bool(0.2)
        && let Some(idx) = plan.find(rng, ctx, &ctx.recent(PENDING_DAYS), 1, &SAFE)
    {
        plan.add_days(rng, ctx, idx, 1, Excuse::Pending);
        notes.push(format!(
            "a recent absence still pending ({})",
            date(ctx.day(idx))
        ));
    }
    let episodes = rng.random_range(1..=3);
    let mut days = 0;
    for _ in 0..episodes {
        let used = plan.absent.len();
        if used >= budget {
            break;
        }
        let len: usize = (if rng.random_bool(0.4) { 2 } else { 1 }).min(budget - used);
        days += plan.place_days(rng, ctx, ctx.year(), len, len, &SAFE, Excuse::Usual);
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
pub(super) fn clean(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> String {
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
