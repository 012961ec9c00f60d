//! Deletions of the retention job (SPEC §9): old absences with their alerts, old audit entries,
//! and every row of a school that left the config. Each deletion is one write transaction per
//! school, so a failure leaves that school's data as it was.

use super::{
    ABSENCES, ALERTS, AUDIT, META, Result, SCHOOL_TABLES, SchoolTable, Store, decode, school_bounds,
};
use crate::model::Alert;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use redb::{ReadableDatabase, ReadableTable};
use std::collections::BTreeSet;

/// Meta key: when the retention job last ran (Unix seconds).
const LAST_RUN_KEY: &str = "retention_last_run";

/// What the age-based deletion of one school removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgeDeletion {
    pub absences: usize,
    pub alerts: usize,
    pub audit: usize,
}

/// Every school-keyed table.
fn all_school_tables() -> impl Iterator<Item = SchoolTable> {
    SCHOOL_TABLES.into_iter().map(|(_, t)| t)
}

/// Whether every evidence entry of an alert starts with a date before `before`. An alert without
/// evidence, or with an entry that does not start with a date, is kept.
fn evidence_all_before(alert: &Alert, before: NaiveDate) -> bool {
    !alert.evidence.is_empty()
        && alert.evidence.iter().all(|e| {
            e.get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .is_some_and(|d| d < before)
        })
}

impl Store {
    /// The ids of every school that has at least one row in any school-keyed table. Each table
    /// is read once, jumping from one school to the next over the key order.
    pub fn stored_school_ids(&self) -> Result<BTreeSet<String>> {
        let txn = self.db().begin_read()?;
        let mut ids = BTreeSet::new();
        for table in all_school_tables() {
            let t = txn.open_table(table)?;
            let mut next = t.first()?.map(|(k, _)| k.value().0.to_string());
            while let Some(school) = next {
                let (_, hi) = school_bounds(&school);
                next = match t.range(hi..)?.next() {
                    Some(row) => Some(row?.0.value().0.to_string()),
                    None => None,
                };
                ids.insert(school);
            }
        }
        Ok(ids)
    }

    /// Deletes, in one transaction, the school's absences that start before `before`, the alerts
    /// whose evidence all lies before it, and the audit entries older than `audit_before`.
    pub fn delete_aged(
        &self,
        school: &str,
        before: NaiveDate,
        audit_before: DateTime<Utc>,
    ) -> Result<AgeDeletion> {
        let mut done = AgeDeletion::default();
        let txn = self.db().begin_write()?;
        {
            let cut = before.format("%Y-%m-%d").to_string();
            let mut t = txn.open_table(ABSENCES)?;
            let old = keys_in(&t, school, "", &cut)?;
            for key in &old {
                t.remove((school, key.as_str()))?;
            }
            done.absences = old.len();

            let mut t = txn.open_table(ALERTS)?;
            let (lo, hi) = school_bounds(school);
            let mut old = Vec::new();
            for row in t.range(lo..hi)? {
                let (k, v) = row?;
                let key = k.value().1.to_string();
                let alert: Alert = decode(&key, v.value())?;
                if evidence_all_before(&alert, before) {
                    old.push(key);
                }
            }
            for key in &old {
                t.remove((school, key.as_str()))?;
            }
            done.alerts = old.len();

            // Audit keys start with the UTC time, microseconds, fixed width (see audit.rs).
            let cut = audit_before.to_rfc3339_opts(SecondsFormat::Micros, true);
            let mut t = txn.open_table(AUDIT)?;
            let old = keys_in(&t, school, "", &cut)?;
            for key in &old {
                t.remove((school, key.as_str()))?;
            }
            done.audit = old.len();
        }
        txn.commit()?;
        Ok(done)
    }

    /// Deletes every row of a school in every table, in one transaction; returns how many.
    pub fn delete_school(&self, school: &str) -> Result<usize> {
        let txn = self.db().begin_write()?;
        let mut removed = 0;
        for table in all_school_tables() {
            let mut t = txn.open_table(table)?;
            let (lo, hi) = school_bounds(school);
            let keys = keys_in(&t, school, lo.1, hi.1)?;
            for key in &keys {
                t.remove((school, key.as_str()))?;
            }
            removed += keys.len();
        }
        txn.commit()?;
        Ok(removed)
    }

    /// Removes a mark if it is set; returns whether it was.
    pub fn clear_mark(&self, school: &str, key: &str) -> Result<bool> {
        let txn = self.db().begin_write()?;
        let was = txn
            .open_table(super::MARKS)?
            .remove((school, key))?
            .is_some();
        txn.commit()?;
        Ok(was)
    }

    /// When the retention job last ran, if ever.
    pub fn retention_last_run(&self) -> Result<Option<DateTime<Utc>>> {
        let txn = self.db().begin_read()?;
        let secs = txn.open_table(META)?.get(LAST_RUN_KEY)?.map(|v| v.value());
        Ok(secs
            .and_then(|s| i64::try_from(s).ok())
            .and_then(|s| DateTime::from_timestamp(s, 0)))
    }

    /// Records a run of the retention job.
    pub fn set_retention_last_run(&self, at: DateTime<Utc>) -> Result<()> {
        let secs = u64::try_from(at.timestamp()).unwrap_or(0);
        let txn = self.db().begin_write()?;
        txn.open_table(META)?.insert(LAST_RUN_KEY, secs)?;
        txn.commit()?;
        Ok(())
    }
}

/// The keys of one school in `from..to`.
fn keys_in(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    school: &str,
    from: &str,
    to: &str,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for row in t.range((school, from)..(school, to))? {
        keys.push(row?.0.value().1.to_string());
    }
    Ok(keys)
}
