//! Roster, absences and sync state of one school.

use super::{
    ABSENCES, KLASSEN, Result, SCHOOL_STATE, STUDENTS, Store, TEACHERS, decode, encode,
    read_school_range, school_bounds,
};
use crate::model::{Absence, AbsenceKind, Klasse, Roster, SchoolYear, Student, Teacher};
use chrono::NaiveDate;
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

const STATE_KEY: &str = "";

/// The outcome of one sync run, as shown in `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    pub started: String,
    pub finished: String,
    pub ok: bool,
    pub error: Option<String>,
    pub requests: u32,
}

/// What the store knows about a school's syncs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolState {
    pub school_year: Option<SchoolYear>,
    pub last_sync: Option<SyncRecord>,
    /// The last successful sync, if any.
    pub last_success: Option<SyncRecord>,
}

/// Everything stored about one school, read in one transaction.
#[derive(Debug, Clone, Default)]
pub struct SchoolSnapshot {
    pub state: SchoolState,
    pub roster: Roster,
    /// Sorted by student, then by start time.
    pub absences: Vec<Absence>,
}

fn absence_key(a: &Absence) -> String {
    let kind = match a.kind {
        AbsenceKind::Absence => "A",
        AbsenceKind::Delay => "D",
    };
    format!(
        "{}|{}|{}|{}",
        a.start.format("%Y-%m-%dT%H:%M:%S"),
        a.student,
        kind,
        a.end.format("%Y-%m-%dT%H:%M:%S")
    )
}

/// First key of a day in the absences table (keys start with the ISO start time).
fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

impl Store {
    /// Replaces a school's roster and the absences inside `window` (inclusive dates) in one
    /// write transaction, and records the successful sync. Absences outside the window are kept.
    pub fn replace_school_data(
        &self,
        school: &str,
        school_year: SchoolYear,
        roster: &Roster,
        window: (NaiveDate, NaiveDate),
        absences: &[Absence],
        record: SyncRecord,
    ) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            replace_rows(
                &txn,
                STUDENTS,
                school,
                roster.students.iter().map(|s| (s.id.0.clone(), s)),
            )?;
            replace_rows(
                &txn,
                TEACHERS,
                school,
                roster.teachers.iter().map(|t| (t.id.clone(), t)),
            )?;
            replace_rows(
                &txn,
                KLASSEN,
                school,
                roster.klassen.iter().map(|k| (k.id.clone(), k)),
            )?;

            let mut t = txn.open_table(ABSENCES)?;
            let lo = day_key(window.0);
            let hi = match window.1.succ_opt() {
                Some(d) => day_key(d),
                None => "\u{10FFFF}".to_string(),
            };
            let stale: Vec<String> = t
                .range((school, lo.as_str())..(school, hi.as_str()))?
                .map(|row| row.map(|(k, _)| k.value().1.to_string()))
                .collect::<std::result::Result<_, _>>()?;
            for key in &stale {
                t.remove((school, key.as_str()))?;
            }
            for a in absences {
                let key = absence_key(a);
                t.insert((school, key.as_str()), encode(a)?.as_slice())?;
            }

            let mut st = txn.open_table(SCHOOL_STATE)?;
            let mut state: SchoolState = match st.get((school, STATE_KEY))? {
                Some(v) => decode("school_state", v.value())?,
                None => SchoolState::default(),
            };
            state.school_year = Some(school_year);
            state.last_sync = Some(record.clone());
            state.last_success = Some(record);
            st.insert((school, STATE_KEY), encode(&state)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Records a failed sync; no data is touched.
    pub fn record_sync_failure(&self, school: &str, record: SyncRecord) -> Result<()> {
        let mut state = self.school_state(school)?;
        state.last_sync = Some(record);
        self.put_json(SCHOOL_STATE, school, STATE_KEY, &state)
    }

    pub fn school_state(&self, school: &str) -> Result<SchoolState> {
        Ok(self
            .get_json(SCHOOL_STATE, school, STATE_KEY)?
            .unwrap_or_default())
    }

    /// Reads a school's roster, absences and state in one consistent read.
    pub fn load_school(&self, school: &str) -> Result<SchoolSnapshot> {
        let txn = self.db().begin_read()?;
        let state = match txn.open_table(SCHOOL_STATE)?.get((school, STATE_KEY))? {
            Some(v) => decode("school_state", v.value())?,
            None => SchoolState::default(),
        };
        let students: Vec<(String, Student)> =
            read_school_range(&txn.open_table(STUDENTS)?, school)?;
        let teachers: Vec<(String, Teacher)> =
            read_school_range(&txn.open_table(TEACHERS)?, school)?;
        let klassen: Vec<(String, Klasse)> = read_school_range(&txn.open_table(KLASSEN)?, school)?;
        let absences: Vec<(String, Absence)> =
            read_school_range(&txn.open_table(ABSENCES)?, school)?;
        Ok(SchoolSnapshot {
            state,
            roster: Roster {
                klassen: klassen.into_iter().map(|(_, v)| v).collect(),
                students: students.into_iter().map(|(_, v)| v).collect(),
                teachers: teachers.into_iter().map(|(_, v)| v).collect(),
            },
            absences: {
                let mut list: Vec<Absence> = absences.into_iter().map(|(_, v)| v).collect();
                // Stored in start order; stable sort keeps it within each student.
                list.sort_by(|a, b| a.student.cmp(&b.student));
                list
            },
        })
    }

    /// Number of stored absences of a school.
    pub fn absence_count(&self, school: &str) -> Result<u64> {
        let txn = self.db().begin_read()?;
        let t = txn.open_table(ABSENCES)?;
        let (lo, hi) = school_bounds(school);
        let mut n = 0;
        for row in t.range(lo..hi)? {
            row?;
            n += 1;
        }
        Ok(n)
    }
}

/// Replaces all rows of one school in `table` by `rows`.
fn replace_rows<'a, T: Serialize + 'a>(
    txn: &redb::WriteTransaction,
    table: super::SchoolTable,
    school: &str,
    rows: impl Iterator<Item = (String, &'a T)>,
) -> Result<()> {
    let mut t = txn.open_table(table)?;
    let (lo, hi) = school_bounds(school);
    let old: Vec<String> = t
        .range(lo..hi)?
        .map(|row| row.map(|(k, _)| k.value().1.to_string()))
        .collect::<std::result::Result<_, _>>()?;
    for key in &old {
        t.remove((school, key.as_str()))?;
    }
    for (key, value) in rows {
        t.insert((school, key.as_str()), encode(value)?.as_slice())?;
    }
    Ok(())
}
