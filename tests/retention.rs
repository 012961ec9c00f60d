//! The daily retention job (SPEC §9), in-process on a store in a temp dir: old absences and the
//! alerts that rest on them go, audit entries after 90 days, a removed school's data after the
//! configured days with a log line each day before; and the daemon runs it at its slot.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use fehlzeiten::config::{Config, DaemonConfig, Language, MailConfig, TransportConfig};
use fehlzeiten::model::{
    Absence, AbsenceKind, Alert, AlertKey, AlertState, ExcuseStatus, Roster, SchoolId, SchoolYear,
    Severity, Silence, StudentId,
};
use fehlzeiten::privacy::{self, REMOVED_SINCE_MARK};
use fehlzeiten::sim::{Scenario, SimConfig};
use fehlzeiten::store::{AuditEvent, Store, SyncRecord};
use std::path::Path;

const SCHOOL: &str = "gym-a";
const GONE: &str = "gym-gone";

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn config(dir: &Path, schools: &[&str], retention_days: u32) -> Config {
    let scenario = Scenario::generate(1, 4, d("2026-11-02"));
    let schools = schools
        .iter()
        .map(|id| {
            scenario.school_config(
                id,
                "Schule",
                url::Url::parse("http://127.0.0.1:9").unwrap(),
                &SimConfig::default(),
                &[],
            )
        })
        .collect();
    Config {
        path: Default::default(),
        daemon: DaemonConfig {
            data_dir: dir.join("state"),
            status_listen: "127.0.0.1:0".parse().unwrap(),
            language: Language::De,
            log_level: log::LevelFilter::Warn,
            removed_school_retention_days: retention_days,
            admin_socket: None,
        },
        mail: MailConfig {
            from: "fehlzeiten@schule.example".into(),
            reply_to: None,
            transport: TransportConfig::File {
                dir: dir.join("mails"),
            },
        },
        schools,
    }
}

fn absence(student: &str, day: NaiveDate) -> Absence {
    let start = day.and_hms_opt(8, 0, 0).unwrap();
    Absence {
        student: StudentId(student.into()),
        start,
        end: start + chrono::Duration::minutes(45),
        minutes: 45,
        subject: None,
        status: ExcuseStatus::Pending,
        kind: AbsenceKind::Absence,
    }
}

fn alert(school: &str, student: &str, period: &str, evidence: &[&str], state: AlertState) -> Alert {
    Alert {
        key: AlertKey {
            school: SchoolId(school.into()),
            student: StudentId(student.into()),
            rule: "consecutive_days".into(),
            period: period.into(),
        },
        severity: Severity::Warning,
        value: 3,
        evidence: evidence.iter().map(|s| s.to_string()).collect(),
        state,
        first_seen: "2025-01-01T00:00:00Z".into(),
        last_seen: "2025-01-01T00:00:00Z".into(),
        resolved_at: None,
        notified_severity: None,
        listed_in_digest: None,
    }
}

/// Writes absences on `days` for student `s1`, two alerts and audit entries, through the store.
fn seed(store: &Store, school: &str, days: &[NaiveDate], alerts: &[Alert], audit: &[&str]) {
    let record = SyncRecord {
        started: "2026-11-01T00:00:00Z".into(),
        finished: "2026-11-01T00:00:01Z".into(),
        ok: true,
        error: None,
        requests: 1,
    };
    let absences: Vec<Absence> = days.iter().map(|day| absence("s1", *day)).collect();
    store
        .replace_school_data(
            school,
            SchoolYear {
                start: d("2026-08-01"),
                end: d("2027-07-31"),
            },
            &Roster::default(),
            (d("2020-01-01"), d("2030-12-31")),
            &absences,
            record,
        )
        .unwrap();
    store.commit_alert_run(school, alerts, &[], &[]).unwrap();
    for at in audit {
        store
            .audit_append(school, &AuditEvent::new("export", utc(at)))
            .unwrap();
    }
}

fn absence_days(store: &Store, school: &str) -> Vec<String> {
    store
        .load_school(school)
        .unwrap()
        .absences
        .into_iter()
        .map(|a| a.start.date().to_string())
        .collect()
}

#[test]
fn old_absences_alerts_and_audit_go_recent_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &[SCHOOL], 30);
    let store = Store::open(&config.daemon.data_dir).unwrap();
    // Now: 24 November 2026, 03:30 in Berlin; the cut is 24 November 2025.
    let now = Berlin
        .with_ymd_and_hms(2026, 11, 24, 3, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    seed(
        &store,
        SCHOOL,
        &[
            d("2025-10-24"), // 13 months
            d("2025-11-23"), // the day before the cut
            d("2025-11-24"), // the cut day: kept
            d("2025-12-24"), // 11 months
        ],
        &[
            alert(
                SCHOOL,
                "s1",
                "old",
                &["2025-10-24 L1-2", "2025-11-23"],
                AlertState::Resolved,
            ),
            alert(
                SCHOOL,
                "s1",
                "old-active",
                &["2025-10-20"],
                AlertState::Active,
            ),
            alert(
                SCHOOL,
                "s1",
                "mixed",
                &["2025-11-23", "2025-12-24 L3"],
                AlertState::Active,
            ),
            alert(
                SCHOOL,
                "s1",
                "recent",
                &["2025-12-24"],
                AlertState::Resolved,
            ),
        ],
        &[
            "2026-08-01T00:00:00Z", // 115 days
            "2026-08-25T12:00:00Z", // 91 days
            "2026-09-01T00:00:00Z", // 84 days
        ],
    );
    let report = privacy::run_retention(&store, &config, now);
    assert_eq!(report.failed, Vec::<String>::new());
    assert_eq!(
        (
            report.absences_deleted,
            report.alerts_deleted,
            report.audit_deleted
        ),
        (2, 2, 2)
    );
    assert_eq!(absence_days(&store, SCHOOL), ["2025-11-24", "2025-12-24"]);
    let mut periods: Vec<String> = store
        .alerts(SCHOOL)
        .unwrap()
        .into_iter()
        .map(|a| a.key.period)
        .collect();
    periods.sort();
    assert_eq!(periods, ["mixed", "recent"]);
    let audit: Vec<String> = store
        .audit_list(SCHOOL, None)
        .unwrap()
        .into_iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(audit, ["2026-09-01T00:00:00Z"]);
    assert_eq!(store.retention_last_run().unwrap(), Some(now));

    // Running again the same day deletes nothing more.
    let before = store.dump_school(SCHOOL).unwrap();
    let again = privacy::run_retention(&store, &config, now + chrono::Duration::hours(5));
    assert_eq!(
        (
            again.absences_deleted,
            again.alerts_deleted,
            again.audit_deleted
        ),
        (0, 0, 0)
    );
    assert_eq!(store.dump_school(SCHOOL).unwrap(), before);
}

#[test]
fn a_removed_school_is_deleted_after_the_configured_days_with_a_line_each_day() {
    let dir = tempfile::tempdir().unwrap();
    let both = config(dir.path(), &[SCHOOL, GONE], 30);
    let store = Store::open(&both.daemon.data_dir).unwrap();
    let recent = [d("2026-10-01"), d("2026-11-02")];
    for school in [SCHOOL, GONE] {
        seed(
            &store,
            school,
            &recent,
            &[alert(
                school,
                "s1",
                "p",
                &["2026-11-02"],
                AlertState::Active,
            )],
            &["2026-11-03T10:00:00Z"],
        );
    }
    store
        .silence_add(&Silence {
            id: Silence::new_id(),
            school: SchoolId(GONE.into()),
            student: StudentId("s1".into()),
            rule: None,
            until: d("2026-12-31"),
            reason: "known".into(),
            author: "admin".into(),
            created: "2026-11-03T10:00:00Z".into(),
        })
        .unwrap();
    let kept_school = store.dump_school(SCHOOL).unwrap();

    let only_a = config(dir.path(), &[SCHOOL], 30);
    let day0 = utc("2026-11-04T02:30:00Z");
    for day in 0..30 {
        let now = day0 + chrono::Duration::days(day);
        let report = privacy::run_retention(&store, &only_a, now);
        assert_eq!(report.failed, Vec::<String>::new(), "day {day}");
        assert_eq!(
            report.log_lines,
            ["school gym-gone is no longer configured; its data is deleted on 2026-12-04"],
            "day {day}"
        );
        assert_eq!(
            report.pending_removal,
            [(GONE.to_string(), d("2026-12-04"))]
        );
        assert!(report.schools_deleted.is_empty(), "day {day}");
        assert_eq!(absence_days(&store, GONE).len(), 2, "day {day}");
    }
    // Day 29 kept it (last iteration above); day 30 deletes every row, silences included.
    let report = privacy::run_retention(&store, &only_a, day0 + chrono::Duration::days(30));
    assert_eq!(report.schools_deleted, [GONE]);
    assert!(report.log_lines.is_empty(), "{:?}", report.log_lines);
    assert!(store.dump_school(GONE).unwrap().is_empty());
    assert!(store.silences(GONE).unwrap().is_empty());
    assert!(!store.stored_school_ids().unwrap().contains(GONE));
    // The other school is untouched; the next day says nothing more about the removed one.
    assert_eq!(store.dump_school(SCHOOL).unwrap(), kept_school);
    let report = privacy::run_retention(&store, &only_a, day0 + chrono::Duration::days(31));
    assert!(report.log_lines.is_empty() && report.schools_deleted.is_empty());
}

#[test]
fn a_school_that_comes_back_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let both = config(dir.path(), &[SCHOOL, GONE], 2);
    let only_a = config(dir.path(), &[SCHOOL], 2);
    let store = Store::open(&both.daemon.data_dir).unwrap();
    let recent = [d("2026-11-02")];
    seed(&store, GONE, &recent, &[], &[]);
    let day0 = utc("2026-11-04T02:30:00Z");
    let day = |n: i64| day0 + chrono::Duration::days(n);

    let report = privacy::run_retention(&store, &only_a, day(0));
    assert_eq!(
        report.pending_removal,
        [(GONE.to_string(), d("2026-11-06"))]
    );
    assert!(store.mark(GONE, REMOVED_SINCE_MARK).unwrap().is_some());
    // Back on day 1: the mark goes, and the data stays past the old deadline.
    let report = privacy::run_retention(&store, &both, day(1));
    assert_eq!(report.schools_restored, [GONE]);
    assert!(report.log_lines.is_empty());
    assert_eq!(store.mark(GONE, REMOVED_SINCE_MARK).unwrap(), None);
    let report = privacy::run_retention(&store, &both, day(5));
    assert!(report.schools_deleted.is_empty() && report.log_lines.is_empty());
    assert_eq!(absence_days(&store, GONE), ["2026-11-02"]);
    // Removed again: the count starts anew.
    let report = privacy::run_retention(&store, &only_a, day(6));
    assert_eq!(
        report.pending_removal,
        [(GONE.to_string(), d("2026-11-12"))]
    );
    assert_eq!(absence_days(&store, GONE), ["2026-11-02"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_the_job_at_start_and_then_daily_at_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    // No school configured: the slot is 03:30 UTC, and the stored school is a removed one.
    let config = config(dir.path(), &[], 1);
    {
        let store = Store::open(&config.daemon.data_dir).unwrap();
        seed(&store, GONE, &[d("2026-11-02")], &[], &[]);
        store.close().unwrap();
    }
    // Started at noon: the job runs at once (never ran) and marks the school as removed.
    common::run_daemon_virtual(
        &config,
        utc("2026-11-04T12:00:00Z"),
        utc("2026-11-04T20:00:00Z"),
    )
    .await;
    {
        let store = Store::open(&config.daemon.data_dir).unwrap();
        assert_eq!(
            store.retention_last_run().unwrap(),
            Some(utc("2026-11-04T12:00:00Z"))
        );
        assert_eq!(
            store.mark(GONE, REMOVED_SINCE_MARK).unwrap().as_deref(),
            Some("2026-11-04")
        );
        store.close().unwrap();
    }
    // Restarted in the evening: not again at start; at 03:30 the next day the day is up.
    common::run_daemon_virtual(
        &config,
        utc("2026-11-04T21:00:00Z"),
        utc("2026-11-05T03:00:00Z"),
    )
    .await;
    {
        let store = Store::open(&config.daemon.data_dir).unwrap();
        assert_eq!(
            store.retention_last_run().unwrap(),
            Some(utc("2026-11-04T12:00:00Z"))
        );
        assert_eq!(absence_days(&store, GONE).len(), 1);
        store.close().unwrap();
    }
    common::run_daemon_virtual(
        &config,
        utc("2026-11-05T03:00:00Z"),
        utc("2026-11-06T12:00:00Z"),
    )
    .await;
    let store = Store::open(&config.daemon.data_dir).unwrap();
    assert_eq!(
        store.retention_last_run().unwrap(),
        Some(utc("2026-11-06T03:30:00Z"))
    );
    assert!(store.dump_school(GONE).unwrap().is_empty());
}
