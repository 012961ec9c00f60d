//! The audit log (SPEC §9): every mail sent, export, erase and restore, kept 90 days.
//!
//! Keys are `(school, "<UTC timestamp>|<seq>")` with a fixed-width timestamp, so the table is
//! in time order and "since DATE" is a range scan.

use super::{AUDIT, Result, Store, StoreError, decode, encode, school_bounds};
use chrono::{DateTime, SecondsFormat, Utc};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

/// One audit record. Names never appear here: students by id only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 time of the event.
    pub at: String,
    /// `mail_sent`, `export`, `erase`, `restore`, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub student_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_ids: Vec<String>,
    /// Anything else a kind needs (e.g. the backup file of a restore).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event of `kind` at `at`, with every other field empty.
    pub fn new(kind: impl Into<String>, at: DateTime<Utc>) -> Self {
        AuditEvent {
            at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
            kind: kind.into(),
            message_id: None,
            recipients: Vec::new(),
            student_ids: Vec::new(),
            alert_ids: Vec::new(),
            detail: serde_json::Value::Null,
        }
    }
}

/// The sortable key prefix of a time: UTC, microseconds, fixed width.
fn time_key(at: &str) -> Result<String> {
    let t = DateTime::parse_from_rfc3339(at)
        .map_err(|e| StoreError::Db(format!("audit time {at:?} is not RFC 3339: {e}")))?;
    Ok(t.with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Appends an event inside a write transaction; events with the same time keep their order by
/// a sequence number.
pub(crate) fn append_in(txn: &WriteTransaction, school: &str, event: &AuditEvent) -> Result<()> {
    let prefix = format!("{}|", time_key(&event.at)?);
    let mut t = txn.open_table(AUDIT)?;
    let hi = format!("{prefix}\u{10FFFF}");
    let next_seq = match t
        .range((school, prefix.as_str())..(school, hi.as_str()))?
        .next_back()
    {
        Some(row) => {
            let (k, _) = row?;
            k.value()
                .1
                .get(prefix.len()..)
                .and_then(|seq| seq.parse::<u64>().ok())
                .unwrap_or(0)
                + 1
        }
        None => 0,
    };
    let key = format!("{prefix}{next_seq:06}");
    t.insert((school, key.as_str()), encode(event)?.as_slice())?;
    Ok(())
}

impl Store {
    /// Appends an event; events with the same time keep their order by a sequence number.
    pub fn audit_append(&self, school: &str, event: &AuditEvent) -> Result<()> {
        let txn = self.db().begin_write()?;
        append_in(&txn, school, event)?;
        txn.commit()?;
        Ok(())
    }

    /// Events of a school in time order, from `since` on (a date `2026-03-01` or an RFC 3339
    /// UTC time), or all.
    pub fn audit_list(&self, school: &str, since: Option<&str>) -> Result<Vec<AuditEvent>> {
        let txn = self.db().begin_read()?;
        let t = txn.open_table(AUDIT)?;
        let (lo, hi) = school_bounds(school);
        let from = since.unwrap_or(lo.1);
        let mut out = Vec::new();
        for row in t.range((school, from)..hi)? {
            let (k, v) = row?;
            out.push(decode(k.value().1, v.value())?);
        }
        Ok(out)
    }

    /// Deletes events older than `before` (RFC 3339); returns how many (retention, SPEC §9).
    pub fn audit_prune(&self, school: &str, before: &str) -> Result<usize> {
        let cut = time_key(before)?;
        let txn = self.db().begin_write()?;
        let removed;
        {
            let mut t = txn.open_table(AUDIT)?;
            let old: Vec<String> = t
                .range((school, "")..(school, cut.as_str()))?
                .map(|row| row.map(|(k, _)| k.value().1.to_string()))
                .collect::<std::result::Result<_, _>>()?;
            for key in &old {
                t.remove((school, key.as_str()))?;
            }
            removed = old.len();
        }
        txn.commit()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: &str, kind: &str) -> AuditEvent {
        AuditEvent {
            at: at.into(),
            kind: kind.into(),
            message_id: None,
            recipients: vec![],
            student_ids: vec!["s1".into()],
            alert_ids: vec![],
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn appends_in_time_order_per_school() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .audit_append("a", &event("2026-03-02T08:00:00Z", "second"))
            .unwrap();
        store
            .audit_append("a", &event("2026-03-02T07:00:00+00:00", "first"))
            .unwrap();
        // Same instant, written in another offset: kept, after the first one.
        store
            .audit_append("a", &event("2026-03-02T09:00:00+01:00", "third"))
            .unwrap();
        store
            .audit_append("b", &event("2026-03-01T00:00:00Z", "other school"))
            .unwrap();
        let kinds: Vec<String> = store
            .audit_list("a", None)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["first", "second", "third"]);
        let since: Vec<String> = store
            .audit_list("a", Some("2026-03-02T07:30:00Z"))
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(since, ["second", "third"]);
        assert_eq!(store.audit_list("a", Some("2026-03-03")).unwrap().len(), 0);
        assert_eq!(store.audit_list("b", None).unwrap().len(), 1);
        assert_eq!(store.audit_prune("a", "2026-03-02T07:59:00Z").unwrap(), 1);
        assert_eq!(store.audit_list("a", None).unwrap().len(), 2);
        assert!(store.audit_append("a", &event("yesterday", "x")).is_err());
    }
}
