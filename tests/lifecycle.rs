//! An alert's life as the recipients see it, run by run, in-process and without the simulator:
//! a crafted Klasse 7b in the store, the pipeline called at fixed school-local times in March
//! 2026, and after every run exactly the mails it produced (kind, recipient, alerts, status),
//! checked in the run's report and in the `.eml` files the file transport wrote.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Berlin;
use fehlzeiten::config::{
    Config, DaemonConfig, Language, MailConfig, NotifyConfig, Period, Recipients, SchoolConfig,
    Secret, TimeRange, TransportConfig, UntisConfig, WeeklySlot,
};
use fehlzeiten::mail::{ItemStatus, Transport};
use fehlzeiten::model::{
    Absence, AbsenceKind, AlertKey, AlertState, ExcuseStatus, Klasse, Roster, SchoolId, SchoolYear,
    Severity, Silence, Student, StudentId, Teacher,
};
use fehlzeiten::pipeline::{self, RunOptions, RunReport};
use fehlzeiten::rules::RuleParams;
use fehlzeiten::store::{Store, SyncRecord};
use mail_parser::MessageParser;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCHOOL: &str = "gym-lifecycle";
const SOCIAL_WORKER: &str = "sozial@schule.example";
const CLASS_TEACHER: &str = "klein@schule.example";
const LENA: &str = "S-1";
const JONAS: &str = "S-2";
const MIA: &str = "S-3";

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

/// A school-local time in March 2026 as UTC.
fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Berlin
        .from_local_datetime(&day(d).and_time(time(h, m)))
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// Only `consecutive_days` is on: this test follows that rule's alerts through their life, and
/// other rules would add alerts of their own about the same absences (five days are also five
/// days in the half-year). A rule added to `RuleParams` must be switched off here as well.
fn only_consecutive_days() -> RuleParams {
    RuleParams::only(&["consecutive_days"])
}

fn config(dir: &Path) -> Config {
    let bell = [
        (time(7, 45), time(8, 30)),
        (time(8, 30), time(9, 15)),
        (time(9, 35), time(10, 20)),
        (time(10, 20), time(11, 5)),
        (time(11, 25), time(12, 10)),
        (time(12, 10), time(12, 55)),
    ];
    let school = SchoolConfig {
        id: SchoolId(SCHOOL.into()),
        name: "Gymnasium Lebenslauf".into(),
        timezone: Berlin,
        state: "NW".into(),
        holidays: Vec::new(),
        half_year_starts: Vec::new(),
        untis: UntisConfig {
            // Never contacted: the runs below evaluate stored data only.
            api_base: url::Url::parse("http://127.0.0.1:9").unwrap(),
            ca_file: None,
            tenant_id: "1".into(),
            client_id: "fehlzeiten".into(),
            password: Secret::new("unused"),
            sync_every: Duration::from_secs(15 * 60),
            sync_hours: TimeRange {
                start: time(6, 30),
                end: time(17, 0),
            },
            window_days: 30,
            full_reconcile_at: time(2, 30),
            request_timeout: Duration::from_secs(30),
        },
        periods: bell
            .iter()
            .zip(1..)
            .map(|(&(start, end), number)| Period { number, start, end })
            .collect(),
        recipients: Recipients {
            social_workers: vec![SOCIAL_WORKER.into()],
            class_teachers_override: Default::default(),
            social_workers_see_school: true,
        },
        notify: NotifyConfig {
            digest: WeeklySlot {
                weekday: Weekday::Mon,
                time: time(7, 0),
            },
            social_worker_digest: None,
            immediate_min_severity: Severity::Warning,
            quiet_hours: None,
            all_quiet_mail: false,
        },
        rules: only_consecutive_days(),
    };
    Config {
        path: PathBuf::new(),
        daemon: DaemonConfig {
            data_dir: dir.join("state"),
            status_listen: "127.0.0.1:8787".parse().unwrap(),
            language: Language::En,
            log_level: log::LevelFilter::Warn,
            removed_school_retention_days: 30,
            admin_socket: None,
        },
        mail: MailConfig {
            from: "Fehlzeiten <fehlzeiten@schule.example>".into(),
            reply_to: None,
            transport: TransportConfig::File {
                dir: dir.join("mails"),
            },
        },
        schools: vec![school],
    }
}

fn roster() -> Roster {
    let student = |id: &str, given: &str, family: &str| Student {
        id: StudentId(id.into()),
        given_name: given.into(),
        family_name: family.into(),
        klasse_id: Some("k-7b".into()),
        untis_id: None,
        extern_key: None,
    };
    Roster {
        klassen: vec![Klasse {
            id: "k-7b".into(),
            name: "7b".into(),
            class_teacher_ids: vec!["t-1".into()],
        }],
        students: vec![
            student(LENA, "Lena", "Müller"),
            student(JONAS, "Jonas", "Berg"),
            student(MIA, "Mia", "Wolf"),
        ],
        teachers: vec![Teacher {
            id: "t-1".into(),
            given_name: "Petra".into(),
            family_name: "Klein".into(),
            email: Some(CLASS_TEACHER.into()),
        }],
    }
}

/// A whole school day missed (all six lessons), excused, so only the streak counts.
fn absent(student: &str, d: u32) -> Absence {
    let on = |t: NaiveTime| NaiveDateTime::new(day(d), t);
    Absence {
        student: StudentId(student.into()),
        start: on(time(7, 45)),
        end: on(time(12, 55)),
        minutes: 270,
        subject: None,
        status: ExcuseStatus::Excused,
        kind: AbsenceKind::Absence,
    }
}

/// What a sync would store: the roster and, for February and March, exactly these absences.
fn store_absences(store: &Store, absences: &[Absence]) {
    let year = SchoolYear {
        start: NaiveDate::from_ymd_opt(2025, 8, 1).unwrap(),
        end: NaiveDate::from_ymd_opt(2026, 7, 31).unwrap(),
    };
    let record = SyncRecord {
        started: "2026-03-01T00:00:00Z".into(),
        finished: "2026-03-01T00:00:01Z".into(),
        ok: true,
        error: None,
        requests: 0,
    };
    let window = (
        NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
    );
    store
        .replace_school_data(SCHOOL, year, &roster(), window, absences, record)
        .unwrap();
}

fn alert_id(student: &str) -> String {
    AlertKey {
        school: SchoolId(SCHOOL.into()),
        student: StudentId(student.into()),
        rule: "consecutive_days".into(),
        // A streak's alert is keyed by its first day: Monday, 2 March.
        period: "2026-03-02".into(),
    }
    .id()
}

/// One mail as the test expects it: kind, recipient, and each alert with its status.
type Expected<'a> = (&'a str, &'a str, Vec<(String, ItemStatus)>);

struct World {
    dir: tempfile::TempDir,
    config: Config,
    store: Store,
    transport: Transport,
}

impl World {
    fn new() -> World {
        World::with(|_| {})
    }

    /// A world whose config `change` adjusts first.
    fn with(change: impl FnOnce(&mut Config)) -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        change(&mut config);
        let store = Store::open(&config.daemon.data_dir).unwrap();
        let transport = Transport::from_config(&config.mail).unwrap();
        World {
            dir,
            config,
            store,
            transport,
        }
    }

    async fn run(&self, now: DateTime<Utc>, digests: bool) -> RunReport {
        pipeline::run_school(
            &self.store,
            &self.config,
            &self.config.schools[0],
            None,
            &self.transport,
            now,
            RunOptions {
                digests,
                school_digest: digests,
                deliver: true,
            },
        )
        .await
        .unwrap()
    }

    /// Asserts that the run planned and delivered exactly `expected`, and that each `.eml`
    /// shows every alert with its status to its one recipient.
    fn assert_mails(&self, step: &str, report: &RunReport, expected: &[Expected]) {
        let got: Vec<Expected> = report
            .mails
            .iter()
            .zip(&report.items)
            .map(|((kind, mail), items)| {
                assert_eq!(mail.to.len(), 1, "{step}: one recipient per mail");
                (
                    kind.as_str(),
                    mail.to[0].as_str(),
                    items.iter().map(|(id, s)| (id.clone(), *s)).collect(),
                )
            })
            .collect();
        assert_eq!(got, expected, "{step}");
        assert_eq!(
            report.delivery.sent as usize,
            expected.len(),
            "{step}: {:?}",
            report.delivery
        );
        for ((kind, mail), items) in report.mails.iter().zip(&report.items) {
            let raw = std::fs::read(
                self.dir
                    .path()
                    .join("mails")
                    .join(format!("{}.eml", mail.id)),
            )
            .unwrap_or_else(|e| panic!("{step}: {kind} mail {} not written: {e}", mail.id));
            let parsed = MessageParser::default().parse(&raw).unwrap();
            let to: Vec<&str> = parsed
                .to()
                .unwrap()
                .iter()
                .filter_map(|a| a.address())
                .collect();
            assert_eq!(to, mail.to, "{step}");
            let text = parsed.body_text(0).unwrap();
            let mut ids: Vec<&String> = items.keys().collect();
            ids.sort();
            let mut named = mail.alert_ids.iter().collect::<Vec<_>>();
            named.sort();
            assert_eq!(named, ids, "{step}: the mail names other alerts");
            for (id, status) in items {
                let severity = self.severity(id);
                let label = format!(
                    "[{severity}, {}]",
                    match status {
                        ItemStatus::New => "new",
                        ItemStatus::Escalated => "escalated",
                        ItemStatus::Ongoing => "ongoing",
                        ItemStatus::Resolved => "resolved",
                    }
                );
                assert!(text.contains(&label), "{step}: {label} missing in\n{text}");
            }
        }
    }

    fn severity(&self, id: &str) -> Severity {
        self.store
            .alerts(SCHOOL)
            .unwrap()
            .into_iter()
            .find(|a| a.key.id() == id)
            .unwrap()
            .severity
    }

    fn alert(&self, student: &str) -> fehlzeiten::model::Alert {
        let id = alert_id(student);
        self.store
            .alerts(SCHOOL)
            .unwrap()
            .into_iter()
            .find(|a| a.key.id() == id)
            .unwrap()
    }
}

fn alert_mail(items: &[(&str, ItemStatus)]) -> Expected<'static> {
    ("alert", SOCIAL_WORKER, with_ids(items))
}

fn digest_mail(items: &[(&str, ItemStatus)]) -> Expected<'static> {
    ("digest", CLASS_TEACHER, with_ids(items))
}

fn school_digest_mail(items: &[(&str, ItemStatus)]) -> Expected<'static> {
    ("social_worker_digest", SOCIAL_WORKER, with_ids(items))
}

fn with_ids(items: &[(&str, ItemStatus)]) -> Vec<(String, ItemStatus)> {
    let mut v: Vec<(String, ItemStatus)> = items.iter().map(|(s, st)| (alert_id(s), *st)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test]
async fn an_alert_from_first_finding_to_resolution() {
    use ItemStatus::*;
    let w = World::new();

    // a. Monday to Wednesday absent: three days in a row, a warning. Thursday morning's run
    //    tells the social worker at once and, with the digest due, the class teacher.
    let mut absences = vec![absent(LENA, 2), absent(LENA, 3), absent(LENA, 4)];
    store_absences(&w.store, &absences);
    let r = w.run(at(5, 7, 15), true).await;
    w.assert_mails(
        "a: first evaluation",
        &r,
        &[alert_mail(&[(LENA, New)]), digest_mail(&[(LENA, New)])],
    );
    assert_eq!(w.alert(LENA).severity, Severity::Warning);

    // b. The same data an hour later: nothing is sent again.
    let r = w.run(at(5, 8, 15), true).await;
    w.assert_mails("b: an hour later", &r, &[]);

    // c. Thursday absent too: four days, still a warning. The alert follows the streak, but
    //    nobody is told again.
    absences.push(absent(LENA, 5));
    store_absences(&w.store, &absences);
    let r = w.run(at(6, 7, 15), false).await;
    w.assert_mails("c: four days", &r, &[]);
    let alert = w.alert(LENA);
    assert_eq!((alert.severity, alert.value), (Severity::Warning, 4));

    //    Friday as well: five days are critical. Monday's run sends the escalation at once;
    //    the week's digest lists the alert, which the teacher has seen, as ongoing.
    absences.push(absent(LENA, 6));
    store_absences(&w.store, &absences);
    let r = w.run(at(9, 7, 15), true).await;
    w.assert_mails(
        "c: five days",
        &r,
        &[
            alert_mail(&[(LENA, Escalated)]),
            digest_mail(&[(LENA, Ongoing)]),
        ],
    );
    let alert = w.alert(LENA);
    assert_eq!((alert.severity, alert.value), (Severity::Critical, 5));

    //    Another run that day: nothing new.
    let r = w.run(at(9, 12, 0), false).await;
    w.assert_mails("c: later that day", &r, &[]);

    // d. The class register is corrected (Lena was on an exchange): the streak is gone and
    //    the alert resolves. Resolution is no emergency: nothing is sent at once.
    store_absences(&w.store, &[]);
    let r = w.run(at(10, 7, 15), false).await;
    w.assert_mails("d: resolved", &r, &[]);
    assert_eq!(w.alert(LENA).state, AlertState::Resolved);

    //    The next week's digest lists it once as resolved; the one after does not.
    let r = w.run(at(16, 7, 0), true).await;
    w.assert_mails("d: next digest", &r, &[digest_mail(&[(LENA, Resolved)])]);
    let r = w.run(at(23, 7, 0), true).await;
    w.assert_mails("d: digest after", &r, &[]);
    let eml = std::fs::read_dir(w.dir.path().join("mails"))
        .unwrap()
        .count();
    assert_eq!(eml, 5, "mails written in all");
}

#[tokio::test]
async fn a_silence_mutes_a_student_until_it_expires() {
    use ItemStatus::*;
    let w = World::new();
    store_absences(
        &w.store,
        &[LENA, JONAS, MIA]
            .into_iter()
            .flat_map(|s| [absent(s, 2), absent(s, 3), absent(s, 4)])
            .collect::<Vec<_>>(),
    );
    let silence = |id: &str, student: &str, rule: Option<&str>| Silence {
        id: id.into(),
        school: SchoolId(SCHOOL.into()),
        student: StudentId(student.into()),
        rule: rule.map(str::to_string),
        until: day(6),
        reason: "known case, help plan running".into(),
        author: "it-admin".into(),
        created: at(4, 16, 0).to_rfc3339(),
    };
    // Jonas: every rule, up to and including Friday. Mia: another rule only, so her streak is
    // reported as usual.
    assert!(
        w.store
            .silence_add(&silence("sil-0000000a", JONAS, None))
            .unwrap()
    );
    assert!(
        w.store
            .silence_add(&silence("sil-0000000b", MIA, Some("same_weekday")))
            .unwrap()
    );

    // The preview already leaves him out.
    let preview = pipeline::preview_digest(
        &w.store,
        &w.config,
        &w.config.schools[0],
        CLASS_TEACHER,
        at(5, 7, 15),
    )
    .await
    .unwrap()
    .unwrap();
    let mut named = preview.alert_ids.clone();
    named.sort();
    assert_eq!(named, [alert_id(LENA), alert_id(MIA)]);

    let r = w.run(at(5, 7, 15), true).await;
    w.assert_mails(
        "muted",
        &r,
        &[
            alert_mail(&[(LENA, New), (MIA, New)]),
            digest_mail(&[(LENA, New), (MIA, New)]),
        ],
    );
    assert_eq!(r.silenced, 1);
    // Tracked all the same, but not sent.
    let jonas = w.alert(JONAS);
    assert_eq!(
        (jonas.state, jonas.notified_severity),
        (AlertState::Active, None)
    );
    assert!(
        !std::fs::read_to_string(
            w.dir
                .path()
                .join("mails")
                .join(format!("{}.eml", r.mails[1].1.id))
        )
        .unwrap()
        .contains("Jonas")
    );

    // Friday is the silence's last day.
    let r = w.run(at(6, 7, 15), false).await;
    w.assert_mails("last muted day", &r, &[]);

    // Monday it has expired: the still-firing alert goes out now, and the digest lists it as
    // new, since the teacher has never seen it.
    let r = w.run(at(9, 7, 15), true).await;
    w.assert_mails(
        "expired",
        &r,
        &[
            alert_mail(&[(JONAS, New)]),
            digest_mail(&[(LENA, Ongoing), (JONAS, New), (MIA, Ongoing)]),
        ],
    );
    assert_eq!(r.silenced, 0);
    let r = w.run(at(9, 8, 15), false).await;
    w.assert_mails("expired, an hour later", &r, &[]);
}

/// The optional weekly school-wide digest (`social_worker_digest`): the social worker gets the
/// whole school's alerts at its slot beside the immediate mails, with its own "since the last
/// digest", and the class teacher's digest is unchanged. With `social_workers_see = "none"` it
/// is not sent.
#[tokio::test]
async fn the_school_wide_digest_for_social_workers() {
    use ItemStatus::*;
    let w = World::with(|c| {
        let notify = &mut c.schools[0].notify;
        notify.social_worker_digest = Some(notify.digest);
    });
    let mut absences = vec![absent(LENA, 2), absent(LENA, 3), absent(LENA, 4)];
    store_absences(&w.store, &absences);
    let r = w.run(at(5, 7, 15), true).await;
    w.assert_mails(
        "first",
        &r,
        &[
            alert_mail(&[(LENA, New)]),
            digest_mail(&[(LENA, New)]),
            school_digest_mail(&[(LENA, New)]),
        ],
    );
    let r = w.run(at(5, 8, 15), true).await;
    w.assert_mails("same week", &r, &[]);

    // Lena's streak grows to five days; Mia's register for last week is filled in late.
    absences.extend([
        absent(LENA, 5),
        absent(LENA, 6),
        absent(MIA, 2),
        absent(MIA, 3),
    ]);
    absences.push(absent(MIA, 4));
    store_absences(&w.store, &absences);
    let r = w.run(at(9, 7, 15), true).await;
    w.assert_mails(
        "next week",
        &r,
        &[
            alert_mail(&[(LENA, Escalated), (MIA, New)]),
            digest_mail(&[(LENA, Ongoing), (MIA, New)]),
            school_digest_mail(&[(LENA, Ongoing), (MIA, New)]),
        ],
    );

    store_absences(&w.store, &[]);
    let r = w.run(at(16, 7, 0), true).await;
    w.assert_mails(
        "resolved",
        &r,
        &[
            digest_mail(&[(LENA, Resolved), (MIA, Resolved)]),
            school_digest_mail(&[(LENA, Resolved), (MIA, Resolved)]),
        ],
    );
    let r = w.run(at(23, 7, 0), true).await;
    w.assert_mails("quiet", &r, &[]);

    // Social workers who see no student-level alerts get no school-wide digest either.
    let w = World::with(|c| {
        let school = &mut c.schools[0];
        school.notify.social_worker_digest = Some(school.notify.digest);
        school.recipients.social_workers_see_school = false;
    });
    store_absences(
        &w.store,
        &[absent(LENA, 2), absent(LENA, 3), absent(LENA, 4)],
    );
    let r = w.run(at(5, 7, 15), true).await;
    w.assert_mails("none", &r, &[digest_mail(&[(LENA, New)])]);
}
