//! The rights of one student (SPEC §9, GDPR Art. 15 and 17) as school IT exercises them with the
//! binary, no daemon running: `export` prints everything stored about the student, `erase`
//! deletes it and keeps the student out of later syncs until `erase --undo`, and `audit` shows
//! both. Every mistake is one line on stderr and exit 1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::NaiveDate;
use common::{stdout_of_success, text, write_secret};
use fehlzeiten::sim::server::{SnippetSchool, config_snippet};
use fehlzeiten::sim::{Scenario, SimConfig};
use fehlzeiten::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_fehlzeiten");
const SCHOOL: &str = "gym-dsgvo";

fn cli(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("FEHLZEITEN_CONFIG")
        .env("SUDO_USER", "alice")
        .output()
        .unwrap()
}

fn ok(config: &Path, args: &[&str]) -> String {
    stdout_of_success(args, &cli(config, args))
}

/// A command that must fail with exactly one line on stderr; returns it.
fn fails(config: &Path, args: &[&str]) -> String {
    common::one_line_failure(args, &cli(config, args))
}

/// Every stored row of the school, per table, as text.
fn rows(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let store = Store::open(&dir.join("state")).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, key, value) in store.dump_school(SCHOOL).unwrap() {
        out.entry(table)
            .or_default()
            .push(format!("{key} {}", text(&value)));
    }
    store.close().unwrap();
    out
}

/// The tables in which `needle` occurs.
fn tables_with(rows: &BTreeMap<String, Vec<String>>, needle: &str) -> Vec<String> {
    rows.iter()
        .filter(|(_, r)| r.iter().any(|row| row.contains(needle)))
        .map(|(t, _)| t.clone())
        .collect()
}

fn absences_of(dir: &Path, student: &str) -> usize {
    let store = Store::open(&dir.join("state")).unwrap();
    let n = store
        .load_school(SCHOOL)
        .unwrap()
        .absences
        .iter()
        .filter(|a| a.student.as_str() == student)
        .count();
    store.close().unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_erase_and_undo() {
    let today = Scenario::reference_day(NaiveDate::from_ymd_opt(2026, 3, 13).unwrap());
    let scenario = Arc::new(Scenario::generate(11, 60, today));
    let sim = common::start_sim(scenario.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    write_secret(
        &dir.path().join("untis.secret"),
        &SimConfig::default().password,
    );
    let school = SnippetSchool {
        id: SCHOOL.into(),
        name: "Gymnasium DSGVO".into(),
        password_file: "untis.secret".into(),
        social_workers: vec!["sozial@schule.example".into()],
    };
    let config: PathBuf = dir.path().join("fehlzeiten.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"state\"\nlanguage = \"en\"\nadmin_socket = \"no-daemon/admin.sock\"\n\n\
             [mail]\nfrom = \"fehlzeiten@schule.example\"\ntransport = \"file\"\nfile_dir = \"mails\"\n\n{}",
            config_snippet(&scenario, &sim.base_url(), &SimConfig::default(), &school)
        ),
    )
    .unwrap();
    let dir_path = dir.path().to_path_buf();
    let scenario2 = scenario.clone();
    tokio::task::spawn_blocking(move || {
        let dir = dir_path.as_path();
        let scenario = scenario2;
        let synced = ok(&config, &["sync"]);
        assert!(synced.starts_with(&format!("{SCHOOL}: ok: ")), "{synced}");

        // The student with the most findings: alerts, mails and absences to erase.
        let findings: Vec<serde_json::Value> =
            serde_json::from_str(&ok(&config, &["evaluate", "--json"])).unwrap();
        let mut per_student: BTreeMap<String, usize> = BTreeMap::new();
        for f in &findings {
            *per_student
                .entry(f["student"]["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        let (student, _) = per_student.iter().max_by_key(|(_, n)| **n).unwrap();
        let student = student.clone();
        let sim_student = scenario
            .students
            .iter()
            .find(|s| s.id.as_str() == student)
            .unwrap();
        // The name as the roster row stores it (family names alone repeat in a school).
        let name_of = |s: &fehlzeiten::sim::scenario::SimStudent| {
            format!(
                "\"given_name\":\"{}\",\"family_name\":\"{}\"",
                s.given_name, s.family_name
            )
        };
        let family = name_of(sim_student);
        let stored = absences_of(dir, &student);
        assert!(stored > 0);
        let before = rows(dir);
        assert!(tables_with(&before, &family).contains(&"students".to_string()));
        assert!(tables_with(&before, &student).contains(&"alerts".to_string()));

        // Art. 15: everything about the student, as JSON.
        let export: serde_json::Value = serde_json::from_str(&ok(
            &config,
            &["export", "--school", SCHOOL, "--student", &student],
        ))
        .unwrap();
        assert_eq!(export["school"], SCHOOL);
        assert_eq!(export["student"]["id"], student.as_str());
        assert_eq!(
            export["student"]["family_name"],
            sim_student.family_name.as_str()
        );
        assert!(export["klasse"]["name"].is_string(), "{export}");
        assert_eq!(export["absences"].as_array().unwrap().len(), stored);
        assert_eq!(
            export["alerts"].as_array().unwrap().len(),
            before["alerts"]
                .iter()
                .filter(|r| r.contains(&format!("\"student\":\"{student}\"")))
                .count()
        );
        assert!(export["erased"].is_null());
        // Mails that named the student are listed without their text (it names others too).
        for m in export["mails"].as_array().unwrap() {
            assert!(m.get("message").is_none(), "{m}");
        }
        let export_text = export.to_string();
        let other = scenario
            .students
            .iter()
            .find(|s| s.id.as_str() != student && s.klasse == sim_student.klasse)
            .unwrap();
        assert!(
            !export_text.contains(&name_of(other)),
            "another student's name in the export"
        );

        // Art. 17: erase. Only the audit log and the erasure note keep the id; no name stays.
        let erased = ok(
            &config,
            &["erase", "--school", SCHOOL, "--student", &student],
        );
        assert!(
            erased.starts_with(&format!(
                "erased student {student} in {SCHOOL}: 1 roster record, {stored} absences"
            )),
            "{erased}"
        );
        assert!(erased.contains("erase --undo"), "{erased}");
        let after = rows(dir);
        assert_eq!(tables_with(&after, &family), Vec::<String>::new());
        assert_eq!(tables_with(&after, &student), ["audit", "erased"]);
        assert_eq!(absences_of(dir, &student), 0);
        // Nobody else lost anything.
        let others = |r: &BTreeMap<String, Vec<String>>| {
            r.get("absences")
                .map(|v| v.iter().filter(|x| !x.contains(&student)).count())
        };
        assert_eq!(others(&before), others(&after));

        // Later syncs (incremental, then with a full reconcile) keep the student out.
        ok(&config, &["sync"]);
        let synced_again = rows(dir);
        assert_eq!(tables_with(&synced_again, &family), Vec::<String>::new());
        assert_eq!(absences_of(dir, &student), 0);
        let findings = ok(&config, &["evaluate", "--json"]);
        assert!(!findings.contains(&student), "{findings}");
        let listed = ok(&config, &["erase", "--list"]);
        assert!(
            listed.contains(&student) && listed.contains("by alice"),
            "{listed}"
        );

        // Erasing again renews the note and says so; nothing is left to delete.
        let again = ok(
            &config,
            &["erase", "--school", SCHOOL, "--student", &student],
        );
        assert!(
            again.contains("0 absences") && again.contains("was erased before"),
            "{again}"
        );

        // The audit log shows who exported and erased, with ids only.
        let audit = ok(&config, &["audit", "--school", SCHOOL]);
        let kinds: Vec<&str> = audit
            .lines()
            .filter(|l| l.contains(&student))
            .filter_map(|l| l.split("  ").nth(2))
            .collect();
        assert!(
            kinds.contains(&"export") && kinds.contains(&"erase"),
            "{audit}"
        );
        assert!(audit.contains("by alice"), "{audit}");
        assert!(!audit.contains(&family), "{audit}");
        let since_future = ok(&config, &["audit", "--since", "2099-01-01"]);
        assert_eq!(since_future.trim(), "no audit events");
        for line in ok(&config, &["audit", "--json"]).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["school"], SCHOOL);
        }

        // Undo: the next sync brings the student back with their absences.
        let undone = ok(
            &config,
            &["erase", "--undo", "--school", SCHOOL, "--student", &student],
        );
        assert!(undone.contains("undone"), "{undone}");
        ok(&config, &["sync"]);
        assert!(tables_with(&rows(dir), &family).contains(&"students".to_string()));
        assert_eq!(absences_of(dir, &student), stored);
        assert!(ok(&config, &["erase", "--list"]).contains("no erased students"));

        // Mistakes: one line each, nothing changed.
        let e = fails(
            &config,
            &["erase", "--undo", "--school", SCHOOL, "--student", &student],
        );
        assert!(e.contains("is not erased"), "{e}");
        let e = fails(
            &config,
            &["erase", "--school", "nope", "--student", &student],
        );
        assert!(e.contains("no school `nope`"), "{e}");
        let e = fails(&config, &["erase", "--school", SCHOOL]);
        assert!(e.contains("--student"), "{e}");
        let e = fails(&config, &["export", "--school", SCHOOL, "--student", " "]);
        assert!(e.contains("--student is empty"), "{e}");
        let e = fails(&config, &["audit", "--since", "yesterday"]);
        assert!(e.contains("yesterday"), "{e}");
        assert_eq!(absences_of(dir, &student), stored);

        // An unknown id: a warning, and an export that holds nothing.
        let out = cli(
            &config,
            &["export", "--school", SCHOOL, "--student", "S-nobody"],
        );
        assert!(out.status.success());
        assert!(text(&out.stderr).contains("warning: nothing is stored"));
        let empty: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(empty["student"].is_null() && empty["absences"] == serde_json::json!([]));
    })
    .await
    .unwrap();
}
