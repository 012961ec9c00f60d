//! Alert states and the marks of what was done, written together with the mails they cause.

use super::{ALERTS, MARKS, OUTBOX, OutboxEntry, Result, Store, encode};
use crate::model::Alert;
use redb::ReadableTable;

impl Store {
    pub fn alerts(&self, school: &str) -> Result<Vec<Alert>> {
        Ok(self
            .list_json::<Alert>(ALERTS, school)?
            .into_iter()
            .map(|(_, a)| a)
            .collect())
    }

    /// A mark (e.g. when a teacher's last digest went out), if set.
    pub fn mark(&self, school: &str, key: &str) -> Result<Option<String>> {
        self.get_json(MARKS, school, key)
    }

    /// Sets a mark on its own (the daemon's schedule bookkeeping: first start, last digest slot).
    pub fn set_mark(&self, school: &str, key: &str, value: &str) -> Result<()> {
        self.put_json(MARKS, school, key, &value.to_string())
    }

    /// Writes alert states, new outbox entries and marks in one transaction, so an alert is never
    /// marked as notified without its mail in the outbox (and vice versa). Outbox entries that
    /// already exist (same logical mail) are left as they are.
    pub fn commit_alert_run(
        &self,
        school: &str,
        alerts: &[Alert],
        outbox: &[OutboxEntry],
        marks: &[(String, String)],
    ) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            let mut t = txn.open_table(ALERTS)?;
            for a in alerts {
                let id = a.key.id();
                t.insert((school, id.as_str()), encode(a)?.as_slice())?;
            }
            let mut t = txn.open_table(OUTBOX)?;
            for e in outbox {
                if t.get((school, e.id.as_str()))?.is_none() {
                    t.insert((school, e.id.as_str()), encode(e)?.as_slice())?;
                }
            }
            let mut t = txn.open_table(MARKS)?;
            for (k, v) in marks {
                t.insert((school, k.as_str()), encode(v)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}
