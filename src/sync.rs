//! One school's sync: fetch the roster and the absence window, then replace the stored data in
//! one write transaction. Nothing is written unless every request succeeded, so a failed sync
//! never deletes local data.

use crate::config::SchoolConfig;
use crate::model::{Absence, Roster, SchoolYear, Student, StudentId};
use crate::store::{Store, StoreError, SyncRecord};
use crate::untis::{StudentAbsences, UntisClient, UntisError};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Untis(#[from] UntisError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a successful sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub school_year: SchoolYear,
    pub students: usize,
    pub klassen: usize,
    pub absences: usize,
    /// Inclusive date window whose absences were replaced.
    pub window: (NaiveDate, NaiveDate),
    pub data_requests: u32,
    pub token_requests: u32,
}

/// The dates to (re-)read: from the school year's start on the first sync (so half-year and
/// school-year rules work from day one), else the rolling window; never outside the school year.
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

/// Syncs one school. `now` is the run's clock; the school-local date decides the window.
pub async fn sync_school(
    store: &Store,
    school: &SchoolConfig,
    client: &UntisClient,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let started = now.to_rfc3339();
    let result = fetch_and_store(store, school, client, now).await;
    let finished = Utc::now().max(now).to_rfc3339();
    if let Err(e) = &result {
        let record = SyncRecord {
            started,
            finished,
            ok: false,
            error: Some(e.to_string()),
            requests: client.data_requests() + client.token_requests(),
        };
        let id = school.id.to_string();
        store
            .blocking(move |s| s.record_sync_failure(&id, record))
            .await?;
    }
    result
}

async fn fetch_and_store(
    store: &Store,
    school: &SchoolConfig,
    client: &UntisClient,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let today = now.with_timezone(&school.timezone).date_naive();
    let id = school.id.to_string();
    let state = {
        let id = id.clone();
        store.blocking(move |s| s.school_state(&id)).await?
    };

    let school_year = client.school_year(today).await?;
    let mut roster = client.roster().await?;
    let first_sync = state.last_success.is_none() || state.school_year != Some(school_year);
    let window = absence_window(school_year, today, school.untis.window_days, first_sync);

    let mut fetched = Vec::new();
    for klasse in &roster.klassen {
        let list = client.absences(&klasse.name, window.0, window.1).await?;
        fetched.push((klasse.id.clone(), list));
    }
    let absences = join_absences(&mut roster, fetched);

    let report = SyncReport {
        school_year,
        students: roster.students.len(),
        klassen: roster.klassen.len(),
        absences: absences.len(),
        window,
        data_requests: client.data_requests(),
        token_requests: client.token_requests(),
    };
    let record = SyncRecord {
        started: now.to_rfc3339(),
        finished: Utc::now().max(now).to_rfc3339(),
        ok: true,
        error: None,
        requests: report.data_requests + report.token_requests,
    };
    store
        .blocking(move |s| {
            s.replace_school_data(&id, school_year, &roster, window, &absences, record)
        })
        .await?;
    Ok(report)
}

/// Joins the absences to roster students by WebUntis person id, then by external key. A student
/// missing from the roster (no WebUntis account) is added by id, in the Klasse it was listed for.
fn join_absences(
    roster: &mut Roster,
    fetched: Vec<(String, Vec<StudentAbsences>)>,
) -> Vec<Absence> {
    let mut by_untis: HashMap<i64, StudentId> = HashMap::new();
    let mut by_key: HashMap<String, StudentId> = HashMap::new();
    for s in &roster.students {
        if let Some(u) = s.untis_id {
            by_untis.insert(u, s.id.clone());
        }
        if let Some(k) = &s.extern_key {
            by_key.insert(k.clone(), s.id.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (klasse_id, list) in fetched {
        for sa in list {
            let id = by_untis
                .get(&sa.untis_id)
                .or_else(|| sa.extern_key.as_ref().and_then(|k| by_key.get(k)))
                .cloned()
                .unwrap_or_else(|| {
                    let mut unlisted = Student::unlisted(sa.untis_id);
                    unlisted.klasse_id = Some(klasse_id.clone());
                    unlisted.extern_key = sa.extern_key.clone();
                    let id = unlisted.id.clone();
                    by_untis.insert(sa.untis_id, id.clone());
                    roster.students.push(unlisted);
                    id
                });
            for e in sa.entries {
                let a = Absence {
                    student: id.clone(),
                    start: e.start,
                    end: e.end,
                    minutes: e.minutes,
                    subject: e.subject,
                    status: e.status,
                    kind: e.kind,
                };
                // The same entry listed twice (student in two Klassen) is stored once.
                if seen.insert((
                    a.student.clone(),
                    a.start,
                    a.end,
                    a.kind == crate::model::AbsenceKind::Delay,
                )) {
                    out.push(a);
                }
            }
        }
    }
    out.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then_with(|| a.student.cmp(&b.student))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
