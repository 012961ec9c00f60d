//! A sync that fails half way changes nothing: for the first sync, an incremental sync with
//! changes pending and a nightly full reconcile, the sync is aborted at every request index in
//! turn (every later request fails for good), and each time the store is exactly as before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sync_common;

use chrono::{DateTime, Duration, Utc};
use fehlzeiten::config::SchoolConfig;
use fehlzeiten::model::ExcuseStatus;
use fehlzeiten::sim::{DataChange, FaultAction, Faults, RouteMatch, SimConfig, When};
use fehlzeiten::store::Store;
use fehlzeiten::sync::{SyncKind, sync_school};
use sync_common::*;

const PAGE: usize = 10;

/// Aborts the sync at `now` at request 1, 2, … until it succeeds; returns the number of
/// requests of the successful sync.
async fn abort_at_every_request(
    school: &SimSchool,
    store: &Store,
    sc: &SchoolConfig,
    now: DateTime<Utc>,
    what: &str,
) -> (u64, SyncKind) {
    // Failures of every kind, in turn: retried ones until the attempts run out, and a 500 that
    // gets its two retries.
    let actions = [
        FaultAction::status(500),
        FaultAction::Close,
        FaultAction::Truncate,
        FaultAction::status(503),
        FaultAction::status(429),
    ];
    let id = sc.id.as_str();
    for n in 1u64.. {
        assert!(n < 1000, "{what}: the sync never got through");
        let before = data_dump(store, id);
        let state_before = durable_state(store, id);
        let action = actions[(n as usize) % actions.len()].clone();
        school
            .sim
            .set_faults(Faults::none().rule(RouteMatch::Any, When::From(n), action.clone()));
        // A fresh client each time, so every attempt makes the same requests (token first).
        let result = sync_school(store, sc, &client(sc, PAGE), now).await;
        school.sim.set_faults(Faults::none());
        match result {
            Err(e) => {
                assert_same(
                    &before,
                    &data_dump(store, id),
                    &format!("{what}: aborted at request {n} ({action:?}: {e})"),
                );
                assert_eq!(durable_state(store, id), state_before, "{what}: {n}");
                let last = store.school_state(id).unwrap().last_sync.unwrap();
                assert!(!last.ok, "{what}: {n}");
            }
            Ok(report) => {
                let requests = u64::from(report.data_requests + report.token_requests);
                assert_eq!(requests, n - 1, "{what}: the sync that got through");
                assert!(
                    data_dump(store, id) != before,
                    "{what}: the successful sync wrote its changes"
                );
                return (requests, report.kind);
            }
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_aborted_at_any_request_changes_nothing() {
    let school = sim_school("gym-abort", 9, 60, SimConfig::default()).await;
    let sc_data = school.scenario.clone();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&school]);
    let sc = &config.schools[0];
    let (t1, t2) = morning(sc);
    let store = open_store(&dir.path().join("state"));

    let (first, kind) = abort_at_every_request(&school, &store, sc, t1, "first sync").await;
    assert_eq!(kind, SyncKind::Full);

    // Changes pending for the incremental sync: a new student, a move, a renamed Klasse, a
    // class teacher leaving, excuses decided.
    let student = sc_data
        .students
        .iter()
        .find(|s| {
            s.has_account
                && sc_data
                    .absences
                    .iter()
                    .any(|a| a.student == s.id && a.date() >= sc_data.today - Duration::days(20))
        })
        .unwrap();
    let other_klasse = &sc_data.klassen[(student.klasse + 1) % sc_data.klassen.len()];
    for change in [
        DataChange::InsertStudent {
            klasse: sc_data.klassen[0].name.clone(),
        },
        DataChange::MoveStudent {
            sourced_id: student.sourced_id.clone(),
            to_klasse: other_klasse.name.clone(),
        },
        DataChange::RenameKlasse {
            sourced_id: sc_data.klassen[1].id.clone(),
            title: "Q1-neu".into(),
        },
        DataChange::MarkToBeDeleted {
            sourced_id: sc_data.klassen[0].class_teacher.clone(),
        },
        DataChange::SetExcuse {
            untis_id: student.untis_id,
            status: ExcuseStatus::Unexcused,
        },
    ] {
        school.sim.apply_change(&change);
    }
    let (incremental, kind) =
        abort_at_every_request(&school, &store, sc, t2, "incremental sync").await;
    assert_eq!(kind, SyncKind::Incremental);

    // A hard delete, found by the next night's full reconcile.
    school.sim.apply_change(&DataChange::Vanish {
        sourced_id: student.sourced_id.clone(),
    });
    let next_day = at(sc, reference_day() + Duration::days(1), 7, 15);
    let (reconcile, kind) =
        abort_at_every_request(&school, &store, sc, next_day, "full reconcile").await;
    assert_eq!(kind, SyncKind::Full);
    assert!(
        store
            .load_roster(sc.id.as_str())
            .unwrap()
            .students
            .iter()
            .all(|s| s.id.0 != student.sourced_id)
    );
    eprintln!(
        "aborted at every request: first sync {first}, incremental {incremental}, full reconcile {reconcile} requests"
    );
}
