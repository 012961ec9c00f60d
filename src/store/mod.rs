//! The only code that knows redb (SPEC §8).
//!
//! One database file in `data_dir`. Every table is keyed by the school id first, so no query can
//! read across schools. Values are JSON-encoded domain types: they survive field additions and
//! keep redb's own type encoding (which changes in redb 5) out of the on-disk format.
//!
//! All methods are synchronous; async callers go through [`Store::blocking`].

mod alerts;
mod audit;
mod outbox;
mod retention;
mod school;
mod silences;
mod students;

pub use audit::AuditEvent;
pub use outbox::{OutboxEntry, OutboxStatus, OutboxSummary};
pub use retention::AgeDeletion;
pub use school::{AbsenceReplacement, SchoolSnapshot, SchoolState, SyncRecord, SyncWrite};
pub use students::{Erasure, ErasureReport, MailRecord, StudentExport};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The schema this build writes. A database with a higher version is refused.
pub const SCHEMA_VERSION: u64 = 1;
/// File name of the database inside `data_dir`.
pub const DB_FILE: &str = "fehlzeiten.redb";

type SchoolTable = TableDefinition<'static, (&'static str, &'static str), &'static [u8]>;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const STUDENTS: SchoolTable = TableDefinition::new("students");
pub(crate) const TEACHERS: SchoolTable = TableDefinition::new("teachers");
pub(crate) const KLASSEN: SchoolTable = TableDefinition::new("klassen");
/// Key: (school, `<start>|<student>|<kind>|<end>`); the start first, so a date window is a range.
pub(crate) const ABSENCES: SchoolTable = TableDefinition::new("absences");
/// Key: (school, ""), value: [`SchoolState`].
pub(crate) const SCHOOL_STATE: SchoolTable = TableDefinition::new("school_state");
/// Key: (school, alert id).
pub(crate) const ALERTS: SchoolTable = TableDefinition::new("alerts");
/// Key: (school, mail id).
pub(crate) const OUTBOX: SchoolTable = TableDefinition::new("outbox");
/// Key: (school, `<rfc3339>|<seq>`).
pub(crate) const AUDIT: SchoolTable = TableDefinition::new("audit");
/// Key: (school, mark), e.g. `digest|<recipient>|2026-W10`: what was done, so restarts neither
/// skip nor repeat it.
pub(crate) const MARKS: SchoolTable = TableDefinition::new("marks");
/// Key: (school, silence id).
pub(crate) const SILENCES: SchoolTable = TableDefinition::new("silences");
/// Key: (school, student id): students erased on request (GDPR Art. 17), kept out of later syncs
/// until the erasure is undone. Value: [`students::Erasure`].
pub(crate) const ERASED: SchoolTable = TableDefinition::new("erased");

/// Every table keyed by school, with its name ([`Store::dump_school`] reads them all, the
/// removal of a school deletes them all).
pub(crate) const SCHOOL_TABLES: [(&str, SchoolTable); 11] = [
    ("students", STUDENTS),
    ("teachers", TEACHERS),
    ("klassen", KLASSEN),
    ("absences", ABSENCES),
    ("school_state", SCHOOL_STATE),
    ("alerts", ALERTS),
    ("outbox", OUTBOX),
    ("audit", AUDIT),
    ("marks", MARKS),
    ("silences", SILENCES),
    ("erased", ERASED),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {}: {}", .0.display(), .1)]
    Open(PathBuf, String),
    #[error(
        "the database {} was written by a newer fehlzeiten (schema {found}, this build knows {SCHEMA_VERSION}); install the newer version or restore a backup",
        .path.display()
    )]
    TooNew { path: PathBuf, found: u64 },
    #[error(
        "the database {} is in use by another process (is the daemon running? then use its admin commands or stop it first)",
        .0.display()
    )]
    InUse(PathBuf),
    #[error("database error: {0}")]
    Db(String),
    #[error("stored record {0} is damaged: {1}")]
    Corrupt(String, String),
    #[error("database task failed: {0}")]
    Task(String),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the database in `data_dir`, creating the directory if needed, and
    /// runs migrations.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Open(data_dir.to_path_buf(), e.to_string()))?;
        let path = data_dir.join(DB_FILE);
        let db =
            Database::create(&path).map_err(|e| StoreError::Open(path.clone(), e.to_string()))?;
        let store = Store {
            db: Arc::new(db),
            path,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Closes the database and reports what redb could not write, when this is the last handle.
    /// With other handles still alive (a task that was abandoned at shutdown), the database closes
    /// when the last one is dropped; redb keeps every committed transaction either way.
    pub fn close(self) -> Result<()> {
        match Arc::try_unwrap(self.db) {
            Ok(db) => db.close().map_err(|e| StoreError::Db(e.to_string())),
            Err(_) => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the blocking pool: redb is synchronous.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn migrate(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew {
                        path: self.path.clone(),
                        found: v,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
            // Create every table up front, so read transactions never meet a missing table.
            for (_, table) in SCHOOL_TABLES {
                txn.open_table(table)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// Reads one JSON value.
    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        table: SchoolTable,
        school: &str,
        key: &str,
    ) -> Result<Option<T>> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table)?;
        match t.get((school, key))? {
            Some(v) => Ok(Some(decode(key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Reads every value of one school in a table, in key order.
    pub(crate) fn list_json<T: DeserializeOwned>(
        &self,
        table: SchoolTable,
        school: &str,
    ) -> Result<Vec<(String, T)>> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table)?;
        read_school_range(&t, school)
    }

    /// Writes one JSON value in its own transaction.
    pub(crate) fn put_json<T: Serialize>(
        &self,
        table: SchoolTable,
        school: &str,
        key: &str,
        value: &T,
    ) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(table)?;
            t.insert((school, key), encode(value)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// The half-open key range that holds exactly one school's rows.
pub(crate) fn school_bounds(school: &str) -> ((&str, &str), (&str, &str)) {
    // Keys never contain U+10FFFF, so (school, "\u{10FFFF}") is above every key of the school.
    ((school, ""), (school, "\u{10FFFF}"))
}

pub(crate) fn read_school_range<T: DeserializeOwned>(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    school: &str,
) -> Result<Vec<(String, T)>> {
    let (lo, hi) = school_bounds(school);
    let mut out = Vec::new();
    for row in t.range(lo..hi)? {
        let (k, v) = row?;
        let key = k.value().1.to_string();
        let value = decode(&key, v.value())?;
        out.push((key, value));
    }
    Ok(out)
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Db(format!("cannot encode record: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(key.to_string(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let txn = store.db().begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", SCHEMA_VERSION + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let err = Store::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("newer fehlzeiten"), "{err}");
    }
}
