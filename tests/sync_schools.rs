//! Several schools in one config stay apart: school B's WebUntis failing throughout neither
//! stops nor slows school A, whose alerts and digests are exactly what they are without B; B's
//! error is recorded and logged by id; no mail mixes the schools; each tenant only ever sees its
//! own tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sync_common;

use fehlzeiten::config::{Config, SchoolConfig};
use fehlzeiten::mail::Transport;
use fehlzeiten::pipeline::{self, RunOptions, RunReport};
use fehlzeiten::sim::{FaultAction, Faults, RetryAfter, RouteMatch, SimConfig, When};
use fehlzeiten::store::Store;
use fehlzeiten::sync::sync_school;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use sync_common::*;

/// Log lines of this test binary, as the daemon would write them.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", record.level(), record.args()));
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn captured() -> Vec<String> {
    // Installing twice (two tests in this binary) is fine: the second call just fails.
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Info);
    CAPTURE.0.lock().unwrap().clone()
}

fn school_b_config() -> SimConfig {
    SimConfig {
        tenant_id: "7654321".into(),
        password: "sim-password-b".into(),
        ..SimConfig::default()
    }
}

async fn run(
    store: &Store,
    config: &Config,
    school: &SchoolConfig,
    transport: &Transport,
) -> (Result<RunReport, pipeline::PipelineError>, Instant) {
    let c = client(school, 100);
    let (now, _) = morning(school);
    let options = RunOptions {
        digests: true,
        school_digest: false,
        deliver: true,
    };
    let r = pipeline::run_school(store, config, school, Some(&c), transport, now, options).await;
    (r, Instant::now())
}

/// What a mail says and to whom, without anything that depends on the run (none does).
fn mail_keys(r: &RunReport) -> Vec<(String, Vec<String>, String, String, String)> {
    let mut v: Vec<_> = r
        .mails
        .iter()
        .map(|(kind, m)| {
            (
                format!("{kind} {}", m.id),
                m.to.clone(),
                m.subject.clone(),
                m.text.clone(),
                m.html.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

fn tables(store: &Store, school: &str, names: &[&str]) -> Dump {
    store
        .dump_school(school)
        .unwrap()
        .into_iter()
        .filter(|(t, _, _)| names.contains(&t.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn school_b_failing_throughout_leaves_school_a_untouched() {
    let _ = captured();
    let a = sim_school("gym-a", 11, 150, SimConfig::default()).await;
    let b = sim_school("gym-b", 12, 80, school_b_config()).await;
    // B's platform answers every request, the token included, with 503 and Retry-After: 1.
    b.sim.set_faults(Faults::none().rule(
        RouteMatch::Any,
        When::Always,
        FaultAction::Status {
            status: 503,
            retry_after: Some(RetryAfter::Seconds(1)),
        },
    ));

    // The reference: school A alone.
    let solo_dir = tempfile::tempdir().unwrap();
    let solo = write_config(solo_dir.path(), &[&a]);
    let solo_store = Store::open(&solo.daemon.data_dir).unwrap();
    let solo_transport = Transport::from_config(&solo.mail).unwrap();
    let (reference, _) = run(&solo_store, &solo, &solo.schools[0], &solo_transport).await;
    let reference = reference.unwrap();
    assert!(reference.immediate_mails > 0 && reference.digest_mails > 0);

    // Both schools in one config, one database, one outbox directory, run side by side.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&a, &b]);
    let store = Store::open(&config.daemon.data_dir).unwrap();
    let transport = Transport::from_config(&config.mail).unwrap();
    let (sa, sb) = (&config.schools[0], &config.schools[1]);
    assert_eq!((sa.id.as_str(), sb.id.as_str()), ("gym-a", "gym-b"));
    let started = Instant::now();
    let ((ra, a_done), (rb, b_done)) = tokio::join!(
        run(&store, &config, sa, &transport),
        run(&store, &config, sb, &transport)
    );

    // A: the same findings, alerts, mails and stored data as alone, and not held up by B.
    let ra = ra.unwrap();
    assert_eq!(mail_keys(&ra), mail_keys(&reference));
    assert_eq!(ra.findings, reference.findings);
    assert_eq!(ra.delivery.sent as usize, ra.mails.len());
    let same = [
        "students", "teachers", "klassen", "absences", "alerts", "marks",
    ];
    assert_same(
        &tables(&solo_store, "gym-a", &same),
        &tables(&store, "gym-a", &same),
        "school A with and without B",
    );
    let a_took = a_done - started;
    let b_took = b_done - started;
    assert!(
        b_took >= Duration::from_secs(3),
        "B honoured Retry-After: {b_took:?}"
    );
    eprintln!("school A took {a_took:?}, school B {b_took:?}");
    assert!(a_took < b_took, "A ({a_took:?}) waited for B ({b_took:?})");

    // B: failed, stored nothing but the failure, which names the cause.
    let err = rb.unwrap_err().to_string();
    assert!(err.contains("gym-b") && err.contains("503"), "{err}");
    assert!(data_dump(&store, "gym-b").is_empty());
    let last = store.school_state("gym-b").unwrap().last_sync.unwrap();
    assert!(!last.ok);
    let recorded = last.error.unwrap();
    assert!(
        recorded.contains("503") && recorded.contains("gave up after 5 attempts"),
        "{recorded}"
    );
    assert!(store.school_state("gym-a").unwrap().last_sync.unwrap().ok);

    // The log names B's error by school id, and no log line carries a name or an address.
    let lines = captured();
    assert!(
        lines.iter().any(|l| l.contains("school gym-b: sync failed")
            && l.contains("503")
            && l.starts_with("WARN")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("school gym-a: full sync ok"))
    );
    let mut names = BTreeSet::new();
    for s in [&a, &b] {
        for st in &s.scenario.students {
            names.insert(format!("{} {}", st.given_name, st.family_name));
        }
        for t in &s.scenario.teachers {
            names.insert(format!("{} {}", t.given_name, t.family_name));
        }
    }
    for l in &lines {
        assert!(!l.contains('@'), "an address in the log: {l}");
        assert!(
            !names.iter().any(|n| l.contains(n.as_str())),
            "a name in the log: {l}"
        );
    }

    // Every mail written is school A's, to school A's people only.
    let a_people: BTreeSet<String> = a
        .scenario
        .teachers
        .iter()
        .map(|t| t.email.clone())
        .chain(sa.recipients.social_workers.iter().cloned())
        .collect();
    let b_people: BTreeSet<String> = sb.recipients.social_workers.iter().cloned().collect();
    let mails: Vec<_> = std::fs::read_dir(dir.path().join("mails"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(mails.len(), ra.mails.len());
    for (_, m) in &ra.mails {
        assert!(m.to.iter().all(|t| a_people.contains(t)), "{:?}", m.to);
        assert!(m.to.iter().all(|t| !b_people.contains(t)));
    }
    for m in &mails {
        assert!(m.contains("Schule gym-a"));
        assert!(!m.contains("gym-b"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_only_ever_sees_its_own_tokens() {
    let a = sim_school("gym-a", 13, 60, SimConfig::default()).await;
    let b = sim_school("gym-b", 14, 60, school_b_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&a, &b]);
    let store = Store::open(&config.daemon.data_dir).unwrap();
    let (sa, sb) = (&config.schools[0], &config.schools[1]);
    let (ca, cb) = (client(sa, 20), client(sb, 20));
    // Renewals on both sides mid-sync, so that each client holds several tokens over time.
    a.sim.set_faults(Faults::none().revoke_tokens_at(5));
    b.sim.set_faults(Faults::none().revoke_tokens_at(7));
    let (t1, t2) = morning(sa);
    for now in [t1, t2] {
        let (ra, rb) = tokio::join!(
            sync_school(&store, sa, &ca, now),
            sync_school(&store, sb, &cb, now)
        );
        ra.unwrap();
        rb.unwrap();
    }
    assert_eq!(a.sim.token_count(), 2);
    assert_eq!(b.sim.token_count(), 2);

    for (me, other) in [(&a, &b), (&b, &a)] {
        let mine: BTreeSet<String> = me.sim.issued_tokens().into_iter().collect();
        let theirs: BTreeSet<String> = other.sim.issued_tokens().into_iter().collect();
        assert!(mine.is_disjoint(&theirs));
        let log = me.sim.requests();
        for r in &log {
            if r.token_request {
                assert_eq!(
                    r.path,
                    format!("/WebUntis/api/sso/v3/{}/token", me.sim_config.tenant_id)
                );
                continue;
            }
            let bearer = r.bearer.as_deref().unwrap();
            assert!(
                mine.contains(bearer),
                "{}: a data request with a token it did not issue",
                me.id
            );
            assert!(
                !theirs.contains(bearer),
                "{}: the other tenant's token",
                me.id
            );
        }
        assert!(
            log.iter().any(|r| r.status == 401),
            "the revocation was felt"
        );
    }

    // Each school's rows hold only its own students.
    for (s, sim) in [(sa, &a), (sb, &b)] {
        let own: BTreeSet<String> = sim
            .scenario
            .students
            .iter()
            .map(|st| st.id.0.clone())
            .collect();
        let stored = store.load_roster(s.id.as_str()).unwrap();
        assert!(!stored.students.is_empty());
        for st in &stored.students {
            assert!(own.contains(&st.id.0), "{} holds a foreign student", s.id);
        }
    }
}

/// The path `fehlzeiten sync` takes: every school at once with production clients; one
/// school's refused permission is its own error only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_schools_reports_each_school_on_its_own() {
    let a = sim_school("gym-a", 15, 60, SimConfig::default()).await;
    let b = sim_school("gym-b", 16, 60, school_b_config()).await;
    b.sim
        .set_faults(Faults::none().rule(RouteMatch::Data, When::Always, FaultAction::status(403)));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&b, &a]);
    let store = Store::open(&config.daemon.data_dir).unwrap();
    let transport = Transport::from_config(&config.mail).unwrap();
    let schools: Vec<&SchoolConfig> = config.schools.iter().collect();
    let (now, _) = morning(schools[0]);
    let options = RunOptions {
        digests: false,
        school_digest: false,
        deliver: true,
    };
    let results = pipeline::run_schools(&store, &config, &schools, &transport, now, options).await;
    assert_eq!(results.len(), 2);
    let err = results[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("gym-b"), "{err}");
    assert!(
        err.contains("permission is not granted in the WebUntis platform app"),
        "{err}"
    );
    let ok = results[1].as_ref().unwrap();
    assert!(ok.sync.as_ref().unwrap().students > 0);
    assert!(data_dump(&store, "gym-b").is_empty());
    assert!(!data_dump(&store, "gym-a").is_empty());
}
