//! The sync under every fault the simulator can produce: each one switched on reaches exactly
//! the stored state of a fault-free sync, with exactly one token renewal per expiry or
//! revocation; final errors are not retried and say what to do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sync_common;

use fehlzeiten::sim::{FaultAction, Faults, RetryAfter, RouteMatch, SimConfig, When};
use fehlzeiten::sync::{SyncKind, sync_school};
use std::time::{Duration, Instant};
use sync_common::*;

/// Small pages, so that every list takes several and faults hit mid-pagination.
const PAGE: usize = 20;

struct Case {
    name: &'static str,
    faults: Faults,
    /// Tokens the simulator issues over both syncs.
    tokens: u64,
    /// The two syncs must take at least this long (a `Retry-After` was honoured).
    at_least: Duration,
}

fn case(name: &'static str, faults: Faults, tokens: u64) -> Case {
    Case {
        name,
        faults,
        tokens,
        at_least: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_reaches_the_fault_free_state() {
    let school = sim_school("gym-faults", 5, 120, SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&school]);
    let sc = &config.schools[0];
    let id = sc.id.as_str();
    let (t1, t2) = morning(sc);

    // The reference: a full sync and an incremental one, no faults, one client (one token).
    let reference_store = open_store(&dir.path().join("reference"));
    let c = client(sc, PAGE);
    school.sim.set_faults(Faults::none());
    let full = sync_school(&reference_store, sc, &c, t1).await.unwrap();
    let incremental = sync_school(&reference_store, sc, &c, t2).await.unwrap();
    assert_eq!(full.kind, SyncKind::Full);
    assert_eq!(incremental.kind, SyncKind::Incremental);
    assert_eq!(school.sim.token_count(), 1, "one token for both syncs");
    assert!(full.absences > 0 && full.students > 0);
    let reference = data_dump(&reference_store, id);
    let reference_state = durable_state(&reference_store, id);
    let log = school.sim.requests();
    let first_absences = log
        .iter()
        .find(|r| r.path.ends_with("/absencetimes"))
        .unwrap()
        .number;
    assert!(
        log.iter().filter(|r| r.path.ends_with("/users")).count() >= 3,
        "students span several pages"
    );

    let expiry = Duration::from_secs(181);
    let cases = vec![
        case(
            "429 on every third data request",
            Faults::none().rule(RouteMatch::Data, When::Every(3), FaultAction::status(429)),
            1,
        ),
        Case {
            name: "429 with Retry-After in seconds",
            faults: Faults::none().rule(
                RouteMatch::OneRoster("users".into()),
                When::nth(2),
                FaultAction::Status {
                    status: 429,
                    retry_after: Some(RetryAfter::Seconds(1)),
                },
            ),
            tokens: 1,
            at_least: Duration::from_millis(990),
        },
        Case {
            name: "503 with Retry-After as HTTP date",
            faults: Faults::none().rule(
                RouteMatch::AbsenceTimes,
                When::nth(3),
                FaultAction::Status {
                    status: 503,
                    retry_after: Some(RetryAfter::DateIn(Duration::from_secs(2))),
                },
            ),
            tokens: 1,
            at_least: Duration::from_millis(1500),
        },
        case(
            "502 twice in a row",
            Faults::none().rule(
                RouteMatch::Data,
                When::Range { first: 5, count: 2 },
                FaultAction::status(502),
            ),
            1,
        ),
        case(
            "504 on every fifth absences request",
            Faults::none().rule(
                RouteMatch::AbsenceTimes,
                When::Every(5),
                FaultAction::status(504),
            ),
            1,
        ),
        case(
            "500 twice (two retries are allowed)",
            Faults::none().rule(
                RouteMatch::OneRoster("enrollments".into()),
                When::Range { first: 2, count: 2 },
                FaultAction::status(500),
            ),
            1,
        ),
        case(
            "a delay longer than the request timeout",
            Faults::none().rule(
                RouteMatch::AbsenceTimes,
                When::nth(2),
                FaultAction::Delay(Duration::from_millis(1500)),
            ),
            1,
        ),
        case(
            "truncated bodies",
            Faults::none().rule(RouteMatch::Data, When::Every(4), FaultAction::Truncate),
            1,
        ),
        case(
            "a dropped connection",
            Faults::none().rule(RouteMatch::Any, When::nth(3), FaultAction::Close),
            1,
        ),
        case(
            "the token endpoint busy",
            Faults::none().rule(RouteMatch::Token, When::nth(1), FaultAction::status(503)),
            1,
        ),
        // The server issues the first token but its answer is cut off: the client never held
        // it and asks once more.
        case(
            "a truncated token answer",
            Faults::none().rule(RouteMatch::Token, When::nth(1), FaultAction::Truncate),
            2,
        ),
        case(
            "tokens revoked while two absences requests are in flight",
            Faults::none().revoke_tokens_at(first_absences + 1),
            2,
        ),
        case(
            "tokens expire twice mid-sync (the clock jumps)",
            Faults::none()
                .advance_clock_at(4, expiry)
                .advance_clock_at(first_absences + 2, expiry),
            3,
        ),
        case(
            "everything at once",
            Faults::none()
                .rule(RouteMatch::Any, When::nth(2), FaultAction::Close)
                .rule(RouteMatch::Data, When::Every(5), FaultAction::status(503))
                .rule(RouteMatch::Data, When::Every(7), FaultAction::Truncate)
                .revoke_tokens_at(9)
                .advance_clock_at(first_absences + 4, expiry),
            3,
        ),
    ];

    for (i, case) in cases.into_iter().enumerate() {
        let store = open_store(&dir.path().join(format!("case-{i}")));
        let c = client(sc, PAGE);
        let tokens_before = school.sim.token_count();
        let log_before = school.sim.requests().len();
        school.sim.set_faults(case.faults);
        let started = Instant::now();
        let first = sync_school(&store, sc, &c, t1)
            .await
            .unwrap_or_else(|e| panic!("{}: full sync: {e}", case.name));
        let second = sync_school(&store, sc, &c, t2)
            .await
            .unwrap_or_else(|e| panic!("{}: incremental sync: {e}", case.name));
        let took = started.elapsed();
        school.sim.set_faults(Faults::none());
        assert_eq!(first.kind, SyncKind::Full, "{}", case.name);
        assert_eq!(second.kind, SyncKind::Incremental, "{}", case.name);

        let log = school.sim.requests().split_off(log_before);
        assert!(
            log.iter().any(|r| r.fault.is_some()),
            "{}: no fault was applied",
            case.name
        );
        assert_same(&reference, &data_dump(&store, id), case.name);
        let state = durable_state(&store, id);
        assert_eq!(
            state.school_year, reference_state.school_year,
            "{}",
            case.name
        );
        assert_eq!(
            state.roster_watermark, reference_state.roster_watermark,
            "{}",
            case.name
        );
        assert_eq!(
            school.sim.token_count() - tokens_before,
            case.tokens,
            "{}: token renewals",
            case.name
        );
        let issued = log
            .iter()
            .filter(|r| r.token_request && r.status == 200)
            .count() as u64;
        assert_eq!(
            issued, case.tokens,
            "{}: token answers in the log",
            case.name
        );
        assert_eq!(
            u64::from(c.token_requests()),
            log.iter().filter(|r| r.token_request).count() as u64,
            "{}: every token request the client made reached the log",
            case.name
        );
        assert!(
            took >= case.at_least,
            "{}: took {took:?}, Retry-After asked for {:?}",
            case.name,
            case.at_least
        );
    }
}

/// A sync whose request the server refuses for good: the error says what to do, nothing is
/// retried that cannot pass, and the stored data stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_errors_are_not_retried_and_say_what_to_do() {
    let school = sim_school("gym-errors", 6, 60, SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&school]);
    let sc = &config.schools[0];
    let id = sc.id.as_str();
    let (t1, t2) = morning(sc);
    let store = open_store(&dir.path().join("state"));
    sync_school(&store, sc, &client(sc, PAGE), t1)
        .await
        .unwrap();
    let stored = data_dump(&store, id);
    let stored_state = durable_state(&store, id);

    // (what, faults, route the fault hits, requests it may see there, words of the message)
    let users = || RouteMatch::OneRoster("users".into());
    let cases: Vec<(&str, Faults, &str, usize, &[&str])> = vec![
        (
            "403",
            Faults::none().rule(users(), When::Always, FaultAction::status(403)),
            "/users",
            1,
            &[
                "403",
                "permission is not granted in the WebUntis platform app",
            ],
        ),
        (
            "404",
            Faults::none().rule(users(), When::Always, FaultAction::status(404)),
            "/users",
            1,
            &["404", "check untis.api_base"],
        ),
        (
            "400",
            Faults::none().rule(users(), When::Always, FaultAction::status(400)),
            "/users",
            1,
            &["400", "please report it"],
        ),
        (
            "500 three times",
            Faults::none().rule(
                RouteMatch::AbsenceTimes,
                When::Always,
                FaultAction::status(500),
            ),
            "/absencetimes",
            // Two lanes: each may have its own request with two retries in flight.
            6,
            &["500", "gave up after 3 attempts"],
        ),
        (
            "503 for good",
            Faults::none().rule(users(), When::Always, FaultAction::status(503)),
            "/users",
            5,
            &["503", "gave up after 5 attempts"],
        ),
        (
            "Retry-After beyond the longest pause",
            Faults::none().rule(
                users(),
                When::Always,
                FaultAction::Status {
                    status: 429,
                    retry_after: Some(RetryAfter::Seconds(3600)),
                },
            ),
            "/users",
            1,
            &["wait 3600 s", "next scheduled sync"],
        ),
    ];
    for (what, faults, path, max_requests, words) in cases {
        let log_before = school.sim.requests().len();
        school.sim.set_faults(faults);
        let err = sync_school(&store, sc, &client(sc, PAGE), t2)
            .await
            .expect_err(what)
            .to_string();
        school.sim.set_faults(Faults::none());
        for w in words {
            assert!(err.contains(w), "{what}: `{err}` lacks `{w}`");
        }
        let log = school.sim.requests().split_off(log_before);
        let hits = log.iter().filter(|r| r.path.ends_with(path)).count();
        assert!(
            hits >= 1 && hits <= max_requests,
            "{what}: {hits} requests to {path}"
        );
        if max_requests == 1 {
            assert_eq!(hits, 1, "{what} must not be retried");
        }
        assert_same(&stored, &data_dump(&store, id), what);
        assert_eq!(durable_state(&store, id), stored_state, "{what}");
        let last = store.school_state(id).unwrap().last_sync.unwrap();
        assert!(!last.ok);
        assert_eq!(last.error.as_deref(), Some(err.as_str()));
    }

    // Wrong password: one token request, a message that points at the OIDC secret mix-up.
    let mut wrong = sc.untis.clone();
    wrong.password = fehlzeiten::config::Secret::new("the-oidc-secret");
    let tokens_before = school
        .sim
        .requests()
        .iter()
        .filter(|r| r.token_request)
        .count();
    let c = fehlzeiten::untis::UntisClient::with_options(&wrong, fast_options(PAGE)).unwrap();
    let err = sync_school(&store, sc, &c, t2)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(err.contains("OIDC secret"), "{err}");
    assert_eq!(c.token_requests(), 1);
    assert_eq!(c.data_requests(), 0);
    let tokens_after = school
        .sim
        .requests()
        .iter()
        .filter(|r| r.token_request)
        .count();
    assert_eq!(tokens_after - tokens_before, 1);

    // Nobody listening: network errors are retried, then the message names the cause.
    let mut gone = sc.untis.clone();
    gone.api_base = format!("http://127.0.0.1:{}", closed_port())
        .parse()
        .unwrap();
    let c = fehlzeiten::untis::UntisClient::with_options(&gone, fast_options(PAGE)).unwrap();
    let err = sync_school(&store, sc, &c, t2)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("connection failed"), "{err}");
    assert!(err.contains("gave up after 5 attempts"), "{err}");
    assert_eq!(c.token_requests(), 5);

    assert_same(
        &stored,
        &data_dump(&store, id),
        "after credential and network errors",
    );
    assert_eq!(durable_state(&store, id), stored_state);
}

/// A port nobody listens on (bound a moment ago, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Eight requests in flight when every token is revoked: all get 401, one renewal serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_token_renewal() {
    let school = sim_school("gym-flight", 10, 200, SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&school]);
    let sc = &config.schools[0];
    let c = client(sc, PAGE);
    let day = reference_day();
    let names: Vec<String> = school
        .scenario
        .klassen
        .iter()
        .take(8)
        .map(|k| k.name.clone())
        .collect();
    assert_eq!(names.len(), 8);
    c.absences(&names[0], day, day).await.unwrap();
    assert_eq!(school.sim.token_count(), 1);

    // The first eight answers are held back a moment, so all eight requests are in flight
    // with the revoked token before the first 401 comes back.
    school
        .sim
        .set_faults(Faults::none().revoke_tokens_at(1).rule(
            RouteMatch::AbsenceTimes,
            When::Range { first: 1, count: 8 },
            FaultAction::Delay(Duration::from_millis(300)),
        ));
    let fetch = |n: usize| c.absences(&names[n], day, day);
    let (r0, r1, r2, r3, r4, r5, r6, r7) = tokio::join!(
        fetch(0),
        fetch(1),
        fetch(2),
        fetch(3),
        fetch(4),
        fetch(5),
        fetch(6),
        fetch(7)
    );
    for r in [r0, r1, r2, r3, r4, r5, r6, r7] {
        r.unwrap();
    }
    let log = school.sim.requests();
    let rejected = log.iter().filter(|r| r.status == 401).count();
    assert_eq!(rejected, 8, "all eight were sent with the revoked token");
    assert_eq!(school.sim.token_count(), 2, "one renewal for all eight");
    assert_eq!(c.token_requests(), 2);
    assert_eq!(c.data_requests(), 1 + 8 + 8);
}
