//! The daemon in-process on a virtual clock, through October 2026 (the clocks go back on the
//! 25th) with restarts on two digest mornings: every class teacher gets exactly one digest per
//! ISO week, at Monday 07:00 school-local time, also after the change, and the one missed while
//! the daemon was down arrives once when it is back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Europe::Berlin;
use fehlzeiten::config::{Config, DaemonConfig, Language, MailConfig, TransportConfig};
use fehlzeiten::sim::{Scenario, SimConfig};
use fehlzeiten::store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const SCHOOL: &str = "gym-month";

fn berlin(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Berlin
        .with_ymd_and_hms(2026, m, d, h, min, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn config(dir: &Path, scenario: &Scenario, api_base: &str) -> Config {
    let mut school = scenario.school_config(
        SCHOOL,
        "Gymnasium Monat",
        url::Url::parse(api_base).unwrap(),
        &SimConfig::default(),
        &["sozial@schule.example"],
    );
    // Every class teacher gets a digest every week, so the count below is exact.
    school.notify.all_quiet_mail = true;
    // The school-wide digest to the social worker on its own slot: Friday 13:00.
    school.notify.social_worker_digest = Some(fehlzeiten::config::WeeklySlot {
        weekday: chrono::Weekday::Fri,
        time: chrono::NaiveTime::from_hms_opt(13, 0, 0).unwrap(),
    });
    Config {
        path: Default::default(),
        daemon: DaemonConfig {
            data_dir: dir.join("state"),
            status_listen: "127.0.0.1:0".parse().unwrap(),
            language: Language::De,
            log_level: log::LevelFilter::Warn,
            removed_school_retention_days: 30,
            admin_socket: None,
        },
        mail: MailConfig {
            from: "fehlzeiten@schule.example".into(),
            reply_to: None,
            transport: TransportConfig::File {
                dir: dir.join("mails"),
            },
        },
        schools: vec![school],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_digest_per_teacher_per_week_across_dst_and_restarts() {
    let today = Scenario::reference_day(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
    let scenario = Arc::new(Scenario::generate(7, 16, today));
    let sim = common::start_sim(scenario.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &scenario, &sim.base_url());

    let started = std::time::Instant::now();
    // Down from 06:30 to 09:00 on Monday 19 October: that digest comes late, once.
    common::run_daemon_virtual(&config, berlin(10, 5, 6, 0), berlin(10, 19, 6, 30)).await;
    common::run_daemon_virtual(&config, berlin(10, 19, 9, 0), berlin(10, 26, 7, 30)).await;
    // Restarted after Monday 26 October's digest went out (07:00 CET, after the change): no repeat.
    common::run_daemon_virtual(&config, berlin(10, 26, 8, 0), berlin(11, 2, 12, 0)).await;
    eprintln!("a simulated month took {:?}", started.elapsed());

    let store = Store::open(&config.daemon.data_dir).unwrap();
    let entries = store.outbox_entries(SCHOOL).unwrap();
    let digests: Vec<_> = entries.iter().filter(|e| e.kind == "digest").collect();
    // One school-wide digest each Friday at 13:00, to the social worker only.
    let mut school_wide: Vec<(u32, u32, u32, u32)> = entries
        .iter()
        .filter(|e| e.kind == "social_worker_digest")
        .map(|e| {
            assert_eq!(e.to, ["sozial@schule.example"]);
            let t = DateTime::parse_from_rfc3339(&e.created)
                .unwrap()
                .with_timezone(&Berlin);
            (t.month(), t.day(), t.hour(), t.minute())
        })
        .collect();
    school_wide.sort();
    assert_eq!(
        school_wide,
        [
            (10, 9, 13, 0),
            (10, 16, 13, 0),
            (10, 23, 13, 0),
            (10, 30, 13, 0)
        ]
    );
    let mut per_teacher: BTreeMap<String, Vec<DateTime<chrono_tz::Tz>>> = BTreeMap::new();
    for e in digests {
        let created = DateTime::parse_from_rfc3339(&e.created)
            .unwrap()
            .with_timezone(&Berlin);
        for to in &e.to {
            per_teacher.entry(to.clone()).or_default().push(created);
        }
    }
    assert!(!per_teacher.is_empty(), "no digests at all");
    let expected: Vec<(u32, u32, u32)> = vec![
        (10, 5, 7),
        (10, 12, 7),
        // The restart's catch-up.
        (10, 19, 9),
        (10, 26, 7),
        (11, 2, 7),
    ];
    for (teacher, mut sent) in per_teacher {
        sent.sort();
        let got: Vec<(u32, u32, u32)> = sent
            .iter()
            .map(|t| {
                assert_eq!((t.minute(), t.second()), (0, 0), "{teacher}: {t}");
                (t.month(), t.day(), t.hour())
            })
            .collect();
        assert_eq!(got, expected, "{teacher}");
        let weeks: Vec<u32> = sent.iter().map(|t| t.iso_week().week()).collect();
        assert_eq!(weeks, vec![41, 42, 43, 44, 45], "{teacher}");
    }
}
