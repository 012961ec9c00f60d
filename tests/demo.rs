//! The demo as a user runs it, and `evaluate --json` on its data against the planted ground truth.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fehlzeiten");
/// A school day deep in the second half-year, so every pattern has history.
const TODAY: &str = "2026-03-13";

fn severity_rank(s: &str) -> u8 {
    match s {
        "watch" => 1,
        "warning" => 2,
        "critical" => 3,
        _ => 0,
    }
}

fn run_demo(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["demo", "--out"])
        .arg(out)
        .args(["--today", TODAY])
        .args(extra)
        .env_remove("FEHLZEITEN_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn demo_writes_mails_and_evaluate_finds_every_planted_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let run = run_demo(&out, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("index.html"), "{stdout}");

    // Mails: .eml files with an HTML twin each, and an index that links them.
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    let emls: Vec<_> = std::fs::read_dir(out.join("mails"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert!(
        emls.len() >= 3,
        "expected alert and digest mails, got {emls:?}"
    );
    for eml in &emls {
        let stem = eml.file_stem().unwrap().to_str().unwrap();
        assert!(
            out.join("mails").join(format!("{stem}.html")).exists(),
            "{stem}.html"
        );
        assert!(
            index.contains(&format!("mails/{stem}.eml")),
            "index links {stem}"
        );
        let text = std::fs::read_to_string(eml).unwrap();
        assert!(text.contains("Message-ID: <"), "{stem} has a Message-ID");
    }

    // evaluate --json with the config the demo wrote.
    let eval = Command::new(BIN)
        .arg("--config")
        .arg(out.join("fehlzeiten.toml"))
        .args(["evaluate", "--json", "--at", TODAY])
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "evaluate failed: {}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let findings: Vec<Value> = serde_json::from_slice(&eval.stdout).unwrap();
    assert!(!findings.is_empty());
    for f in &findings {
        for key in ["school", "rule", "severity", "period", "evidence"] {
            assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
        }
        for key in ["id", "name", "klasse"] {
            assert!(f["student"].get(key).is_some(), "student lacks {key}: {f}");
        }
    }
    // Highest severity per (student, rule).
    let mut found: BTreeMap<(String, String), u8> = BTreeMap::new();
    for f in &findings {
        let key = (
            f["student"]["id"].as_str().unwrap().to_string(),
            f["rule"].as_str().unwrap().to_string(),
        );
        let rank = severity_rank(f["severity"].as_str().unwrap());
        let e = found.entry(key).or_default();
        *e = (*e).max(rank);
    }

    let truth_file: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ground-truth.json")).unwrap())
            .unwrap();
    let truth = truth_file["planted"].as_array().unwrap();
    let skipped: Vec<&str> = truth_file["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["plant"].as_str().unwrap())
        .collect();
    let mut planted_rules = BTreeSet::new();
    let mut checked_quiet = 0;
    for case in truth {
        let student = case["student"].as_str().unwrap().to_string();
        let category = case["category"].as_str().unwrap().to_ascii_lowercase();
        let expected = case["expected"].as_array().unwrap();
        for e in expected {
            let (rule, severity) = (e[0].as_str().unwrap(), e[1].as_str().unwrap());
            planted_rules.insert(rule.to_string());
            let got = found
                .get(&(student.clone(), rule.to_string()))
                .copied()
                .unwrap_or(0);
            assert!(
                got >= severity_rank(severity),
                "planted {rule} at {severity} for {student} ({}) not found; got rank {got}",
                case["description"]
            );
        }
        if category != "planted" {
            checked_quiet += 1;
            for ((s, rule), rank) in &found {
                assert!(
                    !(s == &student && *rank >= 2),
                    "{category} student {student} has {rule} at warning or above ({})",
                    case["description"]
                );
            }
        }
    }
    for rule in fehlzeiten::rules::RULE_IDS {
        // A rule the demo's day cannot show (early_year late in the year) must say so.
        let prefix = format!("{rule}/");
        assert!(
            planted_rules.contains(rule) || skipped.iter().any(|k| k.starts_with(&prefix)),
            "no planted case for {rule} and no reason why"
        );
    }
    assert!(
        checked_quiet >= 10,
        "too few near-miss/clean students checked: {checked_quiet}"
    );
}

#[test]
fn demo_refuses_a_foreign_directory_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.txt"), "mine").unwrap();
    let run = run_demo(dir.path(), &[]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("not a demo directory"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(dir.path().join("thesis.txt").exists());

    let run = run_demo(&dir.path().join("x"), &["--students", "0"]);
    assert_eq!(run.status.code(), Some(1));
    let run = Command::new(BIN)
        .args(["demo", "--today", "not-a-date"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "usage error");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--today"), "{err}");
}
