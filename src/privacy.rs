//! The daily retention job (SPEC §9).
//!
//! - Absences that started more than 12 months before today (school-local) are deleted, and the
//!   alerts whose evidence all lies before that day with them, resolved or not.
//! - Audit entries older than 90 days are deleted.
//! - A school whose data is in the store but that is no longer configured: the day it is first
//!   seen missing is recorded as a mark; every run logs one line with the deletion date; after
//!   `daemon.removed_school_retention_days` every row of the school is deleted. A school that is
//!   configured again before that keeps its data (the mark is cleared).
//!
//! Every deletion is one write transaction per school; a failure is logged with the school id
//! and leaves that school's data as it was. Logs name schools by id only.

use crate::config::Config;
use crate::store::Store;
use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};

/// Mark: the UTC day a school was first seen in the store but not in the config.
pub const REMOVED_SINCE_MARK: &str = "retention|removed-since";
/// How long absences are kept.
pub const ABSENCE_RETENTION: Months = Months::new(12);
/// How long audit entries are kept.
pub const AUDIT_RETENTION: TimeDelta = TimeDelta::days(90);

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub absences_deleted: usize,
    pub alerts_deleted: usize,
    pub audit_deleted: usize,
    /// Schools no longer configured whose data was deleted in this run.
    pub schools_deleted: Vec<String>,
    /// Schools no longer configured, with the day their data will be deleted.
    pub pending_removal: Vec<(String, NaiveDate)>,
    /// Schools whose data is kept because they are configured again.
    pub schools_restored: Vec<String>,
    /// Schools where a step failed (their data is as it was before that step).
    pub failed: Vec<String>,
    /// The warning and error lines logged, as logged.
    pub log_lines: Vec<String>,
}

impl RetentionReport {
    fn warn(&mut self, line: String) {
        log::warn!("{line}");
        self.log_lines.push(line);
    }

    fn fail(&mut self, school: &str, line: String) {
        log::error!("{line}");
        self.log_lines.push(line);
        if !self.failed.iter().any(|s| s == school) {
            self.failed.push(school.to_string());
        }
    }
}

/// Runs the retention job once at `now` and records the run in the store.
pub fn run_retention(store: &Store, config: &Config, now: DateTime<Utc>) -> RetentionReport {
    let mut report = RetentionReport::default();
    for school in &config.schools {
        let id = school.id.as_str();
        match store.clear_mark(id, REMOVED_SINCE_MARK) {
            Ok(true) => {
                log::info!("school {id} is configured again; its data is kept");
                report.schools_restored.push(id.to_string());
            }
            Ok(false) => {}
            Err(e) => report.fail(id, format!("school {id}: retention: {e}")),
        }
    }
    let stored = match store.stored_school_ids() {
        Ok(ids) => ids,
        Err(e) => {
            report.fail(
                "",
                format!("retention: cannot list the stored schools: {e}"),
            );
            return report;
        }
    };
    let utc_today = now.date_naive();
    for id in &stored {
        let configured = config.school(id);
        if configured.is_none() {
            match removal_day(store, id, utc_today, config) {
                Ok(day) if utc_today >= day => {
                    match store.delete_school(id) {
                        Ok(rows) => {
                            log::warn!(
                                "school {id} is no longer configured; deleted its data ({rows} records)"
                            );
                            report.schools_deleted.push(id.clone());
                        }
                        Err(e) => report.fail(
                            id,
                            format!("school {id}: deleting the data of the removed school failed, nothing was deleted: {e}"),
                        ),
                    }
                    continue;
                }
                Ok(day) => {
                    report.warn(format!(
                        "school {id} is no longer configured; its data is deleted on {day}"
                    ));
                    report.pending_removal.push((id.clone(), day));
                }
                Err(e) => {
                    report.fail(id, format!("school {id}: retention: {e}"));
                    continue;
                }
            }
        }
        let today = match configured {
            Some(s) => now.with_timezone(&s.timezone).date_naive(),
            None => utc_today,
        };
        let before = today
            .checked_sub_months(ABSENCE_RETENTION)
            .unwrap_or(NaiveDate::MIN);
        match store.delete_aged(id, before, now - AUDIT_RETENTION) {
            Ok(done) => {
                if done != Default::default() {
                    log::info!(
                        "school {id}: retention deleted {} absences before {before}, {} alerts, {} audit entries",
                        done.absences,
                        done.alerts,
                        done.audit
                    );
                }
                report.absences_deleted += done.absences;
                report.alerts_deleted += done.alerts;
                report.audit_deleted += done.audit;
            }
            Err(e) => report.fail(
                id,
                format!("school {id}: retention failed, nothing was deleted: {e}"),
            ),
        }
    }
    if let Err(e) = store.set_retention_last_run(now) {
        report.fail("", format!("retention: cannot record the run: {e}"));
    }
    report
}

/// The day a school no longer configured is deleted; records today as the day it went missing
/// when this is the first time.
fn removal_day(
    store: &Store,
    id: &str,
    utc_today: NaiveDate,
    config: &Config,
) -> Result<NaiveDate, crate::store::StoreError> {
    let since = match store
        .mark(id, REMOVED_SINCE_MARK)?
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
    {
        Some(d) => d,
        None => {
            store.set_mark(id, REMOVED_SINCE_MARK, &utc_today.to_string())?;
            utc_today
        }
    };
    Ok(since + TimeDelta::days(i64::from(config.daemon.removed_school_retention_days)))
}

/// When the retention job is next due: its daily slot after the last run, or at once when it
/// never ran. The slot is school-local time of the first configured school (UTC without one).
pub fn next_retention(config: &Config, last_run: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let last = last_run?;
    let tz = config
        .schools
        .first()
        .map_or(chrono_tz::UTC, |s| s.timezone);
    Some(crate::schedule::next_daily(
        tz,
        crate::schedule::retention_at(),
        last,
    ))
}
