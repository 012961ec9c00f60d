//! Roster, absences and sync state of one school.

use super::{
    ABSENCES, KLASSEN, Result, SCHOOL_STATE, STUDENTS, Store, TEACHERS, decode, encode,
    read_school_range, school_bounds,
};
use crate::model::{Absence, AbsenceKind, Klasse, Roster, SchoolYear, Student, StudentId, Teacher};
use chrono::{DateTime, NaiveDate, Utc};
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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
    /// The latest `dateLastModified` of the roster records read so far, as the server wrote
    /// it: an incremental sync asks for what changed after it.
    #[serde(default)]
    pub roster_watermark: Option<String>,
    /// When the whole roster was last read (first sync, new school year, nightly reconcile).
    #[serde(default)]
    pub last_full_reconcile: Option<DateTime<Utc>>,
    /// The next sync re-reads the absences from the school year's start, not just the rolling
    /// window (set when an erasure is undone, so the student's history comes back).
    #[serde(default)]
    pub backfill: bool,
}

/// Everything one successful sync writes, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncWrite {
    pub school_year: SchoolYear,
    /// The complete roster after the sync; stored rows not in it are removed.
    pub roster: Roster,
    /// Students whose id changed (a student known only by WebUntis id got an account): their
    /// stored absences move to the new id before the windows are replaced.
    pub renamed_students: Vec<(StudentId, StudentId)>,
    /// Date ranges whose stored absences are replaced.
    pub absences: Vec<AbsenceReplacement>,
    pub roster_watermark: Option<String>,
    /// Set when this sync read the whole roster.
    pub full_reconcile: Option<DateTime<Utc>>,
    /// This sync read the absences from the school year's start.
    pub backfilled: bool,
    pub record: SyncRecord,
}

/// The absences of `from..=to` (by start day) as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsenceReplacement {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `None`: every stored entry in the range is replaced. `Some`: only these students'
    /// entries are; others in the range are kept.
    pub students: Option<BTreeSet<StudentId>>,
    /// Entries whose start day lies in the range.
    pub absences: Vec<Absence>,
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
    /// Writes one sync's result in one write transaction: the roster, moved and replaced
    /// absences, and the sync state. Rows that did not change are not rewritten. Absences
    /// outside the replaced ranges are kept.
    ///
    /// Students erased on request (GDPR Art. 17) are left out, with their absences, inside this
    /// transaction, so an erasure that lands while a sync runs is never undone by it.
    pub fn write_sync(&self, school: &str, w: &SyncWrite) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            let erased = super::students::erased_ids(&txn, school)?;
            let kept = |a: &&Absence| !erased.contains(a.student.as_str());
            sync_rows(
                &txn,
                STUDENTS,
                school,
                w.roster
                    .students
                    .iter()
                    .filter(|s| !super::students::is_erased(&erased, s))
                    .map(|s| (s.id.0.clone(), s)),
            )?;
            sync_rows(
                &txn,
                TEACHERS,
                school,
                w.roster.teachers.iter().map(|t| (t.id.clone(), t)),
            )?;
            sync_rows(
                &txn,
                KLASSEN,
                school,
                w.roster.klassen.iter().map(|k| (k.id.clone(), k)),
            )?;

            let mut t = txn.open_table(ABSENCES)?;
            if !w.renamed_students.is_empty() {
                let renames: BTreeMap<&StudentId, &StudentId> = w
                    .renamed_students
                    .iter()
                    .map(|(old, new)| (old, new))
                    .collect();
                let (lo, hi) = school_bounds(school);
                let mut moved = Vec::new();
                for row in t.range(lo..hi)? {
                    let (k, v) = row?;
                    let key = k.value().1.to_string();
                    let a: Absence = decode(&key, v.value())?;
                    if let Some(new) = renames.get(&a.student) {
                        moved.push((
                            key,
                            Absence {
                                student: (*new).clone(),
                                ..a
                            },
                        ));
                    }
                }
                for (old_key, a) in moved {
                    t.remove((school, old_key.as_str()))?;
                    if kept(&&a) {
                        t.insert((school, absence_key(&a).as_str()), encode(&a)?.as_slice())?;
                    }
                }
            }
            for part in &w.absences {
                let lo = day_key(part.from);
                let hi = match part.to.succ_opt() {
                    Some(d) => day_key(d),
                    None => "\u{10FFFF}".to_string(),
                };
                let mut fresh: BTreeMap<String, Vec<u8>> = BTreeMap::new();
                for a in part.absences.iter().filter(kept) {
                    fresh.insert(absence_key(a), encode(a)?);
                }
                let mut stale = Vec::new();
                let mut same = BTreeSet::new();
                for row in t.range((school, lo.as_str())..(school, hi.as_str()))? {
                    let (k, v) = row?;
                    let key = k.value().1.to_string();
                    if fresh.get(&key).is_some_and(|b| b.as_slice() == v.value()) {
                        same.insert(key);
                        continue;
                    }
                    let in_scope = match &part.students {
                        None => true,
                        Some(ids) => ids.contains(&decode::<Absence>(&key, v.value())?.student),
                    };
                    if in_scope {
                        stale.push(key);
                    }
                }
                for key in &stale {
                    t.remove((school, key.as_str()))?;
                }
                for (key, bytes) in &fresh {
                    if !same.contains(key) {
                        t.insert((school, key.as_str()), bytes.as_slice())?;
                    }
                }
            }

            let mut st = txn.open_table(SCHOOL_STATE)?;
            let mut state: SchoolState = match st.get((school, STATE_KEY))? {
                Some(v) => decode("school_state", v.value())?,
                None => SchoolState::default(),
            };
            state.school_year = Some(w.school_year);
            state.last_sync = Some(w.record.clone());
            state.last_success = Some(w.record.clone());
            state.roster_watermark = w.roster_watermark.clone();
            if let Some(t) = w.full_reconcile {
                state.last_full_reconcile = Some(t);
            }
            if w.backfilled {
                state.backfill = false;
            }
            st.insert((school, STATE_KEY), encode(&state)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Replaces a school's roster and the absences inside `window` (inclusive dates) in one
    /// write transaction, and records the successful sync. Absences outside the window are kept.
    /// Without a watermark, the next sync reads the whole roster again.
    pub fn replace_school_data(
        &self,
        school: &str,
        school_year: SchoolYear,
        roster: &Roster,
        window: (NaiveDate, NaiveDate),
        absences: &[Absence],
        record: SyncRecord,
    ) -> Result<()> {
        self.write_sync(
            school,
            &SyncWrite {
                school_year,
                roster: roster.clone(),
                renamed_students: Vec::new(),
                absences: vec![AbsenceReplacement {
                    from: window.0,
                    to: window.1,
                    students: None,
                    absences: absences.to_vec(),
                }],
                roster_watermark: None,
                full_reconcile: None,
                backfilled: false,
                record,
            },
        )
    }

    /// A school's stored roster (without absences), read in one transaction.
    pub fn load_roster(&self, school: &str) -> Result<Roster> {
        let txn = self.db().begin_read()?;
        let students: Vec<(String, Student)> =
            read_school_range(&txn.open_table(STUDENTS)?, school)?;
        let teachers: Vec<(String, Teacher)> =
            read_school_range(&txn.open_table(TEACHERS)?, school)?;
        let klassen: Vec<(String, Klasse)> = read_school_range(&txn.open_table(KLASSEN)?, school)?;
        Ok(Roster {
            klassen: klassen.into_iter().map(|(_, v)| v).collect(),
            students: students.into_iter().map(|(_, v)| v).collect(),
            teachers: teachers.into_iter().map(|(_, v)| v).collect(),
        })
    }

    /// Every stored row of one school as `(table, key, value bytes)`, in table and key order:
    /// what tests compare to prove that a failed sync changed nothing and that schools stay
    /// apart.
    pub fn dump_school(&self, school: &str) -> Result<Vec<(String, String, Vec<u8>)>> {
        let txn = self.db().begin_read()?;
        let mut out = Vec::new();
        for (name, table) in super::SCHOOL_TABLES {
            let t = txn.open_table(table)?;
            let (lo, hi) = school_bounds(school);
            for row in t.range(lo..hi)? {
                let (k, v) = row?;
                out.push((
                    name.to_string(),
                    k.value().1.to_string(),
                    v.value().to_vec(),
                ));
            }
        }
        Ok(out)
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

/// Makes one school's rows in `table` equal to `rows`: removes the others and writes only
/// rows that are new or changed.
/// Makes the next sync read the whole roster and the school year's absences again. (A sync
/// already running when this lands writes its own watermark; the nightly reconcile then reads
/// the whole roster.)
pub(crate) fn request_full_resync(txn: &redb::WriteTransaction, school: &str) -> Result<()> {
    let mut st = txn.open_table(SCHOOL_STATE)?;
    let state: Option<SchoolState> = match st.get((school, STATE_KEY))? {
        Some(v) => Some(decode("school_state", v.value())?),
        None => None,
    };
    if let Some(mut state) = state {
        state.roster_watermark = None;
        state.backfill = true;
        st.insert((school, STATE_KEY), encode(&state)?.as_slice())?;
    }
    Ok(())
}

fn sync_rows<'a, T: Serialize + 'a>(
    txn: &redb::WriteTransaction,
    table: super::SchoolTable,
    school: &str,
    rows: impl Iterator<Item = (String, &'a T)>,
) -> Result<()> {
    let mut wanted: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (key, value) in rows {
        wanted.insert(key, encode(value)?);
    }
    let mut t = txn.open_table(table)?;
    let (lo, hi) = school_bounds(school);
    let mut stale = Vec::new();
    for row in t.range(lo..hi)? {
        let (k, v) = row?;
        let key = k.value().1.to_string();
        match wanted.get(&key) {
            Some(bytes) if bytes.as_slice() == v.value() => {
                wanted.remove(&key);
            }
            Some(_) => {}
            None => stale.push(key),
        }
    }
    for key in &stale {
        t.remove((school, key.as_str()))?;
    }
    for (key, bytes) in &wanted {
        t.insert((school, key.as_str()), bytes.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::ExcuseStatus;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn absence(student: &str, day: &str, status: ExcuseStatus) -> Absence {
        let start = d(day).and_hms_opt(8, 0, 0).unwrap();
        Absence {
            student: StudentId(student.into()),
            start,
            end: start + chrono::Duration::minutes(45),
            minutes: 45,
            subject: None,
            status,
            kind: AbsenceKind::Absence,
        }
    }

    fn write(parts: Vec<AbsenceReplacement>, renamed: Vec<(StudentId, StudentId)>) -> SyncWrite {
        SyncWrite {
            school_year: SchoolYear {
                start: d("2025-08-01"),
                end: d("2026-07-31"),
            },
            roster: Roster::default(),
            renamed_students: renamed,
            absences: parts,
            roster_watermark: Some("2026-01-01T00:00:00Z".into()),
            full_reconcile: None,
            backfilled: false,
            record: SyncRecord {
                started: String::new(),
                finished: String::new(),
                ok: true,
                error: None,
                requests: 1,
            },
        }
    }

    fn part(from: &str, to: &str, only: Option<&[&str]>, a: Vec<Absence>) -> AbsenceReplacement {
        AbsenceReplacement {
            from: d(from),
            to: d(to),
            students: only.map(|ids| ids.iter().map(|s| StudentId(s.to_string())).collect()),
            absences: a,
        }
    }

    #[test]
    fn replacements_are_scoped_and_renames_move_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let pending = ExcuseStatus::Pending;
        store
            .write_sync(
                "s",
                &write(
                    vec![part(
                        "2025-07-01",
                        "2026-03-31",
                        None,
                        vec![
                            absence("a", "2025-07-10", pending),
                            absence("b", "2025-07-11", pending),
                            absence("untis:9", "2025-09-01", pending),
                            absence("a", "2026-03-02", pending),
                        ],
                    )],
                    Vec::new(),
                ),
            )
            .unwrap();
        // Last year's part for `a` only; this year's window empty; untis:9 became `n9`.
        store
            .write_sync(
                "s",
                &write(
                    vec![
                        part("2026-03-01", "2026-03-31", None, Vec::new()),
                        part(
                            "2025-07-01",
                            "2025-07-31",
                            Some(&["a"]),
                            vec![absence("a", "2025-07-10", ExcuseStatus::Excused)],
                        ),
                    ],
                    vec![(StudentId("untis:9".into()), StudentId("n9".into()))],
                ),
            )
            .unwrap();
        let got: Vec<(String, String, ExcuseStatus)> = store
            .load_school("s")
            .unwrap()
            .absences
            .into_iter()
            .map(|a| (a.student.0, a.start.date().to_string(), a.status))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), "2025-07-10".into(), ExcuseStatus::Excused),
                ("b".into(), "2025-07-11".into(), pending),
                ("n9".into(), "2025-09-01".into(), pending),
            ]
        );
        let state = store.school_state("s").unwrap();
        assert_eq!(
            state.roster_watermark.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
    }

    fn alert(student: &str) -> crate::model::Alert {
        use crate::model::{AlertKey, AlertState, SchoolId, Severity};
        crate::model::Alert {
            key: AlertKey {
                school: SchoolId("s".into()),
                student: StudentId(student.into()),
                rule: "consecutive_days".into(),
                period: "2025-2026/2".into(),
            },
            severity: Severity::Critical,
            value: 10,
            evidence: vec!["2026-03-02".into()],
            state: AlertState::Active,
            first_seen: "2026-03-02T08:00:00Z".into(),
            last_seen: "2026-03-02T08:00:00Z".into(),
            resolved_at: None,
            notified_severity: Some(Severity::Critical),
            listed_in_digest: None,
        }
    }

    #[test]
    fn an_erased_student_stays_out_and_shared_mails_are_rearmed() {
        use crate::store::{OutboxEntry, OutboxStatus};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let pending = ExcuseStatus::Pending;
        let student = |id: &str, untis: i64| crate::model::Student {
            id: StudentId(id.into()),
            given_name: "Vor".into(),
            family_name: format!("Name-{id}"),
            klasse_id: None,
            untis_id: Some(untis),
            extern_key: None,
        };
        let mut w = write(
            vec![part(
                "2026-03-01",
                "2026-03-31",
                None,
                vec![
                    absence("a", "2026-03-02", pending),
                    absence("b", "2026-03-02", pending),
                ],
            )],
            Vec::new(),
        );
        w.roster.students = vec![student("a", 5), student("b", 6)];
        store.write_sync("s", &w).unwrap();
        let (alert_a, alert_b) = (alert("a"), alert("b"));
        let mail = |id: &str, status: OutboxStatus| OutboxEntry {
            id: id.into(),
            kind: "alert".into(),
            from: "f@x".into(),
            to: vec!["sw@x".into()],
            message: "Name-a, Name-b".into(),
            student_ids: vec!["a".into(), "b".into()],
            alert_ids: vec![alert_a.key.id(), alert_b.key.id()],
            status,
            attempts: 0,
            created: "2026-03-02T20:00:00Z".into(),
            next_attempt: "2026-03-03T06:00:00Z".into(),
            last_error: None,
            sent_at: None,
        };
        store
            .commit_alert_run(
                "s",
                &[alert_a.clone(), alert_b.clone()],
                &[
                    mail("m1", OutboxStatus::Pending),
                    mail("m0", OutboxStatus::Sent),
                ],
                &[],
            )
            .unwrap();
        let at = "2026-03-02T21:00:00Z".parse().unwrap();
        let report = store.erase_student("s", "a", at, "admin").unwrap();
        assert_eq!(
            (
                report.roster,
                report.absences,
                report.alerts,
                report.unsent_mails,
                report.sent_mails
            ),
            (true, 1, 1, 1, 1)
        );
        // b's alert rode in the withdrawn mail: it goes out again with the next run.
        let alerts = store.alerts("s").unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].key.student.as_str(), "b");
        assert_eq!(alerts[0].notified_severity, None);
        assert!(store.outbox_entries("s").unwrap().is_empty());

        // The next sync reports a under both ids: neither comes back; b is untouched.
        w.absences[0]
            .absences
            .push(absence("untis:5", "2026-03-03", pending));
        store.write_sync("s", &w).unwrap();
        let snap = store.load_school("s").unwrap();
        let ids: Vec<&str> = snap.roster.students.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b"]);
        let with: Vec<&str> = snap.absences.iter().map(|a| a.student.as_str()).collect();
        assert_eq!(with, ["b"]);
        let erasures = store.erasures("s").unwrap();
        assert_eq!(erasures.len(), 1);
        assert_eq!(erasures[0].aliases, ["untis:5"]);

        // Undo: the next sync reads the whole roster and the school year again.
        assert!(
            store
                .unerase_student("s", "a", at, "admin")
                .unwrap()
                .is_some()
        );
        let state = store.school_state("s").unwrap();
        assert!(state.backfill && state.roster_watermark.is_none());
        w.backfilled = true;
        store.write_sync("s", &w).unwrap();
        assert_eq!(store.load_school("s").unwrap().roster.students.len(), 2);
        assert!(!store.school_state("s").unwrap().backfill);
        assert!(
            store
                .unerase_student("s", "a", at, "admin")
                .unwrap()
                .is_none()
        );
        let kinds: Vec<String> = store
            .audit_list("s", None)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["erase", "erase_undo"]);
    }
}
