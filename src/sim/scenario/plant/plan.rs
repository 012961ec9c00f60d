//! The placing machinery: the school calendar as the planting sees it and one student's planned
//! class-register entries.

use super::super::SimKlasse;
use crate::calendar::Calendar;
use crate::model::ExcuseStatus;
use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::ops::Range;

/// Streak-like rules look back this many school days; planted streaks end well inside it.
/// Mirrors `rules::RECENT_SCHOOL_DAYS` (a test notices a drift).
pub(in crate::sim::scenario) const RECENT_SCHOOL_DAYS: usize = 10;
/// Planted streaks and chains end within this many school days before the reference day.
pub(super) const PLANT_RECENT: usize = 5;
const _: () = assert!(PLANT_RECENT < RECENT_SCHOOL_DAYS);
/// Absences in this many last school days may still wait for an excuse decision.
pub(super) const PENDING_DAYS: usize = 3;

/// The school calendar as the planting sees it.
pub(super) struct Ctx<'a> {
    pub(super) cal: &'a Calendar,
    /// School days from the school year's start up to the reference day.
    pub(super) days: Vec<NaiveDate>,
    /// Index in `days` of the current half-year's first school day.
    pub(super) half_start: usize,
}

impl Ctx<'_> {
    pub(super) fn school_days(&self) -> usize {
        self.days.len()
    }

    pub(super) fn year(&self) -> Range<usize> {
        0..self.days.len()
    }

    pub(super) fn half(&self) -> Range<usize> {
        self.half_start..self.days.len()
    }

    /// The last `n` school days.
    pub(super) fn recent(&self, n: usize) -> Range<usize> {
        self.days.len().saturating_sub(n)..self.days.len()
    }

    pub(super) fn day(&self, idx: usize) -> NaiveDate {
        self.days.get(idx).copied().unwrap_or(NaiveDate::MIN)
    }

    pub(super) fn index_of(&self, day: NaiveDate) -> Option<usize> {
        self.days.binary_search(&day).ok()
    }

    /// Largest number of absence days that keeps the absence rate below 10 %.
    pub(super) fn below_ten_percent(&self) -> usize {
        self.school_days().div_ceil(10).saturating_sub(1)
    }

    pub(super) fn span(&self, idx: &[usize]) -> String {
        match (idx.iter().min(), idx.iter().max()) {
            (Some(a), Some(b)) if a == b => date(self.day(*a)),
            (Some(a), Some(b)) => format!("{}..{}", date(self.day(*a)), date(self.day(*b))),
            _ => "-".to_string(),
        }
    }
}

pub(super) fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Whether two days share a weekday with no school day of that weekday between them: single
/// absences on both would form a `same_weekday` chain.
pub(super) fn chained(cal: &Calendar, a: NaiveDate, b: NaiveDate) -> bool {
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
pub(super) enum Entry {
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
pub(super) enum Excuse {
    Excused,
    Unexcused,
    /// Excused, but absences of the last days may still wait for the decision (pending).
    Usual,
}

/// Rules for placing absence days.
pub(super) struct Spacing<'f> {
    /// Present school days required between episodes.
    pub(super) gap: usize,
    /// Keep single days off a `same_weekday` chain with other single days.
    pub(super) avoid_chain: bool,
    /// Which school days (by index) may be used.
    pub(super) filter: &'f dyn Fn(usize) -> bool,
}

pub(super) fn any_day(_: usize) -> bool {
    true
}

/// Spacing that keeps ordinary and near-miss students below every streak rule.
pub(super) const SAFE: Spacing<'static> = Spacing {
    gap: 2,
    avoid_chain: true,
    filter: &any_day,
};
/// Spacing for planted students, whose extra findings are allowed.
pub(super) const LOOSE: Spacing<'static> = Spacing {
    gap: 1,
    avoid_chain: false,
    filter: &any_day,
};

/// One student's planned entries.
pub(super) struct DayPlan<'k> {
    pub(super) klasse: &'k SimKlasse,
    pub(super) entries: Vec<Entry>,
    /// Absence days (indices into `Ctx::days`).
    pub(super) absent: BTreeSet<usize>,
    /// Absence days planted as single-day episodes.
    pub(super) single: BTreeSet<usize>,
    /// Days with any entry.
    pub(super) busy: BTreeSet<usize>,
}

impl<'k> DayPlan<'k> {
    pub(super) fn new(klasse: &'k SimKlasse) -> Self {
        DayPlan {
            klasse,
            entries: Vec::new(),
            absent: BTreeSet::new(),
            single: BTreeSet::new(),
            busy: BTreeSet::new(),
        }
    }

    pub(super) fn lessons(&self, ctx: &Ctx, idx: usize) -> u32 {
        self.klasse.lessons_on(ctx.day(idx)).len() as u32
    }

    pub(super) fn status(
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        idx: usize,
        excuse: Excuse,
    ) -> ExcuseStatus {
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

    pub(super) fn fits(&self, ctx: &Ctx, start: usize, len: usize, sp: &Spacing) -> bool {
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
    pub(super) fn find(
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
    pub(super) fn add_days(
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
    pub(super) fn place_days(
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
    pub(super) fn place_days_dense(
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
    pub(super) fn add_lessons(
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

    pub(super) fn add_delay(&mut self, rng: &mut ChaCha8Rng, ctx: &Ctx, range: &Range<usize>) {
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

    pub(super) fn absent_list(&self) -> Vec<usize> {
        self.absent.iter().copied().collect()
    }
}
