//! The durable mail outbox: a mail is stored before it is sent, so a crash loses none.

use super::{OUTBOX, Result, Store, encode, read_school_range};
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Sent,
    /// Gave up after the retry period; shown in the status.
    Failed,
}

/// One mail, rendered once (so the Message-ID and Date stay the same on every attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Stable id of the logical mail; also the local part of its Message-ID.
    pub id: String,
    /// `alert`, `digest`, `social_worker_digest` or `test`.
    pub kind: String,
    pub from: String,
    pub to: Vec<String>,
    /// The complete RFC 5322 message.
    pub message: String,
    /// Students the mail names (ids only), for the audit log.
    pub student_ids: Vec<String>,
    pub alert_ids: Vec<String>,
    pub status: OutboxStatus,
    pub attempts: u32,
    /// RFC 3339 UTC.
    pub created: String,
    pub next_attempt: String,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
}

/// Outbox figures for `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxSummary {
    pub pending: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl Store {
    /// Entries of a school that are pending and due at `now_rfc3339` (string order is time
    /// order for RFC 3339 UTC timestamps).
    pub fn outbox_due(&self, school: &str, now_rfc3339: &str) -> Result<Vec<OutboxEntry>> {
        let txn = self.db().begin_read()?;
        let rows: Vec<(String, OutboxEntry)> = read_school_range(&txn.open_table(OUTBOX)?, school)?;
        let mut due: Vec<OutboxEntry> = rows
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| e.status == OutboxStatus::Pending && e.next_attempt.as_str() <= now_rfc3339)
            .collect();
        due.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(due)
    }

    pub fn outbox_entries(&self, school: &str) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .list_json::<OutboxEntry>(OUTBOX, school)?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    pub fn outbox_get(&self, school: &str, id: &str) -> Result<Option<OutboxEntry>> {
        self.get_json(OUTBOX, school, id)
    }

    /// Stores a new entry unless one with the same id exists (the same logical mail, enqueued
    /// again after a crash or a re-run, must not be sent twice nor have its retry state reset).
    /// Returns whether it was stored.
    pub fn outbox_enqueue(&self, school: &str, entry: &OutboxEntry) -> Result<bool> {
        let txn = self.db().begin_write()?;
        let inserted;
        {
            let mut t = txn.open_table(OUTBOX)?;
            inserted = t.get((school, entry.id.as_str()))?.is_none();
            if inserted {
                t.insert((school, entry.id.as_str()), encode(entry)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(inserted)
    }

    /// Marks an entry sent and writes its audit record in one transaction, so the audit log
    /// never misses a mail the outbox counts as sent.
    pub fn outbox_mark_sent(
        &self,
        school: &str,
        entry: &OutboxEntry,
        audit: &super::AuditEvent,
    ) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            let mut t = txn.open_table(OUTBOX)?;
            t.insert((school, entry.id.as_str()), encode(entry)?.as_slice())?;
        }
        super::audit::append_in(&txn, school, audit)?;
        txn.commit()?;
        Ok(())
    }

    /// Stores the new state of an entry after a delivery attempt.
    pub fn outbox_update(&self, school: &str, entry: &OutboxEntry) -> Result<()> {
        self.put_json(OUTBOX, school, &entry.id, entry)
    }

    pub fn outbox_summary(&self, school: &str) -> Result<OutboxSummary> {
        let mut s = OutboxSummary::default();
        let mut last: Option<(String, String)> = None;
        for e in self.outbox_entries(school)? {
            match e.status {
                OutboxStatus::Pending => s.pending += 1,
                OutboxStatus::Failed => s.failed += 1,
                OutboxStatus::Sent => {}
            }
            if let Some(err) = &e.last_error
                && e.status != OutboxStatus::Sent
                && last.as_ref().is_none_or(|(t, _)| *t < e.next_attempt)
            {
                last = Some((e.next_attempt.clone(), err.clone()));
            }
        }
        s.last_error = last.map(|(_, e)| e);
        Ok(s)
    }
}
