//! Reading a school from the store against evaluating every rule for it.
//!
//! 2,000 students with a school year of simulated absences (`Scenario::generate`), stored with
//! `Store::replace_school_data` in a temporary directory. Measures (a) `Store::load_school` and
//! (b) `pipeline::evaluate_school`, each the median of `RUNS` runs, and, to tell where the
//! evaluation time goes, its pieces through the public API: `rules::History::build` and
//! `rules::evaluate_student` (the rules themselves are private).
//!
//! Run: `cargo bench --bench evaluate`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::NaiveDate;
use fehlzeiten::config::SchoolConfig;
use fehlzeiten::model::{Absence, StudentId};
use fehlzeiten::pipeline;
use fehlzeiten::rules::{History, evaluate_student};
use fehlzeiten::sim::{Scenario, SimConfig};
use fehlzeiten::store::{Store, SyncRecord};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SEED: u64 = 20_260_710;
const STUDENTS: usize = 2_000;
const RUNS: usize = 10;
const SCHOOL: &str = "bench";

/// The school's config as a correct config file for the scenario yields it.
fn school_config(scenario: &Scenario) -> SchoolConfig {
    scenario.school_config(
        SCHOOL,
        &scenario.school_name,
        url::Url::parse("https://untis.invalid/").unwrap(),
        &SimConfig::default(),
        &["sozialarbeit@schule.invalid"],
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let asked = NaiveDate::from_ymd_opt(2026, 7, 10).unwrap();
    let started = Instant::now();
    let scenario = Scenario::generate(SEED, STUDENTS, asked);
    let today = scenario.today;
    let year = scenario.school_year;
    let roster = scenario.expected_roster();
    let generated = started.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let started = Instant::now();
    store
        .replace_school_data(
            SCHOOL,
            year,
            &roster,
            (year.start, year.end),
            &scenario.absences,
            SyncRecord {
                started: "2026-07-10T06:30:00Z".to_string(),
                finished: "2026-07-10T06:31:00Z".to_string(),
                ok: true,
                error: None,
                requests: 0,
            },
        )
        .unwrap();
    let stored_in = started.elapsed();
    let school = school_config(&scenario);

    // Warm-up: page cache, allocator.
    let snapshot = store.load_school(SCHOOL).unwrap();
    let absences = snapshot.absences.len();
    let findings = pipeline::evaluate_school(&snapshot, &school, today).len();
    drop(snapshot);

    let calendar = pipeline::calendar_for(&school, year);
    let mut runs: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut time = |name: &'static str, started: Instant| {
        runs.entry(name).or_default().push(started.elapsed());
    };
    for _ in 0..RUNS {
        let started = Instant::now();
        let snapshot = black_box(store.load_school(black_box(SCHOOL)).unwrap());
        time("read", started);

        let started = Instant::now();
        black_box(pipeline::evaluate_school(
            black_box(&snapshot),
            &school,
            today,
        ));
        time("evaluate", started);

        // The pieces of (b): the store lists absences by student, so grouping borrows slices.
        let by_student: BTreeMap<&StudentId, &[Absence]> = snapshot
            .absences
            .chunk_by(|a, b| a.student == b.student)
            .map(|chunk| (&chunk[0].student, chunk))
            .collect();
        let groups: Vec<(&StudentId, &[Absence])> = snapshot
            .roster
            .students
            .iter()
            .map(|s| (&s.id, by_student.get(&s.id).copied().unwrap_or_default()))
            .collect();

        // 1. History::build for every student.
        let started = Instant::now();
        for (id, list) in &groups {
            black_box(History::build(id, list, &calendar, &school.rules, today));
        }
        time("history", started);

        // 2. evaluate_student (History::build and the 12 rules) for every student.
        let started = Instant::now();
        for (id, list) in &groups {
            black_box(evaluate_student(id, list, &calendar, &school.rules, today));
        }
        time("student", started);
    }
    let m: BTreeMap<&str, Duration> = runs.into_iter().map(|(k, v)| (k, median(v))).collect();
    let (read, eval) = (m["read"], m["evaluate"]);
    let line = |label: &str, d: Duration, note: &str| println!("  {label:<44}{:>10}{note}", ms(d));

    println!(
        "evaluate bench: {} students ({} in the roster), {absences} absences, today {today}, seed {SEED}",
        scenario.students.len(),
        roster.students.len(),
    );
    println!(
        "setup: generate {}, store {}; median of {RUNS} runs:",
        ms(generated),
        ms(stored_in)
    );
    line("(a) read      Store::load_school", read, "");
    line(
        "(b) evaluate  pipeline::evaluate_school",
        eval,
        &format!("   ({findings} findings)"),
    );
    println!("profile of (b), {} roster students:", roster.students.len());
    line("History::build", m["history"], "");
    line(
        "rules::evaluate_student (History + 12 rules)",
        m["student"],
        "",
    );
    line(
        "  => the 12 rules together",
        m["student"].saturating_sub(m["history"]),
        "",
    );
    line(
        "  => evaluate_school beyond evaluate_student",
        eval.saturating_sub(m["student"]),
        "   (grouping, Calendar::new, sorting findings)",
    );
    let ratio = eval.as_secs_f64() / read.as_secs_f64();
    if eval < read {
        println!("evaluation is faster than reading: yes ({ratio:.2}x the read time)");
    } else {
        println!("evaluation is faster than reading: no ({ratio:.2}x the read time)");
    }
}
