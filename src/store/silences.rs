//! Silences (SPEC §5): who muted which student's alerts until when. Adding and removing one is
//! audited in the same transaction, so there is never a silence without its audit record.

use super::{AuditEvent, Result, SILENCES, STUDENTS, Store, audit, decode, encode};
use crate::model::Silence;
use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};

/// The audit event of a silence change. The reason is free text that may name people, so it
/// stays out of the audit log (students by id only, SPEC §9).
fn audit_event(kind: &str, at: DateTime<Utc>, silence: &Silence, by: &str) -> AuditEvent {
    let mut event = AuditEvent::new(kind, at);
    event.student_ids = vec![silence.student.0.clone()];
    event.detail = serde_json::json!({
        "silence": silence.id,
        "rule": silence.rule,
        "until": silence.until.to_string(),
        "by": by,
    });
    event
}

impl Store {
    /// Stores a new silence and its `silence_add` audit event. Returns `false` and writes nothing
    /// if the school already has a silence with this id.
    pub fn silence_add(&self, silence: &Silence) -> Result<bool> {
        let at = DateTime::parse_from_rfc3339(&silence.created)
            .map_err(|e| {
                super::StoreError::Db(format!(
                    "silence time {:?} is not RFC 3339: {e}",
                    silence.created
                ))
            })?
            .with_timezone(&Utc);
        let school = silence.school.as_str();
        let txn = self.db().begin_write()?;
        {
            let mut t = txn.open_table(SILENCES)?;
            if t.get((school, silence.id.as_str()))?.is_some() {
                return Ok(false);
            }
            t.insert((school, silence.id.as_str()), encode(silence)?.as_slice())?;
        }
        audit::append_in(
            &txn,
            school,
            &audit_event("silence_add", at, silence, &silence.author),
        )?;
        txn.commit()?;
        Ok(true)
    }

    /// Every silence of a school, expired ones included, in id order.
    pub fn silences(&self, school: &str) -> Result<Vec<Silence>> {
        Ok(self
            .list_json::<Silence>(SILENCES, school)?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// Removes a silence and records a `silence_remove` audit event by `by` at `at`. Returns the
    /// removed silence, or `None` if the school has none with this id.
    pub fn silence_remove(
        &self,
        school: &str,
        id: &str,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<Option<Silence>> {
        let txn = self.db().begin_write()?;
        let removed: Silence = {
            let mut t = txn.open_table(SILENCES)?;
            let Some(old) = t.remove((school, id))? else {
                return Ok(None);
            };
            decode(id, old.value())?
        };
        audit::append_in(
            &txn,
            school,
            &audit_event("silence_remove", at, &removed, by),
        )?;
        txn.commit()?;
        Ok(Some(removed))
    }

    /// Whether the stored roster of a school has this student (to warn about a mistyped id).
    pub fn has_student(&self, school: &str, student: &str) -> Result<bool> {
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(STUDENTS)?.get((school, student))?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SchoolId, StudentId};
    use chrono::NaiveDate;

    fn silence(school: &str, id: &str, rule: Option<&str>) -> Silence {
        Silence {
            id: id.into(),
            school: SchoolId(school.into()),
            student: StudentId("S-1".into()),
            rule: rule.map(str::to_string),
            until: NaiveDate::from_ymd_opt(2026, 3, 20).unwrap(),
            reason: "Hilfeplan läuft (Frau Beispiel)".into(),
            author: "admin".into(),
            created: "2026-03-02T08:00:00+00:00".into(),
        }
    }

    #[test]
    fn add_list_remove_with_audit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = silence("a", "sil-00000001", None);
        assert!(store.silence_add(&a).unwrap());
        // The same id again in the same school: refused, nothing changed.
        let mut dup = a.clone();
        dup.reason = "other".into();
        assert!(!store.silence_add(&dup).unwrap());
        assert!(
            store
                .silence_add(&silence("b", "sil-00000002", Some("consecutive_days")))
                .unwrap()
        );
        assert_eq!(store.silences("a").unwrap(), vec![a.clone()]);
        assert_eq!(store.silences("b").unwrap().len(), 1);

        // Removing in the wrong school finds nothing.
        let at = "2026-03-03T09:00:00Z".parse().unwrap();
        assert_eq!(
            store.silence_remove("b", "sil-00000001", at, "x").unwrap(),
            None
        );
        assert_eq!(
            store
                .silence_remove("a", "sil-00000001", at, "root")
                .unwrap(),
            Some(a)
        );
        assert!(store.silences("a").unwrap().is_empty());

        let events = store.audit_list("a", None).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["silence_add", "silence_remove"]);
        assert_eq!(events[0].student_ids, ["S-1"]);
        assert_eq!(events[1].detail["by"], "root");
        // The free-text reason may name people: it is not in the audit log.
        let raw = serde_json::to_string(&events).unwrap();
        assert!(!raw.contains("Hilfeplan"), "{raw}");
    }
}
