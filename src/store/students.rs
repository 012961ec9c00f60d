//! One student's rights under the GDPR (SPEC §9): everything stored about them as one record
//! (Art. 15, `export`), and deleting it (Art. 17, `erase`). An erased student stays out of later
//! syncs until the erasure is undone: the school's WebUntis still lists them, so without this
//! note the next sync would bring everything back.
//!
//! Both the export and the erasure are audited in the transaction that does them.

use super::{
    ABSENCES, ALERTS, AUDIT, AuditEvent, ERASED, MARKS, OUTBOX, OutboxEntry, OutboxStatus, Result,
    SILENCES, STUDENTS, Store, audit, decode, encode, read_school_range,
};
use crate::model::{Absence, Alert, Klasse, Silence, Student, StudentId};
use chrono::{DateTime, SecondsFormat, Utc};
use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

type RowTable<'t> = Table<'t, (&'static str, &'static str), &'static [u8]>;

/// The note that keeps an erased student out of later syncs. It holds ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// The id the erasure was asked for.
    pub student: String,
    /// The other id the same child is known by (`untis:<person id>` of a roster student), so
    /// they stay out when WebUntis reports them under that id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// RFC 3339 UTC.
    pub at: String,
    pub by: String,
}

/// What an erasure deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErasureReport {
    /// Whether the roster had the student.
    pub roster: bool,
    pub absences: usize,
    pub alerts: usize,
    pub silences: usize,
    /// Mails naming the student that had not gone out yet: withdrawn, never sent.
    pub unsent_mails: usize,
    /// Copies of sent mails naming the student.
    pub sent_mails: usize,
    /// The student was erased before (the erasure is renewed).
    pub already_erased: bool,
}

impl ErasureReport {
    pub fn total(&self) -> usize {
        usize::from(self.roster)
            + self.absences
            + self.alerts
            + self.silences
            + self.unsent_mails
            + self.sent_mails
    }
}

/// A mail that named the student, without its text (which names other students too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailRecord {
    pub id: String,
    pub kind: String,
    pub to: Vec<String>,
    pub created: String,
    pub status: OutboxStatus,
    pub sent_at: Option<String>,
}

/// Everything stored about one student (GDPR Art. 15), as `export` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudentExport {
    pub school: String,
    pub student_id: String,
    pub exported_at: String,
    /// The roster record: name, Klasse and the WebUntis ids used to join the absences.
    pub student: Option<Student>,
    pub klasse: Option<Klasse>,
    pub absences: Vec<Absence>,
    pub alerts: Vec<Alert>,
    pub silences: Vec<Silence>,
    pub mails: Vec<MailRecord>,
    /// Audit events that name the student (mails sent, silences, exports, erasures).
    pub audit: Vec<AuditEvent>,
    /// Set when the student was erased and is kept out of syncs.
    pub erased: Option<Erasure>,
}

/// The ids of every erased student of a school (with their aliases), read inside `txn`.
pub(crate) fn erased_ids(txn: &WriteTransaction, school: &str) -> Result<BTreeSet<String>> {
    let rows: Vec<(String, Erasure)> = read_school_range(&txn.open_table(ERASED)?, school)?;
    Ok(rows.into_iter().map(|(k, _)| k).collect())
}

/// Whether a roster student is one of the erased (by id, or by their WebUntis person id).
pub(crate) fn is_erased(erased: &BTreeSet<String>, s: &Student) -> bool {
    erased.contains(s.id.as_str())
        || s.untis_id
            .is_some_and(|n| erased.contains(StudentId::from_untis(n).as_str()))
}

/// Removes every row of a school table whose decoded value `hit`s; returns the removed values.
fn remove_where<T: serde::de::DeserializeOwned>(
    t: &mut RowTable<'_>,
    school: &str,
    hit: impl Fn(&T) -> bool,
) -> Result<Vec<T>> {
    let rows: Vec<(String, T)> = read_school_range(t, school)?;
    let mut removed = Vec::new();
    for (key, value) in rows {
        if hit(&value) {
            t.remove((school, key.as_str()))?;
            removed.push(value);
        }
    }
    Ok(removed)
}

/// A withdrawn mail also carried other students' alerts: they go out again with the next run.
/// Alerts of a withdrawn alert mail count as not yet notified; a withdrawn digest's week is
/// unmarked for its recipient, so the digest is made again without the erased student.
fn rearm_withdrawn(txn: &WriteTransaction, school: &str, mails: &[OutboxEntry]) -> Result<()> {
    let unsent = || mails.iter().filter(|m| m.status != OutboxStatus::Sent);
    {
        let mut t = txn.open_table(ALERTS)?;
        for id in unsent()
            .filter(|m| m.kind == "alert")
            .flat_map(|m| &m.alert_ids)
        {
            let alert: Option<Alert> = match t.get((school, id.as_str()))? {
                Some(v) => Some(decode(id, v.value())?),
                None => None,
            };
            if let Some(mut a) = alert {
                a.notified_severity = None;
                t.insert((school, id.as_str()), encode(&a)?.as_slice())?;
            }
        }
    }
    let mut t = txn.open_table(MARKS)?;
    for m in unsent().filter(|m| m.kind.ends_with("digest")) {
        let kind = crate::alerts::digest_mark_kind(m.kind == "social_worker_digest");
        for to in &m.to {
            let prefix = format!("{kind}|{}|", to.to_ascii_lowercase());
            let hi = format!("{prefix}\u{10FFFF}");
            let latest = match t
                .range((school, prefix.as_str())..(school, hi.as_str()))?
                .next_back()
            {
                Some(row) => Some(row?.0.value().1.to_string()),
                None => None,
            };
            if let Some(key) = latest {
                t.remove((school, key.as_str()))?;
            }
        }
    }
    Ok(())
}

/// The ids a student is known by: the one asked for, and the WebUntis form of a roster student.
fn known_ids(student: &str, row: Option<&Student>) -> BTreeSet<String> {
    let mut ids = BTreeSet::from([student.to_string()]);
    if let Some(n) = row.and_then(|s| s.untis_id) {
        ids.insert(StudentId::from_untis(n).0);
    }
    ids
}

fn names_any(student_ids: &[String], ids: &BTreeSet<String>) -> bool {
    student_ids.iter().any(|s| ids.contains(s))
}

impl Store {
    /// Deletes everything stored about `student` of `school` (roster row, absences, alerts,
    /// silences, mails naming them), notes the erasure so later syncs keep them out, and audits
    /// it, all in one transaction. Audit records of mails already sent keep the student's id:
    /// they are the school's record of what was disclosed to whom (and expire after 90 days).
    pub fn erase_student(
        &self,
        school: &str,
        student: &str,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<ErasureReport> {
        let txn = self.db().begin_write()?;
        let mut report = ErasureReport::default();
        let row: Option<Student> = {
            let mut t = txn.open_table(STUDENTS)?;
            match t.remove((school, student))? {
                Some(v) => Some(decode(student, v.value())?),
                None => None,
            }
        };
        report.roster = row.is_some();
        let mut ids = known_ids(student, row.as_ref());
        {
            let mut t = txn.open_table(ERASED)?;
            // A renewed erasure keeps the aliases noted the first time (the roster row is gone).
            if let Some(v) = t.get((school, student))? {
                let old: Erasure = decode(student, v.value())?;
                ids.extend(old.aliases);
                report.already_erased = true;
            }
            let note = Erasure {
                student: student.to_string(),
                aliases: ids.iter().filter(|i| *i != student).cloned().collect(),
                at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
                by: by.to_string(),
            };
            let bytes = encode(&note)?;
            for id in &ids {
                t.insert((school, id.as_str()), bytes.as_slice())?;
            }
        }
        report.absences = remove_where(&mut txn.open_table(ABSENCES)?, school, |a: &Absence| {
            ids.contains(a.student.as_str())
        })?
        .len();
        report.alerts = remove_where(&mut txn.open_table(ALERTS)?, school, |a: &Alert| {
            ids.contains(a.key.student.as_str())
        })?
        .len();
        report.silences = remove_where(&mut txn.open_table(SILENCES)?, school, |s: &Silence| {
            ids.contains(s.student.as_str())
        })?
        .len();
        let mails = remove_where(&mut txn.open_table(OUTBOX)?, school, |m: &OutboxEntry| {
            names_any(&m.student_ids, &ids)
        })?;
        report.sent_mails = mails
            .iter()
            .filter(|m| m.status == OutboxStatus::Sent)
            .count();
        report.unsent_mails = mails.len() - report.sent_mails;
        rearm_withdrawn(&txn, school, &mails)?;

        let mut event = AuditEvent::new("erase", at);
        event.student_ids = ids.iter().cloned().collect();
        event.detail = serde_json::json!({ "by": by, "deleted": &report });
        audit::append_in(&txn, school, &event)?;
        txn.commit()?;
        Ok(report)
    }

    /// Ends an erasure: later syncs bring the student back (the next one reads the whole
    /// roster). Returns the erasure that was undone, or `None` if the student was not erased.
    pub fn unerase_student(
        &self,
        school: &str,
        student: &str,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<Option<Erasure>> {
        let txn = self.db().begin_write()?;
        let note: Erasure = {
            let mut t = txn.open_table(ERASED)?;
            let Some(v) = t.get((school, student))?.map(|v| v.value().to_vec()) else {
                return Ok(None);
            };
            let note: Erasure = decode(student, &v)?;
            t.remove((school, note.student.as_str()))?;
            for alias in &note.aliases {
                t.remove((school, alias.as_str()))?;
            }
            note
        };
        // An incremental sync reads only what changed and the rolling absence window; the
        // student did not change, and their history reaches back to the school year's start.
        super::school::request_full_resync(&txn, school)?;
        let mut event = AuditEvent::new("erase_undo", at);
        event.student_ids = std::iter::once(note.student.clone())
            .chain(note.aliases.iter().cloned())
            .collect();
        event.detail = serde_json::json!({ "by": by, "erased_at": note.at });
        audit::append_in(&txn, school, &event)?;
        txn.commit()?;
        Ok(Some(note))
    }

    /// Everything stored about `student` of `school`, read in one transaction that also writes
    /// the `export` audit event.
    pub fn export_student(
        &self,
        school: &str,
        student: &str,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<StudentExport> {
        let txn = self.db().begin_write()?;
        let export = {
            let row: Option<Student> = match txn.open_table(STUDENTS)?.get((school, student))? {
                Some(v) => Some(decode(student, v.value())?),
                None => None,
            };
            let erased: Option<Erasure> = match txn.open_table(ERASED)?.get((school, student))? {
                Some(v) => Some(decode(student, v.value())?),
                None => None,
            };
            let mut ids = known_ids(student, row.as_ref());
            if let Some(e) = &erased {
                ids.insert(e.student.clone());
                ids.extend(e.aliases.iter().cloned());
            }
            let klasse = match row.as_ref().and_then(|s| s.klasse_id.as_deref()) {
                Some(k) => match txn.open_table(super::KLASSEN)?.get((school, k))? {
                    Some(v) => Some(decode::<Klasse>(k, v.value())?),
                    None => None,
                },
                None => None,
            };
            let of_student = |id: &StudentId| ids.contains(id.as_str());
            let absences: Vec<(String, Absence)> =
                read_school_range(&txn.open_table(ABSENCES)?, school)?;
            let alerts: Vec<(String, Alert)> = read_school_range(&txn.open_table(ALERTS)?, school)?;
            let silences: Vec<(String, Silence)> =
                read_school_range(&txn.open_table(SILENCES)?, school)?;
            let mails: Vec<(String, OutboxEntry)> =
                read_school_range(&txn.open_table(OUTBOX)?, school)?;
            let events: Vec<(String, AuditEvent)> =
                read_school_range(&txn.open_table(AUDIT)?, school)?;
            let mut absences: Vec<Absence> = absences
                .into_iter()
                .map(|(_, a)| a)
                .filter(|a| of_student(&a.student))
                .collect();
            absences.sort_by(|a, b| a.start.cmp(&b.start).then(a.end.cmp(&b.end)));
            StudentExport {
                school: school.to_string(),
                student_id: student.to_string(),
                exported_at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
                klasse,
                absences,
                alerts: alerts
                    .into_iter()
                    .map(|(_, a)| a)
                    .filter(|a| of_student(&a.key.student))
                    .collect(),
                silences: silences
                    .into_iter()
                    .map(|(_, s)| s)
                    .filter(|s| of_student(&s.student))
                    .collect(),
                mails: mails
                    .into_iter()
                    .map(|(_, m)| m)
                    .filter(|m| names_any(&m.student_ids, &ids))
                    .map(|m| MailRecord {
                        id: m.id,
                        kind: m.kind,
                        to: m.to,
                        created: m.created,
                        status: m.status,
                        sent_at: m.sent_at,
                    })
                    .collect(),
                audit: events
                    .into_iter()
                    .map(|(_, e)| e)
                    .filter(|e| names_any(&e.student_ids, &ids))
                    .collect(),
                student: row,
                erased,
            }
        };
        let mut event = AuditEvent::new("export", at);
        event.student_ids = vec![student.to_string()];
        event.detail = serde_json::json!({ "by": by });
        audit::append_in(&txn, school, &event)?;
        txn.commit()?;
        Ok(export)
    }

    /// The erasures in force for a school, one per erased student (aliases folded in).
    pub fn erasures(&self, school: &str) -> Result<Vec<Erasure>> {
        let rows: Vec<(String, Erasure)> = self.list_json(ERASED, school)?;
        Ok(rows
            .into_iter()
            .filter(|(k, e)| *k == e.student)
            .map(|(_, e)| e)
            .collect())
    }
}
