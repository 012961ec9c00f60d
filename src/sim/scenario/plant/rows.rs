//! The table's row functions: planted patterns, near misses, ordinary illness and clean students.

use super::plan::*;
use super::{Outcome, outcome};
use crate::model::{ExcuseStatus, Severity};
use chrono::{Datelike, Duration, Weekday};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

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

pub(super) fn unexcused_warning_days(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let days = unexcused_days(rng, ctx, plan, 4)?;
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
    let days = unexcused_days(rng, ctx, plan, 6)?;
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

pub(super) fn days_half_near(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
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

pub(super) fn consecutive_near(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let span = recent_run(rng, ctx, plan, 2, Excuse::Usual)?;
    outcome(
        format!("2 consecutive absence days {span} (warning from 3)"),
        &[],
    )
}

pub(super) fn unexcused_near(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    plan: &mut DayPlan,
) -> Option<Outcome> {
    let days = unexcused_days(rng, ctx, plan, 2)?;
    plan.add_lessons(rng, ctx, &ctx.half(), 2, ExcuseStatus::Unexcused)?;
    outcome(
        format!(
            "2 unexcused days of 6 lessons ({days}) and 2 unexcused single lessons: 2 days, 14 lessons (warning from 3 days or 15 lessons)"
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
pub(super) fn illness(rng: &mut ChaCha8Rng, ctx: &Ctx, plan: &mut DayPlan) -> String {
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
