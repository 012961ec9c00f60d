//! One school's sync: fetch the roster (in full or what changed) and the absence window, then
//! write everything in one write transaction. Nothing is written unless every request
//! succeeded, so a failed sync never deletes local data and never leaves half a sync behind.
//!
//! A sync is **full** on the first sync, when the school year changed, and once a night after
//! `full_reconcile_at` (school-local): it reads the whole roster and replaces the stored one,
//! which also removes records that vanished without ever being `tobedeleted`. Every other sync is
//! **incremental**: it reads what changed after the roster watermark (the latest
//! `dateLastModified` seen) and applies upserts, `tobedeleted` deletions and enrollment moves to
//! the stored roster. Both re-read the absence window of every Klasse, because excuses change.

use crate::config::SchoolConfig;
use crate::model::{Absence, Klasse, Roster, SchoolYear, Student, StudentId};
use crate::store::{AbsenceReplacement, SchoolState, Store, StoreError, SyncRecord, SyncWrite};
use crate::untis::{
    MembershipKind, RequestCounts, RosterDelta, StudentAbsences, UntisClient, UntisError,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Untis(#[from] UntisError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "WebUntis lists no students, but {stored} are stored; the stored roster is kept. Is the platform app's access to the roster still granted, and is the school year set up in WebUntis?"
    )]
    EmptyRoster { stored: usize },
}

/// Whether a sync read the whole roster or only its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Full,
    Incremental,
}

/// What a successful sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub kind: SyncKind,
    pub school_year: SchoolYear,
    pub students: usize,
    pub klassen: usize,
    /// Entries read in the window (both parts).
    pub absences: usize,
    /// Inclusive date window of the current school year whose absences were replaced.
    pub window: (NaiveDate, NaiveDate),
    /// The part of the rolling window before the school year's start, if it reaches there.
    pub previous_year_window: Option<(NaiveDate, NaiveDate)>,
    /// Roster records an incremental sync received (0 for a full sync).
    pub roster_changes: usize,
    /// Requests of this sync (each attempt counted).
    pub data_requests: u32,
    pub token_requests: u32,
}

/// The dates to (re-)read in the current school year: from its start on the first sync (so
/// half-year and school-year rules work from day one), else the rolling window; never outside
/// the school year.
pub fn absence_window(
    school_year: SchoolYear,
    today: NaiveDate,
    window_days: u32,
    first_sync: bool,
) -> (NaiveDate, NaiveDate) {
    let to = today.min(school_year.end).max(school_year.start);
    let from = if first_sync {
        school_year.start
    } else {
        (today - Duration::days(i64::from(window_days))).max(school_year.start)
    };
    (from.min(to), to)
}

/// The part of the rolling window that lies before the school year's start, if any: the
/// absences API takes `start` and `end` in one school year only, so it is read in requests of
/// its own.
pub fn previous_year_window(
    school_year: SchoolYear,
    today: NaiveDate,
    window_days: u32,
) -> Option<(NaiveDate, NaiveDate)> {
    let from = today - Duration::days(i64::from(window_days));
    let to = school_year.start.pred_opt()?;
    (today >= school_year.start && from <= to).then_some((from, to))
}

/// The latest `full_reconcile_at` in school-local time at or before `now`. A time that a
/// daylight-saving change skips counts as the first instant after the gap; a repeated one as
/// its first occurrence.
pub fn last_reconcile_slot(now: DateTime<Utc>, tz: chrono_tz::Tz, at: NaiveTime) -> DateTime<Utc> {
    let mut day = now.with_timezone(&tz).date_naive();
    for _ in 0..3 {
        if let Some(t) = local_instant(tz, day.and_time(at))
            && t <= now
        {
            return t;
        }
        match day.pred_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    now
}

pub(crate) fn local_instant(tz: chrono_tz::Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    // In a gap: the first whole quarter hour after it (gaps are at most two hours).
    (1..=8).find_map(|q| {
        tz.from_local_datetime(&(local + Duration::minutes(15 * q)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// Whether this sync must read the whole roster (before the school year is known).
fn full_sync_due(state: &SchoolState, school: &SchoolConfig, now: DateTime<Utc>) -> bool {
    let slot = last_reconcile_slot(now, school.timezone, school.untis.full_reconcile_at);
    state.last_success.is_none()
        || state.roster_watermark.is_none()
        || state.last_full_reconcile.is_none_or(|t| t < slot)
}

/// Syncs one school. `now` is the run's clock; the school-local date decides the window. A
/// failure is recorded (for `/status`) and logged with the school id, and changes no data.
pub async fn sync_school(
    store: &Store,
    school: &SchoolConfig,
    client: &UntisClient,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let before = client.requests();
    let result = fetch_and_store(store, school, client, now, before).await;
    let id = school.id.to_string();
    match &result {
        Ok(r) => log::info!(
            "school {id}: {} sync ok: {} students, {} Klassen, {} absences in {}..{}, {} roster changes, {} requests ({} token)",
            match r.kind {
                SyncKind::Full => "full",
                SyncKind::Incremental => "incremental",
            },
            r.students,
            r.klassen,
            r.absences,
            r.window.0,
            r.window.1,
            r.roster_changes,
            r.data_requests + r.token_requests,
            r.token_requests,
        ),
        Err(e) => {
            let used = client.requests().since(before);
            log::warn!(
                "school {id}: sync failed after {} requests, stored data unchanged: {e}",
                used.total()
            );
            let record = SyncRecord {
                started: now.to_rfc3339(),
                finished: Utc::now().max(now).to_rfc3339(),
                ok: false,
                error: Some(e.to_string()),
                requests: used.total(),
            };
            let sid = id.clone();
            if let Err(store_err) = store
                .blocking(move |s| s.record_sync_failure(&sid, record))
                .await
            {
                log::error!("school {id}: cannot record the failed sync: {store_err}");
            }
        }
    }
    result
}

async fn fetch_and_store(
    store: &Store,
    school: &SchoolConfig,
    client: &UntisClient,
    now: DateTime<Utc>,
    before: RequestCounts,
) -> Result<SyncReport, SyncError> {
    let today = now.with_timezone(&school.timezone).date_naive();
    let id = school.id.to_string();
    let state = {
        let id = id.clone();
        store.blocking(move |s| s.school_state(&id)).await?
    };

    let mut full = full_sync_due(&state, school, now);
    let stored_year = state.school_year.filter(|y| y.contains(today));
    let school_year = match stored_year {
        Some(y) if !full => y,
        _ => client.school_year(today).await?,
    };
    if state.school_year != Some(school_year) {
        full = true;
    }
    // Nothing stored yet for this school year: read it from its start.
    let backfill =
        state.last_success.is_none() || state.school_year != Some(school_year) || state.backfill;

    let (mut roster, watermark, roster_changes) = match (&state.roster_watermark, full) {
        (Some(since), false) => {
            let delta = client.roster_changes(since).await?;
            let stored = {
                let id = id.clone();
                store.blocking(move |s| s.load_roster(&id)).await?
            };
            let changes = delta.records;
            let watermark =
                crate::untis::later_watermark(Some(since.clone()), delta.watermark.as_deref());
            (apply_delta(stored, delta), watermark, changes)
        }
        _ => {
            let fetched = client.roster().await?;
            let stored = {
                let id = id.clone();
                store.blocking(move |s| s.load_roster(&id)).await?
            };
            // A roster that empties at once is far likelier a failure in disguise (a permission
            // taken away, a school year not set up) than a school without students.
            let listed = |r: &Roster| r.students.iter().filter(|s| !is_unlisted(&s.id)).count();
            if listed(&fetched.roster) == 0 && listed(&stored) > 0 {
                return Err(SyncError::EmptyRoster {
                    stored: listed(&stored),
                });
            }
            let roster = carry_over(fetched.roster, &fetched.missing_members, &stored);
            (roster, fetched.watermark, 0)
        }
    };
    let renamed_students = promote_unlisted(&mut roster);

    let window = absence_window(school_year, today, school.untis.window_days, backfill);
    let previous = if state.last_success.is_some() {
        previous_year_window(school_year, today, school.untis.window_days)
    } else {
        None
    };
    let mut parts = vec![window];
    parts.extend(previous);
    let fetched = fetch_absences(client, &roster.klassen, &parts).await?;
    let mut current = Vec::new();
    let mut earlier = Vec::new();
    for (part, klasse_id, list) in fetched {
        if part == 0 {
            current.push((klasse_id, list));
        } else {
            earlier.push(list);
        }
    }
    let absences = join_absences(&mut roster, current, window);
    let mut replacements = vec![AbsenceReplacement {
        from: window.0,
        to: window.1,
        students: None,
        absences,
    }];
    if let Some(range) = previous {
        let (students, absences) = join_known(&roster, earlier, range);
        replacements.push(AbsenceReplacement {
            from: range.0,
            to: range.1,
            students: Some(students),
            absences,
        });
    }

    let used = client.requests().since(before);
    let report = SyncReport {
        kind: if full {
            SyncKind::Full
        } else {
            SyncKind::Incremental
        },
        school_year,
        students: roster.students.len(),
        klassen: roster.klassen.len(),
        absences: replacements.iter().map(|r| r.absences.len()).sum(),
        window,
        previous_year_window: previous,
        roster_changes,
        data_requests: used.data,
        token_requests: used.token,
    };
    let write = SyncWrite {
        school_year,
        roster,
        renamed_students,
        absences: replacements,
        roster_watermark: watermark,
        full_reconcile: full.then_some(now),
        backfilled: backfill,
        record: SyncRecord {
            started: now.to_rfc3339(),
            finished: Utc::now().max(now).to_rfc3339(),
            ok: true,
            error: None,
            requests: used.total(),
        },
    };
    store.blocking(move |s| s.write_sync(&id, &write)).await?;
    Ok(report)
}

/// Requests in flight per school: enough to halve a sync's time, few enough to be a polite
/// client of a platform that documents no rate limit.
const LANES: usize = 2;

/// Reads every (part, Klasse) pair, in [`LANES`] concurrent lanes; the first error ends the
/// sync (the other lane's request is dropped). Returns `(part index, Klasse id, entries)` in
/// request order, so the result does not depend on which lane was faster.
async fn fetch_absences(
    client: &UntisClient,
    klassen: &[Klasse],
    parts: &[(NaiveDate, NaiveDate)],
) -> Result<Vec<(usize, String, Vec<StudentAbsences>)>, UntisError> {
    let jobs: Vec<(usize, &Klasse, (NaiveDate, NaiveDate))> = parts
        .iter()
        .enumerate()
        .flat_map(|(i, range)| klassen.iter().map(move |k| (i, k, *range)))
        .collect();
    let lane = |n: usize| {
        let mine: Vec<(usize, usize, &Klasse, (NaiveDate, NaiveDate))> = jobs
            .iter()
            .enumerate()
            .filter(|(j, _)| j % LANES == n)
            .map(|(j, (part, k, range))| (j, *part, *k, *range))
            .collect();
        async move {
            let mut out = Vec::with_capacity(mine.len());
            for (j, part, k, (from, to)) in mine {
                let list = client.absences(&k.name, from, to).await?;
                out.push((j, part, k.id.clone(), list));
            }
            Ok::<_, UntisError>(out)
        }
    };
    let (a, b) = tokio::try_join!(lane(0), lane(1))?;
    let mut all: Vec<_> = a.into_iter().chain(b).collect();
    all.sort_by_key(|(j, ..)| *j);
    Ok(all
        .into_iter()
        .map(|(_, part, k, list)| (part, k, list))
        .collect())
}

/// A full roster plus what it cannot know but the store does: students known only by WebUntis
/// id (OneRoster never lists them, and their older absences would lose their student), and
/// users an enrollment still names but the paged user lists skipped (see
/// [`crate::untis::RosterFetch::missing_members`]).
fn carry_over(mut roster: Roster, missing: &[crate::untis::Membership], stored: &Roster) -> Roster {
    let listed: BTreeSet<i64> = roster.students.iter().filter_map(|s| s.untis_id).collect();
    roster.students.extend(
        stored
            .students
            .iter()
            .filter(|s| is_unlisted(&s.id))
            .filter(|s| s.untis_id.is_none_or(|u| !listed.contains(&u)))
            .cloned(),
    );
    for m in missing {
        match m.kind {
            MembershipKind::Student => {
                let known = roster.students.iter().any(|s| s.id.0 == m.user);
                if let Some(s) = stored.students.iter().find(|s| s.id.0 == m.user)
                    && !known
                {
                    log::info!(
                        "student {} is enrolled but was not listed; keeping the stored record",
                        m.user
                    );
                    roster.students.push(Student {
                        klasse_id: Some(m.class.clone()),
                        ..s.clone()
                    });
                }
            }
            MembershipKind::ClassTeacher => {
                let Some(t) = stored.teachers.iter().find(|t| t.id == m.user) else {
                    continue;
                };
                if !roster.teachers.iter().any(|x| x.id == t.id) {
                    log::info!(
                        "teacher {} is enrolled but was not listed; keeping the stored record",
                        m.user
                    );
                    roster.teachers.push(t.clone());
                }
                if let Some(k) = roster.klassen.iter_mut().find(|k| k.id == m.class)
                    && !k.class_teacher_ids.contains(&m.user)
                {
                    k.class_teacher_ids.push(m.user.clone());
                }
            }
        }
    }
    roster.students.sort_by(|a, b| a.id.cmp(&b.id));
    roster.teachers.sort_by(|a, b| a.id.cmp(&b.id));
    roster
}

fn is_unlisted(id: &StudentId) -> bool {
    id.0.starts_with("untis:")
}

/// Drops the id-only record of every student that now has an account, and returns the renames
/// so their stored absences follow them.
fn promote_unlisted(roster: &mut Roster) -> Vec<(StudentId, StudentId)> {
    let listed: HashMap<i64, StudentId> = roster
        .students
        .iter()
        .filter(|s| !is_unlisted(&s.id))
        .filter_map(|s| Some((s.untis_id?, s.id.clone())))
        .collect();
    let mut renames = Vec::new();
    roster
        .students
        .retain(|s| match s.untis_id.and_then(|u| listed.get(&u)) {
            Some(new) if is_unlisted(&s.id) => {
                renames.push((s.id.clone(), new.clone()));
                false
            }
            _ => true,
        });
    renames
}

/// Applies an incremental change list to the stored roster: upserts, deletions, enrollment
/// moves. Memberships in classes that are no Klasse (lessons) are ignored; a student whose
/// Klasse is gone has none until an enrollment names a new one.
pub fn apply_delta(stored: Roster, delta: RosterDelta) -> Roster {
    let mut klassen: BTreeMap<String, Klasse> = stored
        .klassen
        .into_iter()
        .map(|k| (k.id.clone(), k))
        .collect();
    let mut students: BTreeMap<String, Student> = stored
        .students
        .into_iter()
        .map(|s| (s.id.0.clone(), s))
        .collect();
    let mut teachers: BTreeMap<String, crate::model::Teacher> = stored
        .teachers
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();

    for id in &delta.removed_klassen {
        klassen.remove(id);
    }
    for k in delta.klassen {
        match klassen.get_mut(&k.id) {
            Some(old) => old.name = k.name,
            None => {
                klassen.insert(k.id.clone(), k);
            }
        }
    }
    for id in &delta.removed_students {
        students.remove(id);
    }
    for s in delta.students {
        let klasse_id = students.get(&s.id.0).and_then(|old| old.klasse_id.clone());
        students.insert(s.id.0.clone(), Student { klasse_id, ..s });
    }
    for id in &delta.removed_teachers {
        teachers.remove(id);
    }
    for t in delta.teachers {
        teachers.insert(t.id.clone(), t);
    }
    for m in delta.memberships {
        let Some(klasse) = klassen.get_mut(&m.class) else {
            continue;
        };
        match m.kind {
            MembershipKind::Student => {
                if let Some(s) = students.get_mut(&m.user) {
                    if m.active {
                        s.klasse_id = Some(m.class.clone());
                    } else if s.klasse_id.as_deref() == Some(m.class.as_str()) {
                        s.klasse_id = None;
                    }
                }
            }
            MembershipKind::ClassTeacher => {
                if m.active {
                    if teachers.contains_key(&m.user) && !klasse.class_teacher_ids.contains(&m.user)
                    {
                        klasse.class_teacher_ids.push(m.user.clone());
                    }
                } else {
                    klasse.class_teacher_ids.retain(|t| t != &m.user);
                }
            }
        }
    }
    for k in klassen.values_mut() {
        k.class_teacher_ids.retain(|t| teachers.contains_key(t));
    }
    for s in students.values_mut() {
        if s.klasse_id
            .as_ref()
            .is_some_and(|k| !klassen.contains_key(k))
        {
            s.klasse_id = None;
        }
    }
    Roster {
        klassen: klassen.into_values().collect(),
        students: students.into_values().collect(),
        teachers: teachers.into_values().collect(),
    }
}

/// Lookup of roster students by WebUntis person id and by external key.
struct StudentIndex {
    by_untis: HashMap<i64, StudentId>,
    by_key: HashMap<String, StudentId>,
}

impl StudentIndex {
    fn new(roster: &Roster) -> StudentIndex {
        let mut by_untis = HashMap::new();
        let mut by_key = HashMap::new();
        for s in &roster.students {
            if let Some(u) = s.untis_id {
                by_untis.insert(u, s.id.clone());
            }
            if let Some(k) = &s.extern_key {
                by_key.insert(k.clone(), s.id.clone());
            }
        }
        StudentIndex { by_untis, by_key }
    }

    fn find(&self, sa: &StudentAbsences) -> Option<&StudentId> {
        self.by_untis
            .get(&sa.untis_id)
            .or_else(|| sa.extern_key.as_ref().and_then(|k| self.by_key.get(k)))
    }
}

/// The entries of `sa` that start inside `range`, for `student`. The API lists entries that
/// overlap the query; each belongs to the window part its start day lies in.
fn entries_in(
    student: &StudentId,
    sa: StudentAbsences,
    range: (NaiveDate, NaiveDate),
) -> impl Iterator<Item = Absence> {
    sa.entries
        .into_iter()
        .filter(move |e| range.0 <= e.start.date() && e.start.date() <= range.1)
        .map(move |e| Absence {
            student: student.clone(),
            start: e.start,
            end: e.end,
            minutes: e.minutes,
            subject: e.subject,
            status: e.status,
            kind: e.kind,
        })
}

/// Sorted, and the same entry listed twice (a student in two Klassen) kept once.
fn dedup_sorted(mut out: Vec<Absence>) -> Vec<Absence> {
    out.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then_with(|| a.student.cmp(&b.student))
            .then_with(|| a.end.cmp(&b.end))
    });
    let mut seen = BTreeSet::new();
    out.retain(|a| {
        seen.insert((
            a.student.clone(),
            a.start,
            a.end,
            a.kind == crate::model::AbsenceKind::Delay,
        ))
    });
    out
}

/// Joins the current school year's absences to roster students by WebUntis person id, then by
/// external key. A student missing from the roster (no WebUntis account) is added by id, in the
/// Klasse it was listed for; one added earlier follows the Klasse it is listed for now.
fn join_absences(
    roster: &mut Roster,
    fetched: Vec<(String, Vec<StudentAbsences>)>,
    range: (NaiveDate, NaiveDate),
) -> Vec<Absence> {
    let mut index = StudentIndex::new(roster);
    let mut out = Vec::new();
    for (klasse_id, list) in fetched {
        for sa in list {
            let id = match index.find(&sa) {
                Some(id) => id.clone(),
                None => {
                    let mut unlisted = Student::unlisted(sa.untis_id);
                    unlisted.klasse_id = Some(klasse_id.clone());
                    unlisted.extern_key = sa.extern_key.clone();
                    let id = unlisted.id.clone();
                    index.by_untis.insert(sa.untis_id, id.clone());
                    roster.students.push(unlisted);
                    id
                }
            };
            if is_unlisted(&id)
                && let Some(s) = roster.students.iter_mut().find(|s| s.id == id)
            {
                s.klasse_id = Some(klasse_id.clone());
            }
            out.extend(entries_in(&id, sa, range));
        }
    }
    dedup_sorted(out)
}

/// Joins the entries of the previous school year's part of the window, for roster students
/// only: a student who left in the summer is not added back.
///
/// That part is read with this year's Klasse names, and a Klasse name means last year's
/// members of that name (last year's 7b, most of them in 8b now). The entries still land on the
/// right student, because they are joined by id, not by Klasse. But students whose Klasse of
/// last year has no namesake this year (a renamed Klasse, or the top grade's names) are not
/// listed at all: for them nothing is read, so their stored entries of that part are kept as
/// last read instead of being replaced. Hence the returned set: only the students a response
/// listed have their entries replaced.
fn join_known(
    roster: &Roster,
    fetched: Vec<Vec<StudentAbsences>>,
    range: (NaiveDate, NaiveDate),
) -> (BTreeSet<StudentId>, Vec<Absence>) {
    let index = StudentIndex::new(roster);
    let mut listed = BTreeSet::new();
    let mut out = Vec::new();
    for sa in fetched.into_iter().flatten() {
        if let Some(id) = index.find(&sa).cloned() {
            listed.insert(id.clone());
            out.extend(entries_in(&id, sa, range));
        }
    }
    (listed, dedup_sorted(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::untis::Membership;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn window_is_clipped_to_the_school_year() {
        let y = SchoolYear {
            start: d("2025-08-01"),
            end: d("2026-07-31"),
        };
        assert_eq!(
            absence_window(y, d("2026-03-13"), 30, true),
            (d("2025-08-01"), d("2026-03-13"))
        );
        assert_eq!(
            absence_window(y, d("2026-03-13"), 30, false),
            (d("2026-02-11"), d("2026-03-13"))
        );
        assert_eq!(
            absence_window(y, d("2025-08-10"), 30, false),
            (d("2025-08-01"), d("2025-08-10"))
        );
        assert_eq!(
            absence_window(y, d("2026-08-10"), 30, false),
            (d("2026-07-11"), d("2026-07-31"))
        );
        assert_eq!(
            previous_year_window(y, d("2025-08-10"), 30),
            Some((d("2025-07-11"), d("2025-07-31")))
        );
        assert_eq!(previous_year_window(y, d("2025-08-31"), 30), None);
        assert_eq!(
            previous_year_window(y, d("2025-08-30"), 30),
            Some((d("2025-07-31"), d("2025-07-31")))
        );
        assert_eq!(previous_year_window(y, d("2026-03-13"), 30), None);
    }

    #[test]
    fn reconcile_slot_in_school_local_time_across_dst() {
        let tz = chrono_tz::Europe::Berlin;
        let at = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Winter: 02:30 CET = 01:30 UTC.
        assert_eq!(
            last_reconcile_slot(utc("2026-01-15T07:00:00Z"), tz, at),
            utc("2026-01-15T01:30:00Z")
        );
        assert_eq!(
            last_reconcile_slot(utc("2026-01-15T01:00:00Z"), tz, at),
            utc("2026-01-14T01:30:00Z")
        );
        // 29 March 2026: 02:00-03:00 does not exist; the slot is 03:00 CEST = 01:00 UTC.
        assert_eq!(
            last_reconcile_slot(utc("2026-03-29T06:00:00Z"), tz, at),
            utc("2026-03-29T01:00:00Z")
        );
        // 25 October 2026: 02:30 happens twice; the first (CEST, 00:30 UTC) counts.
        assert_eq!(
            last_reconcile_slot(utc("2026-10-25T06:00:00Z"), tz, at),
            utc("2026-10-25T00:30:00Z")
        );
    }

    fn student(id: &str, klasse: Option<&str>, untis: i64) -> Student {
        Student {
            id: StudentId(id.into()),
            given_name: "G".into(),
            family_name: "F".into(),
            klasse_id: klasse.map(str::to_string),
            untis_id: Some(untis),
            extern_key: None,
        }
    }

    fn klasse(id: &str, name: &str, teachers: &[&str]) -> Klasse {
        Klasse {
            id: id.into(),
            name: name.into(),
            class_teacher_ids: teachers.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn teacher(id: &str) -> crate::model::Teacher {
        crate::model::Teacher {
            id: id.into(),
            given_name: "T".into(),
            family_name: "L".into(),
            email: None,
        }
    }

    fn m(user: &str, class: &str, kind: MembershipKind, active: bool) -> Membership {
        Membership {
            user: user.into(),
            class: class.into(),
            kind,
            active,
        }
    }

    #[test]
    fn delta_moves_upserts_and_deletes() {
        let stored = Roster {
            klassen: vec![klasse("k1", "7a", &["t1"]), klasse("k2", "7b", &["t2"])],
            students: vec![
                student("s1", Some("k1"), 1),
                student("s2", Some("k1"), 2),
                student("s3", Some("k2"), 3),
                student("untis:9", Some("k2"), 9),
            ],
            teachers: vec![teacher("t1"), teacher("t2")],
        };
        let mut renamed = student("s2", None, 2);
        renamed.family_name = "New".into();
        let delta = RosterDelta {
            klassen: vec![klasse("k2", "8b", &[]), klasse("k3", "5c", &[])],
            removed_klassen: vec!["lesson-1".into()],
            students: vec![renamed, student("s4", None, 4)],
            removed_students: vec!["s3".into()],
            teachers: vec![teacher("t3")],
            removed_teachers: vec!["t2".into()],
            memberships: vec![
                // A move: the new enrollment first, the old one's deletion after it.
                m("s1", "k3", MembershipKind::Student, true),
                m("s1", "k1", MembershipKind::Student, false),
                m("s4", "k2", MembershipKind::Student, true),
                m("t3", "k3", MembershipKind::ClassTeacher, true),
                m("t1", "k1", MembershipKind::ClassTeacher, false),
                m("s2", "lesson-1", MembershipKind::Student, true),
            ],
            watermark: None,
            records: 0,
        };
        let r = apply_delta(stored, delta);
        let k = |id: &str| r.klassen.iter().find(|k| k.id == id).unwrap();
        let s = |id: &str| r.students.iter().find(|s| s.id.0 == id).unwrap();
        assert_eq!(k("k2").name, "8b");
        assert!(k("k2").class_teacher_ids.is_empty(), "t2 was deleted");
        assert!(k("k1").class_teacher_ids.is_empty());
        assert_eq!(k("k3").class_teacher_ids, vec!["t3".to_string()]);
        assert_eq!(s("s1").klasse_id.as_deref(), Some("k3"));
        assert_eq!(
            s("s2").klasse_id.as_deref(),
            Some("k1"),
            "kept across an upsert"
        );
        assert_eq!(s("s2").family_name, "New");
        assert_eq!(s("s4").klasse_id.as_deref(), Some("k2"));
        assert!(r.students.iter().all(|x| x.id.0 != "s3"));
        assert_eq!(s("untis:9").klasse_id.as_deref(), Some("k2"));
        assert_eq!(r.teachers.len(), 2);
    }

    #[test]
    fn an_unlisted_student_with_a_new_account_is_renamed() {
        let mut roster = Roster {
            students: vec![
                student("untis:7", Some("k1"), 7),
                student("s7", Some("k1"), 7),
            ],
            ..Roster::default()
        };
        let renames = promote_unlisted(&mut roster);
        assert_eq!(
            renames,
            vec![(StudentId("untis:7".into()), StudentId("s7".into()))]
        );
        assert_eq!(roster.students.len(), 1);
    }
}
