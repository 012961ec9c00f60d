//! The placing machinery: the school calendar as the planting sees it, one student's planned
//! class-register entries, and the guard that keeps harmless students quiet.

use super::super::SimKlasse;
use crate::calendar::Calendar;
use crate::config::Period;
use crate::model::{ExcuseStatus, Severity};
use crate::rules::{Bands, RuleParams};
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
/// `rising_trend` compares only with at least this many school days in the recent window and
/// in the baseline before it. Private constants of the rule, mirrored here; the ground-truth
/// tests notice a drift (a planted trend missing, or a harmless student flagged).
pub(super) const RISING_MIN_RECENT_DAYS: usize = 10;
pub(super) const RISING_MIN_BASELINE_DAYS: usize = 20;

/// The two windows `rising_trend` compares, as index ranges into [`Ctx::days`].
#[derive(Debug, Clone)]
pub(super) struct TrendWindows {
    pub(super) recent: Range<usize>,
    pub(super) baseline: Range<usize>,
}

/// The school calendar as the planting sees it.
pub(super) struct Ctx<'a> {
    pub(super) cal: &'a Calendar,
    /// The reference day; windows of weeks end on it.
    pub(super) today: NaiveDate,
    /// School days from the school year's start up to the reference day.
    pub(super) days: Vec<NaiveDate>,
    /// Index in `days` of the current half-year's first school day.
    pub(super) half_start: usize,
    /// The thresholds the planting aims at: the defaults of SPEC §4.
    pub(super) params: RuleParams,
    /// The bell schedule, sorted.
    pub(super) periods: Vec<Period>,
    /// Per school day: a weekend, holiday or the year's end lies right before or after it.
    adjacent: Vec<bool>,
    /// `rising_trend`'s windows when the rule compares at all on the reference day.
    pub(super) trend: Option<TrendWindows>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(cal: &'a Calendar, today: NaiveDate, periods: Vec<Period>) -> Ctx<'a> {
        let year = cal.school_year();
        let days = cal.school_days(year.start, today);
        let half_start_day = cal.half_year(today).map_or(year.start, |h| h.start);
        let half_start = days
            .iter()
            .position(|d| *d >= half_start_day)
            .unwrap_or(days.len());
        let adjacent = days
            .iter()
            .map(|d| {
                d.pred_opt().is_some_and(|x| !cal.is_school_day(x))
                    || d.succ_opt().is_some_and(|x| !cal.is_school_day(x))
            })
            .collect();
        let params = RuleParams::default();
        let mut ctx = Ctx {
            cal,
            today,
            days,
            half_start,
            params,
            periods,
            adjacent,
            trend: None,
        };
        // The same windows as the rule: the recent weeks end on the reference day, the baseline
        // weeks end the day before they start.
        let rt = ctx.params.rising_trend;
        let recent_from = ctx.window_start(rt.recent_weeks);
        let baseline_from = recent_from - Duration::days(i64::from(rt.baseline_weeks) * 7);
        let recent = ctx.since(recent_from);
        let baseline = ctx.since(baseline_from).start..recent.start;
        if recent.len() >= RISING_MIN_RECENT_DAYS && baseline.len() >= RISING_MIN_BASELINE_DAYS {
            ctx.trend = Some(TrendWindows { recent, baseline });
        }
        ctx
    }

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

    /// The first day of a window of `weeks` weeks that ends on the reference day (as the rules
    /// count it).
    pub(super) fn window_start(&self, weeks: u32) -> NaiveDate {
        self.today - Duration::days(i64::from(weeks) * 7 - 1)
    }

    /// School days of the window of `weeks` weeks that ends on the reference day.
    pub(super) fn weeks(&self, weeks: u32) -> Range<usize> {
        self.since(self.window_start(weeks))
    }

    /// School days from `from` up to the reference day.
    pub(super) fn since(&self, from: NaiveDate) -> Range<usize> {
        self.days.partition_point(|d| *d < from)..self.days.len()
    }

    /// The school days `early_year` counts, while the rule is evaluated at all (it stops once the
    /// school year has twice that many school days).
    pub(super) fn early_year(&self) -> Option<Range<usize>> {
        let n = self.params.early_year.school_days as usize;
        (n > 0 && self.days.len() <= 2 * n).then(|| 0..n.min(self.days.len()))
    }

    pub(super) fn day(&self, idx: usize) -> NaiveDate {
        self.days.get(idx).copied().unwrap_or(NaiveDate::MIN)
    }

    pub(super) fn index_of(&self, day: NaiveDate) -> Option<usize> {
        self.days.binary_search(&day).ok()
    }

    /// Whether a weekend, holiday or the end of the school year lies right before or after the
    /// school day (`around_weekend_holiday`'s days).
    pub(super) fn adjacent(&self, idx: usize) -> bool {
        self.adjacent.get(idx).copied().unwrap_or(false)
    }

    /// Whether lessons `first..` of a day that is otherwise attended count for `edge_lessons`:
    /// they start with the first lesson or lie in the second half of the bell schedule.
    pub(super) fn edge(&self, first: u32) -> bool {
        let late_from = self
            .periods
            .get(self.periods.len().div_ceil(2))
            .map_or(u32::MAX, |p| p.number);
        self.periods.first().is_some_and(|p| p.number == first) || first >= late_from
    }

    /// Lessons that make a school day an absence day.
    pub(super) fn absence_day_lessons(&self) -> u32 {
        match self.params.absence_day_min_lessons {
            0 => (self.periods.len() as u32).div_ceil(2).max(1),
            n => n,
        }
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

    /// Whether full absence days on `absent` (school-day indices, any order) stay below warning
    /// for every rule that counts absence days: the harmless students' guard. Each check restates
    /// the rule's definition from SPEC §4 with the default thresholds, so a near miss can go
    /// right up to a threshold; the ground-truth tests compare with the real rules.
    pub(super) fn quiet(&self, absent: &[usize]) -> bool {
        self.quiet_but_trend(absent) && {
            let (recent, baseline) = self.trend.as_ref().map_or((0, 0), |w| {
                (
                    absent.iter().filter(|i| w.recent.contains(i)).count(),
                    absent.iter().filter(|i| w.baseline.contains(i)).count(),
                )
            });
            self.trend_quiet(recent, baseline)
        }
    }

    /// [`Ctx::quiet`] apart from `rising_trend`, which more absence days in its baseline only
    /// calm down.
    pub(super) fn quiet_but_trend(&self, absent: &[usize]) -> bool {
        let mut absent = absent.to_vec();
        absent.sort_unstable();
        absent.dedup();
        let p = &self.params;
        let count_in = |r: &Range<usize>| absent.iter().filter(|i| r.contains(i)).count();
        let n = self.days.len();

        if n > 0 && n >= p.absence_rate_min_school_days as usize {
            let percent = absent.len() as f64 * 100.0 / n as f64;
            if loud(&p.absence_rate, percent) {
                return false;
            }
        }
        if loud(&p.days_per_half_year, count_in(&self.half()) as f64) {
            return false;
        }
        if let Some(first) = self.early_year()
            && loud(&p.early_year.bands, count_in(&first) as f64)
        {
            return false;
        }

        // around_weekend_holiday: enough such days *and* most of the window's absence days.
        let aw = &p.around_weekend_holiday;
        let window = self.weeks(aw.weeks);
        let in_window: Vec<usize> = absent
            .iter()
            .copied()
            .filter(|i| window.contains(i))
            .collect();
        let next_to_off = in_window.iter().filter(|i| self.adjacent(**i)).count();
        if !in_window.is_empty() {
            let share = next_to_off as f64 * 100.0 / in_window.len() as f64;
            if share >= aw.min_share_percent && loud(&aw.bands, next_to_off as f64) {
                return false;
            }
        }

        // consecutive_days: absence days on consecutive school days (indices).
        let mut run = 0usize;
        let mut prev: Option<usize> = None;
        for &i in &absent {
            run = if prev.is_some_and(|q| q + 1 == i) {
                run + 1
            } else {
                1
            };
            if loud(&p.consecutive_days, run as f64) {
                return false;
            }
            prev = Some(i);
        }

        // same_weekday: two single absence days on the same weekday in consecutive school weeks
        // already make a chain (warning from 2).
        let isolated: Vec<usize> = absent
            .iter()
            .copied()
            .filter(|i| {
                let before = i
                    .checked_sub(1)
                    .is_some_and(|b| absent.binary_search(&b).is_ok());
                let after = absent.binary_search(&(i + 1)).is_ok();
                !before && !after
            })
            .collect();
        for (k, a) in isolated.iter().enumerate() {
            for b in &isolated[k + 1..] {
                if chained(self.cal, self.day(*a), self.day(*b)) && loud(&p.same_weekday, 2.0) {
                    return false;
                }
            }
        }
        true
    }

    /// Whether `rising_trend` would compare `recent` absence days in its recent window with
    /// `baseline` ones before and find no rise: the recent rate below 10 % or below twice the
    /// baseline rate.
    pub(super) fn trend_quiet(&self, recent: usize, baseline: usize) -> bool {
        let rt = &self.params.rising_trend;
        let Some(w) = &self.trend else { return true };
        let r = recent as f64 * 100.0 / w.recent.len() as f64;
        let b = baseline as f64 * 100.0 / w.baseline.len() as f64;
        !rt.enabled || r < rt.min_rate_percent || r < rt.ratio * b
    }
}

/// Whether a value reaches a rule's warning (or critical) threshold.
pub(super) fn loud(bands: &Bands, value: f64) -> bool {
    bands
        .classify(value)
        .is_some_and(|s| s >= Severity::Warning)
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
    /// Still without a decision, however old.
    Pending,
}

/// Rules for placing absence days.
pub(super) struct Spacing<'f> {
    /// Present school days required between episodes.
    pub(super) gap: usize,
    /// Keep single days off a `same_weekday` chain with other single days.
    pub(super) avoid_chain: bool,
    /// Keep the student below warning on every absence-day rule ([`Ctx::quiet`]).
    pub(super) quiet: bool,
    /// Which school days (by index) may be used.
    pub(super) filter: &'f dyn Fn(usize) -> bool,
}

pub(super) fn any_day(_: usize) -> bool {
    true
}

/// Spacing that keeps ordinary and near-miss students below warning on every rule that counts
/// absence days.
pub(super) const SAFE: Spacing<'static> = Spacing {
    gap: 2,
    avoid_chain: true,
    quiet: true,
    filter: &any_day,
};
/// Spacing for planted students, whose extra findings are allowed.
pub(super) const LOOSE: Spacing<'static> = Spacing {
    gap: 1,
    avoid_chain: false,
    quiet: false,
    filter: &any_day,
};

/// Spacing for partial days and late arrivals: any free school day.
pub(super) const ANY_FREE: Spacing<'static> = Spacing {
    gap: 0,
    avoid_chain: false,
    quiet: false,
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
            Excuse::Pending => ExcuseStatus::Pending,
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
        // Last, as it is the most expensive check.
        if sp.quiet {
            let with: Vec<usize> = self.absent.iter().copied().chain(start..end).collect();
            if !ctx.quiet(&with) {
                return false;
            }
        }
        true
    }

    /// Adds full-day absences on `start..start + len` if they fit `sp`; whether they did.
    pub(super) fn try_days(
        &mut self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        start: usize,
        len: usize,
        sp: &Spacing,
        excuse: Excuse,
    ) -> bool {
        let fits = self.fits(ctx, start, len, sp);
        if fits {
            self.add_days(rng, ctx, start, len, excuse);
        }
        fits
    }

    /// Gives a harmless student enough earlier absence days (single, excused, in
    /// `rising_trend`'s baseline) that the absence days `pattern`, to be added next, do not make
    /// a rising trend: an ordinary student who is off now was off now and then before as well.
    /// False if the baseline cannot take them.
    pub(super) fn support_trend(
        &mut self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        pattern: &[usize],
    ) -> bool {
        let Some(w) = ctx.trend.clone() else {
            return true;
        };
        let sp = Spacing {
            quiet: false,
            ..SAFE
        };
        loop {
            let mut all: Vec<usize> = self
                .absent
                .iter()
                .copied()
                .chain(pattern.iter().copied())
                .collect();
            let recent = all.iter().filter(|i| w.recent.contains(i)).count();
            let baseline = all.iter().filter(|i| w.baseline.contains(i)).count();
            if ctx.trend_quiet(recent, baseline) {
                return true;
            }
            let mut candidates: Vec<usize> = w
                .baseline
                .clone()
                .filter(|i| pattern.iter().all(|p| p.abs_diff(*i) > SAFE.gap))
                .filter(|i| self.fits(ctx, *i, 1, &sp))
                .collect();
            candidates.shuffle(rng);
            let pick = candidates.into_iter().find(|i| {
                all.push(*i);
                let ok = ctx.quiet_but_trend(&all);
                all.pop();
                ok
            });
            let Some(idx) = pick else {
                return false;
            };
            self.add_days(rng, ctx, idx, 1, Excuse::Excused);
        }
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
        let idx = self.find(rng, ctx, range, 1, &ANY_FREE)?;
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

    /// Lessons `first..=last` missed on the school day `idx`, otherwise attended.
    pub(super) fn add_block(
        &mut self,
        ctx: &Ctx,
        idx: usize,
        first: u32,
        last: u32,
        status: ExcuseStatus,
    ) {
        self.entries.push(Entry::Lessons {
            day: ctx.day(idx),
            first,
            last,
            status,
        });
        self.busy.insert(idx);
    }

    /// A late arrival on a free school day in `range`; the day, if one was free.
    pub(super) fn add_delay(
        &mut self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        range: &Range<usize>,
    ) -> Option<usize> {
        let idx = self.find(rng, ctx, range, 1, &ANY_FREE)?;
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
        Some(idx)
    }

    /// Free school days (no entry yet) in `range`.
    pub(super) fn free(&self, range: Range<usize>) -> Vec<usize> {
        range.filter(|i| !self.busy.contains(i)).collect()
    }

    pub(super) fn absent_list(&self) -> Vec<usize> {
        self.absent.iter().copied().collect()
    }
}
