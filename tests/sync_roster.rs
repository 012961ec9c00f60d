//! Rosters that change under the sync: records inserted or deleted between pages, moves,
//! renames, deletions with and without `tobedeleted`, excuses decided later, and the absence
//! window across the school-year start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sync_common;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use fehlzeiten::model::{Absence, AbsenceKind, ExcuseStatus, StudentId};
use fehlzeiten::sim::{DataChange, Faults, SimConfig, Trigger};
use fehlzeiten::store::Store;
use fehlzeiten::sync::{SyncKind, sync_school};
use sync_common::*;

const PAGE: usize = 20;

fn rows(store: &Store, school: &str, table: &str) -> Dump {
    store
        .dump_school(school)
        .unwrap()
        .into_iter()
        .filter(|(t, _, _)| t == table)
        .collect()
}

fn absences_between(store: &Store, school: &str, from: NaiveDate, to: NaiveDate) -> Vec<Absence> {
    store
        .load_school(school)
        .unwrap()
        .absences
        .into_iter()
        .filter(|a| from <= a.date() && a.date() <= to)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_changes_between_pages_and_between_syncs() {
    let school = sim_school("gym-roster", 7, 120, SimConfig::default()).await;
    let sc_data = school.scenario.clone();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&school]);
    let sc = &config.schools[0];
    let id = sc.id.as_str();
    let (t1, t2) = morning(sc);
    let store = open_store(&dir.path().join("state"));
    let c = client(sc, PAGE);
    let students = |store: &Store| store.load_roster(id).unwrap().students;
    let student = |store: &Store, sid: &str| students(store).into_iter().find(|s| s.id.0 == sid);

    // 1. A student is inserted at the front of `users` after its first page was served: the
    // next page repeats a record (deduplicated), the new student is not seen yet.
    let klasse0 = sc_data.klassen[0].clone();
    school.sim.set_faults(Faults::none().change(
        Trigger::AfterFirstPage("users".into()),
        DataChange::InsertStudent {
            klasse: klasse0.name.clone(),
        },
    ));
    let r1 = sync_school(&store, sc, &c, t1).await.unwrap();
    school.sim.set_faults(Faults::none());
    assert_eq!(r1.kind, SyncKind::Full);
    let expected = sc_data.expected_roster();
    let listed: Vec<StudentId> = students(&store)
        .into_iter()
        .filter(|s| !s.id.0.starts_with("untis:"))
        .map(|s| s.id)
        .collect();
    let mut want: Vec<StudentId> = expected.students.iter().map(|s| s.id.clone()).collect();
    want.sort();
    assert_eq!(
        listed, want,
        "every listed student once, none lost to the shift"
    );
    let new_id = "sim-new-student-0001";
    assert!(student(&store, new_id).is_none());

    // 2. The next (incremental) sync picks the new student up, with their Klasse.
    let r2 = sync_school(&store, sc, &c, t2).await.unwrap();
    assert_eq!(r2.kind, SyncKind::Incremental);
    assert_eq!(
        student(&store, new_id).unwrap().klasse_id.as_deref(),
        Some(klasse0.id.as_str())
    );

    // 3. Changes between syncs: a move, a renamed Klasse, a class teacher marked
    // `tobedeleted`, excuses decided, and a student deleted without a trace.
    let with_absences = |n: usize| {
        let mut seen = Vec::new();
        for a in &sc_data.absences {
            let s = sc_data.student(&a.student).unwrap();
            if s.has_account && !seen.contains(&s.sourced_id) {
                seen.push(s.sourced_id.clone());
            }
        }
        seen.into_iter().nth(n).unwrap()
    };
    let mover = with_absences(0);
    let excused = with_absences(1);
    let vanished = with_absences(2);
    let by_sourced = |sid: &str| {
        sc_data
            .students
            .iter()
            .find(|s| s.sourced_id == sid)
            .unwrap()
            .clone()
    };
    let mover_from = by_sourced(&mover).klasse;
    let target = sc_data.klassen[(mover_from + 1) % sc_data.klassen.len()].clone();
    let renamed = sc_data.klassen[(mover_from + 2) % sc_data.klassen.len()].clone();
    let leaving_teacher = sc_data.klassen[0].class_teacher.clone();
    let t3 = t2 + Duration::minutes(15);
    for change in [
        DataChange::MoveStudent {
            sourced_id: mover.clone(),
            to_klasse: target.name.clone(),
        },
        DataChange::RenameKlasse {
            sourced_id: renamed.id.clone(),
            title: format!("{}-neu", renamed.name),
        },
        DataChange::MarkToBeDeleted {
            sourced_id: leaving_teacher.clone(),
        },
        DataChange::SetExcuse {
            untis_id: by_sourced(&excused).untis_id,
            status: ExcuseStatus::Excused,
        },
        DataChange::Vanish {
            sourced_id: vanished.clone(),
        },
    ] {
        school.sim.apply_change(&change);
    }
    let before_t3 = store.load_school(id).unwrap();
    let r3 = sync_school(&store, sc, &c, t3).await.unwrap();
    assert_eq!(r3.kind, SyncKind::Incremental);
    assert!(r3.roster_changes >= 3, "{r3:?}");
    assert_eq!(
        student(&store, &mover).unwrap().klasse_id.as_deref(),
        Some(target.id.as_str()),
        "the enrollment change moved the student"
    );
    let roster = store.load_roster(id).unwrap();
    assert_eq!(
        roster
            .klassen
            .iter()
            .find(|k| k.id == renamed.id)
            .unwrap()
            .name,
        format!("{}-neu", renamed.name)
    );
    assert!(roster.teachers.iter().all(|t| t.id != leaving_teacher));
    assert!(
        roster
            .klassen
            .iter()
            .all(|k| !k.class_teacher_ids.contains(&leaving_teacher))
    );
    assert!(
        student(&store, &vanished).is_some(),
        "an incremental sync cannot see a hard delete"
    );
    // Excuses: replaced in the window, kept as read before it.
    let excused_id = StudentId(excused.clone());
    let (from, to) = r3.window;
    let mine = |list: Vec<Absence>| -> Vec<Absence> {
        list.into_iter()
            .filter(|a| a.student == excused_id)
            .collect()
    };
    let inside = mine(absences_between(&store, id, from, to));
    let outside = mine(absences_between(
        &store,
        id,
        NaiveDate::MIN,
        from.pred_opt().unwrap(),
    ));
    let outside_before: Vec<Absence> = before_t3
        .absences
        .iter()
        .filter(|a| a.student == excused_id && a.date() < from)
        .cloned()
        .collect();
    assert!(!inside.is_empty() || !outside.is_empty());
    assert!(inside.iter().all(|a| a.status == ExcuseStatus::Excused));
    assert_eq!(
        outside, outside_before,
        "outside the window nothing is re-read"
    );
    // The mover's absences in the window are still theirs (read under the new Klasse).
    let mover_id = StudentId(mover.clone());
    let mover_inside = |s: &Store| {
        absences_between(s, id, from, to)
            .into_iter()
            .filter(|a| a.student == mover_id)
            .count()
    };
    assert_eq!(
        mover_inside(&store),
        before_t3
            .absences
            .iter()
            .filter(|a| a.student == mover_id && from <= a.date() && a.date() <= to)
            .count()
    );

    // 4. The nightly full reconcile the next day removes the vanished student. During it a
    // student on the first page is deleted, so the next page shifts and skips a record: the
    // skipped student stays (their enrollment still names them), the deleted one was read
    // before the delete and goes with the next reconcile.
    let next_day = at(sc, sync_common::reference_day() + Duration::days(1), 7, 15);
    let (first_listed, skipped) = {
        let mut ids: Vec<&str> = sc_data
            .students
            .iter()
            .filter(|s| s.has_account && s.sourced_id != vanished)
            .map(|s| s.sourced_id.as_str())
            .collect();
        // `users` lists students in scenario order; the inserted one first.
        ids.insert(0, new_id);
        (ids[1].to_string(), ids[PAGE].to_string())
    };
    school.sim.set_faults(Faults::none().change(
        Trigger::AfterFirstPage("users".into()),
        DataChange::Vanish {
            sourced_id: first_listed.clone(),
        },
    ));
    let log_before = school.sim.requests().len();
    let r4 = sync_school(&store, sc, &c, next_day).await.unwrap();
    school.sim.set_faults(Faults::none());
    assert_eq!(r4.kind, SyncKind::Full);
    assert!(student(&store, &vanished).is_none(), "vanished: gone");
    assert!(
        student(&store, &first_listed).is_some(),
        "read before it was deleted"
    );
    let skipped_in_pages = school.sim.requests()[log_before..]
        .iter()
        .filter(|r| r.path.ends_with("/users"))
        .count();
    assert!(skipped_in_pages >= 2);
    assert!(
        student(&store, &skipped).is_some(),
        "skipped by the shifted page, kept from the store"
    );

    // The night after, the roster equals a fresh full sync of the same data.
    let day_after = at(sc, sync_common::reference_day() + Duration::days(2), 7, 15);
    let r5 = sync_school(&store, sc, &c, day_after).await.unwrap();
    assert_eq!(r5.kind, SyncKind::Full);
    assert!(student(&store, &first_listed).is_none());
    let reference = open_store(&dir.path().join("reference"));
    sync_school(&reference, sc, &client(sc, PAGE), day_after)
        .await
        .unwrap();
    for table in ["students", "teachers", "klassen"] {
        assert_same(
            &rows(&reference, id, table),
            &rows(&store, id, table),
            table,
        );
    }
    let (from, to) = r5.window;
    assert_eq!(
        absences_between(&reference, id, from, to),
        absences_between(&store, id, from, to),
        "the window equals a fresh read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_is_split_at_the_school_year_start() {
    let school = sim_school("gym-newyear", 8, 80, SimConfig::default()).await;
    let sc_data = school.scenario.clone();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&school]);
    let sc = &config.schools[0];
    let id = sc.id.as_str();
    let year = sc_data.school_year;
    let day = year.start + Duration::days(10);
    let t1 = at(sc, day, 7, 15);
    let store = open_store(&dir.path().join("state"));
    let c = client(sc, PAGE);

    let r1 = sync_school(&store, sc, &c, t1).await.unwrap();
    assert_eq!(
        r1.window,
        (year.start, day),
        "the first sync backfills the year"
    );
    assert_eq!(r1.previous_year_window, None);

    // Entries of the last school year's final days appear (late entries happen).
    let enrolled = sc_data.students.iter().find(|s| s.has_account).unwrap();
    let entry = |d: NaiveDate| Absence {
        student: StudentId::from_untis(0),
        start: NaiveDateTime::new(d, chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap()),
        end: NaiveDateTime::new(d, chrono::NaiveTime::from_hms_opt(8, 45, 0).unwrap()),
        minutes: 45,
        subject: Some("M".into()),
        status: ExcuseStatus::Pending,
        kind: AbsenceKind::Absence,
    };
    let last_year = year.start - Duration::days(5);
    school.sim.apply_change(&DataChange::AddAbsence {
        untis_id: enrolled.untis_id,
        absence: entry(last_year),
    });
    // A student without account (so not in the roster) with an entry only last year.
    let unlisted = sc_data
        .students
        .iter()
        .find(|s| !s.has_account)
        .expect("the scenario has students without account");
    school.sim.apply_change(&DataChange::AddAbsence {
        untis_id: unlisted.untis_id,
        absence: entry(last_year),
    });

    let log_before = school.sim.requests().len();
    let t2 = t1 + Duration::minutes(15);
    let r2 = sync_school(&store, sc, &c, t2).await.unwrap();
    let expected_previous = (day - Duration::days(30), year.start.pred_opt().unwrap());
    assert_eq!(r2.previous_year_window, Some(expected_previous));
    assert_eq!(r2.window, (year.start, day));
    let log = school.sim.requests().split_off(log_before);
    let absence_queries: Vec<String> = log
        .iter()
        .filter(|r| r.path.ends_with("/absencetimes"))
        .map(|r| r.query.clone().unwrap())
        .collect();
    let before_start = format!("end={}T23%3A59%3A59", expected_previous.1);
    assert_eq!(
        absence_queries
            .iter()
            .filter(|q| q.contains(&before_start))
            .count(),
        sc_data.klassen.len(),
        "one request per Klasse for last year's part: {absence_queries:?}"
    );
    assert_eq!(absence_queries.len(), 2 * sc_data.klassen.len());
    let stored = absences_between(&store, id, expected_previous.0, expected_previous.1);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].student.0, enrolled.sourced_id);
    assert_eq!(stored[0].status, ExcuseStatus::Pending);
    let roster = store.load_roster(id).unwrap();
    assert!(
        roster
            .students
            .iter()
            .all(|s| s.untis_id != Some(unlisted.untis_id)),
        "last year's entries add no student"
    );

    // The excuse is decided later: the next sync replaces last year's part too.
    school.sim.apply_change(&DataChange::SetExcuse {
        untis_id: enrolled.untis_id,
        status: ExcuseStatus::Excused,
    });
    sync_school(&store, sc, &c, t2 + Duration::minutes(15))
        .await
        .unwrap();
    let stored = absences_between(&store, id, expected_previous.0, expected_previous.1);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, ExcuseStatus::Excused);
}

/// A full reconcile that would empty the roster at once is refused and keeps the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_that_empties_at_once_is_refused() {
    let school = sim_school("gym-empty", 17, 40, SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&school]);
    let sc = &config.schools[0];
    let id = sc.id.as_str();
    let store = open_store(&dir.path().join("state"));
    let (t1, _) = morning(sc);
    sync_school(&store, sc, &client(sc, PAGE), t1)
        .await
        .unwrap();
    let before = data_dump(&store, id);
    for s in school.scenario.students.iter().filter(|s| s.has_account) {
        school.sim.apply_change(&DataChange::Vanish {
            sourced_id: s.sourced_id.clone(),
        });
    }
    let next_day = at(sc, reference_day() + Duration::days(1), 7, 15);
    let err = sync_school(&store, sc, &client(sc, PAGE), next_day)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("lists no students"), "{err}");
    assert_same(&before, &data_dump(&store, id), "refused reconcile");
}
