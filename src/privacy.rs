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

use crate::config::{Config, SchoolConfig};
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

// ---------------------------------------------------------------------------------------------
// The rights of one student (GDPR Art. 15 and 17) and the audit log, as the operator commands
// `export`, `erase` and `audit` show them. They run wherever the database is open: in the
// daemon for a request on the admin socket, or in the CLI when no daemon runs.

use crate::admin::Output;

fn school_of<'a>(config: &'a Config, school: &str) -> Result<&'a SchoolConfig, String> {
    config
        .school(school)
        .ok_or_else(|| crate::admin::no_school(config, school))
}

fn student_arg(student: &str) -> Result<&str, String> {
    let student = student.trim();
    if student.is_empty() {
        return Err("--student is empty; give the student's id as `evaluate` shows it".into());
    }
    Ok(student)
}

/// `erase` (or `erase --undo`) of one student.
pub fn erase(
    config: &Config,
    store: &Store,
    school: &str,
    student: &str,
    undo: bool,
    by: &str,
) -> Result<Output, String> {
    let s = school_of(config, school)?;
    let student = student_arg(student)?;
    let now = Utc::now();
    let mut output = Output::default();
    if undo {
        let Some(note) = store
            .unerase_student(s.id.as_str(), student, now, by)
            .map_err(|e| e.to_string())?
        else {
            return Err(format!(
                "student {student} of {} is not erased; see `fehlzeiten erase --list`",
                s.id
            ));
        };
        output.out.push(format!(
            "erasure of student {student} in {} undone (erased {} by {}); the next sync brings the student back",
            s.id, note.at, note.by
        ));
        return Ok(output);
    }
    let report = store
        .erase_student(s.id.as_str(), student, now, by)
        .map_err(|e| e.to_string())?;
    log::info!(
        "{}: erased a student on request by {by} ({} records)",
        s.id,
        report.total()
    );
    if report.total() == 0 {
        output.err.push(format!(
            "warning: nothing was stored about student {student} in {}; check the id with `fehlzeiten evaluate` (the student is kept out of later syncs all the same)",
            s.id
        ));
    }
    output.out.push(format!(
        "erased student {student} in {}: {} roster record, {} absences, {} alerts, {} silences, {} mail copies ({} unsent, withdrawn){}",
        s.id,
        usize::from(report.roster),
        report.absences,
        report.alerts,
        report.silences,
        report.sent_mails + report.unsent_mails,
        report.unsent_mails,
        if report.already_erased {
            "; was erased before"
        } else {
            ""
        }
    ));
    output.out.push(format!(
        "later syncs keep the student out until `fehlzeiten erase --undo --school {} --student {student}`; the audit log keeps the id of mails already sent for 90 days",
        s.id
    ));
    Ok(output)
}

/// `erase --list`: who is kept out of the syncs.
pub fn erase_list(config: &Config, store: &Store, school: Option<&str>) -> Result<Output, String> {
    let mut output = Output::default();
    for s in crate::admin::selected(config, school)? {
        for e in store.erasures(s.id.as_str()).map_err(|e| e.to_string())? {
            output.out.push(format!(
                "{}  {}  erased {} by {}",
                s.id, e.student, e.at, e.by
            ));
        }
    }
    if output.out.is_empty() {
        output.out.push("no erased students".to_string());
    }
    Ok(output)
}

/// `export`: everything stored about one student as pretty JSON.
pub fn export(
    config: &Config,
    store: &Store,
    school: &str,
    student: &str,
    by: &str,
) -> Result<Output, String> {
    let s = school_of(config, school)?;
    let student = student_arg(student)?;
    let export = store
        .export_student(s.id.as_str(), student, Utc::now(), by)
        .map_err(|e| e.to_string())?;
    let mut output = Output::default();
    if export.student.is_none() && export.absences.is_empty() && export.erased.is_none() {
        output.err.push(format!(
            "warning: nothing is stored about student {student} in {}; check the id with `fehlzeiten evaluate`",
            s.id
        ));
    }
    let text = serde_json::to_string_pretty(&export).map_err(|e| e.to_string())?;
    output.out.extend(text.lines().map(str::to_string));
    Ok(output)
}

/// `audit`: the audit log of the selected schools from `since` (school-local midnight) on.
pub fn audit(
    config: &Config,
    store: &Store,
    school: Option<&str>,
    since: Option<NaiveDate>,
    json: bool,
) -> Result<Output, String> {
    let mut output = Output::default();
    let mut rows = Vec::new();
    for s in crate::admin::selected(config, school)? {
        let from = since.map(|d| {
            crate::demo::local_time(s.timezone, d, 0, 0)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        });
        for e in store
            .audit_list(s.id.as_str(), from.as_deref())
            .map_err(|e| e.to_string())?
        {
            rows.push((s.id.to_string(), e));
        }
    }
    rows.sort_by(|a, b| a.1.at.cmp(&b.1.at).then(a.0.cmp(&b.0)));
    for (school, e) in &rows {
        if json {
            let mut v = serde_json::to_value(e).map_err(|e| e.to_string())?;
            v["school"] = serde_json::Value::String(school.clone());
            output.out.push(v.to_string());
        } else {
            output.out.push(audit_line(school, e));
        }
    }
    if rows.is_empty() && !json {
        output.out.push("no audit events".to_string());
    }
    Ok(output)
}

/// One audit event as a line for humans.
fn audit_line(school: &str, e: &crate::store::AuditEvent) -> String {
    let mut parts = vec![e.at.clone(), school.to_string(), e.kind.clone()];
    if let Some(by) = e.detail.get("by").and_then(|v| v.as_str()) {
        parts.push(format!("by {by}"));
    }
    if !e.recipients.is_empty() {
        parts.push(format!("to {}", e.recipients.join(",")));
    }
    if !e.student_ids.is_empty() {
        parts.push(format!("students {}", e.student_ids.join(",")));
    }
    if !e.alert_ids.is_empty() {
        parts.push(format!("{} alerts", e.alert_ids.len()));
    }
    if let Some(id) = &e.message_id {
        parts.push(id.clone());
    }
    let rest = match &e.detail {
        serde_json::Value::Object(m) => {
            let mut m = m.clone();
            m.remove("by");
            (!m.is_empty()).then(|| serde_json::Value::Object(m).to_string())
        }
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    parts.extend(rest);
    parts.join("  ")
}
